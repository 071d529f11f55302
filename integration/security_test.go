package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/shoal-io/shoal/internal/pkitest"
)

// writeClient writes a client certificate for subject to client.pem and
// client.key and returns their paths and the pair.
func writeClient(t *testing.T, ca *pkitest.CA, subject pkix.Name) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	pair = ca.Issue(t, subject, 50, false)
	certFile, keyFile = ca.Write(t, "client", pair)
	return certFile, keyFile, pair
}

// securedBroker is a shoald with a PLAINTEXT listener (the harness's Addr)
// and SSL, SASL_PLAINTEXT and SASL_SSL listeners, TLS client certificates
// requested.
type securedBroker struct {
	*Broker
	ca                      *pkitest.CA
	ssl, saslPlain, saslSSL string
}

func startSecuredBroker(t *testing.T, args ...string) *securedBroker {
	t.Helper()
	ca := pkitest.New(t)
	certFile, keyFile := ca.WriteServer(t, 100)
	addrs := FreeAddrs(t, 3)
	s := &securedBroker{ca: ca, ssl: addrs[0], saslPlain: addrs[1], saslSSL: addrs[2]}
	listeners := func(b *Broker) {
		b.args = append(b.args, "--listeners", fmt.Sprintf("PLAINTEXT://%s,SSL://%s,SASL_PLAINTEXT://%s,SASL_SSL://%s",
			b.Addr, s.ssl, s.saslPlain, s.saslSSL),
			"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-file", ca.CAFile,
			"--tls-client-auth", "requested", "--log-level", "debug")
		b.args = append(b.args, args...)
	}
	s.Broker = StartBroker(t, listeners)
	return s
}

// tlsConfig is a client's TLS config trusting the test CA.
func (s *securedBroker) tlsConfig(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: s.ca.Pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// client returns a kgo client of one listener, closed with the test.
func (s *securedBroker) client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(10 * time.Second),
		kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces n records to topic partition 0 with cl and reads
// them back from the start with a client made of the same options.
func (s *securedBroker) roundTrip(t *testing.T, addr, topic string, n int, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p := s.client(t, addr, opts...)
	for i := range n {
		r := &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%d", topic, i)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to %s over %s: %v", topic, addr, err)
		}
	}
	c := s.client(t, addr, append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	got := consumeFrom(t, c, topic, map[int32]int64{0: int64(n)}, 30*time.Second, t.Errorf)
	for i, r := range got[0] {
		if string(r.Value) != fmt.Sprintf("%s-%d", topic, i) {
			t.Fatalf("%s: record %d is %q", topic, i, r.Value)
		}
	}
}

// ctlEnv runs the shoalctl binary with args and extra environment
// variables, and returns its result.
func ctlEnv(t *testing.T, env []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalctlPath(t), args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run shoalctl %v: %v", args, err)
	}
	return Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errOut.String()}
}

