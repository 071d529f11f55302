package broker

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupsOnSecondListener: a client on the second listener is sent to
// that listener's address by FindCoordinator and by Metadata, so a
// consumer group works there end to end.
func TestGroupsOnSecondListener(t *testing.T) {
	b := startBroker(t, func(c *Config) {
		c.Listeners = []Listener{
			{Name: "PLAINTEXT", Protocol: ProtocolPlaintext, Listen: "127.0.0.1:0"},
			{Name: "EXTERNAL", Protocol: ProtocolPlaintext, Listen: "127.0.0.1:0"},
		}
		c.Groups.InitialRebalanceDelay = -1
	})
	external := b.ListenerAddr("EXTERNAL").String()
	createTopic(t, b, "second", 1)

	nc, err := net.DialTimeout("tcp", external, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	raw := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorKey = 3, "g"
	resp := raw.do(req).(*kmsg.FindCoordinatorResponse)
	if resp.ErrorCode != 0 || resp.Host+":"+strconv.Itoa(int(resp.Port)) != external {
		t.Fatalf("FindCoordinator on EXTERNAL: error %d, %s:%d, want %s", resp.ErrorCode, resp.Host, resp.Port, external)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(external), kgo.DefaultProduceTopic("second"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(external), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("second"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fs := cons.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 || fs.NumRecords() != 1 {
		t.Fatalf("group consumer on EXTERNAL: %d records, errors %v", fs.NumRecords(), errs)
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit through EXTERNAL's coordinator: %v", err)
	}
}
