package s3stream

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
)

// CompactionMetadata is the metadata the compactor reads and swaps objects
// in (a *metadata.Store).
type CompactionMetadata interface {
	Image() *metadata.Image
	IsLeader() bool
	CompactObjects(ctx context.Context, inputs []string, outputs []metadata.Object, nowMs, graceMs int64) error
}

// CompactorConfig configures the compactor. Zero fields take the defaults.
type CompactorConfig struct {
	// Interval is how often a compaction round runs (default 1 min).
	Interval time.Duration
	// TargetBytes is the size merged stream set objects grow to, and the
	// bound on the input bytes of one compaction (default 256 MiB). A
	// stream set object below half of it is small: a merge candidate.
	TargetBytes int64
	// MaxInputs bounds the objects one compaction reads (default 32).
	MaxInputs int
	// SplitBytes: a stream with at least this many bytes in stream set
	// objects is moved into stream objects of its own (default 16 MiB).
	SplitBytes int64
	// MaxStreamObject is the size merged stream objects grow to (default
	// 1 GiB); a stream object below half of it is a merge candidate. The
	// merged object is built in memory.
	MaxStreamObject int64
	// MaxJobsPerRound bounds the compactions of one round (default 64).
	MaxJobsPerRound int
	// BlockSize is the data block size of the outputs (default DefaultBlockSize).
	BlockSize int
	// Grace is how long inputs stay in storage for in-flight readers after
	// the swap (default metadata.DefaultObjectGrace).
	Grace time.Duration
	// Logger receives warnings and debug lines (default slog.Default()).
	Logger *slog.Logger
}

