package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ackLog records where acknowledged records landed, by value.
type ackLog struct {
	mu      sync.Mutex
	acked   map[string]recordPos
	failed  int
	dupAcks int // records the client acknowledged twice (never expected)
}

type recordPos struct {
	partition int32
	offset    int64
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

// produceLoop produces records "p<id>-<n>" as fast as the client takes
// them until ctx is done, recording every acknowledgement in log.
func produceLoop(ctx context.Context, cl *kgo.Client, id int, log *ackLog) {
	for n := 0; ctx.Err() == nil; n++ {
		v := fmt.Sprintf("p%d-%d", id, n)
		rec := &kgo.Record{Key: []byte(v), Value: []byte(v)}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			log.mu.Lock()
			defer log.mu.Unlock()
			if err != nil {
				log.failed++
				return
			}
			if _, dup := log.acked[v]; dup {
				log.dupAcks++
			}
			log.acked[v] = recordPos{r.Partition, r.Offset}
		})
	}
}

// TestCrashSafety kills the broker with SIGKILL while idempotent acks=all
// producers are writing, restarts it on the same data directory, and checks
// that every acknowledged record is present exactly once at the offset it
// was acknowledged at, that offsets are dense, and that the records read
// before the crash are unchanged.
func TestCrashSafety(t *testing.T) {
	const topic, partitions, producers = "crash", 4, 2
	b := StartBroker(t)
	createTopic(t, b, topic, partitions)

	log := &ackLog{acked: map[string]recordPos{}}
	ctx, stopProducing := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	clients := make([]*kgo.Client, producers)
	for i := range producers {
		clients[i] = b.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordRetries(1000), kgo.ProducerLinger(time.Millisecond))
		wg.Add(1)
		go func() {
			defer wg.Done()
			produceLoop(ctx, clients[i], i, log)
		}()
	}
	defer func() { stopProducing(); wg.Wait() }()

	Eventually(t, 60*time.Second, func() error {
		if n := log.count(); n < 20_000 {
			return fmt.Errorf("%d records acknowledged", n)
		}
		return nil
	})
	// What a consumer saw before the crash must not change after it.
	before := consumeUntil(t, b, topic, endOffsets(t, b, topic), 60*time.Second)
	b.Kill()
	ackedAtKill := log.count()
	t.Logf("killed the broker with %d records acknowledged", ackedAtKill)

	b.Restart()
	Eventually(t, 60*time.Second, func() error {
		if n := log.count(); n < ackedAtKill+10_000 {
			return fmt.Errorf("%d records acknowledged, %d at the kill", n, ackedAtKill)
		}
		return nil
	})
	stopProducing()
	wg.Wait()
	flushCtx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for _, cl := range clients {
		if err := cl.Flush(flushCtx); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("flush: %v", err)
		}
	}

	end := endOffsets(t, b, topic)
	after := consumeUntil(t, b, topic, end, 120*time.Second)
	total := checkDense(t, after, end)
	checkAcked(t, log, after)
	for p, rs := range before {
		for i, r := range rs {
			if i >= len(after[p]) || string(after[p][i].Value) != string(r.Value) {
				t.Fatalf("partition %d offset %d: read %q before the crash, something else after", p, r.Offset, r.Value)
			}
		}
	}
	log.mu.Lock()
	t.Logf("%d records stored, %d acknowledged, %d failed at the client", total, len(log.acked), log.failed)
	log.mu.Unlock()
	b.Stop()
}

// checkAcked checks that every acknowledged record is stored exactly once,
// at the partition and offset it was acknowledged with, and that no record
// is stored twice.
func checkAcked(t testing.TB, log *ackLog, recs map[int32][]*kgo.Record) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.dupAcks > 0 {
		t.Errorf("%d records acknowledged twice", log.dupAcks)
	}
	where := map[string]recordPos{}
	for p, rs := range recs {
		for _, r := range rs {
			v := string(r.Value)
			if prev, dup := where[v]; dup {
				t.Errorf("record %q stored twice: at %v and %d/%d", v, prev, p, r.Offset)
			}
			where[v] = recordPos{p, r.Offset}
		}
	}
	missing := 0
	for v, pos := range log.acked {
		got, ok := where[v]
		switch {
		case !ok:
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged record %q (at %v) is missing", v, pos)
			}
		case got != pos:
			t.Errorf("record %q acknowledged at %v, stored at %v", v, pos, got)
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged records missing", missing)
	}
}
