package broker

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shoal-io/shoal/metadata"
)

// SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side:
//
//	client-first  n,,n=USER,r=CNONCE
//	server-first  r=CNONCE+SNONCE,s=SALT,i=ITERATIONS
//	client-final  c=biws,r=CNONCE+SNONCE,p=PROOF
//	server-final  v=SERVER-SIGNATURE
//
// The credential is the salt, the iteration count, StoredKey = H(ClientKey)
// and ServerKey, with ClientKey = HMAC(SaltedPassword, "Client Key"),
// ServerKey = HMAC(SaltedPassword, "Server Key") and SaltedPassword =
// PBKDF2(password, salt, iterations). A user without a credential for the
// mechanism gets a made-up salt and fails at the proof, like a wrong
// password, so the exchange does not reveal which users exist. Channel
// binding is not supported (a "p=" flag fails); the Kafka extension
// tokenauth (delegation tokens) is refused, other extensions are ignored.

// credentialFunc looks up a user's SCRAM credential in the metadata.
type credentialFunc func(user string, m metadata.ScramMechanism) (metadata.ScramCredential, bool)

// scramCredential returns user's credential for m from the current image.
func (b *Broker) scramCredential(user string, m metadata.ScramMechanism) (metadata.ScramCredential, bool) {
	return b.meta.Image().ScramCredential(user, m)
}

// scramHash returns the hash function of a mechanism.
func scramHash(m metadata.ScramMechanism) func() hash.Hash {
	if m == metadata.ScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

// saltPassword is RFC 5802's Hi(password, salt, iterations).
func saltPassword(h func() hash.Hash, password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

// scramKeys derives StoredKey and ServerKey from a salted password.
func scramKeys(h func() hash.Hash, salted []byte) (stored, server []byte) {
	clientKey := hmacSum(h, salted, "Client Key")
	d := h()
	d.Write(clientKey)
	return d.Sum(nil), hmacSum(h, salted, "Server Key")
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// fakeScramKey makes the salts of users that do not exist: stable for a
// user within a process, unpredictable outside it.
var fakeScramKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

// fakeCredential is the credential shown for a user that has none: a
// proof can never match its keys (random ones).
func fakeCredential(h func() hash.Hash, m metadata.ScramMechanism, user string) metadata.ScramCredential {
	salt := hmacSum(sha256.New, fakeScramKey, m.String()+"\x00"+user)[:16]
	keys := make([]byte, 2*h().Size())
	rand.Read(keys)
	return metadata.ScramCredential{Mechanism: m, Salt: salt, Iterations: metadata.MinScramIterations,
		StoredKey: keys[:h().Size()], ServerKey: keys[h().Size():]}
}

// scramClientFirst is a parsed client-first message.
type scramClientFirst struct {
	gs2Header string // "n,," or "y,," with an optional authzid
	authzid   string
	user      string
	nonce     string
	bare      string // client-first-message-bare
}

// scramClientFinal is a parsed client-final message.
type scramClientFinal struct {
	channelBinding []byte // decoded c= attribute
	nonce          string
	withoutProof   string // client-final-message-without-proof
	proof          []byte
}

var errScramMalformed = errors.New("malformed SCRAM message")

// parseScramClientFirst parses gs2-header client-first-message-bare.
func parseScramClientFirst(msg string) (scramClientFirst, error) {
	var m scramClientFirst
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return m, fmt.Errorf("%w: no GS2 header", errScramMalformed)
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return m, errors.New("channel binding is not supported")
	default:
		return m, fmt.Errorf("%w: bad channel binding flag", errScramMalformed)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return m, fmt.Errorf("%w: no GS2 header", errScramMalformed)
	}
	if authz != "" {
		a, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return m, fmt.Errorf("%w: bad authzid", errScramMalformed)
		}
		name, err := decodeSaslName(a)
		if err != nil {
			return m, err
		}
		m.authzid = name
	}
	m.gs2Header, m.bare = msg[:len(flag)+1+len(authz)+1], bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 {
		return m, fmt.Errorf("%w: client-first needs a user and a nonce", errScramMalformed)
	}
	if strings.HasPrefix(attrs[0], "m=") {
		return m, errors.New("mandatory SCRAM extensions are not supported")
	}
	u, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return m, fmt.Errorf("%w: no user", errScramMalformed)
	}
	user, err := decodeSaslName(u)
	if err != nil {
		return m, err
	}
	if user == "" {
		return m, fmt.Errorf("%w: empty user", errScramMalformed)
	}
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(nonce) {
		return m, fmt.Errorf("%w: bad nonce", errScramMalformed)
	}
	for _, ext := range attrs[2:] {
		k, v, ok := strings.Cut(ext, "=")
		if !ok || k == "" {
			return m, fmt.Errorf("%w: bad extension", errScramMalformed)
		}
		if k == "tokenauth" && strings.EqualFold(v, "true") {
			return m, errors.New("delegation tokens are not supported")
		}
	}
	m.user, m.nonce = user, nonce
	return m, nil
}

