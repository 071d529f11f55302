package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-io/shoal/metadata"
)

// Kafka listeners: a broker serves Kafka on one or more named listeners,
// each with a security protocol, like Kafka's listeners,
// listener.security.protocol.map and advertised.listeners. A Metadata
// response gives every client the brokers' addresses on the listener the
// client connected to; every broker registers the advertised endpoint of
// each of its listeners in the metadata.

// SecurityProtocol is a listener's security protocol, by Kafka's name.
type SecurityProtocol string

// The security protocols.
const (
	ProtocolPlaintext     SecurityProtocol = "PLAINTEXT"
	ProtocolSSL           SecurityProtocol = "SSL"
	ProtocolSASLPlaintext SecurityProtocol = "SASL_PLAINTEXT"
	ProtocolSASLSSL       SecurityProtocol = "SASL_SSL"
)

// DefaultProtocolMap is Kafka's default listener.security.protocol.map:
// each protocol's name is a listener name of that protocol.
const DefaultProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"

// Valid reports whether p is one of the four protocols.
func (p SecurityProtocol) Valid() bool {
	switch p {
	case ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
		return true
	}
	return false
}

// TLS reports whether the protocol runs over TLS.
func (p SecurityProtocol) TLS() bool { return p == ProtocolSSL || p == ProtocolSASLSSL }

// SASL reports whether the protocol authenticates with SASL.
func (p SecurityProtocol) SASL() bool { return p == ProtocolSASLPlaintext || p == ProtocolSASLSSL }

// Listener is one Kafka listener.
type Listener struct {
	// Name names the listener (PLAINTEXT, SASL_SSL, INTERNAL, ...); the
	// brokers of a cluster use the same names.
	Name string
	// Protocol is the listener's security protocol.
	Protocol SecurityProtocol
	// Listen is the host:port to bind (port 0 picks a free port; an empty
	// host binds every interface).
	Listen string
	// Advertise is the host:port given to clients of this listener; ""
	// means the bound address.
	Advertise string
}

// listenerNamePattern is the syntax of a listener name.
var listenerNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseListeners parses Kafka-style listener settings: listeners is
// NAME://HOST:PORT,... (Kafka's listeners), protocolMap NAME:PROTOCOL,...
// ("" means DefaultProtocolMap) and advertised NAME://HOST:PORT,... for
// some or all of the listeners (Kafka's advertised.listeners; a listener
// not named there advertises its bound address). The result keeps the
// order of listeners; the first listener is the broker's primary one.
func ParseListeners(listeners, protocolMap, advertised string) ([]Listener, error) {
	if protocolMap == "" {
		protocolMap = DefaultProtocolMap
	}
	protocols, err := ParseProtocolMap(protocolMap)
	if err != nil {
		return nil, err
	}
	var out []Listener
	seen := map[string]bool{}
	for _, entry := range splitList(listeners) {
		name, addr, err := splitListenerURL(entry)
		if err != nil {
			return nil, fmt.Errorf("listeners: %w", err)
		}
		if seen[name] {
			return nil, fmt.Errorf("listeners: listener %s given twice", name)
		}
		seen[name] = true
		p, ok := protocols[name]
		if !ok {
			return nil, fmt.Errorf("listeners: listener %s has no security protocol in the listener security protocol map", name)
		}
		out = append(out, Listener{Name: name, Protocol: p, Listen: addr})
	}
	if len(out) == 0 {
		return nil, errors.New("listeners: none given")
	}
	advSeen := map[string]bool{}
	for _, entry := range splitList(advertised) {
		name, addr, err := splitListenerURL(entry)
		if err != nil {
			return nil, fmt.Errorf("advertised listeners: %w", err)
		}
		i := listenerIndex(out, name)
		if i < 0 {
			return nil, fmt.Errorf("advertised listeners: %s is not a listener", name)
		}
		if advSeen[name] {
			return nil, fmt.Errorf("advertised listeners: listener %s given twice", name)
		}
		advSeen[name] = true
		out[i].Advertise = addr
	}
	return out, nil
}

