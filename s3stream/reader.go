package s3stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Reader defaults.
const (
	// DefaultCacheBytes is the default block cache capacity (decoded bytes).
	DefaultCacheBytes = 256 << 20
	// DefaultReadAheadBlocks is how many blocks a sequential read fetches
	// ahead by default.
	DefaultReadAheadBlocks = 4
	// DefaultIndexCacheEntries is how many object indexes are cached by
	// default.
	DefaultIndexCacheEntries = 4096
	// DefaultCoalesceBytes bounds one GET of adjacent blocks of a stream
	// when reading sequentially.
	DefaultCoalesceBytes = 8 << 20
	// DefaultMaxReadAheads bounds the background fetches in flight.
	DefaultMaxReadAheads = 16
	// maxSequentialStreams bounds the per-stream sequential-read tracker.
	maxSequentialStreams = 1 << 16
)

// ReaderConfig configures a Reader. Zero fields take the defaults.
type ReaderConfig struct {
	// CacheBytes bounds the block cache, counted in decoded bytes
	// (default 256 MiB).
	CacheBytes int64
	// ReadAheadBlocks is how many blocks after the last one read a
	// read makes sure are cached or being fetched (default 4;
	// negative disables read-ahead).
	ReadAheadBlocks int
	// IndexCacheEntries bounds the number of cached object indexes
	// (default 4096).
	IndexCacheEntries int
	// CoalesceBytes bounds one GET of adjacent blocks of the same stream,
	// used when reading sequentially and for read-ahead: blocks are added
	// while the GET is shorter (default 8 MiB, so a GET of 1 MiB blocks
	// covers 8 of them; a single larger block is still one GET).
	CoalesceBytes int64
	// MaxReadAheads bounds the background read-ahead fetches in flight
	// (default 16); read-ahead beyond it is skipped.
	MaxReadAheads int
}

func (c ReaderConfig) withDefaults() ReaderConfig {
	if c.CacheBytes <= 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.ReadAheadBlocks == 0 {
		c.ReadAheadBlocks = DefaultReadAheadBlocks
	}
	if c.IndexCacheEntries <= 0 {
		c.IndexCacheEntries = DefaultIndexCacheEntries
	}
	if c.CoalesceBytes <= 0 {
		c.CoalesceBytes = DefaultCoalesceBytes
	}
	if c.MaxReadAheads <= 0 {
		c.MaxReadAheads = DefaultMaxReadAheads
	}
	return c
}

// ObjectLocation is what the metadata object index says about one
// committed range of a stream.
type ObjectLocation struct {
	// Key is the object's key; ObjectSize its size in bytes.
	Key        string
	ObjectSize int64
	// StartOffset and EndOffset bound the committed range, [start, end).
	StartOffset, EndOffset int64
}

// ReaderStats is a snapshot of a Reader's counters.
type ReaderStats struct {
	// Hits and Misses count block lookups of Read served from the cache
	// or not (a miss either fetched the block or waited for a fetch).
	Hits, Misses int64
	// DedupWaits counts misses that waited for a fetch already under way
	// instead of issuing their own GET.
	DedupWaits int64
	// BlocksFetched counts blocks loaded from the store, Gets the ranged
	// GETs that loaded them (one GET may load several adjacent blocks),
	// GetBytes their stored bytes.
	BlocksFetched, Gets, GetBytes int64
	// ReadAheadIssued counts background fetches started by read-ahead.
	ReadAheadIssued int64
	// Evictions counts blocks evicted from the cache.
	Evictions int64
	// BytesCached and BlocksCached describe the cache now (decoded bytes).
	BytesCached, BlocksCached int64
	// IndexHits and IndexMisses count object-index lookups.
	IndexHits, IndexMisses int64
}

// blockKey names one block of one object.
type blockKey struct {
	object   string
	position int64
}

// cachedBlock is a decoded block: its batches, concatenated.
type cachedBlock struct {
	info BlockInfo
	data []byte
}

// Reader serves reads of committed stream ranges from object storage
// through a bounded LRU block cache, with per-key cached object indexes,
// de-duplicated concurrent misses, coalesced GETs and read-ahead for
// sequential reads. It is safe for concurrent use.
type Reader struct {
	store        ObjectStore
	cfg          ReaderConfig
	blocks       *lru[blockKey, *cachedBlock]
	indexes      *lru[string, *ObjectIndex]
	blockFlights *flightGroup[blockKey, *cachedBlock]
	indexFlights *flightGroup[string, *ObjectIndex]

	// ctx bounds read-ahead fetches; Close cancels it and waits for wg.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{} // one per read-ahead fetch in flight

	mu struct {
		sync.Mutex
		closed bool
		next   map[uint64]int64 // stream -> offset after its last read
	}

	dedupWaits, blocksFetched, gets, getBytes, readAheads atomic.Int64
}

