package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/shoal-io/shoal/protocol"
)

// The broker's defences against clients that hold resources without using
// them (every limit is a Config field and a shoald flag):
//
//   - connections: at most MaxConnections in all and MaxConnectionsPerIP
//     from one address; a connection over either limit is closed at once.
//   - idle connections: a connection that sends nothing for
//     ConnectionsMaxIdle is closed (Kafka's connections.max.idle.ms).
//   - slow frames: once a frame's size has arrived, its body must arrive
//     within RequestReadTimeout (a slow-loris client is closed).
//   - memory: the request frames being read or handled hold at most
//     MaxInflightRequestBytes in all (Kafka's queued.max.request.bytes); a
//     connection whose next frame does not fit waits, reading nothing,
//     until handlers finish. A frame's memory is reserved from its size
//     before it is allocated, so a client claiming a huge frame gets
//     nothing allocated (and above MaxRequestSize, a closed connection).
//     An eighth of the budget is kept for small frames (up to 64 KiB), so
//     that clients sending large frames slowly cannot stall the small
//     requests of everyone else until their read timeout.

// Defaults of the limits.
const (
	defaultMaxConnections          = 16384
	defaultMaxConnectionsPerIP     = 4096
	defaultConnectionsMaxIdle      = 10 * time.Minute
	defaultRequestReadTimeout      = 30 * time.Second
	defaultMaxInflightRequestBytes = 256 << 20
)

// errTooManyConnections is why a connection over a limit is refused.
var errTooManyConnections = errors.New("too many connections")

// connLimits counts the open connections, in all and per remote address.
type connLimits struct {
	maxTotal, maxPerIP int

	mu    sync.Mutex
	total int
	perIP map[string]int
}

func newConnLimits(maxTotal, maxPerIP int) *connLimits {
	return &connLimits{maxTotal: maxTotal, maxPerIP: maxPerIP, perIP: map[string]int{}}
}

// admit counts a new connection from addr, or refuses it when a limit is
// reached; release uncounts an admitted one.
func (l *connLimits) admit(addr net.Addr) (release func(), err error) {
	ip := hostOf(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total >= l.maxTotal:
		return nil, fmt.Errorf("%w: %d open (max-connections)", errTooManyConnections, l.total)
	case l.perIP[ip] >= l.maxPerIP:
		return nil, fmt.Errorf("%w: %d open from %s (max-connections-per-ip)", errTooManyConnections, l.perIP[ip], ip)
	}
	l.total++
	l.perIP[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.perIP[ip]--; l.perIP[ip] <= 0 {
				delete(l.perIP, ip)
			}
		})
	}, nil
}

// hostOf is the IP of a TCP address (the whole address otherwise).
func hostOf(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// smallFrame is the largest frame that may use the budget's reserve.
const smallFrame = 64 << 10

// byteBudget is a counting semaphore of bytes, the memory of request frames
// in flight, granted in arrival order among the waiters that fit. Large
// frames leave reserve bytes for small ones.
type byteBudget struct {
	reserve int64

	mu      sync.Mutex
	free    int64
	waiters []*budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when the bytes are granted
}

// newByteBudget is a budget of n bytes in which frames up to maxFrame
// always fit alone.
func newByteBudget(n, maxFrame int64) *byteBudget {
	return &byteBudget{free: n, reserve: max(min(n/8, n-maxFrame), 0)}
}

// fits reports whether n bytes can be granted now.
func (b *byteBudget) fits(n int64) bool {
	if n <= smallFrame {
		return b.free >= n
	}
	return b.free-n >= b.reserve
}

// acquire takes n bytes, waiting until they are free or ctx ends.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if b.fits(n) && (len(b.waiters) == 0 || n <= smallFrame) {
		b.free -= n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			b.grantLocked() // the line moved
			b.mu.Unlock()
			return ctx.Err()
		}
	}
	b.mu.Unlock()
	b.release(n) // granted meanwhile: give it back
	return ctx.Err()
}

// release returns n bytes and grants waiters in order.
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.grantLocked()
	b.mu.Unlock()
}

func (b *byteBudget) grantLocked() {
	kept := b.waiters[:0]
	for _, w := range b.waiters {
		if b.fits(w.n) {
			b.free -= w.n
			close(w.ready)
			continue
		}
		kept = append(kept, w)
	}
	clear(b.waiters[len(kept):])
	b.waiters = kept
}

// readFrame reads one request frame within the connection's limits: the
// size within the idle timeout, the memory reserved before the body is
// allocated, the body within the request read timeout. The caller returns
// the frame's reservation (len(frame)) to the budget when the request is
// done.
func (c *conn) readFrame(r io.Reader) ([]byte, error) {
	cfg := c.b.cfg
	var sizeBuf [4]byte
	c.setReadDeadline(cfg.ConnectionsMaxIdle)
	if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reading frame size: %w", protocol.ErrTruncated)
		}
		return nil, err
	}
	limit := cfg.MaxRequestSize
	if c.auth.protocol.SASL() && !c.auth.authenticated() {
		limit = min(limit, saslMaxReceiveSize) // refused before anything is allocated
	}
	size, err := protocol.FrameSize(sizeBuf, limit)
	if err != nil {
		return nil, err
	}
	if err := c.b.budget.acquire(c.ctx, int64(size)); err != nil {
		return nil, err
	}
	c.setReadDeadline(cfg.RequestReadTimeout)
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		c.b.budget.release(int64(size))
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reading frame body of %d bytes: %w", size, protocol.ErrTruncated)
		}
		return nil, err
	}
	return body, nil
}

// setReadDeadline bounds the next read by d from now (no bound for d <= 0),
// unless the connection drains: then reads end at once.
func (c *conn) setReadDeadline(d time.Duration) {
	if d <= 0 {
		c.nc.SetReadDeadline(time.Time{})
	} else {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
	if c.isDraining() { // drain's own deadline may just have been overwritten
		c.nc.SetReadDeadline(time.Now())
	}
}
