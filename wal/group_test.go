package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openGroup opens a one-voter WAL group in dir; Close is registered as cleanup
// (closing twice is harmless).
func openGroup(t testing.TB, dir string, cacheBytes int64) *Group {
	t.Helper()
	mux, err := raftgroup.Listen("127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := Open(ctx, Config{
		Raft:           raftgroup.Config{Name: "wal-0", Dir: dir, NodeID: "1", Mux: mux, Logger: quiet},
		TailCacheBytes: cacheBytes,
	})
	if err != nil {
		mux.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		mux.Close()
	})
	return g
}

// closeGroup closes g and its mux, as a restart would.
func closeGroup(t testing.TB, g *Group) {
	t.Helper()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

func values(prefix string, n int) []protocol.Record {
	recs := make([]protocol.Record, n)
	for i := range recs {
		recs[i] = protocol.Record{Key: []byte(fmt.Sprintf("%s-k%d", prefix, i)), Value: []byte(fmt.Sprintf("%s-v%d", prefix, i))}
	}
	return recs
}

// readAll reads every record of a stream and checks offsets are dense from 0.
func readAll(t testing.TB, g *Group, stream uint64) []string {
	t.Helper()
	var out []string
	next := int64(0)
	for {
		res, err := g.Read(stream, next, 64<<10)
		if err != nil {
			t.Fatalf("read stream %d at %d: %v", stream, next, err)
		}
		if len(res.Records) == 0 {
			if next != res.HighWatermark {
				t.Fatalf("stream %d: read stopped at %d, high watermark %d", stream, next, res.HighWatermark)
			}
			return out
		}
		batches, headers, err := protocol.SplitBatches(res.Records)
		if err != nil {
			t.Fatalf("stream %d: read returned invalid batches: %v", stream, err)
		}
		for i, b := range batches {
			h := headers[i]
			if h.BaseOffset > next || h.BaseOffset+int64(h.LastOffsetDelta) < next {
				t.Fatalf("stream %d: batch at %d..%d, expected offset %d", stream, h.BaseOffset, h.BaseOffset+int64(h.LastOffsetDelta), next)
			}
			recs, err := protocol.DecodeRecords(b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				off := h.BaseOffset + int64(r.OffsetDelta)
				if off < next {
					continue
				}
				if off != next {
					t.Fatalf("stream %d: offset %d, want %d", stream, off, next)
				}
				out = append(out, string(r.Value))
				next++
			}
		}
	}
}

func TestAppendAssignsDenseOffsets(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<30)
	ctx := t.Context()
	for i := 0; i < 5; i++ {
		res, err := g.Append(ctx, 1, [][]byte{prototest.Batch(values(fmt.Sprint(i), 3))})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(3 * i); res.BaseOffset != want || res.Duplicate {
			t.Fatalf("append %d: got %+v, want base %d", i, res, want)
		}
	}
	// Two batches in one request get consecutive offsets.
	res, err := g.Append(ctx, 1, [][]byte{prototest.Batch(values("a", 2)), prototest.Batch(values("b", 4))})
	if err != nil || res.BaseOffset != 15 {
		t.Fatalf("two-batch append: %+v, %v", res, err)
	}
	if start, hwm := g.Offsets(1); start != 0 || hwm != 21 {
		t.Fatalf("offsets: start %d hwm %d, want 0 21", start, hwm)
	}
	if got := readAll(t, g, 1); len(got) != 21 || got[20] != "b-v3" {
		t.Fatalf("read %d records, last %q", len(got), got[len(got)-1])
	}
	// Other streams are independent.
	if res, err := g.Append(ctx, 2, [][]byte{prototest.Batch(values("x", 1))}); err != nil || res.BaseOffset != 0 {
		t.Fatalf("stream 2: %+v, %v", res, err)
	}
	if _, err := g.Read(1, 22, 1000); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past hwm: %v", err)
	}
	if _, err := g.Read(99, 5, 1000); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read unknown stream past 0: %v", err)
	}
}