// NewReader returns a Reader of store's objects. Close stops its
// read-ahead.
func NewReader(store ObjectStore, cfg ReaderConfig) *Reader {
	cfg = cfg.withDefaults()
	r := &Reader{
		store:        store,
		cfg:          cfg,
		blocks:       newLRU[blockKey](cfg.CacheBytes, func(b *cachedBlock) int64 { return int64(len(b.data)) }),
		indexes:      newLRU[string](int64(cfg.IndexCacheEntries), func(*ObjectIndex) int64 { return 1 }),
		blockFlights: newFlightGroup[blockKey, *cachedBlock](),
		indexFlights: newFlightGroup[string, *ObjectIndex](),
		slots:        make(chan struct{}, cfg.MaxReadAheads),
	}
	r.ctx, r.cancel = context.WithCancel(WithReason(context.Background(), ReasonFetch))
	r.mu.next = make(map[uint64]int64)
	return r
}

// Read returns whole batches of stream from the block holding offset on,
// within loc's object only: at most maxBytes, but at least one batch. The
// first batch contains offset; no batch starts at or after loc.EndOffset.
// The caller moves to the next object when it needs more. Offsets outside
// [loc.StartOffset, loc.EndOffset), or missing from the object's index,
// give ErrOffsetNotInObject. The returned bytes belong to the caller.
// Requests are counted under ReasonFetch (see Metered) unless ctx carries
// another reason.
func (r *Reader) Read(ctx context.Context, stream uint64, offset int64, maxBytes int, loc ObjectLocation) ([]byte, error) {
	if offset < loc.StartOffset || offset >= loc.EndOffset {
		return nil, fmt.Errorf("read stream %d offset %d from %q [%d, %d): %w",
			stream, offset, loc.Key, loc.StartOffset, loc.EndOffset, ErrOffsetNotInObject)
	}
	if _, ok := ctx.Value(reasonKey{}).(Reason); !ok {
		ctx = WithReason(ctx, ReasonFetch)
	}
	seq, err := r.noteStart(stream, offset)
	if err != nil {
		return nil, err
	}
	ix, err := r.index(ctx, loc.Key, loc.ObjectSize)
	if err != nil {
		return nil, fmt.Errorf("read stream %d offset %d: %w", stream, offset, err)
	}
	i, ok := ix.Find(stream, offset)
	if !ok {
		return nil, fmt.Errorf("read stream %d offset %d: index of %q has no block for it: %w",
			stream, offset, loc.Key, ErrOffsetNotInObject)
	}
	var (
		out  []byte
		next = offset
		last = i
	)
	for ; i < len(ix.Blocks); i++ {
		bi := ix.Blocks[i]
		if bi.Stream != stream || bi.StartOffset >= loc.EndOffset || (len(out) > 0 && bi.StartOffset != next) {
			break
		}
		// Fetch adjacent blocks in the same GET: as many as a sequential
		// reader will soon want (CoalesceBytes), else what this read needs.
		want := int64(maxBytes - len(out))
		if seq {
			want = r.cfg.CoalesceBytes
		}
		blk, err := r.block(ctx, loc.Key, ix, i, want)
		if err != nil {
			if len(out) > 0 {
				break // serve what we have; the next read meets the error again
			}
			return nil, fmt.Errorf("read stream %d offset %d: %w", stream, offset, err)
		}
		var full bool
		out, next, full = appendBatches(out, blk.data, next, loc.EndOffset, maxBytes)
		last = i
		if full {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read stream %d offset %d: block of %q holds no batch with it: %w",
			stream, offset, loc.Key, ErrCorruptObject)
	}
	r.noteEnd(stream, next)
	// Consumers read on from here: fetch what follows in the background,
	// also after the first read of a stream, so catch-up is not a chain of
	// synchronous GETs.
	r.readAhead(loc.Key, ix, last+1, stream, loc.EndOffset)
	return out, nil
}

// appendBatches appends to out the batches of data from the one holding
// offset on, stopping before a batch starting at or after end, or one that
// would take out past maxBytes (the first batch is always taken). It
// returns the offset after the last batch taken and whether maxBytes
// stopped it.
func appendBatches(out, data []byte, offset, end int64, maxBytes int) ([]byte, int64, bool) {
	for pos := 0; pos < len(data); {
		h, size, err := batchFrame(data[pos:])
		if err != nil {
			break // decoded blocks were checked; not reached
		}
		b := data[pos : pos+size]
		pos += size
		if h.LastOffset() < offset {
			continue
		}
		if h.BaseOffset >= end {
			return out, offset, true
		}
		if len(out) > 0 && len(out)+size > maxBytes {
			return out, offset, true
		}
		if out == nil {
			out = make([]byte, 0, max(size, min(maxBytes, len(data)-pos+size)))
		}
		out = append(out, b...)
		offset = h.LastOffset() + 1
	}
	return out, offset, len(out) >= maxBytes
}

