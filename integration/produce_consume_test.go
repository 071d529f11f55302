package integration

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// bigRecord is record i of TestProduceConsume200k: a distinct key, value and
// one or two headers.
func bigRecord(i int) *kgo.Record {
	r := &kgo.Record{
		Key:   fmt.Appendf(nil, "key-%06d", i),
		Value: fmt.Appendf(nil, "value-%06d-%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, i%64)),
		Headers: []kgo.RecordHeader{
			{Key: "i", Value: []byte(strconv.Itoa(i))},
		},
	}
	if i%3 == 0 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "third", Value: fmt.Appendf(nil, "%d", i/3)})
	}
	return r
}

// TestProduceConsume200k produces 200,000 records with acks=all and the
// idempotent producer into 8 partitions, consumes them all back and checks
// every key, value and header, the per-partition order and dense offsets.
func TestProduceConsume200k(t *testing.T) {
	const n = 200_000
	b := StartBroker(t)
	createTopic(t, b, "big", 8)

	prod := b.Client(t, kgo.DefaultProduceTopic("big"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	type pos struct {
		partition int32
		offset    int64
	}
	acked := make([]pos, n)
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for i := range n {
		prod.Produce(ctx, bigRecord(i), func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("record %d: %w", i, err)
			}
			if err == nil {
				acked[i] = pos{r.Partition, r.Offset}
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	t.Logf("produced %d records in %v", n, time.Since(start))

	end := endOffsets(t, b, "big")
	recs := consumeUntil(t, b, "big", end, 2*time.Minute)
	if total := checkDense(t, recs, end); total != n {
		t.Fatalf("consumed %d records, want %d", total, n)
	}
	seen := make([]bool, n)
	for p, rs := range recs {
		last := -1
		for _, r := range rs {
			i, err := strconv.Atoi(string(r.Key[len("key-"):]))
			if err != nil || i < 0 || i >= n {
				t.Fatalf("partition %d offset %d: unexpected key %q", p, r.Offset, r.Key)
			}
			if seen[i] {
				t.Fatalf("record %d consumed twice", i)
			}
			seen[i] = true
			if i <= last {
				t.Errorf("partition %d: record %d after record %d (produce order broken)", p, i, last)
			}
			last = i
			checkSameRecord(t, bigRecord(i), r)
			if acked[i] != (pos{p, r.Offset}) {
				t.Errorf("record %d: acknowledged at %v, consumed at %d/%d", i, acked[i], p, r.Offset)
			}
		}
	}
	t.Logf("consumed and checked %d records in %v", n, time.Since(start))
}

// checkSameRecord compares the key, value and headers of two records.
func checkSameRecord(t testing.TB, want, got *kgo.Record) {
	t.Helper()
	if !bytes.Equal(want.Key, got.Key) || !bytes.Equal(want.Value, got.Value) {
		t.Errorf("offset %d/%d: got %q=%q, want %q=%q", got.Partition, got.Offset, got.Key, got.Value, want.Key, want.Value)
		return
	}
	if len(want.Headers) != len(got.Headers) {
		t.Errorf("record %q: %d headers, want %d", got.Key, len(got.Headers), len(want.Headers))
		return
	}
	for j, h := range want.Headers {
		if got.Headers[j].Key != h.Key || !bytes.Equal(got.Headers[j].Value, h.Value) {
			t.Errorf("record %q header %d: %s=%q, want %s=%q", got.Key, j, got.Headers[j].Key, got.Headers[j].Value, h.Key, h.Value)
		}
	}
}
