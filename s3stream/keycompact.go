package s3stream

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
)

// Key compaction of compacted topics (cleanup.policy "compact" or
// "compact,delete"), run by the Compactor:
//
//   - A compacted stream's data leaves stream set objects at the first
//     compaction round (its streams join the split set whatever their
//     size), so that its history is a run of stream objects.
//   - Every committed range is cleanable: objects are immutable, and the
//     data still being written (Kafka's active segment, the dirty head)
//     is the WAL, which is never key-compacted. (Keeping the newest range
//     out instead would be fragile: merges of uploads can fold several
//     uploads into that range and leave them uncleaned.) A key compaction
//     rewrites the cleanable ranges into one stream object holding, per
//     key, only the record with the highest offset among them; records
//     without a key are dropped (as Kafka's cleaner does).
//   - A pass runs when the cleanable bytes not yet key-compacted are at
//     least min.cleanable.dirty.ratio of the cleanable bytes, or when a
//     kept tombstone fell due. Outputs are recognised by their key,
//     "so/<stream>/<start>-k<tombstone ms>-<hex>", where the number is the
//     earliest tombstone time of the object (empty: no tombstone).
//   - Tombstones (a key with a null value) are kept until
//     delete.retention.ms has passed since the tombstone's time, then the
//     next pass removes them. The tombstone's time is the larger of its
//     record timestamp and the CreatedMs of the object it is read from (the
//     upload time, or the earliest upload of a merged object): a producer
//     timestamp far in the past cannot make a tombstone vanish before
//     delete.retention.ms after its upload. (Kafka counts from the cleaning
//     that first saw the tombstone.)
//   - Offsets stay: kept records keep their offsets. Batches keep their
//     producer fields, timestamps and codec; a batch that loses records is
//     re-encoded with gaps in its offset deltas (as Kafka's cleaner leaves
//     them). A batch that loses every record disappears and the next kept
//     batch takes over its offsets (an earlier base offset, larger deltas:
//     base + delta of every record is unchanged); trailing empty batches
//     extend the last kept batch's last offset. So the output covers the
//     same offsets as the inputs, batch after batch without gaps, as the
//     object format requires. When nothing at all is kept, one empty batch
//     (no records, as Kafka keeps for producer state) covers the range.
//   - min.compaction.lag.ms and max.compaction.lag.ms are not applied.
//   - Producer state is the WAL's; key compaction does not touch it.

// maxKeyCompactDecompressed bounds the decompression of one stored batch.
const maxKeyCompactDecompressed = 256 << 20

// keyCompactedTag is in the last segment of every key-compaction output.
const keyCompactedTag = "-k"

// compactedStreams returns the streams of topics whose cleanup.policy
// includes compact, with their topic.
func compactedStreams(im *metadata.Image) map[uint64]*metadata.Topic {
	out := map[uint64]*metadata.Topic{}
	for _, t := range im.Topics {
		v, _ := t.EffectiveConfig("cleanup.policy")
		if !slices.ContainsFunc(strings.Split(v, ","), func(p string) bool { return strings.TrimSpace(p) == "compact" }) {
			continue
		}
		for _, p := range t.Partitions {
			out[p.Stream] = t
		}
	}
	return out
}

// addCompactedSplits puts every compacted stream with data in stream set
// objects into the split set.
func addCompactedSplits(v *indexView, split map[uint64]bool) {
	for id := range compactedStreams(v.im) {
		if v.ssoBytes[id] > 0 {
			split[id] = true
		}
	}
}

// keyCompactedTombstone parses a key-compaction output's key: compacted is
// false for other keys; tombstoneMs is -1 when the object holds no
// tombstone.
func keyCompactedTombstone(key string) (tombstoneMs int64, compacted bool) {
	last := key[strings.LastIndexByte(key, '/')+1:]
	i := strings.Index(last, keyCompactedTag)
	if i < 0 {
		return 0, false
	}
	rest := last[i+len(keyCompactedTag):]
	j := strings.IndexByte(rest, '-')
	if j < 0 {
		return 0, false
	}
	if j == 0 {
		return -1, true
	}
	ms, err := strconv.ParseInt(rest[:j], 10, 64)
	if err != nil {
		return 0, false
	}
	return ms, true
}

// topicLong reads a long config of t, or def when it does not parse.
func topicLong(t *metadata.Topic, name string, def int64) int64 {
	v, _ := t.EffectiveConfig(name)
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return def
	}
	return n
}

