package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBadInputClosesOnlyThatConnection sends each kind of bad input on its
// own connection while a client keeps working on another.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	n := uniqueNames()
	b := startBroker(t, func(c *Config) { c.MaxRequestSize = 1 << 20 })
	createTopic(t, b, n("steady"), 1)
	good := dialRaw(t, b)
	wantCode(t, "produce before", produceRaw(t, good, n("steady"), 0, values("before")).ErrorCode, nil)

	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	binary.BigEndian.PutUint32(garbage, 200) // a plausible size, then noise

	header := func(key, version int16) []byte {
		h := binary.BigEndian.AppendUint16(nil, uint16(key))
		h = binary.BigEndian.AppendUint16(h, uint16(version))
		h = binary.BigEndian.AppendUint32(h, 1)
		h = binary.BigEndian.AppendUint16(h, 1)
		return append(h, 'x')
	}
	framed := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	fetchV3 := fetchRequest(n("steady"), 0, 0, 0, 0)
	fetchV3.Version = 3

	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"garbage", garbage},
		{"oversize frame", binary.BigEndian.AppendUint32(nil, 2<<20)},
		{"negative frame size", binary.BigEndian.AppendUint32(nil, 0xffffff00)},
		{"unknown api key", framed(header(999, 0))},
		{"unsupported version", framed(header(0, 99))},
		{"version kmsg knows but we do not serve", prototestFrame(fetchV3)},
		{"malformed body", framed(append(header(3, 12), 0xff, 0xff, 0xff))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, b)
			if _, err := c.nc.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			c.expectClosed()
			wantCode(t, "produce on the good connection", produceRaw(t, good, n("steady"), 0, values(tc.name)).ErrorCode, nil)
		})
	}

	// A truncated frame: the client goes away mid-frame.
	c := dialRaw(t, b)
	c.nc.Write(binary.BigEndian.AppendUint32(nil, 100))
	c.nc.Write([]byte("short"))
	c.nc.Close()

	// Nothing was damaged: every good record is there, in order.
	cl := newClient(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{n("steady"): {0: kgo.NewOffset().AtStart()}}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < 8 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 8 || got[0] != "before" || got[1] != "garbage" || got[7] != "malformed body" {
		t.Fatalf("records after bad input: %q", got)
	}
}

// prototestFrame frames a request as a client would.
func prototestFrame(req kmsg.Request) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, 1)
}

// TestCloseWithOpenConnections closes a broker with idle connections, a
// long poll in progress and a kgo client, and checks that no goroutine of
// the broker is left.
func TestCloseWithOpenConnections(t *testing.T) {
	n := uniqueNames()
	before := runtime.NumGoroutine()
	cfg := testConfig(t)
	cfg.MetricsListen = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	idle := dialRaw(t, b)
	resp0 := idle.do(createTopicsRequest(false, topicSpecReq(n("closing"), 1, 1))).(*kmsg.CreateTopicsResponse)
	wantCode(t, "create", resp0.Topics[0].ErrorCode, nil)
	poller := dialRaw(t, b)
	req := fetchRequest(n("closing"), 0, 0, 1, 30_000)
	corr := poller.send(req)
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("close took %v with a long poll open", d)
	}
	// The long poll was answered (empty) before the connection closed.
	resp := poller.recv(req, corr).(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions[0].RecordBatches) != 0 {
		t.Fatalf("drained fetch: %+v", resp)
	}
	idle.expectClosed()
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	idle.nc.Close()
	poller.nc.Close()
	eventually(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines after close, %d before:\n%s", n, before, strings.Join(leakedGoroutines(), "\n\n"))
		}
		return nil
	})
}

// TestHandlerPanicIsRecovered checks that a panicking handler becomes an
// error (which closes only its connection) instead of crashing the broker.
func TestHandlerPanicIsRecovered(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	server, client := net.Pipe()
	defer client.Close()
	c := newConn(b, server)
	defer c.abort()
	boom := apiEntry{key: 3, fn: func(*Broker, context.Context, *request) (kmsg.Response, error) { panic("boom") }}
	r := &request{req: kmsg.NewPtrMetadataRequest(), conn: c, released: make(chan struct{})}
	resp, err := c.call(boom, r)
	if err == nil || resp != nil {
		t.Fatalf("panicking handler returned %v, %v", resp, err)
	}
}
