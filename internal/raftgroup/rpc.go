package raftgroup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Internal RPCs share the cluster listener with the Raft groups: a channel is
// registered under a name like a group ("rpc/metadata"), and every connection
// to it carries framed requests and responses, one at a time.
//
// A request frame is a 4-byte big-endian payload length, a 4-byte
// big-endian timeout in milliseconds (how long the caller waits; 0: the
// server's default), then the payload. A response frame is a 4-byte
// big-endian payload length, a status byte (0: ok, 1: the handler failed and
// the payload is its error text), then the payload. A frame longer than the
// configured maximum closes the connection.

// DefaultMaxRPCFrame bounds the payload of an RPC request or response when
// RPCConfig.MaxFrame is zero.
const DefaultMaxRPCFrame = 16 << 20

// DefaultRPCTimeout bounds a call whose context has no deadline, and the
// handler of a request that names no timeout, when RPCConfig.Timeout is zero.
const DefaultRPCTimeout = 10 * time.Second

const (
	rpcStatusOK     = 0
	rpcStatusFailed = 1

	// rpcIdleTimeout closes a server connection that sends no request for
	// this long; clients drop pooled connections sooner (rpcPoolIdle).
	rpcIdleTimeout = 2 * time.Minute
	rpcPoolIdle    = time.Minute
)

// RPC errors.
var (
	// ErrFrameTooLarge is returned for a request or response whose payload
	// exceeds the maximum frame size.
	ErrFrameTooLarge = errors.New("raftgroup: rpc frame too large")
	// ErrRemote is returned when the remote handler failed; the error text
	// of the handler follows it.
	ErrRemote = errors.New("raftgroup: rpc handler failed")
)

// RPCHandler answers one request. ctx ends at the caller's deadline or when
// the server closes. An error is sent to the caller as text, wrapped in
// ErrRemote; errors that the caller must tell apart belong in the response.
type RPCHandler func(ctx context.Context, req []byte) ([]byte, error)

// RPCConfig configures an RPC server or client.
type RPCConfig struct {
	// MaxFrame bounds each request and response payload (0: DefaultMaxRPCFrame).
	MaxFrame int
	// Timeout bounds a call without a context deadline, the dial, and a
	// handler's context when the request names no timeout (0: DefaultRPCTimeout).
	Timeout time.Duration
	// MaxIdle is the number of idle connections a client keeps per peer (0: 2).
	MaxIdle int
	// Logger receives refused connections (nil: slog.Default()).
	Logger *slog.Logger
	// Mux, when set, dials for the client (over TLS when the Mux has
	// WithTLS); nil dials plain TCP.
	Mux *Mux
}