// planKeyCompact picks the first compacted stream (by id) whose cleanable
// ranges need a pass and takes them, oldest first, within MaxInputs and
// MaxStreamObject bytes (starting at the first range needing work when not
// all fit).
func (c *Compactor) planKeyCompact(v *indexView, skip map[string]bool) *job {
	now := time.Now().UnixMilli()
	compacted := compactedStreams(v.im)
	for _, id := range slices.Sorted(maps.Keys(compacted)) {
		t := compacted[id]
		s := v.im.Streams[id]
		if s == nil || len(s.Ranges) == 0 {
			continue
		}
		retention := topicLong(t, "delete.retention.ms", 86_400_000)
		ratioStr, _ := t.EffectiveConfig("min.cleanable.dirty.ratio")
		ratio, err := strconv.ParseFloat(strings.TrimSpace(ratioStr), 64)
		if err != nil {
			ratio = 0.5
		}
		var objs []*metadata.Object
		var needs []bool // the object is dirty or holds a due tombstone
		var dirty, total int64
		ok, anyDue := true, false
		for _, r := range s.Ranges {
			o := v.im.Objects[r.Key]
			if o == nil || o.Kind != metadata.KindStream || len(o.Ranges) != 1 || skip[o.Key] {
				ok = false // not split out yet, or failed this round
				break
			}
			tomb, done := keyCompactedTombstone(o.Key)
			due := done && tomb >= 0 && tomb <= now-retention
			if !done {
				dirty += o.Size
			}
			total += o.Size
			objs = append(objs, o)
			needs = append(needs, !done || due)
			anyDue = anyDue || due
		}
		if !ok || (dirty == 0 && !anyDue) || (!anyDue && float64(dirty) < ratio*float64(total)) {
			continue
		}
		if in := c.keyCompactWindow(objs, needs); len(in) > 0 {
			return &job{kind: jobKeyCompact, inputs: in, im: v.im}
		}
	}
	return nil
}

// keyCompactWindow takes all objs when they fit MaxInputs and
// MaxStreamObject, else a run from the first that needs work.
func (c *Compactor) keyCompactWindow(objs []*metadata.Object, needs []bool) []*metadata.Object {
	from := 0
	var total int64
	for _, o := range objs {
		total += o.Size
	}
	if len(objs) > c.cfg.MaxInputs || total > c.cfg.MaxStreamObject {
		from = slices.Index(needs, true)
	}
	var out []*metadata.Object
	total = 0
	for _, o := range objs[from:] {
		if len(out) == c.cfg.MaxInputs || (len(out) > 0 && total+o.Size > c.cfg.MaxStreamObject) {
			break
		}
		out = append(out, o)
		total += o.Size
	}
	// One clean object alone with nothing due would be rewritten as it is.
	if len(out) == 1 && !needs[from] {
		return nil
	}
	return out
}

// keyedBatch is one stored batch of a key compaction's input.
type keyedBatch struct {
	raw       []byte
	h         protocol.BatchHeader
	recs      []protocol.Record
	createdMs int64 // of the input object
}