// ctlOK runs shoalctl and fails the test unless it exits 0.
func ctlOK(t *testing.T, env []string, args ...string) string {
	t.Helper()
	res := ctlEnv(t, env, args...)
	if res.Code != 0 {
		t.Fatalf("shoalctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// TestSecurityListeners runs real clients against every listener of one
// shoald: users are created with shoalctl over PLAINTEXT; franz-go and
// kcat produce and consume over SSL (with a client certificate, whose DN
// becomes the principal), SASL_PLAINTEXT (PLAIN and SCRAM-SHA-512) and
// SASL_SSL; wrong passwords and unknown users get
// SASL_AUTHENTICATION_FAILED; a client that skips authentication gets
// nothing but the handshake.
func TestSecurityListeners(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not on PATH: run `make test` (it installs the Debian package kcat)")
	}
	s := startSecuredBroker(t)
	for _, topic := range []string{"sec-ssl", "sec-plain", "sec-scram", "sec-sasl-ssl", "sec-kcat"} {
		createTopic(t, s.Broker, topic, 1)
	}

	// The first users, over the PLAINTEXT listener (docs/security.md).
	ctlOK(t, nil, "--bootstrap", s.Addr, "users", "set-password", "alice", "--password", "alice-pw")
	ctlOK(t, nil, "--bootstrap", s.Addr, "users", "set-password", "bob", "--password", "bob-pw", "--mechanism", "SCRAM-SHA-256", "--iterations", "8192")
	if out := ctlOK(t, nil, "--bootstrap", s.Addr, "users", "list"); !strings.Contains(out, "alice") ||
		!strings.Contains(out, "SCRAM-SHA-512 (4096 iterations)") || !strings.Contains(out, "SCRAM-SHA-256 (8192 iterations)") {
		t.Fatalf("users list:\n%s", out)
	}
	if res := ctlEnv(t, nil, "--bootstrap", s.Addr, "users", "set-password", "carol", "--password", "x", "--iterations", "100"); res.Code != 2 {
		t.Fatalf("100 iterations: exit %d, %s", res.Code, res.Stderr)
	}

	// franz-go on every listener.
	_, _, client := writeClient(t, s.ca, pkix.Name{CommonName: "client-app", OrganizationalUnit: []string{"test"}})
	s.roundTrip(t, s.ssl, "sec-ssl", 20, kgo.DialTLSConfig(s.tlsConfig(&client)))
	s.WaitLog(10*time.Second, `principal="User:CN=client-app,OU=test"`)
	s.roundTrip(t, s.saslPlain, "sec-plain", 20, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-pw"}.AsMechanism()))
	s.roundTrip(t, s.saslPlain, "sec-scram", 20, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha512Mechanism()))
	s.roundTrip(t, s.saslSSL, "sec-sasl-ssl", 20, kgo.DialTLSConfig(s.tlsConfig(nil)),
		kgo.SASL(scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism()))
	s.WaitLog(10*time.Second, `principal=User:bob`)

	// Wrong passwords and unknown users.
	for name, m := range map[string]sasl.Mechanism{
		"plain wrong password":  plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(),
		"scram wrong password":  scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism(),
		"scram unknown user":    scram.Auth{User: "mallory", Pass: "alice-pw"}.AsSha512Mechanism(),
		"plain unknown user":    plain.Auth{User: "mallory", Pass: "alice-pw"}.AsMechanism(),
		"scram wrong mechanism": scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha512Mechanism(),
	} {
		cl := s.client(t, s.saslPlain, kgo.SASL(m), kgo.RetryTimeout(2*time.Second))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := cl.Ping(ctx)
		cancel()
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}

	// shoalctl over SASL_SSL, the password from the environment.
	out := ctlOK(t, []string{"SHOAL_SASL_PASSWORD=alice-pw"}, "--bootstrap", s.saslSSL, "--tls-ca-file", s.ca.CAFile,
		"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "alice", "topics", "list")
	if !strings.Contains(out, "sec-sasl-ssl") {
		t.Fatalf("topics list over SASL_SSL:\n%s", out)
	}
	if res := ctlEnv(t, []string{"SHOAL_SASL_PASSWORD=wrong"}, "--bootstrap", s.saslSSL, "--tls-ca-file", s.ca.CAFile,
		"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "alice", "--timeout", "10s", "topics", "list"); res.Code != 1 ||
		!strings.Contains(res.Stderr, "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("shoalctl with a wrong password: exit %d, stderr %s", res.Code, res.Stderr)
	}

	t.Run("kcat", func(t *testing.T) { s.kcatListeners(t) })
	t.Run("raw", func(t *testing.T) { s.rawUnauthenticated(t) })

	// Deleted users can no longer authenticate.
	ctlOK(t, nil, "--bootstrap", s.Addr, "users", "delete", "bob")
	if out := ctlOK(t, nil, "--bootstrap", s.Addr, "users", "list", "--output", "json"); strings.Contains(out, "bob") {
		t.Fatalf("bob still listed:\n%s", out)
	}
	cl := s.client(t, s.saslSSL, kgo.DialTLSConfig(s.tlsConfig(nil)), kgo.SASL(scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism()),
		kgo.RetryTimeout(2*time.Second))
	if err := cl.Ping(t.Context()); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted user: %v", err)
	}
}

// kcatListeners produces and consumes with kcat (librdkafka) on the SSL,
// SASL_PLAINTEXT (PLAIN, SCRAM-SHA-512) and SASL_SSL listeners.
func (s *securedBroker) kcatListeners(t *testing.T) {
	certFile, keyFile, _ := writeClient(t, s.ca, pkix.Name{CommonName: "kcat"})
	ssl := []string{"-X", "ssl.ca.location=" + s.ca.CAFile}
	for _, tc := range []struct {
		name, addr string
		conf       []string
	}{
		{"ssl", s.ssl, append([]string{"-X", "security.protocol=SSL", "-X", "ssl.certificate.location=" + certFile,
			"-X", "ssl.key.location=" + keyFile}, ssl...)},
		{"sasl-plain", s.saslPlain, []string{"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
			"-X", "sasl.username=alice", "-X", "sasl.password=alice-pw"}},
		{"sasl-scram", s.saslPlain, []string{"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=alice", "-X", "sasl.password=alice-pw"}},
		{"sasl-ssl", s.saslSSL, append([]string{"-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=alice", "-X", "sasl.password=alice-pw"}, ssl...)},
	} {
		topic := "sec-kcat"
		var in strings.Builder
		for i := range 10 {
			fmt.Fprintf(&in, "%s-%d\n", tc.name, i)
		}
		args := append([]string{"-b", tc.addr}, tc.conf...)
		kcat(t, in.String(), append(args, "-P", "-t", topic, "-p", "0", "-X", "acks=all")...)
		out := kcat(t, "", append(args, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q")...)
		if got := strings.Count(out, tc.name+"-"); got != 10 {
			t.Errorf("kcat %s: read %d of its 10 records:\n%s", tc.name, got, out)
		}
	}
}

// rawUnauthenticated checks the SASL listener by hand: ApiVersions and
// SaslHandshake are served before authentication, Metadata closes the
// connection, and a wrong password gets SASL_AUTHENTICATION_FAILED and a
// closed connection.
func (s *securedBroker) rawUnauthenticated(t *testing.T) {
	c := dialRaw(t, s.saslPlain)
	md := kmsg.NewPtrMetadataRequest()
	c.version(md)
	c.send(md)
	c.expectClosed("Metadata before authentication")

	c = dialRaw(t, s.saslPlain)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	c.version(hs)
	if resp := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SASLAuthBytes = []byte("\x00alice\x00wrong")
	c.version(auth)
	resp := c.roundTrip(auth).(*kmsg.SASLAuthenticateResponse)
	if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil {
		t.Fatalf("wrong password: %v %v", kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage)
	}
	c.expectClosed("after a failed SaslAuthenticate")
}

// TestTLSReloadOnSIGHUP replaces the certificate files and sends SIGHUP:
// new connections get the new certificate (its serial), the open one
// keeps working, and shoald keeps running.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	s := startSecuredBroker(t)
	serial := func() int64 {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.ssl, s.tlsConfig(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 100 {
		t.Fatalf("serial %d before the reload", got)
	}
	old := s.client(t, s.ssl, kgo.DialTLSConfig(s.tlsConfig(nil)))
	if err := old.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.ca.WriteServer(t, 200)
	s.mu.Lock()
	proc := s.cmd.Process
	s.mu.Unlock()
	if err := proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.WaitLog(10*time.Second, "tls certificate reloaded")
	if got := serial(); got != 200 {
		t.Fatalf("serial %d after SIGHUP, want 200", got)
	}
	if err := old.Ping(t.Context()); err != nil {
		t.Fatalf("client of before the reload: %v", err)
	}
	// A broken key is refused; the running certificate stays.
	if err := os.WriteFile(filepath.Join(s.ca.Dir, "server.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	proc.Signal(syscall.SIGHUP)
	s.WaitLog(10*time.Second, "tls reload failed")
	if got := serial(); got != 200 {
		t.Fatalf("serial %d after a failed reload", got)
	}
	if code := s.Terminate(); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}

// TestSASLReauthentication runs franz-go against a broker whose SASL
// sessions last one second: the client re-authenticates on its
// connection; a raw client that does not is cut off at its next request.
func TestSASLReauthentication(t *testing.T) {
	s := startSecuredBroker(t, "--connections-max-reauth-ms", "1000")
	ctlOK(t, nil, "--bootstrap", s.Addr, "users", "set-password", "alice", "--password", "alice-pw")
	createTopic(t, s.Broker, "sec-reauth", 1)
	cl := s.client(t, s.saslPlain, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha512Mechanism()))
	deadline := time.Now().Add(3500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "sec-reauth", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond) // pacing across several session lifetimes
	}
	if strings.Contains(s.Log(), "SASL session expired") {
		t.Fatal("franz-go's session expired instead of re-authenticating")
	}

	c := dialRaw(t, s.saslPlain)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	c.version(hs)
	c.roundTrip(hs)
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SASLAuthBytes = []byte("\x00alice\x00alice-pw")
	c.version(auth)
	if resp := c.roundTrip(auth).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 1000 {
		t.Fatalf("SaslAuthenticate: code %d, session lifetime %d", resp.ErrorCode, resp.SessionLifetimeMillis)
	}
	time.Sleep(1100 * time.Millisecond) // past the session lifetime
	md := kmsg.NewPtrMetadataRequest()
	c.version(md)
	c.send(md)
	c.expectClosed("Metadata on an expired session")
}

// rawFrame is a size-prefixed frame, for v0 SASL tokens.
func rawFrame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// TestSASLHandshakeV0 authenticates with SaslHandshake v0 and a raw PLAIN
// token (the framing before KIP-152), then sends a request.
func TestSASLHandshakeV0(t *testing.T) {
	s := startSecuredBroker(t)
	ctlOK(t, nil, "--bootstrap", s.Addr, "users", "set-password", "alice", "--password", "alice-pw")
	c := dialRaw(t, s.saslPlain)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 0, "PLAIN"
	if resp := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("SaslHandshake v0: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if _, err := c.c.Write(rawFrame([]byte("\x00alice\x00alice-pw"))); err != nil {
		t.Fatal(err)
	}
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.c, size[:]); err != nil || binary.BigEndian.Uint32(size[:]) != 0 {
		t.Fatalf("raw PLAIN answer: size %v, %v", size, err)
	}
	md := kmsg.NewPtrMetadataRequest()
	c.version(md)
	if resp := c.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Brokers) != 1 || resp.Brokers[0].Port != int32(portOf(t, s.saslPlain)) {
		t.Fatalf("metadata after v0 authentication: %+v", resp.Brokers)
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}
