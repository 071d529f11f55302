package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestHostileClients runs a well-behaved producer against one shoald while
// hostile clients attack it, one kind after another, and checks that the
// producer keeps being served (every record acknowledged, latencies
// reported), that the broker's resident memory stays bounded, and that the
// broker closes what it should:
//
//   - 1,000 connections that send half a frame and stall: closed after the
//     request read timeout;
//   - a client claiming a 2 GiB frame: closed at once, nothing allocated;
//   - a flood of tiny requests on 20 pipelining connections, first without
//     quotas (the flood takes the CPU: the producer is slower but served),
//     then with a default request_percentage quota for every client id
//     (Kafka's defence: the flood's connections are throttled and muted,
//     the producer's latency is back to normal);
//   - 12 connections sending all but the last byte of 7 MiB frames: only
//     the in-flight request budget (32 MiB) is ever allocated (4 frames;
//     the others are not read), and the producer's small requests pass
//     through the budget's reserve;
//   - connections that send nothing: closed after the idle timeout.
func TestHostileClients(t *testing.T) {
	b := StartBroker(t, WithArgs("--request-read-timeout", "3s", "--connections-max-idle", "4s",
		"--max-request-size", "8MiB", "--max-inflight-request-bytes", "32MiB", "--max-connections-per-ip", "2000"))
	createTopic(t, b, "hostile", 1)
	cl := b.Client(t, kgo.DefaultProduceTopic("hostile"))
	good := startGoodProducer(t, cl)
	good.phase(t, "baseline", 2*time.Second)
	rss0 := residentBytes(t, b)

	// 1,000 connections, each with half of a 2 KiB frame.
	stalled := dialMany(t, b, 1000, func(c net.Conn) error {
		return writeHalfFrame(c, 2048)
	})
	good.phase(t, "1000 stalled half frames", 2*time.Second)
	rss1 := residentBytes(t, b)
	closedWithin(t, stalled, 10*time.Second, "stalled half frames")
	t.Logf("resident memory: %d MiB before, %d MiB with 1000 stalled connections", rss0>>20, rss1>>20)
	if rss1-rss0 > 100<<20 {
		t.Errorf("1000 stalled connections took %d MiB", (rss1-rss0)>>20)
	}

	// A claimed 2 GiB frame: closed at once.
	huge := dialMany(t, b, 1, func(c net.Conn) error {
		var size [4]byte
		binary.BigEndian.PutUint32(size[:], 2<<30-1)
		_, err := c.Write(size[:])
		return err
	})
	closedWithin(t, huge, 2*time.Second, "2 GiB frame")

	// A flood of tiny requests, without and with a default request quota.
	flood(t, b, good, "flood of tiny requests")
	setDefaultRequestQuota(t, cl, 10)
	flood(t, b, good, "flood of tiny requests, default request_percentage quota 10")

	// Large frames, all but their last byte: without the budget the broker
	// would hold 84 MiB of them.
	rss2 := residentBytes(t, b)
	var senders sync.WaitGroup
	large := dialMany(t, b, 12, func(c net.Conn) error {
		senders.Go(func() {
			buf := make([]byte, 4+7<<20-1)
			binary.BigEndian.PutUint32(buf, 7<<20)
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			c.Write(buf) // the frames the broker does not read time out here
		})
		return nil
	})
	good.phase(t, "large frames held open", 2*time.Second)
	rss3 := residentBytes(t, b)
	t.Logf("resident memory: %d MiB before, %d MiB with 12 clients holding 7 MiB frames open (budget 32 MiB)", rss2>>20, rss3>>20)
	if rss3-rss2 > 56<<20 {
		t.Errorf("12 unfinished 7 MiB frames took %d MiB, budget 32 MiB", (rss3-rss2)>>20)
	}
	senders.Wait()
	closedWithin(t, large, 40*time.Second, "unfinished large frames")

	// Idle connections.
	idle := dialMany(t, b, 10, func(net.Conn) error { return nil })
	closedWithin(t, idle, 10*time.Second, "idle connections")
	good.phase(t, "after the attacks", 2*time.Second)
	good.stop(t)
}

// flood runs 20 connections pipelining ApiVersions for 3 s while the
// well-behaved producer's latency is measured.
func flood(t *testing.T, b *Broker, good *goodProducer, name string) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	var flood sync.WaitGroup
	var sent [20]int
	for i := range 20 {
		flood.Go(func() { sent[i] = floodAPIVersions(ctx, b.Addr) })
	}
	good.phase(t, name, 3*time.Second)
	stop()
	flood.Wait()
	total := 0
	for _, n := range sent {
		total += n
	}
	t.Logf("%s: %d ApiVersions requests answered on 20 connections in 3 s", name, total)
	if total < 1000 {
		t.Errorf("%s: the flood was answered only %d times: not a flood", name, total)
	}
}

