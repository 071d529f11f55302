package broker

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/shoal-io/shoal/metadata"
)

// credStore is an in-memory credentialFunc.
type credStore map[string]map[metadata.ScramMechanism]metadata.ScramCredential

func (s credStore) get(user string, m metadata.ScramMechanism) (metadata.ScramCredential, bool) {
	cr, ok := s[user][m]
	return cr, ok
}

// set stores the credential of password, as AlterUserScramCredentials
// would (salted by the client, keys derived by the broker).
func (s credStore) set(t testing.TB, user, password string, m metadata.ScramMechanism, salt []byte, iters int) {
	t.Helper()
	h := scramHash(m)
	salted, err := saltPassword(h, password, salt, iters)
	if err != nil {
		t.Fatal(err)
	}
	stored, server := scramKeys(h, salted)
	if s[user] == nil {
		s[user] = map[metadata.ScramMechanism]metadata.ScramCredential{}
	}
	s[user][m] = metadata.ScramCredential{Mechanism: m, Salt: salt, Iterations: int32(iters), StoredKey: stored, ServerKey: server}
}

// TestScramRFC7677 runs the SCRAM-SHA-256 example exchange of RFC 7677,
// section 3, byte for byte.
func TestScramRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	creds := credStore{}
	creds.set(t, "user", "pencil", metadata.ScramSHA256, salt, 4096)
	s := newScramServer(mechScramSHA256, creds.get)
	s.serverNonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }

	reply, done, err := s.step([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done {
		t.Fatalf("client-first: %v, done %v", err, done)
	}
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; string(reply) != want {
		t.Fatalf("server-first %q, want %q", reply, want)
	}
	reply, done, err = s.step([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done {
		t.Fatalf("client-final: %v, done %v", err, done)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(reply) != want {
		t.Fatalf("server-final %q, want %q", reply, want)
	}
	if s.user() != "user" {
		t.Fatalf("user %q", s.user())
	}
	if _, _, err := s.step([]byte("more")); err == nil {
		t.Fatal("a third message was accepted")
	}
}

// exchange runs a franz-go client mechanism against a server exchange.
func exchange(t *testing.T, client sasl.Mechanism, server saslExchange) error {
	t.Helper()
	sess, msg, err := client.Authenticate(t.Context(), "127.0.0.1:9092")
	if err != nil {
		t.Fatal(err)
	}
	for {
		reply, done, err := server.step(msg)
		if err != nil {
			return err
		}
		clientDone, next, err := sess.Challenge(reply)
		if err != nil {
			t.Fatalf("client rejected the server's reply: %v", err)
		}
		if done != clientDone {
			t.Fatalf("server done %v, client done %v", done, clientDone)
		}
		if done {
			return nil
		}
		msg = next
	}
}

// TestSASLWithFranzClients authenticates franz-go's SCRAM and PLAIN clients
// against the server exchanges, and checks that a wrong password and an
// unknown user fail alike.
func TestSASLWithFranzClients(t *testing.T) {
	creds := credStore{}
	creds.set(t, "alice", "s3cret,=pw", metadata.ScramSHA512, []byte("0123456789abcdef"), 4096)
	creds.set(t, "bob=b,c", "pw256", metadata.ScramSHA256, []byte("fedcba9876543210"), 8192)
	auth := func(u, p string) scram.Auth { return scram.Auth{User: u, Pass: p} }
	for _, tc := range []struct {
		name   string
		client sasl.Mechanism
		server saslExchange
		ok     bool
	}{
		{"scram-512", auth("alice", "s3cret,=pw").AsSha512Mechanism(), newScramServer(mechScramSHA512, creds.get), true},
		{"scram-256 escaped user", auth("bob=b,c", "pw256").AsSha256Mechanism(), newScramServer(mechScramSHA256, creds.get), true},
		{"scram wrong password", auth("alice", "nope").AsSha512Mechanism(), newScramServer(mechScramSHA512, creds.get), false},
		{"scram unknown user", auth("mallory", "x").AsSha512Mechanism(), newScramServer(mechScramSHA512, creds.get), false},
		{"scram other mechanism", auth("alice", "s3cret,=pw").AsSha256Mechanism(), newScramServer(mechScramSHA256, creds.get), false},
		{"plain via scram-512", plain.Auth{User: "alice", Pass: "s3cret,=pw"}.AsMechanism(), &plainServer{creds: creds.get}, true},
		{"plain via scram-256", plain.Auth{User: "bob=b,c", Pass: "pw256"}.AsMechanism(), &plainServer{creds: creds.get}, true},
		{"plain wrong password", plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(), &plainServer{creds: creds.get}, false},
		{"plain unknown user", plain.Auth{User: "mallory", Pass: "x"}.AsMechanism(), &plainServer{creds: creds.get}, false},
		{"plain other authzid", plain.Auth{Zid: "bob=b,c", User: "alice", Pass: "s3cret,=pw"}.AsMechanism(), &plainServer{creds: creds.get}, false},
	} {
		err := exchange(t, tc.client, tc.server)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && !errors.Is(err, errSASLAuthenticationFailed):
			t.Errorf("%s: %v, want an authentication failure", tc.name, err)
		}
	}
	// A wrong password and an unknown user read the same to the client.
	e1 := exchange(t, auth("alice", "nope").AsSha512Mechanism(), newScramServer(mechScramSHA512, creds.get))
	e2 := exchange(t, auth("mallory", "x").AsSha512Mechanism(), newScramServer(mechScramSHA512, creds.get))
	if e1 == nil || e2 == nil || e1.Error() != e2.Error() {
		t.Fatalf("wrong password %q, unknown user %q", e1, e2)
	}
}

func TestScramRejectsMalformed(t *testing.T) {
	creds := credStore{}
	creds.set(t, "user", "pencil", metadata.ScramSHA256, []byte("saltsaltsaltsalt"), 4096)
	for _, first := range []string{
		"", "n", "n,", "x,,n=user,r=abc", "p=tls-unique,,n=user,r=abc", "n,a=other,n=user,r=abc",
		"n,,m=ext,n=user,r=abc", "n,,n=user", "n,,n=,r=abc", "n,,n=us=er,r=abc", "n,,r=abc,n=user",
		"n,,n=user,r=", "n,,n=user,r=a b", "n,,n=user,r=abc,tokenauth=true", "n,,n=user,r=abc,=x",
		"n,,n=\xff,r=abc",
	} {
		s := newScramServer(mechScramSHA256, creds.get)
		if _, _, err := s.step([]byte(first)); !errors.Is(err, errSASLAuthenticationFailed) {
			t.Errorf("client-first %q: %v", first, err)
		}
	}
	for _, final := range []string{
		"", "c=biws,r=NONCE", "c=biws,r=NONCE,p=", "c=biws,r=NONCE,p=!!", "r=NONCE,p=AAAA",
		"c=eSws,r=NONCE,p=AAAA", "c=biws,r=other,p=AAAA", "c=biws,r=NONCE,p=AAAA",
	} {
		s := newScramServer(mechScramSHA256, creds.get)
		s.serverNonce = func() string { return "S" }
		if _, _, err := s.step([]byte("n,,n=user,r=C")); err != nil {
			t.Fatal(err)
		}
		msg := strings.ReplaceAll(final, "NONCE", "CS")
		if _, _, err := s.step([]byte(msg)); !errors.Is(err, errSASLAuthenticationFailed) {
			t.Errorf("client-final %q: %v", msg, err)
		}
	}
	for _, msg := range []string{"", "a\x00b", "\x00\x00pw", "\x00u\x00", "a\x00b\x00c\x00d", strings.Repeat("x", 5000)} {
		if _, _, err := (&plainServer{creds: creds.get}).step([]byte(msg)); !errors.Is(err, errSASLAuthenticationFailed) {
			t.Errorf("plain %q: %v", msg, err)
		}
	}
}

// TestSASLPhases walks a SASL listener connection's states: what each
// allows, a handshake's errors, expiry and re-authentication.
func TestSASLPhases(t *testing.T) {
	creds := credStore{}
	creds.set(t, "alice", "pw", metadata.ScramSHA512, []byte("0123456789abcdef"), 4096)
	creds.set(t, "bob", "pw", metadata.ScramSHA512, []byte("0123456789abcdef"), 4096)
	b := &Broker{}
	a := newConnAuth(&listener{Listener: Listener{Name: "SASL", Protocol: ProtocolSASLPlaintext}})
	now := time.Now()
	allowed := func(key int16) bool { ok, _ := a.permits(key, now); return ok }
	if !allowed(apiVersionsKey) || !allowed(saslHandshakeKey) || allowed(3) || allowed(saslAuthenticateKey) {
		t.Fatal("before the handshake: want ApiVersions and SaslHandshake only")
	}
	if a.principal() != principalAnonymous || a.authenticated() {
		t.Fatal("unauthenticated connection has a principal")
	}
	if err, fatal := a.begin(b, 1, "GSSAPI"); !errors.Is(err, errUnsupportedSASLMechanism) || !fatal {
		t.Fatalf("GSSAPI: %v %v", err, fatal)
	}
	a = newConnAuth(&listener{Listener: Listener{Name: "SASL", Protocol: ProtocolSASLPlaintext}})
	if err, _ := a.begin(b, 1, mechPlain); err != nil {
		t.Fatal(err)
	}
	if allowed(apiVersionsKey) || allowed(3) || !allowed(saslAuthenticateKey) {
		t.Fatal("after the handshake: want SaslAuthenticate only")
	}
	if err, fatal := a.begin(b, 1, mechPlain); !errors.Is(err, errIllegalSASLState) || !fatal {
		t.Fatalf("second handshake: %v %v", err, fatal)
	}
	a.mu.exchange = &plainServer{creds: creds.get} // Broker{} has no metadata to look credentials up in
	if _, done, err := a.step([]byte("\x00alice\x00pw"), time.Minute, now); err != nil || !done {
		t.Fatalf("authenticate: %v %v", done, err)
	}
	if a.principal() != "User:alice" || !allowed(3) || !allowed(apiVersionsKey) {
		t.Fatal("authenticated connection refused")
	}
	// The session expires: only a re-authentication may follow.
	now = now.Add(time.Minute)
	if allowed(3) || allowed(apiVersionsKey) || !allowed(saslHandshakeKey) {
		t.Fatal("expired session: want SaslHandshake only")
	}
	if err, _ := a.begin(b, 0, mechPlain); !errors.Is(err, errIllegalSASLState) {
		t.Fatalf("v0 re-authentication: %v", err)
	}
	if err, _ := a.begin(b, 1, mechScramSHA512); !errors.Is(err, errIllegalSASLState) {
		t.Fatalf("re-authentication with another mechanism: %v", err)
	}
	if err, _ := a.begin(b, 1, mechPlain); err != nil {
		t.Fatal(err)
	}
	a.mu.exchange = &plainServer{creds: creds.get}
	if _, _, err := a.step([]byte("\x00bob\x00pw"), time.Minute, now); !errors.Is(err, errSASLAuthenticationFailed) {
		t.Fatalf("re-authentication as another user: %v", err)
	}
	// PLAINTEXT and SSL connections are never gated.
	p := newConnAuth(nil)
	if ok, _ := p.permits(3, now); !ok || !p.authenticated() {
		t.Fatal("PLAINTEXT connection gated")
	}
	if err, fatal := p.begin(b, 1, mechPlain); !errors.Is(err, errIllegalSASLState) || fatal {
		t.Fatalf("handshake on PLAINTEXT: %v %v", err, fatal)
	}
}
