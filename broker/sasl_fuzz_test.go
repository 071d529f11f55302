package broker

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoal-io/shoal/metadata"
)

// The SASL message parsers run before a client is authenticated: they must
// refuse any input with an error, never panic, and never let a client in
// without the password.

func FuzzSASLPlain(f *testing.F) {
	creds := credStore{}
	creds.set(f, "alice", "pw", metadata.ScramSHA512, []byte("0123456789abcdef"), 4096)
	for _, s := range []string{"\x00alice\x00pw", "alice\x00alice\x00pw", "\x00alice\x00wrong", "", "\x00\x00", "a\x00b\x00c\x00d"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		authzid, user, password, err := parsePlain(msg)
		if err == nil && (user == "" || password == "" || strings.Contains(authzid+user+password, "\x00")) {
			t.Fatalf("parsePlain(%q) = %q, %q, %q", msg, authzid, user, password)
		}
		_, done, err := (&plainServer{creds: creds.get}).step(msg)
		if done != (err == nil) || (err != nil && !errors.Is(err, errSASLAuthenticationFailed)) {
			t.Fatalf("step(%q) = %v, %v", msg, done, err)
		}
		if done && (user != "alice" || password != "pw") {
			t.Fatalf("step(%q) authenticated %q with password %q", msg, user, password)
		}
	})
}

func FuzzSCRAMClientFirst(f *testing.F) {
	for _, s := range []string{"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "y,a=user,n=user,r=abc,ext=1", "p=tls,,n=u,r=x",
		"n,,n=a=2Cb=3D,r=x", "n,,m=x,n=u,r=x", "n,,n=u,r=x,tokenauth=true", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		m, err := parseScramClientFirst(msg)
		if err != nil {
			return
		}
		if !strings.HasPrefix(msg, m.gs2Header) || m.gs2Header+m.bare != msg || m.user == "" || !validNonce(m.nonce) {
			t.Fatalf("parseScramClientFirst(%q) = %+v", msg, m)
		}
		s := newScramServer(mechScramSHA256, credStore{}.get)
		reply, done, err := s.step([]byte(msg))
		if done || (err == nil && !strings.HasPrefix(string(reply), "r="+m.nonce)) {
			t.Fatalf("step(%q) = %q, %v, %v", msg, reply, done, err)
		}
	})
}

func FuzzSCRAMClientFinal(f *testing.F) {
	for _, s := range []string{"c=biws,r=CS,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "c=biws,r=CS,ext=1,p=AAAA",
		"c=biws,r=CS", "p=AAAA", ""} {
		f.Add(s)
	}
	creds := credStore{}
	creds.set(f, "user", "pencil", metadata.ScramSHA256, []byte("saltsaltsaltsalt"), 4096)
	f.Fuzz(func(t *testing.T, msg string) {
		if m, err := parseScramClientFinal(msg); err == nil {
			if m.withoutProof+",p=" != msg[:len(m.withoutProof)+3] || len(m.proof) == 0 || !validNonce(m.nonce) {
				t.Fatalf("parseScramClientFinal(%q) = %+v", msg, m)
			}
		}
		s := newScramServer(mechScramSHA256, creds.get)
		s.serverNonce = func() string { return "S" }
		if _, _, err := s.step([]byte("n,,n=user,r=C")); err != nil {
			t.Fatal(err)
		}
		// Without the password, no message completes the exchange.
		if _, done, err := s.step([]byte(msg)); done || !errors.Is(err, errSASLAuthenticationFailed) {
			t.Fatalf("step(%q) = %v, %v", msg, done, err)
		}
	})
}
