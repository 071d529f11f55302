package broker

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/shoal-io/shoal/internal/pkitest"
	"github.com/shoal-io/shoal/metadata"
)

func TestCertPrincipal(t *testing.T) {
	p := pkitest.New(t)
	c := p.Issue(t, pkix.Name{CommonName: "client one", OrganizationalUnit: []string{"eng"}, Organization: []string{"Shoal, Inc"}, Country: []string{"DE"}}, 2, false)
	if got, want := certPrincipal(c.Leaf), `User:CN=client one,OU=eng,O=Shoal\, Inc,C=DE`; got != want {
		t.Fatalf("principal %q, want %q", got, want)
	}
}

// securedBroker starts a broker with PLAINTEXT, SSL (client certificates
// requested) and SASL_PLAINTEXT listeners.
func securedBroker(t *testing.T, p *pkitest.CA, edit ...func(*Config)) *Broker {
	t.Helper()
	certFile, keyFile := p.WriteServer(t, 100)
	return startBroker(t, append([]func(*Config){func(c *Config) {
		c.Listeners = []Listener{
			{Name: "PLAINTEXT", Protocol: ProtocolPlaintext, Listen: "127.0.0.1:0"},
			{Name: "SSL", Protocol: ProtocolSSL, Listen: "127.0.0.1:0"},
			{Name: "SASL_PLAINTEXT", Protocol: ProtocolSASLPlaintext, Listen: "127.0.0.1:0"},
		}
		c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile, CAFile: p.CAFile, ClientAuth: ClientAuthRequested}
	}}, edit...)...)
}

// connPrincipals returns the principals of the broker's connections on a
// listener.
func connPrincipals(b *Broker, listener string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for c := range b.mu.conns {
		if c.auth.listenerName() == listener {
			out = append(out, c.auth.principal())
		}
	}
	return out
}

