package s3stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
)

// eventually polls fn until it succeeds or d passes.
func eventually(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// batch builds a batch of n records at base with random values of size
// bytes (random, so blocks stay raw and sizes predictable).
func batch(base int64, n, size int) []byte {
	rng := rand.New(rand.NewPCG(uint64(base), 1))
	recs := make([]protocol.Record, n)
	for i := range recs {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		recs[i] = protocol.Record{OffsetDelta: int32(i), Value: v}
	}
	return prototest.Batch(recs, prototest.WithBaseOffset(base), prototest.WithFirstTimestamp(base))
}

// testObject is an object in a store, with the batches of its streams.
type testObject struct {
	key     string
	size    int64
	index   *s3stream.ObjectIndex
	batches map[uint64][][]byte
}

// loc returns the object location of stream's whole range.
func (o *testObject) loc(stream uint64) s3stream.ObjectLocation {
	bs := o.batches[stream]
	first, _ := protocol.ParseBatchHeader(bs[0])
	last, _ := protocol.ParseBatchHeader(bs[len(bs)-1])
	return s3stream.ObjectLocation{Key: o.key, ObjectSize: o.size, StartOffset: first.BaseOffset, EndOffset: last.LastOffset() + 1}
}

// expect models Read: batches from the one holding offset, at least one,
// at most maxBytes, none starting at or after end.
func (o *testObject) expect(stream uint64, offset int64, maxBytes int, end int64) []byte {
	var out []byte
	for _, b := range o.batches[stream] {
		h, _ := protocol.ParseBatchHeader(b)
		if h.LastOffset() < offset {
			continue
		}
		if h.BaseOffset >= end || (len(out) > 0 && len(out)+len(b) > maxBytes) {
			break
		}
		out = append(out, b...)
	}
	return out
}

// putObject writes streams 3, 7 and 9 (7 is the big one: perStream
// batches of 10 records) with the given block size.
func putObject(t testing.TB, store s3stream.ObjectStore, key string, blockSize, perStream, valueSize int) *testObject {
	t.Helper()
	o := &testObject{key: key, batches: map[uint64][][]byte{}}
	w := s3stream.NewObjectWriter(blockSize)
	for _, s := range []struct {
		stream uint64
		count  int
	}{{3, 5}, {7, perStream}, {9, 5}} {
		off := int64(s.stream * 1000)
		for range s.count {
			b := batch(off, 10, valueSize)
			if err := w.Append(s.stream, b); err != nil {
				t.Fatal(err)
			}
			o.batches[s.stream] = append(o.batches[s.stream], b)
			off += 10
		}
	}
	obj, ix, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), key, bytes.NewReader(obj), int64(len(obj))); err != nil {
		t.Fatal(err)
	}
	o.size, o.index = int64(len(obj)), ix
	return o
}

// gateStore holds every Get while its gate is closed (armed), and counts
// Gets. It delegates to a real store.
type gateStore struct {
	s3stream.ObjectStore
	gets    atomic.Int64
	waiting atomic.Int64
	mu      sync.Mutex
	gate    chan struct{}
}

func (g *gateStore) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gateStore) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gateStore) Get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	g.gets.Add(1)
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.waiting.Add(1)
		defer g.waiting.Add(-1)
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.ObjectStore.Get(ctx, key, off, n)
}

// nextOffset returns the offset after the last of the concatenated batches
// in b, walking their headers.
func nextOffset(t testing.TB, b []byte) int64 {
	t.Helper()
	next := int64(-1)
	for len(b) > 0 {
		h, err := protocol.ParseBatchHeader(b)
		if err != nil || int(h.BatchLength)+12 > len(b) {
			t.Fatalf("bad batch framing: %v", err)
		}
		next = h.LastOffset() + 1
		b = b[h.BatchLength+12:]
	}
	return next
}