// ParseProtocolMap parses NAME:PROTOCOL,... into a map by listener name.
func ParseProtocolMap(s string) (map[string]SecurityProtocol, error) {
	m := map[string]SecurityProtocol{}
	for _, entry := range splitList(s) {
		name, proto, ok := strings.Cut(entry, ":")
		p := SecurityProtocol(strings.ToUpper(proto))
		switch {
		case !ok || !listenerNamePattern.MatchString(name):
			return nil, fmt.Errorf("listener security protocol map: %q: want NAME:PROTOCOL", entry)
		case !p.Valid():
			return nil, fmt.Errorf("listener security protocol map: %q: protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", entry)
		case m[name] != "":
			return nil, fmt.Errorf("listener security protocol map: listener %s given twice", name)
		}
		m[name] = p
	}
	if len(m) == 0 {
		return nil, errors.New("listener security protocol map: empty")
	}
	return m, nil
}

// splitListenerURL splits NAME://HOST:PORT.
func splitListenerURL(s string) (name, addr string, err error) {
	name, addr, ok := strings.Cut(s, "://")
	if !ok || !listenerNamePattern.MatchString(name) {
		return "", "", fmt.Errorf("%q: want NAME://HOST:PORT", s)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", fmt.Errorf("%q: want NAME://HOST:PORT", s)
	}
	return name, addr, nil
}

func listenerIndex(ls []Listener, name string) int {
	for i, l := range ls {
		if l.Name == name {
			return i
		}
	}
	return -1
}

// listeners returns the configured listeners: Listeners, or the single
// PLAINTEXT listener of Listen and Advertise.
func (c *Config) listeners() []Listener {
	if len(c.Listeners) > 0 {
		return c.Listeners
	}
	return []Listener{{Name: string(ProtocolPlaintext), Protocol: ProtocolPlaintext, Listen: c.Listen, Advertise: c.Advertise}}
}

// checkListeners validates the listeners and the TLS and SASL settings
// they need.
func (c *Config) checkListeners() error {
	ls := c.listeners()
	names, ports := map[string]bool{}, map[string]bool{}
	needTLS := c.ClusterTLS
	for _, l := range ls {
		if !listenerNamePattern.MatchString(l.Name) || names[l.Name] {
			return fmt.Errorf("broker config: listener name %q: empty, malformed or repeated", l.Name)
		}
		names[l.Name] = true
		if !l.Protocol.Valid() {
			return fmt.Errorf("broker config: listener %s: unknown security protocol %q", l.Name, l.Protocol)
		}
		if err := checkHostPort("listener "+l.Name, l.Listen, true); err != nil {
			return err
		}
		if _, port, _ := net.SplitHostPort(l.Listen); port != "0" {
			if ports[port] {
				return fmt.Errorf("broker config: listener %s: port %s used twice", l.Name, port)
			}
			ports[port] = true
		}
		if l.Advertise != "" {
			if err := checkHostPort("advertised listener "+l.Name, l.Advertise, false); err != nil {
				return err
			}
		}
		needTLS = needTLS || l.Protocol.TLS()
	}
	if err := c.TLS.check(needTLS, c.ClusterTLS); err != nil {
		return err
	}
	if c.ConnectionsMaxReauth < 0 {
		return fmt.Errorf("broker config: connections max reauth %v: must not be negative", c.ConnectionsMaxReauth)
	}
	for _, m := range c.SASLMechanisms {
		if !knownSASLMechanism(m) {
			return fmt.Errorf("broker config: SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", m)
		}
	}
	return nil
}

// listener is one open Kafka listener.
type listener struct {
	Listener
	ln      net.Listener
	advHost string
	advPort int32
}

// endpoint is the listener's advertised endpoint, as registered.
func (l *listener) endpoint() metadata.Endpoint {
	return metadata.Endpoint{Name: l.Name, Host: l.advHost, Port: l.advPort, SecurityProtocol: string(l.Protocol)}
}