func TestReadPatchesOffsetsAndEpoch(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<30)
	for i := 0; i < 3; i++ {
		if _, err := g.Append(t.Context(), 1, [][]byte{prototest.Batch(values("r", 2))}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := g.Read(1, 3, 1) // inside the second batch; maxBytes 1 still returns one batch
	if err != nil {
		t.Fatal(err)
	}
	_, headers, err := protocol.SplitBatches(res.Records)
	if err != nil {
		t.Fatal(err)
	}
	if len(headers) != 1 || headers[0].BaseOffset != 2 {
		t.Fatalf("got %d batches, first at %d; want one at 2", len(headers), headers[0].BaseOffset)
	}
	if headers[0].PartitionLeaderEpoch != g.LeaderEpoch() || headers[0].PartitionLeaderEpoch < 1 {
		t.Fatalf("leader epoch %d, group epoch %d", headers[0].PartitionLeaderEpoch, g.LeaderEpoch())
	}
}

func TestIdempotentProducer(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<30)
	ctx := t.Context()
	const pid = 1000
	b := func(epoch int16, seq int32, n int) [][]byte {
		return [][]byte{prototest.Batch(values(fmt.Sprintf("e%ds%d", epoch, seq), n), prototest.WithProducer(pid, epoch, seq))}
	}
	mustAppend := func(batches [][]byte, wantBase int64, wantDup bool) {
		t.Helper()
		res, err := g.Append(ctx, 1, batches)
		if err != nil || res.BaseOffset != wantBase || res.Duplicate != wantDup {
			t.Fatalf("got %+v, %v; want base %d duplicate %v", res, err, wantBase, wantDup)
		}
	}
	mustFail := func(batches [][]byte, want error) {
		t.Helper()
		if _, err := g.Append(ctx, 1, batches); !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
	}
	mustAppend(b(0, 0, 5), 0, false) // seq 0..4
	mustAppend(b(0, 5, 5), 5, false) // seq 5..9
	mustAppend(b(0, 0, 5), 0, true)  // retry of the first batch: original offsets
	mustAppend(b(0, 5, 5), 5, true)  // retry of the second
	mustFail(b(0, 11, 1), ErrOutOfOrderSequence)
	mustFail(b(0, 5, 2), ErrOutOfOrderSequence) // overlaps but is not a retry
	mustAppend(b(0, 10, 1), 10, false)
	mustFail(b(1, 3, 1), ErrOutOfOrderSequence) // a new epoch starts at 0
	mustAppend(b(1, 0, 1), 11, false)
	mustFail(b(0, 11, 1), ErrInvalidProducerEpoch)
	// A request is all or nothing: a good batch followed by a gap stores nothing.
	mustFail([][]byte{b(1, 1, 1)[0], b(1, 5, 1)[0]}, ErrOutOfOrderSequence)
	mustAppend(b(1, 1, 1), 12, false)
	// Batches without a producer id are never checked.
	mustAppend([][]byte{prototest.Batch(values("plain", 1))}, 13, false)
	if got := readAll(t, g, 1); len(got) != 14 {
		t.Fatalf("stream holds %d records, want 14: %q", len(got), got)
	}
	// An unknown producer may start at any sequence (its state may have been
	// removed), as in Kafka.
	if res, err := g.Append(ctx, 1, [][]byte{prototest.Batch(values("late", 1), prototest.WithProducer(2000, 3, 42))}); err != nil || res.BaseOffset != 14 {
		t.Fatalf("unknown producer: %+v, %v", res, err)
	}
}

func TestTailCacheEvictionReadsFromLog(t *testing.T) {
	g := openGroup(t, t.TempDir(), 4<<10) // a tiny cache: most reads go to the log store
	var want []string
	for i := 0; i < 50; i++ {
		recs := values(fmt.Sprint(i), 10)
		for _, r := range recs {
			want = append(want, string(r.Value))
		}
		if _, err := g.Append(t.Context(), 3, [][]byte{prototest.Batch(recs)}); err != nil {
			t.Fatal(err)
		}
	}
	g.fsm.mu.RLock()
	cached, limit := g.fsm.mu.cacheBytes, g.fsm.mu.cacheLimit
	evicted := 0
	for _, b := range g.fsm.mu.streams[3].Batches {
		if b.data == nil {
			evicted++
		}
	}
	g.fsm.mu.RUnlock()
	if cached > limit || evicted == 0 {
		t.Fatalf("cache holds %d bytes (limit %d), %d batches evicted", cached, limit, evicted)
	}
	if got := readAll(t, g, 3); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read back %d records, want %d (first difference matters)", len(got), len(want))
	}
}

func TestRestartRebuildsState(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", snapshot), func(t *testing.T) {
			dir := t.TempDir()
			g := openGroup(t, dir, 1<<30)
			ctx := t.Context()
			for i := int32(0); i < 10; i++ {
				if _, err := g.Append(ctx, 1, [][]byte{prototest.Batch(values(fmt.Sprint(i), 2), prototest.WithProducer(7, 0, 2*i))}); err != nil {
					t.Fatal(err)
				}
			}
			if snapshot {
				if err := g.Raft().Snapshot().Error(); err != nil {
					t.Fatal(err)
				}
				// Entries after the snapshot are replayed on top of it.
				if _, err := g.Append(ctx, 1, [][]byte{prototest.Batch(values("after", 2), prototest.WithProducer(7, 0, 20))}); err != nil {
					t.Fatal(err)
				}
			}
			before := readAll(t, g, 1)
			closeGroup(t, g)

			g = openGroup(t, dir, 1<<30)
			if got := readAll(t, g, 1); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Fatalf("after restart read %q, before %q", got, before)
			}
			// Producer state survived: a retry is still a duplicate, and the
			// next sequence continues.
			last := int32(18)
			if snapshot {
				last = 20
			}
			res, err := g.Append(ctx, 1, [][]byte{prototest.Batch(values("retry", 2), prototest.WithProducer(7, 0, last))})
			if err != nil || !res.Duplicate {
				t.Fatalf("retry after restart: %+v, %v", res, err)
			}
			res, err = g.Append(ctx, 1, [][]byte{prototest.Batch(values("next", 1), prototest.WithProducer(7, 0, last+2))})
			if err != nil || res.BaseOffset != int64(len(before)) {
				t.Fatalf("next append after restart: %+v, %v; want base %d", res, err, len(before))
			}
		})
	}
}