// dialTLS opens a raw Kafka connection over TLS, with an optional client
// certificate, and returns it with the server's certificate.
func dialTLS(t *testing.T, addr string, pool *x509.CertPool, cert *tls.Certificate) (*rawConn, *x509.Certificate) {
	t.Helper()
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("tls dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}, nc.ConnectionState().PeerCertificates[0]
}

// TestTLSListener checks the SSL listener: the client certificate's DN
// becomes the principal, a client without one is User:ANONYMOUS, Metadata
// gives each listener's own addresses, and ReloadTLS serves a new
// certificate to new connections only.
func TestTLSListener(t *testing.T) {
	t.Parallel()
	p := pkitest.New(t)
	b := securedBroker(t, p, func(c *Config) { c.ClusterTLS = true })
	sslAddr := b.ListenerAddr("SSL").String()

	client := p.Issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}}, 7, false)
	c, served := dialTLS(t, sslAddr, p.Pool, &client)
	if served.SerialNumber.Int64() != 100 {
		t.Fatalf("served serial %v", served.SerialNumber)
	}
	resp := c.do(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 1 || fmt.Sprintf("%s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port) != sslAddr {
		t.Fatalf("metadata on SSL: brokers %+v, want %s", resp.Brokers, sslAddr)
	}
	if got := connPrincipals(b, "SSL"); len(got) != 1 || got[0] != "User:CN=alice,OU=eng" {
		t.Fatalf("SSL principals %v", got)
	}
	anon, _ := dialTLS(t, sslAddr, p.Pool, nil)
	anon.do(kmsg.NewPtrApiVersionsRequest())
	plain := dialRaw(t, b)
	resp = plain.do(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if fmt.Sprintf("%s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port) != b.Addr().String() {
		t.Fatalf("metadata on PLAINTEXT: brokers %+v", resp.Brokers)
	}
	if got := connPrincipals(b, "SSL"); len(got) != 2 || (got[0] != principalAnonymous && got[1] != principalAnonymous) {
		t.Fatalf("SSL principals with an anonymous client: %v", got)
	}
	if got := connPrincipals(b, "PLAINTEXT"); len(got) != 1 || got[0] != principalAnonymous {
		t.Fatalf("PLAINTEXT principals %v", got)
	}
	// A certificate of another CA is refused.
	stranger := pkitest.New(t).Issue(t, pkix.Name{CommonName: "mallory"}, 9, false)
	nc, err := tls.Dial("tcp", sslAddr, &tls.Config{RootCAs: p.Pool, Certificates: []tls.Certificate{stranger}})
	if err == nil { // TLS 1.3: the server's verdict comes with the first read
		bad := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
		req := kmsg.NewPtrApiVersionsRequest()
		if _, err := bad.tryRecv(req, bad.send(req)); err == nil {
			t.Fatal("a certificate of another CA was accepted")
		}
		nc.Close()
	}

	// The cluster listener is mutual TLS: a peer certificate of the CA
	// passes the handshake, a client without one does not.
	peer := p.Issue(t, pkix.Name{CommonName: "127.0.0.1"}, 8, true)
	cc, err := tls.Dial("tcp", b.ClusterAddr().String(), &tls.Config{RootCAs: p.Pool, Certificates: []tls.Certificate{peer}})
	if err != nil {
		t.Fatalf("cluster listener with a peer certificate: %v", err)
	}
	cc.Close()
	if cc, err := tls.Dial("tcp", b.ClusterAddr().String(), &tls.Config{RootCAs: p.Pool}); err == nil {
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := cc.Read(make([]byte, 1)); err == nil {
			t.Fatal("cluster listener served a client without a certificate")
		}
		cc.Close()
	}

	// Reload: new connections get the new certificate, a bad file keeps it.
	p.WriteServer(t, 200)
	if err := b.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if _, served := dialTLS(t, sslAddr, p.Pool, nil); served.SerialNumber.Int64() != 200 {
		t.Fatalf("after reload: serial %v", served.SerialNumber)
	}
	c.do(kmsg.NewPtrApiVersionsRequest()) // the old connection goes on
	if err := os.WriteFile(filepath.Join(p.Dir, "server.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.ReloadTLS(); err == nil {
		t.Fatal("reload of a garbage key succeeded")
	}
	if _, served := dialTLS(t, sslAddr, p.Pool, nil); served.SerialNumber.Int64() != 200 {
		t.Fatalf("after a failed reload: serial %v", served.SerialNumber)
	}
}

// saslHandshake sends SaslHandshake with the mechanism on c.
func saslHandshake(c *rawConn, version int16, mech string) *kmsg.SASLHandshakeResponse {
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version, req.Mechanism = version, mech
	return c.do(req).(*kmsg.SASLHandshakeResponse)
}

// saslAuthenticate sends one SaslAuthenticate v1 token on c.
func saslAuthenticate(c *rawConn, token string) *kmsg.SASLAuthenticateResponse {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = 1, []byte(token)
	return c.do(req).(*kmsg.SASLAuthenticateResponse)
}

// TestSASLListener runs the SASL_PLAINTEXT listener over the raw protocol
// and with franz-go: requests before authentication close the connection,
// PLAIN over SaslAuthenticate and over v0 raw tokens, failures, and
// re-authentication after the session lifetime.
func TestSASLListener(t *testing.T) {
	t.Parallel()
	p := pkitest.New(t)
	b := securedBroker(t, p, func(c *Config) { c.ConnectionsMaxReauth = 2 * time.Second })
	addr := b.ListenerAddr("SASL_PLAINTEXT").String()
	salt := []byte("0123456789abcdef")
	stored, server := scramKeys(scramHash(metadata.ScramSHA512), mustSalt(t, "pw", salt))
	if err := b.meta.AlterUserScram(t.Context(), "alice", []metadata.ScramCredential{{Mechanism: metadata.ScramSHA512,
		Salt: salt, Iterations: 4096, StoredKey: stored, ServerKey: server}}, nil); err != nil {
		t.Fatal(err)
	}
	dial := func() *rawConn {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	}

	// Nothing but the handshake before authentication.
	c := dial()
	if resp := c.do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions: %d", resp.ErrorCode)
	}
	c.send(kmsg.NewPtrMetadataRequest())
	c.expectClosed()

	// A frame above 512 KiB before authentication is refused from its size
	// alone: the connection closes without the body being sent.
	c = dial()
	if _, err := c.nc.Write([]byte{0, 0x10, 0, 0}); err != nil { // 1 MiB
		t.Fatal(err)
	}
	c.expectClosed()

	// PLAIN over SaslAuthenticate; the session lifetime comes back.
	c = dial()
	if resp := saslHandshake(c, 1, mechPlain); resp.ErrorCode != 0 || len(resp.SupportedMechanisms) != 3 {
		t.Fatalf("handshake: %+v", resp)
	}
	resp := saslAuthenticate(c, "\x00alice\x00pw")
	if resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 2000 {
		t.Fatalf("authenticate: %+v", resp)
	}
	if got := c.do(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); fmt.Sprintf("%s:%d", got.Brokers[0].Host, got.Brokers[0].Port) != addr {
		t.Fatalf("metadata on SASL_PLAINTEXT: %+v", got.Brokers)
	}
	// Re-authentication on the same connection, then the session expires.
	saslHandshake(c, 1, mechPlain)
	if resp := saslAuthenticate(c, "\x00alice\x00pw"); resp.ErrorCode != 0 {
		t.Fatalf("re-authenticate: %+v", resp)
	}
	time.Sleep(2100 * time.Millisecond) // the session lifetime
	c.send(kmsg.NewPtrMetadataRequest())
	c.expectClosed()

	// PLAIN over v0 raw tokens.
	c = dial()
	if resp := saslHandshake(c, 0, mechPlain); resp.ErrorCode != 0 {
		t.Fatalf("handshake v0: %+v", resp)
	}
	if _, err := c.nc.Write(appendRawFrame(nil, []byte("\x00alice\x00pw"))); err != nil {
		t.Fatal(err)
	}
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if reply, err := readRaw(c); err != nil || len(reply) != 0 {
		t.Fatalf("raw PLAIN reply %q, %v", reply, err)
	}
	c.do(kmsg.NewPtrMetadataRequest())

	// A wrong password and an unknown user: SASL_AUTHENTICATION_FAILED, closed.
	for _, token := range []string{"\x00alice\x00wrong", "\x00nobody\x00pw"} {
		c = dial()
		saslHandshake(c, 1, mechPlain)
		resp := saslAuthenticate(c, token)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil {
			t.Fatalf("%q: %+v", token, resp)
		}
		c.expectClosed()
	}
	// An unknown mechanism: UNSUPPORTED_SASL_MECHANISM, closed.
	c = dial()
	if resp := saslHandshake(c, 1, "GSSAPI"); resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code {
		t.Fatalf("GSSAPI: %+v", resp)
	}
	c.expectClosed()
	// On PLAINTEXT, SASL requests get ILLEGAL_SASL_STATE and nothing closes.
	plain := dialRaw(t, b)
	if resp := saslHandshake(plain, 1, mechPlain); resp.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("handshake on PLAINTEXT: %+v", resp)
	}
	plain.do(kmsg.NewPtrMetadataRequest())

	// franz-go with SCRAM-SHA-512 produces and re-authenticates across
	// session lifetimes.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "alice", Pass: "pw"}.AsSha512Mechanism()),
		kgo.DefaultProduceTopic("sasl-"+t.Name()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, b, "sasl-"+t.Name(), 1)
	for i := range 3 {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if i < 2 {
			time.Sleep(1500 * time.Millisecond) // past the 2 s lifetime by the third produce
		}
	}
}

func mustSalt(t *testing.T, password string, salt []byte) []byte {
	t.Helper()
	s, err := saltPassword(scramHash(metadata.ScramSHA512), password, salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readRaw reads one size-prefixed frame.
func readRaw(c *rawConn) ([]byte, error) {
	var size [4]byte
	if _, err := c.br.Read(size[:]); err != nil {
		return nil, err
	}
	n := int(size[0])<<24 | int(size[1])<<16 | int(size[2])<<8 | int(size[3])
	buf := make([]byte, n)
	_, err := c.br.Read(buf)
	if n == 0 {
		err = nil
	}
	return buf, err
}