// openListeners binds every listener; on error it closes those it opened.
func openListeners(ls []Listener) ([]*listener, error) {
	var out []*listener
	for _, cfg := range ls {
		field := "listener " + cfg.Name
		if len(ls) == 1 {
			field = "listen" // errors name --listen, as before listeners had names
		}
		ln, err := listen(field, cfg.Listen)
		if err != nil {
			for _, l := range out {
				l.ln.Close()
			}
			return nil, err
		}
		l := &listener{Listener: cfg, ln: ln}
		if err := l.setAdvertised(); err != nil {
			ln.Close()
			for _, l := range out {
				l.ln.Close()
			}
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// setAdvertised resolves the address given to the listener's clients.
func (l *listener) setAdvertised() error {
	adv := l.Advertise
	if adv == "" {
		adv = l.ln.Addr().String()
	}
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		return fmt.Errorf("advertise %q: %w", adv, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("advertise %q: bad port", adv)
	}
	l.advHost, l.advPort = host, int32(p)
	return nil
}

// acceptedConn is a connection accepted on a listener.
type acceptedConn struct {
	net.Conn
	l *listener
}

// multiListener accepts connections from several listeners as one
// net.Listener: a goroutine per listener hands its connections over.
// Close closes every listener and waits for the goroutines.
type multiListener struct {
	ls     []*listener
	logger *slog.Logger
	conns  chan *acceptedConn
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

func newMultiListener(ls []*listener, logger *slog.Logger) *multiListener {
	m := &multiListener{ls: ls, logger: logger, conns: make(chan *acceptedConn), done: make(chan struct{})}
	for _, l := range ls {
		m.wg.Add(1)
		go m.acceptFrom(l)
	}
	return m
}

// acceptFrom accepts on l until it closes.
func (m *multiListener) acceptFrom(l *listener) {
	defer m.wg.Done()
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Warn("kafka listener accept failed", "listener", l.Name, "err", err)
			select {
			case <-m.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case m.conns <- &acceptedConn{Conn: nc, l: l}:
		case <-m.done:
			nc.Close()
			return
		}
	}
}

// Accept returns the next connection of any listener, as an *acceptedConn.
func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close closes every listener and waits for their accept goroutines.
func (m *multiListener) Close() error {
	var errs []error
	m.once.Do(func() {
		close(m.done)
		for _, l := range m.ls {
			errs = append(errs, l.ln.Close())
		}
		m.wg.Wait()
	})
	return errors.Join(errs...)
}

// Addr is the first listener's address.
func (m *multiListener) Addr() net.Addr { return m.ls[0].ln.Addr() }

// ListenerAddr is the bound address of the named listener, nil if there
// is none.
func (b *Broker) ListenerAddr(name string) net.Addr {
	for _, l := range b.listeners {
		if l.Name == name {
			return l.ln.Addr()
		}
	}
	return nil
}

// endpoints lists the advertised endpoints of every listener.
func (b *Broker) endpoints() []metadata.Endpoint {
	out := make([]metadata.Endpoint, len(b.listeners))
	for i, l := range b.listeners {
		out[i] = l.endpoint()
	}
	return out
}

// endpointFor returns br's advertised endpoint on the listener r arrived
// on; false when br has no such listener (Kafka then leaves the broker out
// of the response).
func (r *request) endpointFor(br metadata.Broker) (metadata.Endpoint, bool) {
	return br.Endpoint(r.conn.auth.listenerName())
}

// secureConn prepares an accepted connection: it finds its listener and
// wraps it in TLS on SSL and SASL_SSL listeners (the handshake runs in the
// connection's reader, tlsHandshake). A connection made outside a
// listener (tests) is PLAINTEXT.
func (b *Broker) secureConn(nc net.Conn) (net.Conn, *connAuth) {
	var l *listener
	if ac, ok := nc.(*acceptedConn); ok {
		l, nc = ac.l, ac.Conn
	}
	if l != nil && l.Protocol.TLS() {
		nc = tls.Server(nc, b.tls.serverConfig())
	}
	return nc, newConnAuth(l)
}
