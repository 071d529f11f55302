package s3stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-io/shoal/metadata"
)

// RetentionMetadata is the metadata retention reads topic configs and
// stream histories from and trims streams in (a *metadata.Store).
type RetentionMetadata interface {
	Image() *metadata.Image
	IsLeader() bool
	TrimStream(ctx context.Context, stream uint64, newStart, nowMs, graceMs int64) error
}

// RetentionConfig configures retention. Zero fields take the defaults.
type RetentionConfig struct {
	// Interval is how often retention is checked (default 5 min, Kafka's
	// log.retention.check.interval.ms).
	Interval time.Duration
	// Grace is how long objects that fall out of retention stay in storage
	// for in-flight readers (default metadata.DefaultObjectGrace).
	Grace time.Duration
	// Logger receives warnings and debug lines (default slog.Default()).
	Logger *slog.Logger
}

func (c *RetentionConfig) applyDefaults() {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Minute
	}
	if c.Grace <= 0 {
		c.Grace = metadata.DefaultObjectGrace
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Retention applies the topics' retention.ms and retention.bytes to their
// committed objects: it advances a partition's log start offset (its
// stream's StartOffset in metadata) to the end of the last whole committed
// range that falls out of retention, which releases the objects left
// without live ranges to the pending deletes. Data still in the WAL is
// never affected, and ranges are never cut in the middle.
//
//   - retention.ms: ranges are deleted oldest first while the largest
//     record timestamp of the range (from the object's index) is older than
//     now - retention.ms.
//   - retention.bytes: ranges are deleted oldest first while the committed
//     ranges left would still sum to at least retention.bytes, as Kafka
//     deletes segments (-1: unlimited). Data still in the WAL is not
//     counted: it is newer than every object and never deleted.
//
// Only topics whose cleanup.policy includes "delete" are trimmed. Index
// reads are counted under ReasonGC; range timestamps are cached per object.
// Only the metadata leader applies retention.
type Retention struct {
	store ObjectStore
	meta  RetentionMetadata
	cfg   RetentionConfig

	mu struct {
		sync.Mutex
		ranges map[string][]StreamRange // object key -> its streams' ranges (timestamps)
	}
}

// NewRetention returns a Retention; Run drives it.
func NewRetention(store ObjectStore, meta RetentionMetadata, cfg RetentionConfig) *Retention {
	cfg.applyDefaults()
	r := &Retention{store: store, meta: meta, cfg: cfg}
	r.mu.ranges = map[string][]StreamRange{}
	return r
}

// Run applies retention every Interval while this node leads the metadata
// group, until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	runEvery(ctx, r.cfg.Interval, 0, func() {
		if !r.meta.IsLeader() {
			return
		}
		if _, err := r.EnforceOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("retention check failed", "err", err)
		}
	})
}

// topicRetention is a topic's effective retention settings; -1 is unlimited.
type topicRetention struct {
	ms, bytes int64
}