func (c *CompactorConfig) applyDefaults() {
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.TargetBytes <= 0 {
		c.TargetBytes = 256 << 20
	}
	if c.MaxInputs <= 1 {
		c.MaxInputs = 32
	}
	if c.SplitBytes <= 0 {
		c.SplitBytes = 16 << 20
	}
	if c.MaxStreamObject <= 0 {
		c.MaxStreamObject = 1 << 30
	}
	if c.MaxJobsPerRound <= 0 {
		c.MaxJobsPerRound = 64
	}
	if c.BlockSize <= 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.Grace <= 0 {
		c.Grace = metadata.DefaultObjectGrace
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// CompactorStats counts the compactor's work since it was created.
type CompactorStats struct {
	// Compactions counts committed swaps; Failed counts jobs that failed.
	Compactions, Failed int64
	// InputObjects and OutputObjects count the objects swapped out and in.
	InputObjects, OutputObjects int64
	// BytesRead and BytesWritten count object bytes fetched and uploaded.
	BytesRead, BytesWritten int64
}

// Compactor rewrites committed objects into fewer, larger ones: it merges
// small stream set objects (SSOs) of one key prefix (one WAL group), moves
// every stream with at least SplitBytes in SSOs into stream objects (SOs)
// of its own, and merges adjacent small SOs of a stream. Each compaction
// writes its outputs, then swaps them for the inputs in one metadata
// command; inputs stay in storage for the grace period, so readers holding
// an older image keep working. Only the metadata leader compacts. Every
// request is counted under ReasonCompaction.
type Compactor struct {
	store ObjectStore
	meta  CompactionMetadata
	cfg   CompactorConfig

	compactions, failed, inputs, outputs, read, written atomic.Int64
}

// NewCompactor returns a compactor; Run drives it.
func NewCompactor(store ObjectStore, meta CompactionMetadata, cfg CompactorConfig) *Compactor {
	cfg.applyDefaults()
	return &Compactor{store: store, meta: meta, cfg: cfg}
}

// Stats returns the compactor's counters.
func (c *Compactor) Stats() CompactorStats {
	return CompactorStats{
		Compactions: c.compactions.Load(), Failed: c.failed.Load(),
		InputObjects: c.inputs.Load(), OutputObjects: c.outputs.Load(),
		BytesRead: c.read.Load(), BytesWritten: c.written.Load(),
	}
}

// Run compacts every Interval while this node leads the metadata group,
// until ctx ends.
func (c *Compactor) Run(ctx context.Context) {
	runEvery(ctx, c.cfg.Interval, 0, func() {
		if !c.meta.IsLeader() {
			return
		}
		if _, err := c.CompactOnce(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("compaction round failed", "err", err)
		}
	})
}

// runEvery calls fn after first (when positive, else after every) and then
// every interval until ctx ends.
func runEvery(ctx context.Context, every, first time.Duration, fn func()) {
	if first <= 0 {
		first = every
	}
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
		t.Reset(every)
	}
}

// CompactOnce runs one round: compactions planned one after another on the
// newest image until nothing is left to do or MaxJobsPerRound ran. It
// returns the number of committed compactions and the errors of the jobs
// that failed (a failed job's inputs are skipped for the rest of the round).
func (c *Compactor) CompactOnce(ctx context.Context) (int, error) {
	ctx = WithReason(ctx, ReasonCompaction)
	skip := map[string]bool{}
	var errs []error
	done := 0
	for range c.cfg.MaxJobsPerRound {
		if ctx.Err() != nil {
			return done, errors.Join(append(errs, ctx.Err())...)
		}
		j := c.plan(c.meta.Image(), skip)
		if j == nil {
			break
		}
		if err := c.execute(ctx, j); err != nil {
			c.failed.Add(1)
			errs = append(errs, err)
			for _, o := range j.inputs {
				skip[o.Key] = true
			}
			continue
		}
		done++
	}
	return done, errors.Join(errs...)
}

// jobKind says what a compaction does.
type jobKind int

const (
	jobSplit      jobKind = iota // move big streams out of SSOs
	jobMerge                     // merge small SSOs of one prefix
	jobSOMerge                   // merge adjacent small SOs of one stream
	jobKeyCompact                // latest record per key of a compacted stream (keycompact.go)
)

func (k jobKind) String() string {
	return [...]string{"split", "merge", "so-merge", "key-compact"}[k]
}

// job is one planned compaction.
type job struct {
	kind   jobKind
	inputs []*metadata.Object
	split  map[uint64]bool // streams to move into SOs (SSO jobs)
	im     *metadata.Image // the image the job was planned on
}

// liveRef is a live range of an object as its stream refers to it.
type liveRef struct {
	stream     uint64
	start, end int64
	size       int64 // bytes of the range in the object
}

// indexView is what planning needs from an image.
type indexView struct {
	im       *metadata.Image
	live     map[string][]liveRef // object key -> its live ranges
	ssoBytes map[uint64]int64     // stream -> live bytes in SSOs
}

func newIndexView(im *metadata.Image) *indexView {
	v := &indexView{im: im, live: map[string][]liveRef{}, ssoBytes: map[uint64]int64{}}
	for id, s := range im.Streams {
		for _, r := range s.Ranges {
			o := im.Objects[r.Key]
			if o == nil {
				continue
			}
			lr := liveRef{stream: id, start: r.StartOffset, end: r.EndOffset, size: rangeSize(o, id, r.StartOffset)}
			v.live[r.Key] = append(v.live[r.Key], lr)
			if o.Kind == metadata.KindStreamSet {
				v.ssoBytes[id] += lr.size
			}
		}
	}
	return v
}

// rangeSize is the byte size of o's range of stream starting at start.
func rangeSize(o *metadata.Object, stream uint64, start int64) int64 {
	i, ok := slices.BinarySearchFunc(o.Ranges, metadata.ObjectRange{Stream: stream, StartOffset: start},
		func(a, b metadata.ObjectRange) int {
			if c := cmp.Compare(a.Stream, b.Stream); c != 0 {
				return c
			}
			return cmp.Compare(a.StartOffset, b.StartOffset)
		})
	if !ok {
		return 0
	}
	return o.Ranges[i].Size
}

// keyPrefix is the part of a key before its last "/": the WAL group's
// prefix of an uploaded SSO ("sso/g0"), kept by compaction outputs.
func keyPrefix(key string) string {
	if i := strings.LastIndexByte(key, '/'); i > 0 {
		return key[:i]
	}
	return "sso"
}

// plan returns the next compaction to run on im, or nil. Splits come
// first, then SSO merges, then SO merges; objects in skip are left alone.
func (c *Compactor) plan(im *metadata.Image, skip map[string]bool) *job {
	v := newIndexView(im)
	split := map[uint64]bool{}
	for id, n := range v.ssoBytes {
		if n >= c.cfg.SplitBytes {
			split[id] = true
		}
	}
	addCompactedSplits(v, split) // compacted topics: data leaves SSOs at once (keycompact.go)
	if j := c.planSplit(v, split, skip); j != nil {
		return j
	}
	if j := c.planMerge(v, split, skip); j != nil {
		return j
	}
	if j := c.planKeyCompact(v, skip); j != nil { // compacted topics (keycompact.go)
		return j
	}
	return c.planSOMerge(v, skip)
}

// take adds objects in order while the count stays within MaxInputs and
// the bytes within limit (the first object is always taken).
func (c *Compactor) take(objs []*metadata.Object, limit int64) []*metadata.Object {
	var out []*metadata.Object
	total := int64(0)
	for _, o := range objs {
		if len(out) == c.cfg.MaxInputs || (len(out) > 0 && total+o.Size > limit) {
			break
		}
		out = append(out, o)
		total += o.Size
	}
	return out
}

// planSplit picks the stream with the most bytes in SSOs among those at or
// above SplitBytes and takes the SSOs holding it, in offset order.
func (c *Compactor) planSplit(v *indexView, split map[uint64]bool, skip map[string]bool) *job {
	ids := slices.SortedFunc(maps.Keys(split), func(a, b uint64) int {
		if c := cmp.Compare(v.ssoBytes[b], v.ssoBytes[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, id := range ids {
		var objs []*metadata.Object
		for _, r := range v.im.Streams[id].Ranges {
			o := v.im.Objects[r.Key]
			if o != nil && o.Kind == metadata.KindStreamSet && !skip[o.Key] && !slices.Contains(objs, o) {
				objs = append(objs, o)
			}
		}
		if len(objs) > 0 {
			return &job{kind: jobSplit, inputs: c.take(objs, c.cfg.TargetBytes), split: maps.Clone(split), im: v.im}
		}
	}
	return nil
}

// planMerge picks, per key prefix, the small SSOs oldest first, as many as
// fit TargetBytes; two or more make a job.
func (c *Compactor) planMerge(v *indexView, split map[uint64]bool, skip map[string]bool) *job {
	byPrefix := map[string][]*metadata.Object{}
	for _, o := range v.im.Objects {
		if o.Kind == metadata.KindStreamSet && o.Size < c.cfg.TargetBytes/2 && !skip[o.Key] {
			p := keyPrefix(o.Key)
			byPrefix[p] = append(byPrefix[p], o)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(byPrefix)) {
		objs := byPrefix[p]
		slices.SortFunc(objs, func(a, b *metadata.Object) int {
			return cmp.Or(cmp.Compare(a.CreatedMs, b.CreatedMs), cmp.Compare(a.Key, b.Key))
		})
		if in := c.take(objs, c.cfg.TargetBytes); len(in) >= 2 {
			return &job{kind: jobMerge, inputs: in, split: maps.Clone(split), im: v.im}
		}
	}
	return nil
}

// planSOMerge picks the first run of two or more adjacent small SOs of a
// stream that fits MaxStreamObject.
func (c *Compactor) planSOMerge(v *indexView, skip map[string]bool) *job {
	small := func(key string) *metadata.Object {
		o := v.im.Objects[key]
		if o == nil || o.Kind != metadata.KindStream || len(o.Ranges) != 1 || skip[key] ||
			o.Size >= c.cfg.MaxStreamObject/2 {
			return nil
		}
		return o
	}
	compacted := compactedStreams(v.im) // key compaction rewrites these (keycompact.go)
	for _, id := range slices.Sorted(maps.Keys(v.im.Streams)) {
		if compacted[id] != nil {
			continue
		}
		var run []*metadata.Object
		total := int64(0)
		for _, r := range v.im.Streams[id].Ranges {
			o := small(r.Key)
			if o != nil && (len(run) == 0 || total+o.Size <= c.cfg.MaxStreamObject) && len(run) < c.cfg.MaxInputs {
				run = append(run, o)
				total += o.Size
				continue
			}
			if len(run) >= 2 {
				break
			}
			run, total = nil, 0
			if o != nil {
				run, total = []*metadata.Object{o}, o.Size
			}
		}
		if len(run) >= 2 {
			return &job{kind: jobSOMerge, inputs: run, im: v.im}
		}
	}
	return nil
}

// execute runs one job: read inputs, write and PUT outputs, swap.
func (c *Compactor) execute(ctx context.Context, j *job) error {
	var outs []metadata.Object
	var err error
	switch j.kind {
	case jobSOMerge:
		outs, err = c.mergeStreamObjects(ctx, j)
	case jobKeyCompact:
		outs, err = c.compactKeys(ctx, j) // keycompact.go
	default:
		outs, err = c.rewriteStreamSets(ctx, j)
	}
	if err != nil {
		c.deleteOutputs(outs)
		return fmt.Errorf("s3stream: %s compaction of %d objects: %w", j.kind, len(j.inputs), err)
	}
	keys := make([]string, len(j.inputs))
	for i, o := range j.inputs {
		keys[i] = o.Key
	}
	err = c.meta.CompactObjects(ctx, keys, outs, time.Now().UnixMilli(), c.cfg.Grace.Milliseconds())
	if err != nil {
		if errors.Is(err, metadata.ErrUnknownObject) || errors.Is(err, metadata.ErrRangeConflict) ||
			errors.Is(err, metadata.ErrObjectExists) {
			c.deleteOutputs(outs) // definitely not committed; otherwise the orphan sweep decides
		}
		return fmt.Errorf("s3stream: %s compaction of %d objects: %w", j.kind, len(j.inputs), err)
	}
	c.compactions.Add(1)
	c.inputs.Add(int64(len(j.inputs)))
	c.outputs.Add(int64(len(outs)))
	c.cfg.Logger.Debug("compacted objects", "kind", j.kind.String(), "inputs", len(j.inputs), "outputs", len(outs))
	return nil
}

// deleteOutputs removes outputs that will never be committed.
func (c *Compactor) deleteOutputs(outs []metadata.Object) {
	ctx, cancel := context.WithTimeout(WithReason(context.Background(), ReasonCompaction), 10*time.Second)
	defer cancel()
	for _, o := range outs {
		if err := c.store.Delete(ctx, o.Key); err != nil {
			c.cfg.Logger.Warn("delete uncommitted compaction output; the orphan sweep will", "key", o.Key, "err", err)
		}
	}
}

// fetched is one input object read whole.
type fetched struct {
	data []byte
	ix   *ObjectIndex
}

// fetch GETs an object whole (one request) and decodes its index.
func (c *Compactor) fetch(ctx context.Context, o *metadata.Object) (*fetched, error) {
	data, err := c.store.Get(ctx, o.Key, 0, o.Size)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.Key, err)
	}
	c.read.Add(int64(len(data)))
	if int64(len(data)) != o.Size {
		return nil, fmt.Errorf("read %s: %d of %d bytes: %w", o.Key, len(data), o.Size, ErrCorruptObject)
	}
	f, err := DecodeFooter(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.Key, err)
	}
	if f.ObjectSize() != o.Size {
		return nil, fmt.Errorf("read %s: footer describes %d bytes, object has %d: %w", o.Key, f.ObjectSize(), o.Size, ErrCorruptObject)
	}
	ix, err := DecodeIndex(data[f.IndexPosition:f.IndexPosition+f.IndexSize], f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.Key, err)
	}
	return &fetched{data: data, ix: ix}, nil
}

// appendRange appends the batches of stream in [start, end) of the fetched
// object to w, leaving out batches that end below logStart.
func appendRange(w *ObjectWriter, f *fetched, stream uint64, start, end, logStart int64) error {
	return eachRangeBatch(f, stream, start, end, logStart, func(b []byte, _ protocol.BatchHeader) error {
		return w.Append(stream, b)
	})
}

// segment is a live range of one input.
type segment struct {
	in  int // index in job.inputs
	ref liveRef
}

// rewriteStreamSets runs a split or merge job: the split streams' runs go
// to one SO each, the other streams to new SSOs (one, unless a stream's
// ranges in the inputs have gaps). It returns the uploaded outputs, also on
// error (so the caller can remove them).
func (c *Compactor) rewriteStreamSets(ctx context.Context, j *job) ([]metadata.Object, error) {
	v := newIndexView(j.im)
	byStream := map[uint64][]segment{}
	var created int64 = -1
	in := make([]*fetched, len(j.inputs))
	for i, o := range j.inputs {
		f, err := c.fetch(ctx, o)
		if err != nil {
			return nil, err
		}
		in[i] = f
		for _, r := range v.live[o.Key] {
			byStream[r.stream] = append(byStream[r.stream], segment{in: i, ref: r})
		}
		if created < 0 || o.CreatedMs < created {
			created = o.CreatedMs
		}
	}
	var outs []metadata.Object
	var ssos []*ObjectWriter // ssos[k] takes every stream's k-th run
	prefix := keyPrefix(j.inputs[0].Key)
	for _, id := range slices.Sorted(maps.Keys(byStream)) {
		segs := byStream[id]
		slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.ref.start, b.ref.start) })
		logStart := j.im.Streams[id].StartOffset
		for k, run := range contiguousRuns(segs) {
			if j.split[id] {
				w := NewObjectWriter(c.cfg.BlockSize)
				if err := appendRun(w, in, run, id, logStart); err != nil {
					return outs, err
				}
				o, err := c.put(ctx, w, metadata.KindStream, fmt.Sprintf("so/%d/%d-%s", id, run[0].ref.start, randomHex()), created)
				if err != nil {
					return outs, err
				}
				outs = append(outs, o...)
				continue
			}
			for len(ssos) <= k {
				ssos = append(ssos, NewObjectWriter(c.cfg.BlockSize))
			}
			if err := appendRun(ssos[k], in, run, id, logStart); err != nil {
				return outs, err
			}
		}
	}
	in = nil // let the inputs go before the SSOs are finished
	for _, w := range ssos {
		key := fmt.Sprintf("%s/c%d-%s", prefix, time.Now().UnixMilli(), randomHex())
		o, err := c.put(ctx, w, metadata.KindStreamSet, key, created)
		if err != nil {
			return outs, err
		}
		outs = append(outs, o...)
	}
	return outs, nil
}

