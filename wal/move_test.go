package wal

import (
	"errors"
	"testing"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

// idemBatch is a batch of n records of producer pid (epoch 0) from seq on.
func idemBatch(pid int64, seq int32, n int) []byte {
	return prototest.Batch(values("p", n), prototest.WithProducer(pid, 0, seq))
}

func TestFenceRefusesAppendsUntilUnfenced(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<20)
	appendN(t, g, 1, 3, 2)
	appendN(t, g, 2, 1, 1)

	end, err := g.Fence(t.Context(), 1, 7)
	if err != nil || end != 6 {
		t.Fatalf("fence: end %d, %v; want 6", end, err)
	}
	_, err = g.Append(t.Context(), 1, [][]byte{prototest.Batch(values("x", 1))})
	if !errors.Is(err, ErrFenced) || !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append to a fenced stream: %v, want ErrFenced (an ErrNotLeader)", err)
	}
	if _, err := g.Append(t.Context(), 2, [][]byte{prototest.Batch(values("x", 1))}); err != nil {
		t.Fatalf("append to another stream: %v", err)
	}
	if f, ok := g.FenceOf(1); !ok || f.Move != 7 || f.Dropped {
		t.Fatalf("fence of stream 1: %+v %v", f, ok)
	}
	if fs := g.FencedStreams(); len(fs) != 1 || fs[1] != 7 {
		t.Fatalf("fenced streams %v", fs)
	}
	// Reads go on while fenced.
	if res, err := g.Read(1, 0, 1<<20); err != nil || len(res.Records) == 0 || res.HighWatermark != 6 {
		t.Fatalf("read of a fenced stream: %d bytes, hwm %d, %v", len(res.Records), res.HighWatermark, err)
	}

	// Another move's unfence changes nothing; the fencing move's lifts it.
	if err := g.Unfence(t.Context(), 1, 8); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.FenceOf(1); !ok {
		t.Fatal("unfence of another move lifted the fence")
	}
	if err := g.Unfence(t.Context(), 1, 7); err != nil {
		t.Fatal(err)
	}
	res, err := g.Append(t.Context(), 1, [][]byte{prototest.Batch(values("y", 1))})
	if err != nil || res.BaseOffset != 6 {
		t.Fatalf("append after unfence: %+v %v, want offset 6", res, err)
	}
}

