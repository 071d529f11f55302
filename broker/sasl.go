package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Connection authentication. Every connection knows its listener, security
// protocol and principal (for the authoriser): User:ANONYMOUS on PLAINTEXT,
// on SSL "User:" and the client certificate's subject DN when the client
// sent one, on SASL listeners "User:" and the SASL user once authenticated.
//
// On a SASL listener a connection starts unauthenticated and may send only
// ApiVersions and SaslHandshake; after a handshake only SaslAuthenticate
// (v1+ handshake) or raw SASL tokens (v0 handshake, KIP-43's framing), until
// the exchange succeeds. Anything else closes the connection, as Kafka
// does; a failed exchange is answered with SASL_AUTHENTICATION_FAILED and
// closes it too. With ConnectionsMaxReauth (KIP-368) a session expires: the
// client re-authenticates on the same connection (SaslHandshake v1+ with the
// same mechanism and user, then SaslAuthenticate), and any other request on
// an expired session closes the connection.

// The SASL mechanisms.
const (
	mechPlain       = "PLAIN"
	mechScramSHA256 = "SCRAM-SHA-256"
	mechScramSHA512 = "SCRAM-SHA-512"
)

// allSASLMechanisms are the mechanisms served when none are configured.
var allSASLMechanisms = []string{mechPlain, mechScramSHA256, mechScramSHA512}

func knownSASLMechanism(m string) bool { return slices.Contains(allSASLMechanisms, m) }

// principalAnonymous is the principal of an unauthenticated connection.
const principalAnonymous = "User:ANONYMOUS"

// saslMaxReceiveSize caps a request frame on a SASL listener before
// authentication (Kafka's sasl.server.max.receive.size).
const saslMaxReceiveSize = 512 << 10

// API keys that take part in authentication.
const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

// SASL errors; errcode.go maps them to Kafka codes.
var (
	errSASLAuthenticationFailed = errors.New("broker: SASL authentication failed")
	errIllegalSASLState         = errors.New("broker: request not expected in this SASL state")
	errUnsupportedSASLMechanism = errors.New("broker: unsupported SASL mechanism")

	// SCRAM credential administration (50, 51)
	errDuplicateResource = errors.New("broker: resource given twice in one request")
	errResourceNotFound  = errors.New("broker: resource not found")
)

// saslFailure is a failed authentication: its text goes to the client, so
// it never tells an unknown user from a wrong password.
type saslFailure struct{ msg string }

func (e *saslFailure) Error() string { return e.msg }

// Is makes a saslFailure match errSASLAuthenticationFailed.
func (e *saslFailure) Is(target error) bool { return target == errSASLAuthenticationFailed }

// authFailed returns a saslFailure with a formatted client-facing text.
func authFailed(format string, args ...any) error {
	return &saslFailure{msg: fmt.Sprintf(format, args...)}
}

// invalidCredentials is the failure of a wrong password or unknown user.
func invalidCredentials(mech string) error {
	return authFailed("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", mech)
}

// saslExchange is the server side of one mechanism's exchange.
type saslExchange interface {
	// step takes the client's next message and returns the reply; done
	// when the client is authenticated. An error ends the exchange.
	step(msg []byte) (reply []byte, done bool, err error)
	// user is the user the client claimed ("" before its first message).
	user() string
}

// saslPhase is where a connection of a SASL listener stands.
type saslPhase uint8

const (
	phaseHandshake     saslPhase = iota // ApiVersions or SaslHandshake expected
	phaseAuthenticate                   // SaslAuthenticate expected (handshake v1+)
	phaseRawToken                       // a raw SASL token expected (handshake v0)
	phaseAuthenticated                  // authenticated
)

// connAuth is a connection's authentication state. The reader goroutine
// and the SASL handlers use it in turn (a SASL request releases the reader
// only when its handler returns); other handlers read the principal.
type connAuth struct {
	name     string           // listener name
	protocol SecurityProtocol // listener security protocol

	mu struct {
		sync.Mutex
		principal string
		phase     saslPhase
		mechanism string // of the handshake, and of the session once authenticated
		exchange  saslExchange
		user      string    // the authenticated SASL user
		claimed   string    // the user the last exchange claimed, for logs
		expires   time.Time // zero: the session does not expire
	}
}

