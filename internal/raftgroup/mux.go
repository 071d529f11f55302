package raftgroup

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// preambleMagic opens every cluster connection; the group name follows as a
// one-byte length and the name's bytes.
const preambleMagic = "SHR1"

// preambleTimeout bounds how long an accepted connection may take to name its group.
const preambleTimeout = 5 * time.Second

// ErrClosed is returned by a closed Mux or stream layer.
var ErrClosed = errors.New("raftgroup: closed")

// Mux owns a broker's cluster listener and hands each accepted connection to
// the stream layer of the group it names. With WithTLS, every connection,
// accepted or dialed, is TLS.
type Mux struct {
	ln     net.Listener
	logger *slog.Logger

	tlsServer *tls.Config        // nil: plain TCP
	tlsClient func() *tls.Config // the dial side's config, when tlsServer is set

	mu struct {
		sync.Mutex
		layers map[string]*streamLayer
		closed bool
	}
	done chan struct{}
	wg   sync.WaitGroup
}

// Option configures a Mux.
type Option func(*Mux)

// WithTLS makes the cluster listener speak TLS. Accepted connections
// handshake with server (mutual TLS: its ClientAuth requires and verifies
// client certificates; its GetConfigForClient may swap certificates).
// Connections to peers use the config client returns at each dial, with
// ServerName set to the peer's host when the config leaves it empty.
func WithTLS(server *tls.Config, client func() *tls.Config) Option {
	return func(m *Mux) { m.tlsServer, m.tlsClient = server, client }
}

// Listen opens the cluster listener on addr and starts accepting connections.
func Listen(addr string, logger *slog.Logger, opts ...Option) (*Mux, error) {
	m := &Mux{logger: logger, done: make(chan struct{})}
	for _, o := range opts {
		o(m)
	}
	if (m.tlsServer == nil) != (m.tlsClient == nil) {
		return nil, errors.New("raftgroup: TLS needs both a server and a client config")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raftgroup: cluster listener %s: %w", addr, err)
	}
	if m.tlsServer != nil {
		// The handshake runs on the first read: readPreamble's deadline bounds it.
		ln = tls.NewListener(ln, m.tlsServer)
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	m.ln = ln
	m.mu.layers = make(map[string]*streamLayer)
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// Addr is the address the cluster listener is bound to.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Transport returns a Raft transport for the named group. Each group may be
// registered once.
func (m *Mux) Transport(group string, logger *slog.Logger) (raft.Transport, error) {
	if len(group) == 0 || len(group) > 255 {
		return nil, fmt.Errorf("raftgroup: invalid group name %q", group)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return nil, ErrClosed
	}
	if _, ok := m.mu.layers[group]; ok {
		return nil, fmt.Errorf("raftgroup: group %q registered twice", group)
	}
	l := &streamLayer{mux: m, group: group, conns: make(chan net.Conn, 16), done: make(chan struct{})}
	m.mu.layers[group] = l
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  l,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  newHCLogger("raft-net-"+group, logger),
	}), nil
}

// Close stops the listener and every stream layer.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return nil
	}
	m.mu.closed = true
	close(m.done)
	err := m.ln.Close()
	for _, l := range m.mu.layers {
		l.shut()
	}
	m.mu.Unlock()
	m.wg.Wait()
	return err
}