// retentionOf reads a topic's retention configs; ok is false when the
// topic keeps everything (unlimited, or cleanup.policy without delete).
func retentionOf(t *metadata.Topic) (topicRetention, bool) {
	policy, _ := t.EffectiveConfig("cleanup.policy")
	if !slices.ContainsFunc(strings.Split(policy, ","), func(p string) bool { return strings.TrimSpace(p) == "delete" }) {
		return topicRetention{}, false
	}
	parse := func(name string) int64 {
		v, _ := t.EffectiveConfig(name)
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	tr := topicRetention{ms: parse("retention.ms"), bytes: parse("retention.bytes")}
	return tr, tr.ms >= 0 || tr.bytes >= 0
}

// EnforceOnce checks every partition once at time now and trims the streams
// that have ranges out of retention. It returns how many streams it
// trimmed; errors of single streams are joined, the others still run.
func (r *Retention) EnforceOnce(ctx context.Context, now time.Time) (int, error) {
	ctx = WithReason(ctx, ReasonGC)
	im := r.meta.Image()
	r.forgetDead(im)
	trimmed := 0
	var errs []error
	for _, name := range im.SortedTopicNames() {
		t := im.Topics[name]
		tr, ok := retentionOf(t)
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			s := im.StreamObjectsOf(p.Stream)
			if s == nil || len(s.Ranges) == 0 {
				continue
			}
			newStart, err := r.newStart(ctx, im, s, tr, now.UnixMilli())
			if err != nil {
				errs = append(errs, fmt.Errorf("retention of %s-%d: %w", name, p.Index, err))
			}
			if newStart <= s.StartOffset {
				continue
			}
			if err := r.meta.TrimStream(ctx, p.Stream, newStart, now.UnixMilli(), r.cfg.Grace.Milliseconds()); err != nil {
				if ctx.Err() != nil {
					return trimmed, err
				}
				errs = append(errs, fmt.Errorf("retention of %s-%d: %w", name, p.Index, err))
				continue
			}
			r.cfg.Logger.Debug("retention advanced log start", "topic", name, "partition", p.Index, "start", newStart)
			trimmed++
		}
	}
	return trimmed, errors.Join(errs...)
}

// newStart returns the offset the stream's log start should move to: the
// end of the last range, oldest first, that retention deletes (or the
// current start when none). It stops at the first range whose timestamps
// cannot be read, returning what it found before it with the error.
func (r *Retention) newStart(ctx context.Context, im *metadata.Image, s *metadata.StreamObjects, tr topicRetention, nowMs int64) (int64, error) {
	start := s.StartOffset
	if tr.bytes >= 0 {
		total := int64(0)
		sizes := make([]int64, len(s.Ranges))
		for i, rg := range s.Ranges {
			if o := im.Objects[rg.Key]; o != nil {
				sizes[i] = rangeSize(o, s.Stream, rg.StartOffset)
			}
			total += sizes[i]
		}
		// Kafka's rule: the oldest range goes only while what is left
		// still holds at least retention.bytes.
		for i, rg := range s.Ranges {
			if total-sizes[i] < tr.bytes {
				break
			}
			total -= sizes[i]
			start = max(start, rg.EndOffset)
		}
	}
	if tr.ms >= 0 {
		cutoff := nowMs - tr.ms
		for _, rg := range s.Ranges {
			if rg.EndOffset <= start {
				continue // already deleted by size
			}
			maxTs, err := r.maxTimestamp(ctx, rg, s.Stream)
			if err != nil {
				return start, err
			}
			if maxTs >= cutoff {
				break
			}
			start = rg.EndOffset
		}
	}
	return start, nil
}

// maxTimestamp returns the largest record timestamp of the stream's range
// in rg's object, from the object's index (cached per key).
func (r *Retention) maxTimestamp(ctx context.Context, rg metadata.RangeRef, stream uint64) (int64, error) {
	r.mu.Lock()
	ranges, ok := r.mu.ranges[rg.Key]
	r.mu.Unlock()
	if !ok {
		ix, err := ReadObjectIndex(ctx, r.store, rg.Key, rg.ObjectSize)
		if err != nil {
			return 0, err
		}
		ranges = ix.Streams()
		r.mu.Lock()
		r.mu.ranges[rg.Key] = ranges
		r.mu.Unlock()
	}
	i, found := slices.BinarySearchFunc(ranges, stream, func(sr StreamRange, s uint64) int { return cmp.Compare(sr.Stream, s) })
	if !found {
		return 0, fmt.Errorf("object %s has no range of stream %d: %w", rg.Key, stream, ErrCorruptObject)
	}
	return ranges[i].MaxTimestamp, nil
}

// forgetDead drops cached timestamps of objects that are no longer live.
func (r *Retention) forgetDead(im *metadata.Image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.mu.ranges {
		if im.Objects[k] == nil {
			delete(r.mu.ranges, k)
		}
	}
}