func (c RPCConfig) withDefaults() RPCConfig {
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxRPCFrame
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultRPCTimeout
	}
	if c.MaxIdle <= 0 {
		c.MaxIdle = 2
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// register adds a named stream layer to the mux, as Transport does for a
// Raft group; closing the layer unregisters the name.
func (m *Mux) register(name string) (*streamLayer, error) {
	if len(name) == 0 || len(name) > 255 {
		return nil, fmt.Errorf("raftgroup: invalid channel name %q", name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return nil, ErrClosed
	}
	if _, ok := m.mu.layers[name]; ok {
		return nil, fmt.Errorf("raftgroup: channel %q registered twice", name)
	}
	l := &streamLayer{mux: m, group: name, conns: make(chan net.Conn, 16), done: make(chan struct{})}
	m.mu.layers[name] = l
	return l, nil
}

// RPCServer serves one named RPC channel of a Mux. It owns an accept
// goroutine and one goroutine per open connection; Close stops them all.
type RPCServer struct {
	layer   *streamLayer
	handler RPCHandler
	cfg     RPCConfig
	ctx     context.Context
	cancel  context.CancelFunc

	mu struct {
		sync.Mutex
		conns  map[net.Conn]struct{}
		closed bool
	}
	wg sync.WaitGroup
}

// ServeRPC registers name on m and serves its requests with h until Close.
// The name shares the namespace of Raft group names.
func ServeRPC(m *Mux, name string, h RPCHandler, cfg RPCConfig) (*RPCServer, error) {
	l, err := m.register(name)
	if err != nil {
		return nil, err
	}
	s := &RPCServer{layer: l, handler: h, cfg: cfg.withDefaults()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.conns = make(map[net.Conn]struct{})
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Close unregisters the channel, closes every connection, cancels running
// handlers and waits for the server's goroutines. It is idempotent.
func (s *RPCServer) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	for c := range s.mu.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.layer.Close()
	s.wg.Wait()
	// Connections the mux routed after the last Accept.
	for {
		select {
		case c := <-s.layer.conns:
			c.Close()
		default:
			return nil
		}
	}
}

func (s *RPCServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.layer.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.mu.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers the connection's requests in order until it closes,
// idles out or sends a bad frame.
func (s *RPCServer) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.mu.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	var head [8]byte
	for {
		if err := c.SetReadDeadline(time.Now().Add(rpcIdleTimeout)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return // closed by the client, idle, or shutting down
		}
		n := binary.BigEndian.Uint32(head[0:4])
		if uint64(n) > uint64(s.cfg.MaxFrame) {
			s.cfg.Logger.Warn("rpc request refused", "channel", s.layer.group,
				"remote", c.RemoteAddr().String(), "bytes", n, "err", ErrFrameTooLarge)
			return
		}
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.Timeout)); err != nil {
			return
		}
		req := make([]byte, n)
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		timeout := time.Duration(binary.BigEndian.Uint32(head[4:8])) * time.Millisecond
		if timeout <= 0 {
			timeout = s.cfg.Timeout
		}
		status, resp := s.call(req, timeout)
		if err := c.SetWriteDeadline(time.Now().Add(s.cfg.Timeout)); err != nil {
			return
		}
		if err := writeFrame(c, uint32(len(resp)), []byte{status}, resp); err != nil {
			return
		}
	}
}

// call runs the handler under the request's timeout and returns the status
// and payload of the response.
func (s *RPCServer) call(req []byte, timeout time.Duration) (byte, []byte) {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	resp, err := s.handler(ctx, req)
	if err == nil && len(resp) > s.cfg.MaxFrame {
		err = fmt.Errorf("%w: response of %d bytes", ErrFrameTooLarge, len(resp))
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > s.cfg.MaxFrame {
			msg = msg[:s.cfg.MaxFrame]
		}
		return rpcStatusFailed, []byte(msg)
	}
	return rpcStatusOK, resp
}

// writeFrame writes a length, a header rest and a payload in one write.
func writeFrame(w io.Writer, n uint32, rest, payload []byte) error {
	buf := make([]byte, 4, 4+len(rest)+len(payload))
	binary.BigEndian.PutUint32(buf, n)
	buf = append(buf, rest...)
	buf = append(buf, payload...)
	_, err := w.Write(buf)
	return err
}

// RPCClient calls one named RPC channel on peers, keeping a small pool of
// idle connections per peer. It starts no goroutines; Close closes every
// connection, idle or in use.
type RPCClient struct {
	name string
	cfg  RPCConfig

	mu struct {
		sync.Mutex
		idle   map[string][]*rpcConn
		active map[*rpcConn]struct{}
		closed bool
	}
}

type rpcConn struct {
	net.Conn
	addr string
	used time.Time
}

// NewRPCClient returns a client of the channel name.
func NewRPCClient(name string, cfg RPCConfig) *RPCClient {
	c := &RPCClient{name: name, cfg: cfg.withDefaults()}
	c.mu.idle = make(map[string][]*rpcConn)
	c.mu.active = make(map[*rpcConn]struct{})
	return c
}

// Close closes every connection; calls in flight fail and later calls return
// ErrClosed. It is idempotent.
func (c *RPCClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil
	}
	c.mu.closed = true
	for _, conns := range c.mu.idle {
		for _, rc := range conns {
			rc.Close()
		}
	}
	for rc := range c.mu.active {
		rc.Close()
	}
	c.mu.idle, c.mu.active = nil, nil
	return nil
}

// Call sends req to the channel on the peer at addr (its cluster listener)
// and returns the response. The call ends at ctx's deadline, or after the
// configured timeout when ctx has none, or when ctx is cancelled. A request
// that fails after it was sent may or may not have been handled.
func (c *RPCClient) Call(ctx context.Context, addr string, req []byte) ([]byte, error) {
	if len(req) > c.cfg.MaxFrame {
		return nil, fmt.Errorf("raftgroup: rpc %s: %w: request of %d bytes", c.name, ErrFrameTooLarge, len(req))
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.cfg.Timeout)
	}
	rc, err := c.get(ctx, addr, deadline)
	if err != nil {
		return nil, fmt.Errorf("raftgroup: rpc %s to %s: %w", c.name, addr, err)
	}
	// A cancelled ctx interrupts the blocked read or write.
	stop := context.AfterFunc(ctx, func() { rc.SetDeadline(time.Unix(1, 0)) })
	resp, err := c.roundTrip(rc, req, deadline)
	interrupted := !stop() // the deadline was cut: the connection is spent
	if err != nil {
		c.discard(rc)
		ctxErr := ctx.Err()
		if ctxErr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			ctxErr = context.DeadlineExceeded // the call's deadline, maybe just before ctx's timer
		}
		if ctxErr != nil {
			return nil, fmt.Errorf("raftgroup: rpc %s to %s: %w: %w", c.name, addr, ctxErr, err)
		}
		return nil, fmt.Errorf("raftgroup: rpc %s to %s: %w", c.name, addr, err)
	}
	if interrupted {
		c.discard(rc)
	} else {
		c.put(rc)
	}
	return resp.payload, resp.err
}

