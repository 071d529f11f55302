package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

// TestMain fails the package when goroutines outlive the tests (every test
// closes its brokers and clients in Cleanup).
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.b != nil {
		if err := shared.b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close shared broker:", err)
			code = 1
		}
		os.RemoveAll(shared.dir)
	}
	if code == 0 {
		if err := checkGoroutines(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkGoroutines waits until only the test runner's goroutines remain.
func checkGoroutines(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		leaked := leakedGoroutines()
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaked goroutines:\n%s", strings.Join(leaked, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leakedGoroutines returns the stacks of goroutines that are not part of the
// test runtime.
func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, "testing.tRunner") ||
			strings.Contains(g, "runtime.goexit") && strings.Contains(g, "created by runtime") ||
			strings.Contains(g, "signal.signal_recv") || strings.Contains(g, "checkGoroutines") ||
			strings.Contains(g, "testing.runTests") || strings.Contains(g, "runtime/trace") {
			continue
		}
		if strings.TrimSpace(g) == "" {
			continue
		}
		out = append(out, g)
	}
	return out
}

// testLogger writes broker logs to the test log at warn level and above.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testConfig is a config for a broker on free loopback ports in a temp dir.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.ClusterListen = "127.0.0.1:0"
	cfg.MetricsListen = ""
	cfg.TailCacheBytes = 8 << 20
	cfg.Logger = testLogger(t)
	return cfg
}

// startBroker starts a broker and closes it when the test ends.
func startBroker(t testing.TB, edit ...func(*Config)) *Broker {
	t.Helper()
	cfg := testConfig(t)
	for _, e := range edit {
		e(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return b
}

// shared is one broker that tests without special configuration share
// (each uses its own topic names), since a broker start costs about a second
// of Raft elections.
var shared struct {
	once sync.Once
	b    *Broker
	dir  string
	err  error
}

// sharedBroker returns the shared broker, starting it on first use. TestMain
// closes it.
func sharedBroker(t testing.TB) *Broker {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "shoal-broker-test-")
		if shared.err != nil {
			return
		}
		cfg := DefaultConfig()
		cfg.DataDir = shared.dir
		cfg.Listen, cfg.ClusterListen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0", ""
		cfg.TailCacheBytes = 8 << 20
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shared.b, shared.err = Start(ctx, cfg)
	})
	if shared.err != nil {
		t.Fatalf("start shared broker: %v", shared.err)
	}
	return shared.b
}

// nameSeq makes topic names unique per test invocation, so that tests can
// share a broker and run again with -count.
var nameSeq atomic.Int64

// uniqueNames returns a function that suffixes a topic name with a number
// unique to this call (invalid names stay invalid).
func uniqueNames() func(string) string {
	suffix := fmt.Sprintf("-%d", nameSeq.Add(1))
	return func(name string) string { return name + suffix }
}

// newClient returns a kgo client for b, closed when the test ends.
func newClient(t testing.TB, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(b.Addr().String()), kgo.RetryTimeout(10 * time.Second)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic through kadm and fails the test on error.
func createTopic(t testing.TB, b *Broker, name string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v / %v", name, err, resp.Err)
	}
}

// rawConn speaks the Kafka protocol over one TCP connection, for
// protocol-level tests.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	corr int32
}

func dialRaw(t testing.TB, b *Broker) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// send writes one request frame and returns its correlation id.
func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	if _, err := c.nc.Write(prototest.Frame(req, c.corr, "rawtest")); err != nil {
		c.t.Fatalf("write request: %v", err)
	}
	return c.corr
}

// recv reads the response to req, which must carry correlation id corr.
func (c *rawConn) recv(req kmsg.Request, corr int32) kmsg.Response {
	c.t.Helper()
	resp, err := c.tryRecv(req, corr)
	if err != nil {
		c.t.Fatalf("read %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func (c *rawConn) tryRecv(req kmsg.Request, corr int32) (kmsg.Response, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, err := protocol.ReadFrame(c.br, 256<<20)
	if err != nil {
		return nil, err
	}
	if len(frame) < 4 {
		return nil, fmt.Errorf("short response frame")
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body := frame[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		body = body[1:] // empty header tag section
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return resp, nil
}

// do sends req and returns its response.
func (c *rawConn) do(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	return c.recv(req, c.send(req))
}

// expectClosed asserts that the broker closes the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	for {
		_, err := c.br.Read(buf)
		if err == io.EOF || isConnReset(err) {
			return
		}
		if err != nil {
			c.t.Fatalf("want the connection closed, got %v", err)
		}
	}
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// eventually polls fn until it returns nil or the deadline passes.
func eventually(t testing.TB, within time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