// parseScramClientFinal parses channel-binding,nonce[,extensions],proof.
func parseScramClientFinal(msg string) (scramClientFinal, error) {
	var m scramClientFinal
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return m, fmt.Errorf("%w: no proof", errScramMalformed)
	}
	m.withoutProof = msg[:i]
	proof, err := base64.StdEncoding.Strict().DecodeString(msg[i+3:])
	if err != nil || len(proof) == 0 {
		return m, fmt.Errorf("%w: bad proof", errScramMalformed)
	}
	attrs := strings.Split(m.withoutProof, ",")
	if len(attrs) < 2 {
		return m, fmt.Errorf("%w: client-final needs channel binding and nonce", errScramMalformed)
	}
	cb, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return m, fmt.Errorf("%w: no channel binding", errScramMalformed)
	}
	if m.channelBinding, err = base64.StdEncoding.Strict().DecodeString(cb); err != nil {
		return m, fmt.Errorf("%w: bad channel binding", errScramMalformed)
	}
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(nonce) {
		return m, fmt.Errorf("%w: bad nonce", errScramMalformed)
	}
	m.nonce, m.proof = nonce, proof
	return m, nil
}

// decodeSaslName undoes RFC 5802's escaping of ',' (=2C) and '=' (=3D).
func decodeSaslName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: user is not UTF-8", errScramMalformed)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',':
			return "", fmt.Errorf("%w: unescaped comma", errScramMalformed)
		case '=':
			switch {
			case strings.HasPrefix(s[i:], "=2C"):
				b.WriteByte(',')
			case strings.HasPrefix(s[i:], "=3D"):
				b.WriteByte('=')
			default:
				return "", fmt.Errorf("%w: bad escape in user", errScramMalformed)
			}
			i += 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// validNonce reports whether s is a non-empty run of printable ASCII
// without commas.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// scramServer is the server side of one SCRAM exchange.
type scramServer struct {
	mech  string
	m     metadata.ScramMechanism
	h     func() hash.Hash
	creds credentialFunc
	// serverNonce returns the server's part of the nonce (random; fixed
	// in the RFC test vector).
	serverNonce func() string

	first       scramClientFirst
	serverFirst string
	nonce       string
	cred        metadata.ScramCredential
	known       bool
	stage       int // messages taken so far
}

func newScramServer(mech string, creds credentialFunc) *scramServer {
	m, _ := metadata.ParseScramMechanism(mech)
	return &scramServer{mech: mech, m: m, h: scramHash(m), creds: creds, serverNonce: randomNonce}
}

// randomNonce returns 24 random bytes in URL-safe base64 (no commas).
func randomNonce() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *scramServer) user() string { return s.first.user }

func (s *scramServer) step(msg []byte) ([]byte, bool, error) {
	s.stage++
	switch s.stage {
	case 1:
		return s.clientFirst(string(msg))
	case 2:
		return s.clientFinal(string(msg))
	}
	return nil, false, authFailed("Authentication failed: unexpected SCRAM message")
}

func (s *scramServer) clientFirst(msg string) ([]byte, bool, error) {
	first, err := parseScramClientFirst(msg)
	if err != nil {
		return nil, false, authFailed("Authentication failed: invalid SCRAM client-first message: %v", err)
	}
	s.first = first
	if first.authzid != "" && first.authzid != first.user {
		return nil, false, authFailed("Authentication failed: client requested an authorization id that is different from username")
	}
	s.cred, s.known = s.creds(first.user, s.m)
	if !s.known {
		s.cred = fakeCredential(s.h, s.m, first.user)
	}
	s.nonce = first.nonce + s.serverNonce()
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) +
		",i=" + strconv.Itoa(int(s.cred.Iterations))
	return []byte(s.serverFirst), false, nil
}

func (s *scramServer) clientFinal(msg string) ([]byte, bool, error) {
	final, err := parseScramClientFinal(msg)
	if err != nil {
		return nil, false, authFailed("Authentication failed: invalid SCRAM client-final message: %v", err)
	}
	if string(final.channelBinding) != s.first.gs2Header {
		return nil, false, authFailed("Authentication failed: channel binding does not match the GS2 header")
	}
	// Kafka checks only that the nonce ends with the server's: librdkafka
	// (2.0) sends its own nonce in front of the combined one. The server's
	// fresh part is there either way, and the proof covers the message.
	if !strings.HasSuffix(final.nonce, s.nonce) {
		return nil, false, authFailed("Authentication failed: nonce mismatch")
	}
	authMessage := s.first.bare + "," + s.serverFirst + "," + final.withoutProof
	clientSignature := hmacSum(s.h, s.cred.StoredKey, authMessage)
	if len(final.proof) != len(clientSignature) {
		return nil, false, invalidCredentials(s.mech)
	}
	clientKey := make([]byte, len(clientSignature))
	subtle.XORBytes(clientKey, final.proof, clientSignature)
	d := s.h()
	d.Write(clientKey)
	if subtle.ConstantTimeCompare(d.Sum(nil), s.cred.StoredKey) != 1 || !s.known {
		return nil, false, invalidCredentials(s.mech)
	}
	serverSignature := hmacSum(s.h, s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), true, nil
}