type rpcResponse struct {
	payload []byte
	err     error // the handler's error (ErrRemote)
}

// roundTrip writes one request and reads its response on rc.
func (c *RPCClient) roundTrip(rc *rpcConn, req []byte, deadline time.Time) (rpcResponse, error) {
	if err := rc.SetDeadline(deadline); err != nil {
		return rpcResponse{}, err
	}
	timeoutMs := time.Until(deadline).Milliseconds()
	if timeoutMs < 1 {
		return rpcResponse{}, context.DeadlineExceeded
	}
	var ms [4]byte
	binary.BigEndian.PutUint32(ms[:], uint32(min(timeoutMs, 1<<32-1)))
	if err := writeFrame(rc, uint32(len(req)), ms[:], req); err != nil {
		return rpcResponse{}, err
	}
	var head [5]byte
	if _, err := io.ReadFull(rc, head[:]); err != nil {
		return rpcResponse{}, err
	}
	n := binary.BigEndian.Uint32(head[0:4])
	if uint64(n) > uint64(c.cfg.MaxFrame) {
		return rpcResponse{}, fmt.Errorf("%w: response of %d bytes", ErrFrameTooLarge, n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(rc, payload); err != nil {
		return rpcResponse{}, err
	}
	switch head[4] {
	case rpcStatusOK:
		return rpcResponse{payload: payload}, nil
	case rpcStatusFailed:
		return rpcResponse{err: fmt.Errorf("%w: %s", ErrRemote, payload)}, nil
	}
	return rpcResponse{}, fmt.Errorf("raftgroup: rpc response status %d", head[4])
}

// get returns an idle connection to addr or dials one.
func (c *RPCClient) get(ctx context.Context, addr string, deadline time.Time) (*rpcConn, error) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	for conns := c.mu.idle[addr]; len(conns) > 0; conns = c.mu.idle[addr] {
		rc := conns[len(conns)-1]
		c.mu.idle[addr] = conns[:len(conns)-1]
		if time.Since(rc.used) < rpcPoolIdle {
			c.mu.active[rc] = struct{}{}
			c.mu.Unlock()
			return rc, nil
		}
		rc.Close()
	}
	c.mu.Unlock()

	conn, err := c.dial(ctx, addr, deadline)
	if err != nil {
		return nil, err
	}
	rc := &rpcConn{Conn: conn, addr: addr}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		conn.Close()
		return nil, ErrClosed
	}
	c.mu.active[rc] = struct{}{}
	return rc, nil
}

// dial connects to addr and names the channel.
func (c *RPCClient) dial(ctx context.Context, addr string, deadline time.Time) (net.Conn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if c.cfg.Mux != nil {
		return c.cfg.Mux.Dial(dctx, addr, c.name)
	}
	conn, err := (&net.Dialer{Timeout: c.cfg.Timeout}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	pre := make([]byte, 0, len(preambleMagic)+1+len(c.name))
	pre = append(pre, preambleMagic...)
	pre = append(pre, byte(len(c.name)))
	pre = append(pre, c.name...)
	if err := conn.SetWriteDeadline(deadline); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.Write(pre); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// put returns a healthy connection to the pool, or closes it when the pool
// is full or the client closed.
func (c *RPCClient) put(rc *rpcConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		rc.Close()
		return
	}
	delete(c.mu.active, rc)
	if len(c.mu.idle[rc.addr]) >= c.cfg.MaxIdle || rc.SetDeadline(time.Time{}) != nil {
		rc.Close()
		return
	}
	rc.used = time.Now()
	c.mu.idle[rc.addr] = append(c.mu.idle[rc.addr], rc)
}

// discard closes a connection that failed or was interrupted.
func (c *RPCClient) discard(rc *rpcConn) {
	c.mu.Lock()
	if !c.mu.closed {
		delete(c.mu.active, rc)
	}
	c.mu.Unlock()
	rc.Close()
}