func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Warn("cluster listener accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

// route reads a connection's preamble and hands it to its group.
func (m *Mux) route(c net.Conn) {
	defer m.wg.Done()
	group, br, err := readPreamble(c)
	if err != nil {
		m.logger.Warn("cluster connection refused", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	m.mu.Lock()
	l := m.mu.layers[group]
	m.mu.Unlock()
	if l == nil {
		m.logger.Warn("cluster connection for unknown group", "group", group, "remote", c.RemoteAddr().String())
		c.Close()
		return
	}
	conn := &bufferedConn{Conn: c, r: br, layer: l}
	if !l.track(conn) {
		c.Close()
		return
	}
	select {
	case l.conns <- conn:
	case <-l.done:
		conn.Close()
	case <-time.After(preambleTimeout):
		conn.Close()
	}
}

func readPreamble(c net.Conn) (string, *bufio.Reader, error) {
	if err := c.SetReadDeadline(time.Now().Add(preambleTimeout)); err != nil {
		return "", nil, err
	}
	br := bufio.NewReader(c)
	head := make([]byte, len(preambleMagic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return "", nil, fmt.Errorf("read preamble: %w", err)
	}
	if string(head[:len(preambleMagic)]) != preambleMagic {
		return "", nil, errors.New("bad preamble magic")
	}
	name := make([]byte, head[len(preambleMagic)])
	if _, err := io.ReadFull(br, name); err != nil {
		return "", nil, fmt.Errorf("read group name: %w", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return "", nil, err
	}
	return string(name), br, nil
}

// bufferedConn keeps the bytes the preamble reader buffered past the
// preamble, and leaves its layer's set of open connections on Close.
type bufferedConn struct {
	net.Conn
	r     *bufio.Reader
	layer *streamLayer
	once  sync.Once
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Close closes the connection and forgets it.
func (c *bufferedConn) Close() error {
	c.once.Do(func() { c.layer.untrack(c) })
	return c.Conn.Close()
}

// streamLayer is one group's raft.StreamLayer on the shared listener.
type streamLayer struct {
	mux   *Mux
	group string
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	// open holds the accepted connections: raft's NetworkTransport does not
	// close inbound connections on Close, so the layer does, and their
	// handler goroutines end with the group.
	mu   sync.Mutex
	open map[*bufferedConn]struct{}
}

// shut stops accepting and closes every accepted connection.
func (l *streamLayer) shut() {
	l.once.Do(func() {
		close(l.done)
		l.mu.Lock()
		open := l.open
		l.open = nil
		l.mu.Unlock()
		for c := range open {
			c.Conn.Close()
		}
	})
}

// track records an accepted connection; false once the layer is shut.
func (l *streamLayer) track(c *bufferedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	if l.open == nil {
		l.open = make(map[*bufferedConn]struct{})
	}
	l.open[c] = struct{}{}
	return true
}

func (l *streamLayer) untrack(c *bufferedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.open, c)
}

// Accept returns the next connection addressed to this group.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

// Close stops this group's accepts; the shared listener stays open.
func (l *streamLayer) Close() error {
	l.shut()
	l.mux.mu.Lock()
	if l.mux.mu.layers[l.group] == l {
		delete(l.mux.mu.layers, l.group)
	}
	l.mux.mu.Unlock()
	return nil
}

// Addr is the shared cluster listener's address.
func (l *streamLayer) Addr() net.Addr { return l.mux.Addr() }

// Dial connects to a peer's cluster listener and names this group.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.mux.Dial(ctx, string(address), l.group)
}

// Dial connects to the cluster listener at address (over TLS when the Mux
// has WithTLS) and names the group or channel name in the preamble. ctx
// bounds the dial, the handshake and the preamble.
func (m *Mux) Dial(ctx context.Context, address, name string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	if m.tlsServer != nil {
		cfg := m.tlsClient().Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(address); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("raftgroup: dial %s: tls: %w", address, err)
		}
		c = tc
	}
	pre := make([]byte, 0, len(preambleMagic)+1+len(name))
	pre = append(pre, preambleMagic...)
	pre = append(pre, byte(len(name)))
	pre = append(pre, name...)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(preambleTimeout)
	}
	if err = c.SetWriteDeadline(deadline); err == nil {
		_, err = c.Write(pre)
		if err == nil {
			err = c.SetWriteDeadline(time.Time{})
		}
		if err == nil {
			return c, nil
		}
	}
	c.Close()
	return nil, fmt.Errorf("raftgroup: dial %s: %w", address, err)
}
