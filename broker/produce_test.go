package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	name := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, name("rt"), 3)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	prod := newClient(t, b, kgo.DefaultProduceTopic(name("rt")), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 300
	for i := range n {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%d", i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}}}
		prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	cons := newClient(t, b, kgo.ConsumeTopics(name("rt")), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	next := map[int32]int64{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(seen), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			k := string(r.Key)
			if string(r.Value) != "value-"+k || len(r.Headers) != 1 || string(r.Headers[0].Value) != k {
				t.Fatalf("record %s: value %q headers %v", k, r.Value, r.Headers)
			}
			if seen[k] {
				t.Fatalf("record %s consumed twice", k)
			}
			seen[k] = true
		})
	}
	if len(next) != 3 {
		t.Errorf("records landed in %d partitions, want 3", len(next))
	}
}