// setDefaultRequestQuota gives every client id a request_percentage quota.
func setDefaultRequestQuota(t *testing.T, cl *kgo.Client, pct float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id"}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: pct}},
	}})
	if err == nil && len(res) == 1 {
		err = res[0].Err
	}
	if err != nil {
		t.Fatalf("set the default request quota: %v", err)
	}
}

// goodProducer writes one record every 10 ms and records each latency.
type goodProducer struct {
	cl   *kgo.Client
	stop func(t *testing.T)

	mu   sync.Mutex
	lat  []time.Duration
	errs []error
}

func startGoodProducer(t *testing.T, cl *kgo.Client) *goodProducer {
	g := &goodProducer{cl: cl}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			start := time.Now()
			r := &kgo.Record{Value: []byte("good-" + strconv.Itoa(i))}
			pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.ProduceSync(pctx, r).FirstErr()
			pcancel()
			g.mu.Lock()
			if err != nil {
				g.errs = append(g.errs, err)
			} else {
				g.lat = append(g.lat, time.Since(start))
			}
			g.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	})
	g.stop = func(t *testing.T) {
		cancel()
		wg.Wait()
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.errs) > 0 {
			t.Errorf("the well-behaved producer failed %d times, first: %v", len(g.errs), g.errs[0])
		}
	}
	return g
}

// phase lets the producer run for d and reports its latencies meanwhile;
// it fails the test when the producer got nothing through or waited more
// than 2 s for one record.
func (g *goodProducer) phase(t *testing.T, name string, d time.Duration) {
	t.Helper()
	g.mu.Lock()
	from := len(g.lat)
	g.mu.Unlock()
	time.Sleep(d)
	g.mu.Lock()
	lat := slices.Clone(g.lat[from:])
	g.mu.Unlock()
	if len(lat) == 0 {
		t.Errorf("%s: the well-behaved producer got no record through in %v", name, d)
		return
	}
	slices.Sort(lat)
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("%s: well-behaved producer: %d records, latency p50 %v p99 %v max %v", name, len(lat),
		p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond))
	if worst > 2*time.Second {
		t.Errorf("%s: a record of the well-behaved producer waited %v", name, worst)
	}
}

// dialMany opens n connections to b and runs send on each.
func dialMany(t *testing.T, b *Broker, n int, send func(net.Conn) error) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", b.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		if err := send(c); err != nil {
			t.Fatalf("send on connection %d: %v", len(conns), err)
		}
	}
	return conns
}

// writeHalfFrame writes the size of a frame of n bytes and half its body.
func writeHalfFrame(c net.Conn, n int) error {
	buf := make([]byte, 4+n/2)
	binary.BigEndian.PutUint32(buf, uint32(n))
	_, err := c.Write(buf)
	return err
}

// closedWithin checks that the broker closes every connection within d.
func closedWithin(t *testing.T, conns []net.Conn, d time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	open := 0
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		if _, err := io.ReadAll(c); err != nil {
			open++ // a timeout: the broker kept it open
		}
	}
	if open > 0 {
		t.Errorf("%s: %d of %d connections still open after %v", what, open, len(conns), d)
	}
}

// floodAPIVersions pipelines ApiVersions requests on one connection until
// ctx ends and returns how many were answered.
func floodAPIVersions(ctx context.Context, addr string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0
	}
	defer c.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "flood", "1"
	frame := frameOf(req, 1)
	answered := make(chan int, 1)
	go func() {
		n := 0
		var size [4]byte
		for {
			if _, err := io.ReadFull(c, size[:]); err != nil {
				answered <- n
				return
			}
			if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
				answered <- n
				return
			}
			n++
		}
	}()
	batch := slices.Repeat(frame, 32)
	for ctx.Err() == nil {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(batch); err != nil && !os.IsTimeout(err) {
			break
		}
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	return <-answered
}

// frameOf encodes req as a request frame with correlation id id.
func frameOf(req kmsg.Request, id int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("flood")).AppendRequest(nil, req, id)
}

// residentBytes reads the broker process's resident memory.
func residentBytes(t *testing.T, b *Broker) int64 {
	t.Helper()
	b.mu.Lock()
	pid := b.cmd.Process.Pid
	b.mu.Unlock()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the broker's memory: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}