func newReader(t testing.TB, store s3stream.ObjectStore, cfg s3stream.ReaderConfig) *s3stream.Reader {
	r := s3stream.NewReader(store, cfg)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestReadObjectIndexGETs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		blockSize int
		perStream int
		wantGets  int
	}{
		{"small object", 4 << 10, 20, 1},
		{"large object, small index", 4 << 10, 400, 1},
		{"index beyond 64 KiB", 1, 1100, 2}, // one block per batch: 1110 entries
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := s3test.NewFaultStore(s3test.NewMemStore())
			o := putObject(t, fs, "sso/1", tc.blockSize, tc.perStream, 50)
			before := fs.Calls(s3test.OpGet)
			ix, err := s3stream.ReadObjectIndex(t.Context(), fs, o.key, o.size)
			if err != nil {
				t.Fatal(err)
			}
			if got := fs.Calls(s3test.OpGet) - before; got != tc.wantGets {
				t.Fatalf("%d GETs, want %d", got, tc.wantGets)
			}
			if fmt.Sprint(ix.Blocks) != fmt.Sprint(o.index.Blocks) {
				t.Fatal("index differs from the written one")
			}
		})
	}
	fs := s3test.NewFaultStore(s3test.NewMemStore())
	o := putObject(t, fs, "sso/2", 4<<10, 10, 50)
	for _, size := range []int64{o.size - 1, o.size + 1, 10} {
		if _, err := s3stream.ReadObjectIndex(t.Context(), fs, o.key, size); !errors.Is(err, s3stream.ErrCorruptObject) &&
			!errors.Is(err, s3stream.ErrInvalidRange) {
			t.Errorf("size %d: %v", size, err)
		}
	}
}

func TestReaderReadsAcrossBlocks(t *testing.T) {
	store := &gateStore{ObjectStore: s3test.NewMemStore()}
	o := putObject(t, store, "sso/1", 16<<10, 200, 200) // ~2.3 KB batches, ~7 per block
	if len(o.index.Blocks) < 20 {
		t.Fatalf("only %d blocks", len(o.index.Blocks))
	}
	r := newReader(t, store, s3stream.ReaderConfig{})
	loc := o.loc(7)
	var all []byte
	for off := loc.StartOffset; off < loc.EndOffset; {
		got, err := r.Read(t.Context(), 7, off, 40<<10, loc)
		if err != nil {
			t.Fatal(err)
		}
		if want := o.expect(7, off, 40<<10, loc.EndOffset); !bytes.Equal(got, want) {
			t.Fatalf("read at %d: %d bytes, want %d", off, len(got), len(want))
		}
		all = append(all, got...)
		off = nextOffset(t, got)
	}
	if !bytes.Equal(all, bytes.Join(o.batches[7], nil)) {
		t.Fatal("the stream read back differs")
	}
	// The first read fetched one block; the second, sequential, coalesced
	// the rest of the stream (well under 4 MiB) into one GET.
	if s := r.Stats(); s.Gets != 2 || s.IndexMisses != 1 {
		t.Fatalf("stats %+v: want 2 block GETs and 1 index fetch", s)
	}
	// Random offsets (inside batches) and sizes, against the model.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		s := []uint64{3, 7, 9}[rng.IntN(3)]
		l := o.loc(s)
		off := l.StartOffset + rng.Int64N(l.EndOffset-l.StartOffset)
		maxBytes := rng.IntN(30 << 10)
		got, err := r.Read(t.Context(), s, off, maxBytes, l)
		if err != nil {
			t.Fatal(err)
		}
		want := o.expect(s, off, maxBytes, l.EndOffset)
		if !bytes.Equal(got, want) {
			t.Fatalf("stream %d offset %d max %d: %d bytes, want %d", s, off, maxBytes, len(got), len(want))
		}
		if h, _ := protocol.ParseBatchHeader(got); h.BaseOffset > off || h.LastOffset() < off {
			t.Fatalf("first batch [%d, %d] does not hold %d", h.BaseOffset, h.LastOffset(), off)
		}
	}
}

func TestReaderMaxBytesAndRange(t *testing.T) {
	store := s3test.NewMemStore()
	o := putObject(t, store, "sso/1", 16<<10, 50, 200)
	r := newReader(t, store, s3stream.ReaderConfig{})
	loc := o.loc(7)
	size := len(o.batches[7][0])
	for _, tc := range []struct{ maxBytes, want int }{{0, 1}, {1, 1}, {size, 1}, {2*size + size/2, 2}, {3 * size, 3}} {
		got, err := r.Read(t.Context(), 7, loc.StartOffset+3, tc.maxBytes, loc)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got) / size; n != tc.want || len(got)%size != 0 {
			t.Errorf("maxBytes %d: %d bytes, want %d batches", tc.maxBytes, len(got), tc.want)
		}
	}
	// A location narrower than the object: nothing at or past its end.
	narrow := loc
	narrow.EndOffset = loc.StartOffset + 25 // inside the third batch
	got, err := r.Read(t.Context(), 7, loc.StartOffset, 1<<20, narrow)
	if err != nil || len(got) != 3*size {
		t.Fatalf("narrow read: %d bytes, %v; want 3 batches", len(got), err)
	}
	for _, tc := range []struct {
		stream uint64
		offset int64
		loc    s3stream.ObjectLocation
	}{
		{7, loc.StartOffset - 1, loc},
		{7, loc.EndOffset, loc},
		{8, loc.StartOffset, loc}, // not in the object at all
		{7, 5, s3stream.ObjectLocation{Key: loc.Key, ObjectSize: loc.ObjectSize, StartOffset: 0, EndOffset: 10}},
	} {
		if _, err := r.Read(t.Context(), tc.stream, tc.offset, 1, tc.loc); !errors.Is(err, s3stream.ErrOffsetNotInObject) {
			t.Errorf("stream %d offset %d: %v", tc.stream, tc.offset, err)
		}
	}
}