func TestConcurrentAppendsAreGroupCommitted(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<30)
	const producers, perProducer = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				// Each producer owns a stream and pipelines 5 appends, as a connection would.
				var pending []*Append
				for j := 0; j < 5 && i < perProducer; j, i = j+1, i+1 {
					pending = append(pending, g.Submit(t.Context(), uint64(p), [][]byte{
						prototest.Batch(values(fmt.Sprint(i), 1), prototest.WithProducer(int64(p), 0, int32(i))),
					}))
				}
				i--
				for _, a := range pending {
					if _, err := a.Wait(t.Context()); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for p := 0; p < producers; p++ {
		got := readAll(t, g, uint64(p))
		if len(got) != perProducer {
			t.Fatalf("stream %d holds %d records, want %d", p, len(got), perProducer)
		}
		for i, v := range got {
			if v != fmt.Sprintf("%d-v0", i) {
				t.Fatalf("stream %d offset %d holds %q: order broken", p, i, v)
			}
		}
	}
	if idx := g.Raft().LastIndex(); idx >= producers*perProducer {
		t.Logf("no batching observed: %d entries for %d appends", idx, producers*perProducer)
	}
}

func TestTimestampLookups(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<30)
	for i, ts := range []int64{1000, 5000, 3000} {
		recs := values(fmt.Sprint(i), 2)
		recs[1].TimestampDelta = 10
		if _, err := g.Append(t.Context(), 1, [][]byte{prototest.Batch(recs, prototest.WithFirstTimestamp(ts))}); err != nil {
			t.Fatal(err)
		}
	}
	batch, ok, err := g.FindTimestamp(1, 2000)
	if err != nil || !ok {
		t.Fatalf("find 2000: ok %v, %v", ok, err)
	}
	if off, ok, _ := protocol.OffsetForTimestamp(batch, 2000); !ok || off != 2 {
		t.Fatalf("offset for 2000: %d %v, want 2", off, ok)
	}
	if _, ok, _ := g.FindTimestamp(1, 9000); ok {
		t.Fatal("found a batch for a timestamp after every record")
	}
	batch, ok, err = g.MaxTimestampBatch(1)
	if err != nil || !ok {
		t.Fatalf("max timestamp: ok %v, %v", ok, err)
	}
	if off, ts, _ := protocol.MaxTimestampOffset(batch); off != 3 || ts != 5010 {
		t.Fatalf("max timestamp at %d (%d), want 3 (5010)", off, ts)
	}
}

func TestCloseFailsNewAppends(t *testing.T) {
	g := openGroup(t, t.TempDir(), 1<<30)
	closeGroup(t, g)
	_, err := g.Append(context.Background(), 1, [][]byte{prototest.Batch(values("late", 1))})
	if err == nil {
		t.Fatal("append after close succeeded")
	}
	_ = bytes.MinRead
}

func TestEpochEndOffset(t *testing.T) {
	dir := t.TempDir()
	g := openGroup(t, dir, 1<<30)
	appendN := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := g.Append(t.Context(), 1, [][]byte{prototest.Batch(values("e", 2))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(3) // offsets 0..5 in the first term
	e1 := g.LeaderEpoch()
	closeGroup(t, g)
	g = openGroup(t, dir, 1<<30) // a restart elects a new term
	e2 := g.LeaderEpoch()
	appendN(2) // offsets 6..9
	if e2 <= e1 {
		t.Fatalf("epochs %d then %d", e1, e2)
	}
	for _, c := range []struct {
		ask       int32
		wantEpoch int32
		wantEnd   int64
	}{
		{e2, e2, 10},        // the latest epoch ends at the high watermark
		{e1, e1, 6},         // an older epoch ends where the next starts
		{e2 - 1, e1, 6},     // an epoch with no data: the largest known below it
		{e1 - 1, e1 - 1, 0}, // before every known epoch: the first start
		{e2 + 1, -1, -1},    // above the latest: unknown
	} {
		if e, end := g.EpochEndOffset(1, c.ask); e != c.wantEpoch || end != c.wantEnd {
			t.Errorf("epoch %d: got (%d, %d), want (%d, %d)", c.ask, e, end, c.wantEpoch, c.wantEnd)
		}
	}
	// Trimming uploaded data keeps the history.
	if err := g.Trim(t.Context(), g.Pending(1<<30)); err != nil {
		t.Fatal(err)
	}
	if e, end := g.EpochEndOffset(1, e1); e != e1 || end != 6 {
		t.Fatalf("after trim: (%d, %d)", e, end)
	}
}
