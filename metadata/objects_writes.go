package metadata

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// CommitObject records an uploaded object. Each stream's ranges must continue
// that stream's history: start exactly at its EndOffset (anywhere from 0 for
// a stream that never had a range committed: the WAL decides where history
// starts), be non-empty and contiguous, else ErrRangeConflict and nothing
// changes. The ranges may be given in any order; they are stored sorted by
// stream and offset. Committing the same key again with the same content is
// a no-op success (a retried commit), also once the object waits for
// deletion; with different content it is ErrObjectExists. Ranges of streams
// that no longer exist (topic deleted) are accepted and dropped; an object
// left with no live range goes straight to the pending deletes, due
// DefaultObjectGrace from now.
func (s *Store) CommitObject(ctx context.Context, obj Object) error {
	obj.Ranges = slices.Clone(obj.Ranges)
	sortRanges(obj.Ranges)
	c := CommitObjectCmd{Object: obj, NowMs: time.Now().UnixMilli(), GraceMs: DefaultObjectGrace.Milliseconds()}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("commit object %s: %w", obj.Key, err)
	}
	return nil
}

// CompactObjects atomically replaces the input objects by the output objects.
// For every stream, the outputs' ranges must cover exactly the offsets at or
// above the stream's StartOffset that the inputs' live ranges cover (outputs
// may leave out what lies below StartOffset), without overlap, else
// ErrRangeConflict. The inputs move to the pending deletes, due at nowMs +
// graceMs. An input that is not a live object is ErrUnknownObject (for
// example, someone else compacted it already); an output key that is known
// is ErrObjectExists. Repeating a compaction that was applied is a no-op
// success.
func (s *Store) CompactObjects(ctx context.Context, inputs []string, outputs []Object, nowMs, graceMs int64) error {
	c := CompactObjectsCmd{Inputs: slices.Clone(inputs), NowMs: nowMs, GraceMs: graceMs}
	for _, o := range outputs {
		o.Ranges = slices.Clone(o.Ranges)
		sortRanges(o.Ranges)
		c.Outputs = append(c.Outputs, o)
	}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("compact %d objects: %w", len(inputs), err)
	}
	return nil
}

// TrimStream advances a stream's StartOffset to newStart; it never moves
// backwards (a lower newStart is a no-op). newStart may lie beyond the
// stream's EndOffset: the WAL trims its own part. Ranges that end at or below
// newStart are removed; an object left with no live range goes to the
// pending deletes, due at nowMs + graceMs. A stream that does not exist is
// ErrUnknownTopic.
func (s *Store) TrimStream(ctx context.Context, stream uint64, newStart, nowMs, graceMs int64) error {
	c := TrimStreamCmd{Stream: stream, NewStart: newStart, NowMs: nowMs, GraceMs: graceMs}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("trim stream %d: %w", stream, err)
	}
	return nil
}

// ObjectsDeleted removes keys from the pending deletes after the caller
// deleted them from storage. Keys that are not pending are ignored.
func (s *Store) ObjectsDeleted(ctx context.Context, keys []string) error {
	c := ObjectsDeletedCmd{Keys: slices.Clone(keys)}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("objects deleted: %w", err)
	}
	return nil
}
