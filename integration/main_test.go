package integration

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoal-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := BuildShoald(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// createTopic creates topic with the given partition count (replication
// factor 1) through kadm and fails the test on any error.
func createTopic(t testing.TB, b *Broker, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("create topic %s: %v", topic, resp.Err)
	}
}

// endOffsets returns the high watermark of every partition of topic.
func endOffsets(t testing.TB, b *Broker, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	var ferr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = o.Err
		}
		out[o.Partition] = o.Offset
	})
	if ferr != nil {
		t.Fatalf("list end offsets of %s: %v", topic, ferr)
	}
	return out
}

// consumeUntil reads topic from the start of every partition until each
// partition p has reached end[p], and returns the records per partition in
// fetch order. It fails the test after timeout, and on any fetch error.
func consumeUntil(t testing.TB, b *Broker, topic string, end map[int32]int64, timeout time.Duration) map[int32][]*kgo.Record {
	t.Helper()
	cl := b.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	return consumeFrom(t, cl, topic, end, timeout, t.Errorf)
}

// consumeFrom polls cl until each partition p has reached end[p] and
// returns the records per partition in fetch order; fetch errors go to
// onErr (t.Errorf where none is expected, t.Logf across failovers). It
// fails the test after timeout.
func consumeFrom(t testing.TB, cl *kgo.Client, topic string, end map[int32]int64, timeout time.Duration,
	onErr func(format string, args ...any)) map[int32][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	got := map[int32][]*kgo.Record{}
	next := map[int32]int64{}
	done := func() bool {
		for p, e := range end {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: timed out after %v at %v, want %v", topic, timeout, next, end)
		}
		fs.EachError(func(topic string, p int32, err error) {
			onErr("consume %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			next[r.Partition] = r.Offset + 1
		})
	}
	return got
}

// checkDense fails the test unless every partition's records have the
// offsets 0..n-1 in order, and returns the record count.
func checkDense(t testing.TB, recs map[int32][]*kgo.Record, end map[int32]int64) int {
	t.Helper()
	total := 0
	for p, e := range end {
		rs := recs[p]
		if int64(len(rs)) != e {
			t.Errorf("partition %d: %d records, high watermark %d", p, len(rs), e)
		}
		for i, r := range rs {
			if r.Offset != int64(i) {
				t.Errorf("partition %d: record %d has offset %d (gap or duplicate)", p, i, r.Offset)
				break
			}
		}
		total += len(rs)
	}
	return total
}
