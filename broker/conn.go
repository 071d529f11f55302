package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/protocol"
)

const (
	// maxQueuedResponses bounds the responses a connection holds in order,
	// waiting to be written (pipelining depth).
	maxQueuedResponses = 64
	// maxInFlight bounds the handlers running for one connection, including
	// acks=0 produces, which have no response slot.
	maxInFlight = 64
	// ioBufferSize is the size of the connection's read and write buffers:
	// small, so that idle connections cost little (large frame bodies are
	// read straight into the frame, large responses written straight out).
	ioBufferSize = 16 << 10
)

// conn is one client connection: a reader goroutine (serve) that decodes
// requests and starts a handler goroutine per request, and a writer
// goroutine that writes the responses strictly in request order.
//
// The reader waits until a handler releases it before reading the next
// frame (see request.release), so requests are started in order: produces
// reach the WAL in the order they were sent, while their commits are waited
// for concurrently.
type conn struct {
	b      *Broker
	nc     net.Conn
	logger *slog.Logger
	auth   *connAuth // listener, security protocol, principal (sasl.go)

	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	draining  chan struct{} // closed when the broker shuts down: long polls answer now
	drainOnce sync.Once
	abortOnce sync.Once

	slots    chan *slot    // responses in request order; the reader is the only sender
	inflight chan struct{} // one token per running handler
	handlers sync.WaitGroup
	writer   sync.WaitGroup

	mute connMute // a throttled client's next read waits (quotas.go)
}

// slot is the place of one response in the connection's order.
type slot struct {
	correlationID int32
	done          chan struct{} // closed when resp or err is set
	resp          kmsg.Response
	err           error // non-nil: close the connection when this slot's turn comes
	// closeAfter closes the connection once resp is written (a refused
	// SASL handshake or authentication).
	closeAfter bool
	// raw: rawBytes go out as a bare size-prefixed frame (a SASL token
	// after a v0 SaslHandshake, sasl.go).
	raw      bool
	rawBytes []byte
}

// request is one decoded request handed to a handler.
type request struct {
	hdr  protocol.RequestHeader
	req  kmsg.Request
	conn *conn
	// frameBytes is the frame's share of the in-flight request memory
	// (limits.go), returned when the handler is done.
	frameBytes int64
	// closeAfter is set by a handler to close the connection after its
	// response (SASL failures); the reader reads no further request.
	closeAfter bool

	releaseOnce sync.Once
	released    chan struct{}
}

// release lets the connection's reader go on to the next request. Handlers
// call it once the request's order-sensitive part is done (Produce: after
// submitting to the WAL; Fetch: before its long poll); otherwise it is
// called when the handler returns.
func (r *request) release() { r.releaseOnce.Do(func() { close(r.released) }) }

// draining is closed when the broker shuts down.
func (r *request) draining() <-chan struct{} { return r.conn.draining }

func newConn(b *Broker, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	nc, auth := b.secureConn(nc) // the listener's TLS and authentication (listeners.go)
	return &conn{
		b:        b,
		nc:       nc,
		auth:     auth,
		logger:   b.logger.With("remote", nc.RemoteAddr().String()),
		ctx:      ctx,
		cancel:   cancel,
		draining: make(chan struct{}),
		slots:    make(chan *slot, maxQueuedResponses),
		inflight: make(chan struct{}, maxInFlight),
	}
}

// serve runs the connection until it closes and every goroutine it started
// has returned.
func (c *conn) serve() {
	c.writer.Add(1)
	go c.writeLoop()
	c.readLoop()
	close(c.slots)
	c.writer.Wait() // writes what is queued, then closes the connection
	c.abort()
	c.handlers.Wait()
	c.cancel()
}

// drain stops reading new requests; queued responses are still written
// before the connection closes.
func (c *conn) drain() {
	c.drainOnce.Do(func() {
		close(c.draining)
		c.nc.SetReadDeadline(time.Now())
	})
}

