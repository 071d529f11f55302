package broker

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/shoal-io/shoal/metadata"
)

// SASL/PLAIN (RFC 4616): one message, authzid NUL user NUL password. There
// is no separate PLAIN user store: the password is checked against the
// user's SCRAM credential in the metadata (SCRAM-SHA-512 if the user has
// one, else SCRAM-SHA-256) by salting it with the credential's salt and
// iterations and comparing the StoredKey. So `shoalctl users set-password`
// serves both mechanisms. PLAIN sends the password as it is: use it on
// SASL_SSL listeners only, unless the network is trusted.

// maxPlainMessage bounds a PLAIN message (user and password).
const maxPlainMessage = 4096

var errPlainMalformed = errors.New("malformed PLAIN message")

// parsePlain splits a PLAIN message into authzid, user and password.
func parsePlain(msg []byte) (authzid, user, password string, err error) {
	if len(msg) > maxPlainMessage {
		return "", "", "", fmt.Errorf("%w: %d bytes", errPlainMalformed, len(msg))
	}
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: expected 3 tokens, got %d", errPlainMalformed, len(parts))
	}
	for _, p := range parts {
		if !utf8.Valid(p) {
			return "", "", "", fmt.Errorf("%w: not UTF-8", errPlainMalformed)
		}
	}
	authzid, user, password = string(parts[0]), string(parts[1]), string(parts[2])
	switch {
	case user == "":
		return "", "", "", fmt.Errorf("%w: username not specified", errPlainMalformed)
	case password == "":
		return "", "", "", fmt.Errorf("%w: password not specified", errPlainMalformed)
	}
	return authzid, user, password, nil
}

// plainServer is the server side of one PLAIN exchange.
type plainServer struct {
	creds   credentialFunc
	claimed string
	done    bool
}

func (p *plainServer) user() string { return p.claimed }

func (p *plainServer) step(msg []byte) ([]byte, bool, error) {
	if p.done {
		return nil, false, authFailed("Authentication failed: unexpected PLAIN message")
	}
	p.done = true
	authzid, user, password, err := parsePlain(msg)
	if err != nil {
		return nil, false, authFailed("Authentication failed: invalid SASL/PLAIN message: %v", err)
	}
	p.claimed = user
	if authzid != "" && authzid != user {
		return nil, false, authFailed("Authentication failed: client requested an authorization id that is different from username")
	}
	m := metadata.ScramSHA512
	cred, ok := p.creds(user, m)
	if !ok {
		m = metadata.ScramSHA256
		cred, ok = p.creds(user, m)
	}
	h := scramHash(m)
	if !ok {
		cred = fakeCredential(h, m, user) // the same work as for a real user
	}
	salted, err := saltPassword(h, password, cred.Salt, int(cred.Iterations))
	if err != nil {
		return nil, false, invalidCredentials(mechPlain)
	}
	stored, _ := scramKeys(h, salted)
	if subtle.ConstantTimeCompare(stored, cred.StoredKey) != 1 || !ok {
		return nil, false, invalidCredentials(mechPlain)
	}
	return []byte{}, true, nil
}