func TestReaderCacheHit(t *testing.T) {
	store := &gateStore{ObjectStore: s3test.NewMemStore()}
	o := putObject(t, store, "sso/1", 16<<10, 50, 200)
	r := newReader(t, store, s3stream.ReaderConfig{ReadAheadBlocks: -1})
	loc := o.loc(7)
	first, err := r.Read(t.Context(), 7, loc.StartOffset+40, 1, loc)
	if err != nil {
		t.Fatal(err)
	}
	gets, stats := store.gets.Load(), r.Stats()
	if gets != 2 || stats.Misses != 1 || stats.Hits != 0 {
		t.Fatalf("cold read: %d GETs, stats %+v", gets, stats)
	}
	again, err := r.Read(t.Context(), 7, loc.StartOffset+40, 1, loc)
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("second read: %v", err)
	}
	if s := r.Stats(); store.gets.Load() != gets || s.Hits != 1 || s.IndexHits != 1 {
		t.Fatalf("warm read: %d GETs (was %d), stats %+v", store.gets.Load(), gets, s)
	}
	again[0] ^= 0xff // returned bytes are the caller's: the cache is unaffected
	if third, _ := r.Read(t.Context(), 7, loc.StartOffset+40, 1, loc); !bytes.Equal(third, first) {
		t.Fatal("modifying a result changed the cache")
	}
}

func TestReaderLRUBound(t *testing.T) {
	store := &gateStore{ObjectStore: s3test.NewMemStore()}
	o := putObject(t, store, "sso/1", 16<<10, 200, 200)
	limit := 3 * o.index.Blocks[5].RawSize
	r := newReader(t, store, s3stream.ReaderConfig{CacheBytes: limit, ReadAheadBlocks: -1})
	loc := o.loc(7)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		off := loc.StartOffset + rng.Int64N(loc.EndOffset-loc.StartOffset)
		got, err := r.Read(t.Context(), 7, off, 1, loc)
		if err != nil || !bytes.Equal(got, o.expect(7, off, 1, loc.EndOffset)) {
			t.Fatalf("read %d: %v", off, err)
		}
		if s := r.Stats(); s.BytesCached > limit || s.BlocksCached > 3 {
			t.Fatalf("cache holds %d bytes in %d blocks, limit %d", s.BytesCached, s.BlocksCached, limit)
		}
	}
	if s := r.Stats(); s.Evictions == 0 || s.Hits == 0 || s.Misses != s.BlocksFetched {
		t.Fatalf("stats %+v", s)
	}
	// The least recently used block is gone: reading it costs a GET.
	first := o.index.Blocks[0]
	for i := range o.index.Blocks {
		if b := o.index.Blocks[i]; b.Stream == 7 {
			first = b
			break
		}
	}
	for _, b := range o.index.Blocks[len(o.index.Blocks)-8 : len(o.index.Blocks)-5] {
		if _, err := r.Read(t.Context(), 7, b.StartOffset, 1, loc); err != nil {
			t.Fatal(err)
		}
	}
	gets := store.gets.Load()
	if _, err := r.Read(t.Context(), 7, first.StartOffset, 1, loc); err != nil || store.gets.Load() != gets+1 {
		t.Fatalf("evicted block: %v, %d GETs", err, store.gets.Load()-gets)
	}
}