// abort closes the connection at once.
func (c *conn) abort() {
	c.abortOnce.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) isDraining() bool {
	select {
	case <-c.draining:
		return true
	default:
		return false
	}
}

// readLoop reads, decodes and dispatches requests until the connection
// ends. Returning after drain leaves the writer to finish; any other return
// has aborted the connection.
func (c *conn) readLoop() {
	if !c.tlsHandshake() { // tls.go
		return
	}
	br := bufio.NewReaderSize(c.nc, ioBufferSize)
	for {
		if !c.awaitThrottle() { // KIP-219 (quotas.go)
			return
		}
		frame, err := c.readFrame(br)
		if err != nil {
			c.readFailed(err)
			return
		}
		switch c.authGate(frame) { // SASL: raw tokens, requests before authentication (sasl.go)
		case gateStop:
			return
		case gateNext:
			continue
		}
		if !c.handleFrame(frame) {
			return
		}
	}
}

// handleFrame decodes one frame and dispatches its request, which then owns
// the frame's memory reservation; a frame that is not dispatched returns
// it at once. It reports whether to go on reading.
func (c *conn) handleFrame(frame []byte) bool {
	n := int64(len(frame))
	hdr, req, err := protocol.ParseRequest(frame)
	if err != nil {
		c.b.budget.release(n)
		return c.badRequest(hdr, err)
	}
	api, ok := apiFor(hdr.APIKey, hdr.APIVersion)
	if !ok && hdr.APIKey == apiVersionsKey {
		c.b.budget.release(n)
		return c.badRequest(hdr, protocol.ErrUnsupportedVersion)
	}
	if !ok {
		c.b.budget.release(n)
		c.logger.Warn("closing connection: unsupported api version",
			"api", kmsg.NameForKey(hdr.APIKey), "version", hdr.APIVersion)
		c.abort()
		return false
	}
	return c.dispatch(api, hdr, req, n)
}