// contiguousRuns splits a stream's sorted segments where offsets jump.
func contiguousRuns(segs []segment) [][]segment {
	var runs [][]segment
	for i, s := range segs {
		if i == 0 || s.ref.start != segs[i-1].ref.end {
			runs = append(runs, nil)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], s)
	}
	return runs
}

func appendRun(w *ObjectWriter, in []*fetched, run []segment, stream uint64, logStart int64) error {
	for _, s := range run {
		if err := appendRange(w, in[s.in], stream, s.ref.start, s.ref.end, logStart); err != nil {
			return fmt.Errorf("stream %d [%d, %d): %w", stream, s.ref.start, s.ref.end, err)
		}
	}
	return nil
}

// mergeStreamObjects runs an SO merge: the inputs' ranges, in order, into
// one SO. Inputs are read one at a time.
func (c *Compactor) mergeStreamObjects(ctx context.Context, j *job) ([]metadata.Object, error) {
	stream := j.inputs[0].Ranges[0].Stream
	s := j.im.Streams[stream]
	w := NewObjectWriter(c.cfg.BlockSize)
	created := j.inputs[0].CreatedMs
	for _, o := range j.inputs {
		f, err := c.fetch(ctx, o)
		if err != nil {
			return nil, err
		}
		r := o.Ranges[0]
		if err := appendRange(w, f, stream, r.StartOffset, r.EndOffset, s.StartOffset); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Key, err)
		}
		created = min(created, o.CreatedMs)
	}
	start := max(j.inputs[0].Ranges[0].StartOffset, s.StartOffset)
	return c.put(ctx, w, metadata.KindStream, fmt.Sprintf("so/%d/%d-%s", stream, start, randomHex()), created)
}

// put finishes w and uploads it as key; a writer without batches gives no
// object.
func (c *Compactor) put(ctx context.Context, w *ObjectWriter, kind metadata.ObjectKind, key string, createdMs int64) ([]metadata.Object, error) {
	if w.Len() == 0 {
		return nil, nil
	}
	data, ix, err := w.Finish()
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", key, err)
	}
	o := metadata.Object{Key: key, Size: int64(len(data)), Kind: kind, CreatedMs: createdMs}
	for _, sr := range ix.Streams() {
		o.Ranges = append(o.Ranges, metadata.ObjectRange{
			Stream: sr.Stream, StartOffset: sr.StartOffset, EndOffset: sr.EndOffset, Position: sr.Position, Size: sr.Size,
		})
	}
	if err := c.store.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	c.written.Add(int64(len(data)))
	return []metadata.Object{o}, nil
}

// randomHex is 8 random bytes in hex: part of every new key, so that keys
// are never reused.
func randomHex() string {
	var r [8]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}