func TestReaderSingleflight(t *testing.T) {
	store := &gateStore{ObjectStore: s3test.NewMemStore()}
	fs := s3test.NewFaultStore(store)
	o := putObject(t, fs, "sso/1", 16<<10, 50, 200)
	r := newReader(t, fs, s3stream.ReaderConfig{ReadAheadBlocks: -1})
	loc := o.loc(7)
	if _, err := r.Read(t.Context(), 3, o.loc(3).StartOffset, 1, o.loc(3)); err != nil { // warms the index
		t.Fatal(err)
	}
	before := fs.Calls(s3test.OpGet)
	store.arm()
	const n = 16
	off := o.index.Blocks[4].StartOffset
	var wg sync.WaitGroup
	results := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = r.Read(t.Context(), 7, off+int64(i%5), 1, loc) })
	}
	eventually(t, 5*time.Second, func() error {
		if w := r.Stats().DedupWaits; store.waiting.Load() != 1 || w != n-1 {
			return fmt.Errorf("%d GETs waiting, %d readers waiting on them", store.waiting.Load(), w)
		}
		return nil
	})
	store.release()
	wg.Wait()
	want := o.expect(7, off, 1, loc.EndOffset)
	for i := range n {
		if errs[i] != nil || !bytes.Equal(results[i], want) {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
	}
	if got := fs.Calls(s3test.OpGet) - before; got != 1 {
		t.Fatalf("%d concurrent cold readers made %d GETs, want 1", n, got)
	}
}

func TestReaderSingleflightLeaderCancelled(t *testing.T) {
	store := &gateStore{ObjectStore: s3test.NewMemStore()}
	o := putObject(t, store, "sso/1", 16<<10, 50, 200)
	r := newReader(t, store, s3stream.ReaderConfig{ReadAheadBlocks: -1})
	loc := o.loc(7)
	if _, err := r.Read(t.Context(), 3, o.loc(3).StartOffset, 1, o.loc(3)); err != nil {
		t.Fatal(err)
	}
	store.arm()
	ctx, cancel := context.WithCancel(t.Context())
	leaderErr := make(chan error, 1)
	go func() { _, err := r.Read(ctx, 7, loc.StartOffset, 1, loc); leaderErr <- err }()
	eventually(t, 5*time.Second, func() error {
		if store.waiting.Load() != 1 {
			return errors.New("leader not in GET yet")
		}
		return nil
	})
	follower := make(chan error, 1)
	go func() { _, err := r.Read(t.Context(), 7, loc.StartOffset, 1, loc); follower <- err }()
	eventually(t, 5*time.Second, func() error {
		if r.Stats().DedupWaits != 1 {
			return errors.New("follower not waiting")
		}
		return nil
	})
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	store.release() // the follower retries on its own context and succeeds
	if err := <-follower; err != nil {
		t.Fatalf("follower: %v", err)
	}
}