// noteStart reports whether a read of stream at offset continues the
// previous read of that stream (sequential), or ErrReaderClosed.
func (r *Reader) noteStart(stream uint64, offset int64) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return false, ErrReaderClosed
	}
	next, ok := r.mu.next[stream]
	return ok && next == offset, nil
}

// noteEnd records where the last read of stream ended.
func (r *Reader) noteEnd(stream uint64, next int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mu.next) >= maxSequentialStreams {
		clear(r.mu.next)
	}
	r.mu.next[stream] = next
}

// await waits for a flight led by another caller. retry is true when the
// leader gave up because of its own context while ours is still live.
func await[V any](ctx context.Context, f *flight[V]) (v V, retry bool, err error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
	if f.err != nil && ctx.Err() == nil &&
		(errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
		return v, true, nil
	}
	return f.val, false, f.err
}

// ObjectIndex returns an object's index through the reader's index cache
// (objects are immutable, so a cached index never goes stale).
func (r *Reader) ObjectIndex(ctx context.Context, key string, size int64) (*ObjectIndex, error) {
	return r.index(ctx, key, size)
}

// index returns the object's index, from the cache or the store.
func (r *Reader) index(ctx context.Context, key string, size int64) (*ObjectIndex, error) {
	for {
		if ix, ok := r.indexes.get(key); ok {
			return ix, nil
		}
		f, leader := r.indexFlights.join(key)
		if !leader {
			ix, retry, err := await(ctx, f)
			if retry {
				continue
			}
			return ix, err
		}
		ix, ok := r.indexes.peek(key)
		var err error
		if !ok {
			ix, err = ReadObjectIndex(ctx, r.store, key, size)
			if err == nil {
				r.indexes.add(key, ix)
			}
		}
		r.indexFlights.finish(key, f, ix, err)
		return ix, err
	}
}

// block returns block i of the object key, from the cache, from a fetch
// under way, or by fetching it (with adjacent blocks, see fetchRun).
func (r *Reader) block(ctx context.Context, key string, ix *ObjectIndex, i int, want int64) (*cachedBlock, error) {
	k := blockKey{key, ix.Blocks[i].Position}
	for {
		if b, ok := r.blocks.get(k); ok {
			return b, nil
		}
		f, leader := r.blockFlights.join(k)
		if !leader {
			r.dedupWaits.Add(1)
			b, retry, err := await(ctx, f)
			if retry {
				continue
			}
			return b, err
		}
		if b, ok := r.blocks.peek(k); ok { // fetched between our lookup and join
			r.blockFlights.finish(k, f, b, nil)
			return b, nil
		}
		return r.fetchRun(ctx, key, ix, i, f, want)
	}
}

// fetchRun loads block i, whose flight f the caller leads, in one ranged
// GET together with the following blocks of the same stream that are
// neither cached nor being fetched, while the blocks so far decode to less
// than want bytes and are stored in less than CoalesceBytes (so one GET
// spans at most CoalesceBytes plus one block). It caches every block, then
// ends their flights.
func (r *Reader) fetchRun(ctx context.Context, key string, ix *ObjectIndex, i int, f *flight[*cachedBlock], want int64) (*cachedBlock, error) {
	return r.fetch(ctx, key, ix, i, r.planRun(key, ix, i, f, want))
}

// planRun returns the flights of the run that starts with block i (whose
// flight f the caller leads), joining the flights of the blocks it adds.
func (r *Reader) planRun(key string, ix *ObjectIndex, i int, f *flight[*cachedBlock], want int64) []*flight[*cachedBlock] {
	run := []*flight[*cachedBlock]{f}
	size, raw := ix.Blocks[i].StoredSize, ix.Blocks[i].RawSize
	for j := i + 1; raw < want && j < len(ix.Blocks); j++ {
		bj := ix.Blocks[j]
		k := blockKey{key, bj.Position}
		if bj.Stream != ix.Blocks[i].Stream || size >= r.cfg.CoalesceBytes || r.blocks.contains(k) {
			break
		}
		fj, leader := r.blockFlights.join(k)
		if !leader {
			break
		}
		run = append(run, fj)
		size, raw = size+bj.StoredSize, raw+bj.RawSize
	}
	return run
}

