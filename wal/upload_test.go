package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

func appendN(t *testing.T, g *Group, stream uint64, batches, perBatch int) {
	t.Helper()
	for i := 0; i < batches; i++ {
		if _, err := g.Append(t.Context(), stream, [][]byte{prototest.Batch(values(fmt.Sprint(stream, i), perBatch))}); err != nil {
			t.Fatal(err)
		}
	}
}

// pendingBatches collects what ReadPending yields for ranges.
func pendingBatches(t *testing.T, g *Group, ranges []PendingRange) map[uint64][]byte {
	t.Helper()
	out := map[uint64][]byte{}
	for _, r := range ranges {
		if err := g.ReadPending(r, func(b []byte) error {
			out[r.Stream] = append(out[r.Stream], b...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestPendingAndTrim(t *testing.T) {
	dir := t.TempDir()
	g := openGroup(t, dir, 2<<10) // small cache: some pending batches come from the log
	appendN(t, g, 1, 10, 3)
	appendN(t, g, 2, 5, 2)
	appendN(t, g, 3, 1, 1)

	ranges := g.Pending(1 << 30)
	if len(ranges) != 3 {
		t.Fatalf("pending ranges: %d, want 3", len(ranges))
	}
	want := map[uint64][2]int64{1: {0, 30}, 2: {0, 10}, 3: {0, 1}}
	var total int64
	for _, r := range ranges {
		if w := want[r.Stream]; r.StartOffset != w[0] || r.EndOffset != w[1] {
			t.Fatalf("stream %d pending [%d,%d), want %v", r.Stream, r.StartOffset, r.EndOffset, w)
		}
		total += r.Bytes
	}
	if total != g.PendingBytes() {
		t.Fatalf("ranges hold %d bytes, PendingBytes says %d", total, g.PendingBytes())
	}
	// What the uploader reads is exactly what a consumer reads.
	got := pendingBatches(t, g, ranges)
	for _, r := range ranges {
		res, err := g.Read(r.Stream, 0, 1<<30)
		if err != nil || !bytes.Equal(res.Records, got[r.Stream]) {
			t.Fatalf("stream %d: pending bytes differ from a read (%v)", r.Stream, err)
		}
	}

	// Upload part of the backlog: stream 1 only.
	if err := g.Trim(t.Context(), ranges[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Read(1, 5, 100); !errors.Is(err, ErrBelowWAL) {
		t.Fatalf("read of a trimmed offset: %v, want ErrBelowWAL", err)
	}
	if start, hwm := g.Offsets(1); start != 30 || hwm != 30 {
		t.Fatalf("stream 1 offsets after trim: %d %d", start, hwm)
	}
	if got := g.PendingBytes(); got != total-ranges[0].Bytes {
		t.Fatalf("pending bytes after trim %d, want %d", got, total-ranges[0].Bytes)
	}
	// A repeated trim is harmless.
	if err := g.Trim(t.Context(), ranges[:1]); err != nil {
		t.Fatal(err)
	}
	appendN(t, g, 1, 2, 1)
	if r := g.Pending(1 << 30); len(r) != 3 || r[0].StartOffset != 30 || r[0].EndOffset != 32 {
		t.Fatalf("pending after new appends: %+v", r)
	}
	// Streams 2 and 3 still need the oldest entries: the log keeps them.
	first, _ := g.rg.Logs.FirstIndex()
	if need := g.fsm.minLogIndex(); first > need {
		t.Fatalf("log starts at %d but index needs %d", first, need)
	}
	if err := g.Trim(t.Context(), g.Pending(1<<30)); err != nil {
		t.Fatal(err)
	}
	if g.PendingBytes() != 0 {
		t.Fatalf("pending bytes %d after trimming everything", g.PendingBytes())
	}
	first, _ = g.rg.Logs.FirstIndex()
	last, _ := g.rg.Logs.LastIndex()
	if first != 0 && first < last-2 { // 0: the log store is empty
		t.Fatalf("log still holds entries %d..%d after everything was trimmed", first, last)
	}

	// A restart comes back from the snapshot plus the remaining log.
	appendN(t, g, 2, 1, 4)
	closeGroup(t, g)
	g = openGroup(t, dir, 2<<10)
	if start, hwm := g.Offsets(2); start != 10 || hwm != 14 {
		t.Fatalf("stream 2 after restart: start %d hwm %d, want 10 14", start, hwm)
	}
	if got := readFrom(t, g, 2, 10); len(got) != 4 {
		t.Fatalf("stream 2 after restart holds %d records above the trim, want 4", len(got))
	}
	if _, err := g.Read(3, 0, 100); !errors.Is(err, ErrBelowWAL) {
		t.Fatalf("stream 3 offset 0 after restart: %v", err)
	}
}

// readFrom reads every record of a stream from offset on.
func readFrom(t *testing.T, g *Group, stream uint64, offset int64) [][]byte {
	t.Helper()
	res, err := g.Read(stream, offset, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for pos := 0; pos < len(res.Records); {
		recs, n := decodeAll(t, res.Records[pos:])
		out = append(out, recs...)
		pos += n
	}
	return out
}

func TestPendingRespectsMaxBytes(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<30)
	appendN(t, g, 1, 10, 5)
	appendN(t, g, 2, 10, 5)
	one := g.Pending(1)
	if len(one) != 1 || one[0].EndOffset != 5 {
		t.Fatalf("Pending(1) = %+v, want one batch of stream 1", one)
	}
	half := g.Pending(g.PendingBytes() / 4) // half of stream 1
	if len(half) != 1 || half[0].Stream != 1 || half[0].EndOffset != 25 {
		t.Fatalf("a quarter of the backlog: stream %d up to %d", half[0].Stream, half[0].EndOffset)
	}
	if err := g.Trim(t.Context(), half); err != nil {
		t.Fatal(err)
	}
	rest := g.Pending(1 << 30)
	if len(rest) != 2 || rest[0].StartOffset != half[0].EndOffset || rest[1].StartOffset != 0 {
		t.Fatalf("rest after a partial trim: %+v", rest)
	}
}

func TestWALBudget(t *testing.T) {
	mux, err := raftgroup.Listen("127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	g, err := Open(ctx, Config{
		Raft:            raftgroup.Config{Name: "wal-0", Dir: t.TempDir(), NodeID: "1", Mux: mux, Logger: quiet},
		MaxPendingBytes: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	appendN(t, g, 1, 1, 1) // the first append fits: the budget is checked before it
	if _, err := g.Append(ctx, 1, [][]byte{prototest.Batch(values("x", 1))}); !errors.Is(err, ErrWALFull) {
		t.Fatalf("append over the budget: %v, want ErrWALFull", err)
	}
	if err := g.Trim(ctx, g.Pending(1<<30)); err != nil {
		t.Fatal(err)
	}
	if res, err := g.Append(ctx, 1, [][]byte{prototest.Batch(values("y", 1))}); err != nil || res.BaseOffset != 1 {
		t.Fatalf("append after the upload caught up: %+v, %v", res, err)
	}
}

// decodeAll decodes the records of the first batch of b and returns their
// values and the batch's length.
func decodeAll(t *testing.T, b []byte) ([][]byte, int) {
	t.Helper()
	batches, _, err := protocol.SplitBatches(b)
	if err != nil || len(batches) == 0 {
		t.Fatalf("split: %v", err)
	}
	recs, err := protocol.DecodeRecords(batches[0], 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, r := range recs {
		out = append(out, r.Value)
	}
	return out, len(batches[0])
}