// readFailed handles a ReadFrame error.
func (c *conn) readFailed(err error) {
	switch {
	case c.isDraining():
		return // graceful: the writer finishes and closes
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.logger.Debug("connection closed by client")
	case errors.Is(err, protocol.ErrFrameTooLarge), errors.Is(err, protocol.ErrTruncated):
		c.logger.Warn("closing connection: bad frame", "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.logger.Info("closing connection: idle, or a frame too slow to arrive", "err", err)
	default:
		c.logger.Debug("connection read failed", "err", err)
	}
	c.abort()
}

// badRequest handles a ParseRequest error: an ApiVersions request of a
// version we do not know gets the KIP-511 answer (a v0 response with
// UNSUPPORTED_VERSION and our versions, so the client retries lower); any
// other bad request closes the connection. It reports whether to go on.
func (c *conn) badRequest(hdr protocol.RequestHeader, err error) bool {
	if hdr.APIKey == apiVersionsKey && errors.Is(err, protocol.ErrUnsupportedVersion) {
		s := &slot{correlationID: hdr.CorrelationID, done: make(chan struct{}), resp: apiVersionsFallback()}
		close(s.done)
		select {
		case c.slots <- s:
			return true
		case <-c.ctx.Done():
			return false
		}
	}
	c.logger.Warn("closing connection: bad request", "err", err)
	c.abort()
	return false
}

// dispatch starts the handler of one request and waits until it releases
// the reader. It reports whether to go on reading.
func (c *conn) dispatch(api apiEntry, hdr protocol.RequestHeader, req kmsg.Request, frameBytes int64) bool {
	select {
	case c.inflight <- struct{}{}:
	case <-c.ctx.Done():
		c.b.budget.release(frameBytes)
		return false
	}
	var s *slot
	if !noResponse(req) {
		s = &slot{correlationID: hdr.CorrelationID, done: make(chan struct{})}
		select {
		case c.slots <- s:
		case <-c.ctx.Done():
			<-c.inflight
			c.b.budget.release(frameBytes)
			return false
		}
	}
	r := &request{hdr: hdr, req: req, conn: c, released: make(chan struct{}), frameBytes: frameBytes}
	c.handlers.Add(1)
	started := c.startRequest(r) // quotas.go
	go c.run(api, r, s)
	select {
	case <-r.released:
		c.recordRequestTime(r, time.Since(started)) // quotas.go
		return !r.closeAfter
	case <-c.ctx.Done():
		return false
	}
}

// noResponse reports requests that get no response: acks=0 produces.
func noResponse(req kmsg.Request) bool {
	p, ok := req.(*kmsg.ProduceRequest)
	return ok && p.Acks == 0
}

// run runs one handler and files its result in the request's slot.
func (c *conn) run(api apiEntry, r *request, s *slot) {
	defer c.handlers.Done()
	defer func() { <-c.inflight }()
	defer c.b.budget.release(r.frameBytes)
	defer r.release()
	resp, err := c.call(api, r)
	if err == nil && resp == nil && s != nil {
		err = fmt.Errorf("%s handler returned no response", kmsg.NameForKey(api.key))
	}
	if s == nil {
		if err != nil {
			c.logger.Info("closing connection after acks=0 produce", "err", err)
			c.abort()
		}
		return
	}
	s.resp, s.err, s.closeAfter = resp, err, r.closeAfter
	close(s.done)
}

// call runs the handler, turning a panic into an error that closes only
// this connection, and counts it in the metrics.
func (c *conn) call(api apiEntry, r *request) (resp kmsg.Response, err error) {
	start := time.Now()
	defer func() { c.b.observeRequest(api.key, r.req, resp, err, time.Since(start)) }() // metrics_requests.go
	// quotas.go: throttle_time_ms and the connection's mute (KIP-219)
	defer func() { c.applyQuotas(r, resp, err) }()
	defer func() {
		if p := recover(); p != nil {
			c.logger.Error("handler panicked; closing connection", "api", kmsg.NameForKey(api.key),
				"panic", p, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%s handler panicked: %v", kmsg.NameForKey(api.key), p)
		}
	}()
	return api.fn(c.b, c.ctx, r)
}

// writeLoop writes responses in request order, batching them in a buffered
// writer that is flushed whenever the next response is not ready yet.
func (c *conn) writeLoop() {
	defer c.writer.Done()
	defer c.abort()
	bw := bufio.NewWriterSize(c.nc, ioBufferSize)
	var buf []byte
	for {
		s, ok := c.nextSlot(bw)
		if !ok {
			bw.Flush()
			return
		}
		if !c.awaitSlot(bw, s) {
			return
		}
		if s.err != nil {
			bw.Flush()
			c.logger.Info("closing connection", "err", s.err)
			return
		}
		if s.raw {
			buf = appendRawFrame(buf[:0], s.rawBytes)
		} else {
			buf = protocol.AppendResponse(buf[:0], s.correlationID, s.resp)
		}
		if _, err := bw.Write(buf); err != nil {
			c.logger.Debug("connection write failed", "err", err)
			return
		}
		if s.closeAfter {
			bw.Flush()
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not pin a large fetch response's buffer
		}
	}
}

// nextSlot returns the next slot, flushing first if it must wait for one.
// ok is false when the reader is done and every slot was written, or the
// connection closed.
func (c *conn) nextSlot(bw *bufio.Writer) (*slot, bool) {
	select {
	case s, ok := <-c.slots:
		return s, ok
	default:
	}
	if bw.Flush() != nil {
		return nil, false
	}
	select {
	case s, ok := <-c.slots:
		return s, ok
	case <-c.ctx.Done():
		return nil, false
	}
}

// awaitSlot waits for the slot's response, flushing first if it must wait.
func (c *conn) awaitSlot(bw *bufio.Writer, s *slot) bool {
	select {
	case <-s.done:
		return true
	default:
	}
	if bw.Flush() != nil {
		return false
	}
	select {
	case <-s.done:
		return true
	case <-c.ctx.Done():
		return false
	}
}