func TestDropKeepsTheStreamFenced(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<20)
	appendN(t, g, 1, 4, 2)
	appendN(t, g, 2, 2, 1)
	before := g.PendingBytes()
	streamBytes := g.StreamBytes(1)
	if _, err := g.Fence(t.Context(), 1, 3); err != nil {
		t.Fatal(err)
	}
	if err := g.Drop(t.Context(), 1, 4); err != nil { // another move: no effect
		t.Fatal(err)
	}
	if _, hwm := g.Offsets(1); hwm != 8 {
		t.Fatalf("drop of another move removed the stream (hwm %d)", hwm)
	}
	if err := g.Drop(t.Context(), 1, 3); err != nil {
		t.Fatal(err)
	}
	if start, hwm := g.Offsets(1); start != 0 || hwm != 0 {
		t.Fatalf("dropped stream offsets %d %d", start, hwm)
	}
	if got := g.PendingBytes(); got != before-streamBytes {
		t.Fatalf("pending bytes %d after drop, want %d", got, before-streamBytes)
	}
	for _, r := range g.Pending(1 << 30) {
		if r.Stream == 1 {
			t.Fatal("a dropped stream is still pending")
		}
	}
	if f, ok := g.FenceOf(1); !ok || !f.Dropped {
		t.Fatalf("dropped stream fence %+v %v", f, ok)
	}
	if fs := g.FencedStreams(); len(fs) != 0 {
		t.Fatalf("fenced streams after drop %v", fs)
	}
	// A stale append cannot restart the stream at offset 0; an unfence
	// cannot lift a drop's fence.
	if err := g.Unfence(t.Context(), 1, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Append(t.Context(), 1, [][]byte{prototest.Batch(values("z", 1))}); !errors.Is(err, ErrFenced) {
		t.Fatalf("append to a dropped stream: %v, want ErrFenced", err)
	}
	// A trim that follows (the uploader's) is harmless.
	if err := g.Trim(t.Context(), []PendingRange{{Stream: 1, EndOffset: 8}}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenStreamAtOffsetWithProducerState(t *testing.T) {
	src := openGroup(t, t.TempDir(), 1<<20)
	const pid = 42
	var firstBase int64
	for i := range 4 {
		res, err := src.Append(t.Context(), 9, [][]byte{idemBatch(pid, int32(i*3), 3)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			firstBase = res.BaseOffset
		}
	}
	if _, err := src.Fence(t.Context(), 9, 11); err != nil {
		t.Fatal(err)
	}
	h := src.HandoffOf(9)
	if h.End != 12 || len(h.Producers) != 1 || h.Producers[0].ID != pid || len(h.Producers[0].Batches) != 4 ||
		h.MinEpoch != src.LeaderEpoch()+1 || len(h.Epochs) != 1 {
		t.Fatalf("hand-off %+v", h)
	}
	// The target's term is lower than the source's epoch in real moves
	// too: raise the bar well above it.
	h.MinEpoch = 50

	dst := openGroup(t, t.TempDir(), 1<<20)
	appendN(t, dst, 3, 1, 1) // another stream of the target
	if dst.OpenedBy(9) != 0 {
		t.Fatal("stream opened before OpenStream")
	}
	if err := dst.OpenStream(t.Context(), 9, 11, h); err != nil {
		t.Fatal(err)
	}
	if start, hwm := dst.Offsets(9); start != 12 || hwm != 12 {
		t.Fatalf("opened stream offsets %d %d, want 12 12", start, hwm)
	}
	if dst.OpenedBy(9) != 11 {
		t.Fatalf("opened by %d", dst.OpenedBy(9))
	}
	if e := dst.LeaderEpoch(); e < 50 {
		t.Fatalf("leader epoch %d after open, want at least 50", e)
	}
	// A retry of the last batch is a duplicate with its original offset.
	res, err := dst.Append(t.Context(), 9, [][]byte{idemBatch(pid, 9, 3)})
	if err != nil || !res.Duplicate || res.BaseOffset != firstBase {
		t.Fatalf("retried batch: %+v %v, want duplicate at %d", res, err, firstBase)
	}
	// A gap is refused; the next sequence continues at the hand-off offset.
	if _, err := dst.Append(t.Context(), 9, [][]byte{idemBatch(pid, 20, 1)}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence gap: %v", err)
	}
	res, err = dst.Append(t.Context(), 9, [][]byte{idemBatch(pid, 12, 2)})
	if err != nil || res.Duplicate || res.BaseOffset != 12 {
		t.Fatalf("next batch: %+v %v, want offset 12", res, err)
	}
	// Below the hand-off offset the data is in object storage.
	if _, err := dst.Read(9, 5, 1<<20); !errors.Is(err, ErrBelowWAL) {
		t.Fatalf("read below the opening offset: %v", err)
	}
	rr, err := dst.Read(9, 12, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	bh, err := protocol.ParseBatchHeader(rr.Records)
	if err != nil || bh.BaseOffset != 12 || bh.PartitionLeaderEpoch != dst.LeaderEpoch() {
		t.Fatalf("batch header %+v %v, want offset 12 epoch %d", bh, err, dst.LeaderEpoch())
	}
	// The epoch history goes on from the source's.
	if e, end := dst.EpochEndOffset(9, h.Epochs[0].Epoch); e != h.Epochs[0].Epoch || end != 12 {
		t.Fatalf("end of the source's epoch: %d %d, want %d 12", e, end, h.Epochs[0].Epoch)
	}
	// Opening again for the same move changes nothing.
	if err := dst.OpenStream(t.Context(), 9, 11, h); err != nil {
		t.Fatal(err)
	}
	if _, hwm := dst.Offsets(9); hwm != 14 {
		t.Fatalf("repeated open reset the stream: hwm %d", hwm)
	}
}

func TestMovesSurviveRestartFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	g := openGroup(t, dir, 1<<20)
	appendN(t, g, 1, 2, 1)
	appendN(t, g, 2, 2, 1)
	if _, err := g.Fence(t.Context(), 1, 5); err != nil {
		t.Fatal(err)
	}
	if err := g.OpenStream(t.Context(), 7, 6, Handoff{End: 100, MinEpoch: 40}); err != nil {
		t.Fatal(err)
	}
	epoch := g.LeaderEpoch()
	// Trimming everything snapshots and deletes the log below the
	// snapshot: the restart restores the moves from the snapshot.
	if err := g.Trim(t.Context(), g.Pending(1<<30)); err != nil {
		t.Fatal(err)
	}
	closeGroup(t, g)
	g = openGroup(t, dir, 1<<20)
	if f, ok := g.FenceOf(1); !ok || f.Move != 5 {
		t.Fatalf("fence after restart: %+v %v", f, ok)
	}
	if g.OpenedBy(7) != 6 {
		t.Fatalf("opened stream after restart: %d", g.OpenedBy(7))
	}
	if start, hwm := g.Offsets(7); start != 100 || hwm != 100 {
		t.Fatalf("opened stream offsets after restart: %d %d", start, hwm)
	}
	if e := g.LeaderEpoch(); e < epoch {
		t.Fatalf("leader epoch %d after restart, was %d", e, epoch)
	}
	if _, err := g.Append(t.Context(), 1, [][]byte{prototest.Batch(values("x", 1))}); !errors.Is(err, ErrFenced) {
		t.Fatalf("append to a fenced stream after restart: %v", err)
	}
}

func TestDecodeMoveRejectsBadEntries(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":        nil,
		"wrong kind":   {entryKindTrim},
		"not json":     append([]byte{entryKindMove}, "{"...),
		"unknown op":   append([]byte{entryKindMove}, `{"op":9,"stream":1,"move":1}`...),
		"open no body": append([]byte{entryKindMove}, `{"op":4,"stream":1,"move":1}`...),
		"open at -1":   append([]byte{entryKindMove}, `{"op":4,"stream":1,"move":1,"handoff":{"end":-1}}`...),
	} {
		if _, err := decodeMove(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	e := moveEntry{Op: opOpen, Stream: 3, Move: 9, Handoff: &Handoff{End: 5, MinEpoch: 2,
		Producers: []HandoffProducer{{ID: 1, Epoch: 2, Batches: []HandoffBatch{{FirstSeq: 0, LastSeq: 4, Base: 0, Last: 4}}}}}}
	data, err := encodeMove(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMove(data)
	if err != nil || got.Op != e.Op || got.Handoff.Producers[0].Batches[0].LastSeq != 4 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

func FuzzDecodeMove(f *testing.F) {
	f.Add(append([]byte{entryKindMove}, `{"op":1,"stream":1,"move":1}`...))
	f.Add(append([]byte{entryKindMove}, `{"op":4,"stream":1,"move":1,"handoff":{"end":3,"epochs":[{"Epoch":1,"Start":0}]}}`...))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeMove(data)
		if err != nil {
			return
		}
		if _, err := encodeMove(e); err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
	})
}