// newConnAuth returns the state of a new connection on l (nil: a
// PLAINTEXT connection made outside any listener, in tests).
func newConnAuth(l *listener) *connAuth {
	a := &connAuth{name: string(ProtocolPlaintext), protocol: ProtocolPlaintext}
	if l != nil {
		a.name, a.protocol = l.Name, l.Protocol
	}
	a.mu.principal = principalAnonymous
	return a
}

// listenerName is the name of the connection's listener.
func (a *connAuth) listenerName() string { return a.name }

// principal is the connection's principal, "User:NAME".
func (a *connAuth) principal() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.principal
}

// setCertPrincipal records the principal of a verified client certificate
// (SSL listeners; on SASL_SSL the SASL user decides).
func (a *connAuth) setCertPrincipal(p string) {
	if a.protocol.SASL() {
		return
	}
	a.mu.Lock()
	a.mu.principal = p
	a.mu.Unlock()
}

// authenticated reports whether requests beyond authentication may come:
// always on PLAINTEXT and SSL, after a SASL exchange on SASL listeners.
func (a *connAuth) authenticated() bool {
	if !a.protocol.SASL() {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.phase == phaseAuthenticated
}

// expectsRawToken reports whether the next frame is a raw SASL token
// (after a SaslHandshake v0) rather than a request.
func (a *connAuth) expectsRawToken() bool {
	if !a.protocol.SASL() {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.phase == phaseRawToken
}

// permits reports whether a request with API key may be served now, and
// why not.
func (a *connAuth) permits(key int16, now time.Time) (bool, string) {
	if !a.protocol.SASL() {
		return true, ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.mu.phase {
	case phaseHandshake:
		if key == apiVersionsKey || key == saslHandshakeKey {
			return true, ""
		}
		return false, "request before SASL authentication"
	case phaseAuthenticate:
		if key == saslAuthenticateKey {
			return true, ""
		}
		return false, "request other than SaslAuthenticate during SASL authentication"
	case phaseAuthenticated:
		if !a.mu.expires.IsZero() && !now.Before(a.mu.expires) && key != saslHandshakeKey {
			return false, "SASL session expired (connections max reauth): re-authentication expected"
		}
		return true, ""
	}
	return false, "request while a raw SASL token is expected"
}

// begin starts an exchange for a SaslHandshake of the given version. fatal
// errors close the connection after the response.
func (a *connAuth) begin(b *Broker, version int16, mech string) (err error, fatal bool) {
	if !a.protocol.SASL() {
		return fmt.Errorf("%w: listener %s does not use SASL", errIllegalSASLState, a.name), false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.mu.phase == phaseHandshake:
	case a.mu.phase == phaseAuthenticated && version >= 1: // re-authentication (KIP-368)
		if mech != a.mu.mechanism {
			return fmt.Errorf("%w: re-authentication must use %s", errIllegalSASLState, a.mu.mechanism), true
		}
	default:
		return fmt.Errorf("%w: unexpected SaslHandshake", errIllegalSASLState), true
	}
	if !slices.Contains(b.saslMechanisms(), mech) {
		return fmt.Errorf("%w: %q", errUnsupportedSASLMechanism, mech), true
	}
	a.mu.mechanism, a.mu.exchange = mech, b.newSASLExchange(mech)
	a.mu.phase = phaseAuthenticate
	if version == 0 {
		a.mu.phase = phaseRawToken
	}
	return nil, false
}

// step feeds a client token to the exchange begun by the handshake. done
// means the connection is now authenticated, for lifetime from now (0: no
// expiry). Any error ends authentication: the caller closes the
// connection.
func (a *connAuth) step(token []byte, lifetime time.Duration, now time.Time) (reply []byte, done bool, err error) {
	if !a.protocol.SASL() {
		return nil, false, fmt.Errorf("%w: listener %s does not use SASL", errIllegalSASLState, a.name)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if (a.mu.phase != phaseAuthenticate && a.mu.phase != phaseRawToken) || a.mu.exchange == nil {
		return nil, false, fmt.Errorf("%w: SaslAuthenticate without a SaslHandshake", errIllegalSASLState)
	}
	reply, done, err = a.mu.exchange.step(token)
	a.mu.claimed = a.mu.exchange.user()
	if err != nil {
		a.mu.exchange = nil
		return nil, false, err
	}
	if !done {
		return reply, false, nil
	}
	user := a.mu.exchange.user()
	a.mu.exchange = nil
	if a.mu.user != "" && user != a.mu.user {
		return nil, false, authFailed("Authentication failed: re-authentication as %s, not %s, is not allowed", user, a.mu.user)
	}
	a.mu.user, a.mu.principal, a.mu.phase = user, "User:"+user, phaseAuthenticated
	a.mu.expires = time.Time{}
	if lifetime > 0 {
		a.mu.expires = now.Add(lifetime)
	}
	return reply, true, nil
}

// attempt returns the mechanism of the last exchange and the user it
// claimed, for logs.
func (a *connAuth) attempt() (mech, user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.mechanism, a.mu.claimed
}

// saslMechanisms are the mechanisms SASL listeners accept.
func (b *Broker) saslMechanisms() []string {
	if len(b.cfg.SASLMechanisms) > 0 {
		return b.cfg.SASLMechanisms
	}
	return allSASLMechanisms
}

// newSASLExchange returns the server side of mech's exchange.
func (b *Broker) newSASLExchange(mech string) saslExchange {
	if mech == mechPlain {
		return &plainServer{creds: b.scramCredential}
	}
	return newScramServer(mech, b.scramCredential)
}

// rawSASLToken serves one raw SASL token (after a SaslHandshake v0): the
// reply goes out as a raw frame; a failure closes the connection, as Kafka
// does (the v0 framing has no error field).
func (c *conn) rawSASLToken(frame []byte) bool {
	reply, done, err := c.auth.step(frame, c.b.cfg.ConnectionsMaxReauth, time.Now())
	mech, user := c.auth.attempt()
	if err != nil {
		c.logger.Info("closing connection: SASL authentication failed", "listener", c.auth.name,
			"mechanism", mech, "user", user, "err", err)
		c.abort()
		return false
	}
	if done {
		c.logger.Debug("SASL authenticated", "listener", c.auth.name, "mechanism", mech, "principal", c.auth.principal())
	}
	s := &slot{raw: true, rawBytes: reply, done: make(chan struct{})}
	close(s.done)
	select {
	case c.slots <- s:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// refuse logs why a request may not be served and closes the connection.
func (c *conn) refuse(key int16, why string) {
	c.logger.Info("closing connection: "+why, "listener", c.auth.name, "api", kmsg.NameForKey(key))
	c.abort()
}

// gate is authGate's verdict on a frame.
type gate int

const (
	gateDispatch gate = iota // serve the frame as a request
	gateNext                 // the frame was a raw SASL token, served
	gateStop                 // stop reading: the connection is closing
)

// authGate serves raw SASL tokens and closes the connection on a request
// its authentication state does not allow, before the request is parsed.
// A frame it does not pass on returns its memory reservation (limits.go).
func (c *conn) authGate(frame []byte) gate {
	if !c.auth.protocol.SASL() {
		return gateDispatch
	}
	if c.auth.expectsRawToken() {
		ok := c.rawSASLToken(frame)
		c.b.budget.release(int64(len(frame)))
		if !ok {
			return gateStop
		}
		return gateNext
	}
	if len(frame) < 2 {
		return gateDispatch // not a request header: ParseRequest refuses it
	}
	key := int16(binary.BigEndian.Uint16(frame))
	ok, why := c.auth.permits(key, time.Now()) // readFrame capped the size before authentication
	if !ok {
		c.b.budget.release(int64(len(frame)))
		c.refuse(key, why)
		return gateStop
	}
	return gateDispatch
}

// appendRawFrame appends b as a size-prefixed frame.
func appendRawFrame(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// principal is the principal of the connection the request came on
// ("User:ANONYMOUS", "User:alice", "User:CN=client,O=example"), for the
// authoriser.
func (r *request) principal() string { return r.conn.auth.principal() }

// listener is the name and security protocol of the listener the request
// came on.
func (r *request) listener() (name string, protocol SecurityProtocol) {
	return r.conn.auth.name, r.conn.auth.protocol
}
