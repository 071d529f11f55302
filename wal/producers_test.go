package wal

import (
	"testing"

	"github.com/shoal-io/shoal/protocol/prototest"
)

func TestStreamViews(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<30)
	ctx := t.Context()
	if got := g.Producers(7); got != nil {
		t.Fatalf("producers of an unknown stream: %v", got)
	}
	if g.StreamBytes(7) != 0 || g.LatestEpoch(7) != -1 {
		t.Fatalf("unknown stream: %d bytes, epoch %d", g.StreamBytes(7), g.LatestEpoch(7))
	}
	// Producer 9: two batches (sequences 0-2, 3-4); producer 4: one batch,
	// then a new epoch; plus one non-idempotent batch.
	batches := [][]byte{
		prototest.Batch(values("a", 3), prototest.WithProducer(9, 0, 0), prototest.WithMaxTimestamp(1000)),
		prototest.Batch(values("b", 2), prototest.WithProducer(9, 0, 3), prototest.WithMaxTimestamp(2000)),
		prototest.Batch(values("c", 1), prototest.WithProducer(4, 1, 0)),
		prototest.Batch(values("d", 2), prototest.WithProducer(4, 2, 0), prototest.WithMaxTimestamp(3000)),
		prototest.Batch(values("e", 4)),
	}
	total := int64(0)
	for _, b := range batches {
		total += int64(len(b))
		if _, err := g.Append(ctx, 7, [][]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	want := []ProducerState{
		{ProducerID: 4, Epoch: 2, LastSequence: 1, LastOffset: 7, LastTimestamp: 3000},
		{ProducerID: 9, Epoch: 0, LastSequence: 4, LastOffset: 4, LastTimestamp: 2000},
	}
	got := g.Producers(7)
	if len(got) != len(want) {
		t.Fatalf("producers %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("producer %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := g.StreamBytes(7); got != total {
		t.Fatalf("stream bytes %d, want %d", got, total)
	}
	if got := g.LatestEpoch(7); got != g.LeaderEpoch() {
		t.Fatalf("latest epoch %d, want the term %d", got, g.LeaderEpoch())
	}
	// After the upload hand-off trims everything, the producer states stay
	// (without timestamps) and the WAL holds no bytes of the stream.
	if err := g.Trim(ctx, g.Pending(1<<30)); err != nil {
		t.Fatal(err)
	}
	got = g.Producers(7)
	if len(got) != 2 || got[1].LastSequence != 4 || got[1].LastOffset != 4 || got[1].LastTimestamp != -1 {
		t.Fatalf("after trim: %+v", got)
	}
	if got := g.StreamBytes(7); got != 0 {
		t.Fatalf("after trim: %d bytes", got)
	}
	if got := g.LatestEpoch(7); got != g.LeaderEpoch() {
		t.Fatalf("after trim: latest epoch %d", got)
	}
}