func TestReaderReadAhead(t *testing.T) {
	store := &gateStore{ObjectStore: s3test.NewMemStore()}
	o := putObject(t, store, "sso/1", 16<<10, 100, 200)
	// Coalescing off (one block per GET), so only read-ahead fetches ahead.
	r := newReader(t, store, s3stream.ReaderConfig{CoalesceBytes: 1, ReadAheadBlocks: 2})
	loc := o.loc(7)
	first, _ := o.index.Find(7, loc.StartOffset)
	blocks := o.index.Blocks[first:]
	// Even a first read fetches the next two blocks in the background:
	// consumers read on.
	if _, err := r.Read(t.Context(), 7, loc.StartOffset, int(blocks[0].RawSize), loc); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if s := r.Stats(); s.ReadAheadIssued != 2 || s.BlocksCached != 3 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
	// Block 1 is a hit, not a miss; reading it fetches block 3 ahead (that
	// background GET may already be counted, so count misses, not GETs).
	before := r.Stats()
	if _, err := r.Read(t.Context(), 7, blocks[1].StartOffset, int(blocks[1].RawSize), loc); err != nil {
		t.Fatal(err)
	}
	if after := r.Stats(); after.Misses != before.Misses || after.Hits != before.Hits+1 {
		t.Fatalf("read-ahead block: %d new misses, %d new hits", after.Misses-before.Misses, after.Hits-before.Hits)
	}
	eventually(t, 5*time.Second, func() error {
		if s := r.Stats(); s.ReadAheadIssued != 3 || s.BlocksCached != 4 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
}

func TestReaderCloseStopsReadAhead(t *testing.T) {
	store := &gateStore{ObjectStore: s3test.NewMemStore()}
	o := putObject(t, store, "sso/1", 16<<10, 100, 200)
	before := runtime.NumGoroutine()
	r := s3stream.NewReader(store, s3stream.ReaderConfig{CoalesceBytes: 1, ReadAheadBlocks: 4})
	loc := o.loc(7)
	first, _ := o.index.Find(7, loc.StartOffset)
	blocks := o.index.Blocks[first:]
	if _, err := r.Read(t.Context(), 7, loc.StartOffset, 1, loc); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error { // blocks 1-4 read ahead
		if s := r.Stats(); s.BlocksCached != 5 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
	store.arm() // read-ahead GETs now hang until cancelled
	if _, err := r.Read(t.Context(), 7, blocks[4].StartOffset, 1, loc); err != nil {
		t.Fatal(err) // served from the cached block; blocks 5-8 are read ahead
	}
	eventually(t, 5*time.Second, func() error {
		if store.waiting.Load() != 4 {
			return fmt.Errorf("%d read-ahead GETs waiting", store.waiting.Load())
		}
		return nil
	})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if store.waiting.Load() != 0 {
		t.Fatalf("Close returned with %d GETs under way", store.waiting.Load())
	}
	eventually(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before the reader", n, before)
		}
		return nil
	})
	if _, err := r.Read(t.Context(), 7, loc.StartOffset, 1, loc); !errors.Is(err, s3stream.ErrReaderClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestReaderCorruptBlock(t *testing.T) {
	mem := s3test.NewMemStore()
	o := putObject(t, mem, "sso/1", 16<<10, 50, 200)
	obj, err := mem.Get(t.Context(), o.key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	i, _ := o.index.Find(7, o.loc(7).StartOffset+100)
	obj[o.index.Blocks[i].Position+30] ^= 1
	if err := mem.Put(t.Context(), "sso/bad", bytes.NewReader(obj), int64(len(obj))); err != nil {
		t.Fatal(err)
	}
	loc := o.loc(7)
	loc.Key = "sso/bad"
	r := newReader(t, mem, s3stream.ReaderConfig{})
	if _, err := r.Read(t.Context(), 7, loc.StartOffset+100, 1, loc); !errors.Is(err, s3stream.ErrCorruptObject) {
		t.Fatalf("corrupt block: %v", err)
	}
	if _, err := r.Read(t.Context(), 7, loc.StartOffset, 1, loc); err != nil {
		t.Fatalf("an intact block of the same object: %v", err)
	}
	loc.ObjectSize-- // footer no longer at the end
	loc.Key = o.key
	r2 := newReader(t, mem, s3stream.ReaderConfig{})
	if _, err := r2.Read(t.Context(), 7, loc.StartOffset, 1, loc); !errors.Is(err, s3stream.ErrCorruptObject) {
		t.Fatalf("wrong size: %v", err)
	}
}

func TestReaderMinIO(t *testing.T) {
	m := s3test.StartMinIO(t)
	metered := s3stream.NewMetered(m.Store(t, "shoal-reader"))
	o := putObject(t, metered, "sso/00000001", 64<<10, 400, 1000) // ~4 MB of stream 7
	r := newReader(t, metered, s3stream.ReaderConfig{})
	loc := o.loc(7)
	var all []byte
	for off := loc.StartOffset; off < loc.EndOffset; {
		got, err := r.Read(t.Context(), 7, off, 256<<10, loc)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
		off = nextOffset(t, got)
	}
	if !bytes.Equal(all, bytes.Join(o.batches[7], nil)) {
		t.Fatal("stream read back from MinIO differs")
	}
	fetch := metered.Counts()[s3stream.ReasonFetch]
	// One index GET, then at most one GET per 4 MiB (plus the first block).
	if maxGets := int64(2 + len(all)/(4<<20) + 1); fetch.Get > maxGets || fetch.Errors != 0 {
		t.Fatalf("fetch counts %+v for %d bytes, want at most %d GETs", fetch, len(all), maxGets)
	}
	if c := metered.Counts()[s3stream.ReasonOther]; c.Put != 1 {
		t.Fatalf("the upload was not counted: %+v", metered.Counts())
	}
}

func BenchmarkReaderColdCatchUp(b *testing.B) {
	store := s3test.NewMemStore()
	const perStream = 6000 // ~6000 * 10 * 1 KB = 60 MB of stream 7
	o := putObject(b, store, "sso/1", s3stream.DefaultBlockSize, perStream, 1000)
	loc := o.loc(7)
	total := int64(len(bytes.Join(o.batches[7], nil)))
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		r := s3stream.NewReader(store, s3stream.ReaderConfig{})
		var n int64
		for off := loc.StartOffset; off < loc.EndOffset; {
			got, err := r.Read(b.Context(), 7, off, 1<<20, loc)
			if err != nil {
				b.Fatal(err)
			}
			n += int64(len(got))
			off = nextOffset(b, got)
		}
		if n != total {
			b.Fatalf("read %d of %d bytes", n, total)
		}
		b.ReportMetric(float64(r.Stats().Gets)/(float64(total)/(1<<30)), "GETs/GiB")
		_ = r.Close()
	}
}