// fetch loads the blocks of run, which starts at block i, in one ranged
// GET, caches them and ends their flights. It returns block i.
func (r *Reader) fetch(ctx context.Context, key string, ix *ObjectIndex, i int, run []*flight[*cachedBlock]) (*cachedBlock, error) {
	last := ix.Blocks[i+len(run)-1]
	start := ix.Blocks[i].Position
	size := last.Position + last.StoredSize - start
	data, err := r.store.Get(ctx, key, start, size)
	r.gets.Add(1)
	if err == nil && int64(len(data)) != size {
		err = fmt.Errorf("got %d of %d bytes at %d: %w", len(data), size, start, ErrCorruptObject)
	}
	if err == nil {
		r.getBytes.Add(size)
	}
	var first *cachedBlock
	var firstErr error
	for n, fl := range run {
		bi := ix.Blocks[i+n]
		var blk *cachedBlock
		berr := err
		if berr == nil {
			blk, berr = decodeCached(data[bi.Position-start:bi.Position-start+bi.StoredSize], bi, len(run) > 1)
		}
		if berr != nil {
			berr = fmt.Errorf("fetch block at byte %d of %q: %w", bi.Position, key, berr)
		} else {
			r.blocksFetched.Add(1)
			r.blocks.add(blockKey{key, bi.Position}, blk)
		}
		r.blockFlights.finish(blockKey{key, bi.Position}, fl, blk, berr)
		if n == 0 {
			first, firstErr = blk, berr
		}
	}
	return first, firstErr
}

// decodeCached decodes a fetched block; shared (a sub-slice of a larger
// GET) raw blocks are copied so that the cache's byte count is what the
// cache keeps alive.
func decodeCached(stored []byte, bi BlockInfo, shared bool) (*cachedBlock, error) {
	data, err := DecodeBlock(stored, bi)
	if err != nil {
		return nil, err
	}
	if shared && bi.Codec == CodecRaw {
		data = append([]byte(nil), data...)
	}
	return &cachedBlock{info: bi, data: data}, nil
}

// readAhead makes sure the ReadAheadBlocks blocks of stream from block
// from on (below end) are cached or being fetched, starting background
// fetches for those that are not, as long as read-ahead slots are free.
func (r *Reader) readAhead(key string, ix *ObjectIndex, from int, stream uint64, end int64) {
	for j := from; j < from+r.cfg.ReadAheadBlocks && j < len(ix.Blocks); j++ {
		bj := ix.Blocks[j]
		if bj.Stream != stream || bj.StartOffset >= end {
			return
		}
		k := blockKey{key, bj.Position}
		if r.blocks.contains(k) || r.blockFlights.inFlight(k) {
			continue
		}
		select {
		case r.slots <- struct{}{}:
		default:
			return // enough read-ahead under way
		}
		f, leader := r.blockFlights.join(k)
		if !leader || !r.startBackground() {
			if leader {
				r.blockFlights.finish(k, f, nil, ErrReaderClosed)
			}
			<-r.slots
			if !leader {
				continue
			}
			return
		}
		r.readAheads.Add(1)
		run := r.planRun(key, ix, j, f, r.cfg.CoalesceBytes) // joined now, so the next j sees them in flight
		go func() {
			defer r.wg.Done()
			defer func() { <-r.slots }()
			_, _ = r.fetch(r.ctx, key, ix, j, run) // errors reach the foreground read that needs the block
		}()
	}
}

// startBackground registers a background goroutine with wg unless the
// reader is closed.
func (r *Reader) startBackground() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return false
	}
	r.wg.Add(1)
	return true
}

// Stats returns a snapshot of the reader's counters.
func (r *Reader) Stats() ReaderStats {
	bs, is := r.blocks.stats(), r.indexes.stats()
	return ReaderStats{
		Hits: bs.hits, Misses: bs.misses,
		DedupWaits:      r.dedupWaits.Load(),
		BlocksFetched:   r.blocksFetched.Load(),
		Gets:            r.gets.Load(),
		GetBytes:        r.getBytes.Load(),
		ReadAheadIssued: r.readAheads.Load(),
		Evictions:       bs.evictions,
		BytesCached:     bs.used,
		BlocksCached:    int64(bs.entries),
		IndexHits:       is.hits, IndexMisses: is.misses,
	}
}

// Close stops read-ahead, waits for its goroutines, and makes later reads
// fail with ErrReaderClosed. Reads already under way finish normally. It is
// idempotent.
func (r *Reader) Close() error {
	r.mu.Lock()
	r.mu.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}