// compactKeys runs a key compaction job: it reads the inputs (one stream's
// consecutive ranges), keeps the latest record per key and writes one
// stream object covering the same offsets. It returns the uploaded output,
// also on error.
func (c *Compactor) compactKeys(ctx context.Context, j *job) ([]metadata.Object, error) {
	stream := j.inputs[0].Ranges[0].Stream
	t := compactedStreams(j.im)[stream]
	s := j.im.Streams[stream]
	if t == nil || s == nil {
		return nil, fmt.Errorf("stream %d is no longer compacted", stream)
	}
	var batches []keyedBatch
	latest := map[string]int64{}
	created := j.inputs[0].CreatedMs
	for _, o := range j.inputs {
		f, err := c.fetch(ctx, o)
		if err != nil {
			return nil, err
		}
		created = min(created, o.CreatedMs)
		r := o.Ranges[0]
		err = eachRangeBatch(f, stream, r.StartOffset, r.EndOffset, s.StartOffset, func(b []byte, h protocol.BatchHeader) error {
			kb := keyedBatch{raw: b, h: h, createdMs: o.CreatedMs}
			if !h.IsControl() {
				recs, err := protocol.DecodeRecords(b, maxKeyCompactDecompressed)
				if err != nil {
					return fmt.Errorf("%s batch at offset %d: %v: %w", o.Key, h.BaseOffset, err, ErrCorruptObject)
				}
				kb.recs = recs
				for i := range recs {
					if recs[i].Key != nil {
						latest[string(recs[i].Key)] = h.BaseOffset + int64(recs[i].OffsetDelta)
					}
				}
			}
			batches = append(batches, kb)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(batches) == 0 {
		return nil, fmt.Errorf("stream %d: no batches in %d inputs: %w", stream, len(j.inputs), ErrCorruptObject)
	}
	kc := keyCleaner{
		stream:  stream,
		latest:  latest,
		horizon: time.Now().UnixMilli() - topicLong(t, "delete.retention.ms", 86_400_000),
		w:       NewObjectWriter(c.cfg.BlockSize),
		next:    batches[0].h.BaseOffset,
		tomb:    -1,
	}
	for i := range batches {
		if err := kc.add(&batches[i]); err != nil {
			return nil, err
		}
	}
	if err := kc.finish(&batches[len(batches)-1]); err != nil {
		return nil, err
	}
	tag := ""
	if kc.tomb >= 0 {
		tag = strconv.FormatInt(kc.tomb, 10)
	}
	key := fmt.Sprintf("so/%d/%d%s%s-%s", stream, batches[0].h.BaseOffset, keyCompactedTag, tag, randomHex())
	return c.put(ctx, kc.w, metadata.KindStream, key, created)
}

// eachRangeBatch calls fn for every batch of stream in [start, end) of the
// fetched object, leaving out batches that end below logStart.
func eachRangeBatch(f *fetched, stream uint64, start, end, logStart int64, fn func([]byte, protocol.BatchHeader) error) error {
	i, ok := f.ix.Find(stream, start)
	if !ok {
		return fmt.Errorf("stream %d offset %d not in the object's index: %w", stream, start, ErrCorruptObject)
	}
	for ; i < len(f.ix.Blocks); i++ {
		bi := f.ix.Blocks[i]
		if bi.Stream != stream || bi.StartOffset >= end {
			return nil
		}
		raw, err := DecodeBlock(f.data[bi.Position:bi.Position+bi.StoredSize], bi)
		if err != nil {
			return err
		}
		for pos := 0; pos < len(raw); {
			h, size, err := batchFrame(raw[pos:])
			if err != nil {
				return err
			}
			b := raw[pos : pos+size]
			pos += size
			if h.LastOffset() < logStart || h.LastOffset() < start || h.BaseOffset >= end {
				continue
			}
			if err := fn(b, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyCleaner writes the kept records of consecutive batches, holding back
// the last kept batch so that trailing empty batches can extend it.
type keyCleaner struct {
	stream  uint64
	latest  map[string]int64
	horizon int64 // tombstones with a time at or before it go
	w       *ObjectWriter
	next    int64 // the first offset not yet covered by a written batch
	held    *keyedBatch
	heldRec []protocol.Record
	heldAt  int64 // the base offset the held batch takes
	tomb    int64 // the earliest time of a kept tombstone, -1: none
}

// add filters one batch and holds it if anything is left.
func (k *keyCleaner) add(b *keyedBatch) error {
	kept := b.recs
	if !b.h.IsControl() {
		kept = nil
		for _, r := range b.recs {
			if r.Key == nil || k.latest[string(r.Key)] != b.h.BaseOffset+int64(r.OffsetDelta) {
				continue
			}
			if r.Value == nil {
				ts := max(protocol.RecordTimestamp(b.h, &r), b.createdMs)
				if ts <= k.horizon {
					continue
				}
				if k.tomb < 0 || ts < k.tomb {
					k.tomb = ts
				}
			}
			kept = append(kept, r)
		}
		if len(kept) == 0 {
			return nil
		}
	}
	if k.held != nil {
		if err := k.flush(k.held.h.LastOffset()); err != nil {
			return err
		}
	}
	k.held, k.heldRec, k.heldAt = b, kept, k.next
	return nil
}

// finish writes the held batch extended to the last batch's end, or one
// empty batch covering everything when nothing was kept.
func (k *keyCleaner) finish(last *keyedBatch) error {
	end := last.h.LastOffset()
	if k.held != nil {
		return k.flush(end)
	}
	h := last.h.WithCodec(protocol.CodecNone)
	h.BaseOffset, h.LastOffsetDelta = k.next, int32(end-k.next)
	return k.append(h, nil)
}

// flush writes the held batch covering [heldAt, lastOffset].
func (k *keyCleaner) flush(lastOffset int64) error {
	b, recs := k.held, k.heldRec
	k.held = nil
	if k.heldAt == b.h.BaseOffset && lastOffset == b.h.LastOffset() && len(recs) == len(b.recs) {
		k.next = lastOffset + 1
		return k.w.Append(k.stream, b.raw)
	}
	shift := b.h.BaseOffset - k.heldAt
	if lastOffset-k.heldAt > math.MaxInt32 {
		return fmt.Errorf("batch at %d would span %d offsets: %w", k.heldAt, lastOffset-k.heldAt+1, ErrInvalidBatch)
	}
	h := b.h
	h.BaseOffset, h.LastOffsetDelta = k.heldAt, int32(lastOffset-k.heldAt)
	out := make([]protocol.Record, len(recs))
	for i, r := range recs {
		r.OffsetDelta += int32(shift)
		out[i] = r
	}
	if h.BaseSequence >= 0 && shift > 0 {
		// Every record keeps its sequence (BaseSequence + OffsetDelta).
		seq := int64(h.BaseSequence) - shift
		for seq < 0 {
			seq += math.MaxInt32 + 1
		}
		h.BaseSequence = int32(seq)
	}
	if !h.LogAppendTime() && len(out) > 0 {
		h.MaxTimestamp = protocol.RecordTimestamp(h, &out[0])
		for i := range out {
			h.MaxTimestamp = max(h.MaxTimestamp, protocol.RecordTimestamp(h, &out[i]))
		}
	}
	return k.append(h, out)
}

// append encodes and writes one batch.
func (k *keyCleaner) append(h protocol.BatchHeader, recs []protocol.Record) error {
	b, err := protocol.AppendBatch(nil, h, recs)
	if err != nil {
		return fmt.Errorf("re-encode batch at %d: %w", h.BaseOffset, err)
	}
	k.next = h.LastOffset() + 1
	return k.w.Append(k.stream, b)
}
