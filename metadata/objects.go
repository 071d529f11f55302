package metadata

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// DefaultObjectGrace is how long an object that metadata no longer refers to
// stays in storage for in-flight readers, when the caller does not say.
const DefaultObjectGrace = 5 * time.Minute

// maxObjectKeyLen bounds an object key (S3 allows 1024 bytes).
const maxObjectKeyLen = 1024

// ObjectKind tells how an object was made. The values are part of the log
// format: never renumber them.
type ObjectKind uint8

// Object kinds.
const (
	// KindStreamSet is a stream set object (SSO): one upload of a WAL group,
	// with ranges of many streams.
	KindStreamSet ObjectKind = 1
	// KindStream is a stream object (SO): ranges of one stream, written by
	// compaction.
	KindStream ObjectKind = 2
)

// String names the kind.
func (k ObjectKind) String() string {
	switch k {
	case KindStreamSet:
		return "StreamSet"
	case KindStream:
		return "Stream"
	}
	return fmt.Sprintf("ObjectKind(%d)", uint8(k))
}

// ObjectRange is the part of an object that holds offsets [StartOffset,
// EndOffset) of one stream, at bytes [Position, Position+Size) of the object.
type ObjectRange struct {
	Stream      uint64 `json:"stream"`
	StartOffset int64  `json:"start_offset"`
	EndOffset   int64  `json:"end_offset"`
	Position    int64  `json:"position"`
	Size        int64  `json:"size"`
}

// Object is one object in object storage as it was committed. Its ranges are
// sorted by (Stream, StartOffset) and never change; which of them are still
// referenced is recorded in the streams' RangeRefs.
type Object struct {
	Key       string        `json:"key"`
	Size      int64         `json:"size"`
	Kind      ObjectKind    `json:"kind"`
	CreatedMs int64         `json:"created_ms"`
	Ranges    []ObjectRange `json:"ranges"`
}

// StreamObjects is one stream's committed history. Every stream of an
// existing topic has one (with no ranges before its first upload); it goes
// when the topic is deleted.
type StreamObjects struct {
	Stream uint64
	// StartOffset is the log start offset, advanced by retention and
	// DeleteRecords; offsets below it are gone even where a range still
	// covers them.
	StartOffset int64
	// EndOffset is the end of the committed ranges: the offset the next
	// committed range must start at. 0 when nothing was ever committed.
	EndOffset int64
	// Ranges are sorted and contiguous, covering [Ranges[0].StartOffset,
	// EndOffset); each ends above StartOffset.
	Ranges []RangeRef
}

// RangeRef is a committed range of a stream: offsets [StartOffset,
// EndOffset) are in the object Key (of ObjectSize bytes). It is exactly one
// of the object's ObjectRanges.
type RangeRef struct {
	StartOffset int64
	EndOffset   int64
	Key         string
	ObjectSize  int64
}

// PendingDelete is an object that metadata no longer refers to; it may be
// deleted from storage once the clock passes DeleteAfterMs (Unix ms).
type PendingDelete struct {
	Key           string `json:"key"`
	DeleteAfterMs int64  `json:"delete_after_ms"`
}

// StreamObjectsOf returns the committed history of a stream, or nil when no
// topic has that stream.
func (im *Image) StreamObjectsOf(stream uint64) *StreamObjects { return im.Streams[stream] }

// Locate returns the committed range that holds offset of stream. It is
// false when offset is below the stream's StartOffset, at or beyond its
// EndOffset, or the stream does not exist.
func (im *Image) Locate(stream uint64, offset int64) (RangeRef, bool) {
	s := im.Streams[stream]
	if s == nil {
		return RangeRef{}, false
	}
	return s.Locate(offset)
}

// Locate returns the range of s that holds offset (binary search); false
// when offset is below StartOffset or not covered by a range.
func (s *StreamObjects) Locate(offset int64) (RangeRef, bool) {
	if offset < s.StartOffset || offset >= s.EndOffset {
		return RangeRef{}, false
	}
	i := sort.Search(len(s.Ranges), func(i int) bool { return s.Ranges[i].EndOffset > offset })
	if i == len(s.Ranges) || s.Ranges[i].StartOffset > offset {
		return RangeRef{}, false
	}
	return s.Ranges[i], true
}

// DueDeletes returns the pending deletes whose grace has passed at nowMs, in
// the order they fell due.
func (im *Image) DueDeletes(nowMs int64) []PendingDelete {
	n := sort.Search(len(im.PendingDeletes), func(i int) bool { return im.PendingDeletes[i].DeleteAfterMs > nowMs })
	return slices.Clone(im.PendingDeletes[:n])
}

// accepts reports whether a new committed range may start at start: at
// EndOffset; anywhere from 0 when nothing was committed yet; and anywhere in
// [EndOffset, StartOffset] when the stream was trimmed past its committed end
// (the offsets in between are gone anyway).
func (s *StreamObjects) accepts(start int64) bool {
	switch {
	case s.EndOffset == 0:
		return start >= 0
	case start == s.EndOffset:
		return true
	}
	return s.StartOffset > s.EndOffset && start > s.EndOffset && start <= s.StartOffset
}

// hasRef reports whether s refers to key with a range starting at start.
func (s *StreamObjects) hasRef(start int64, key string) bool {
	i := sort.Search(len(s.Ranges), func(i int) bool { return s.Ranges[i].StartOffset >= start })
	return i < len(s.Ranges) && s.Ranges[i].StartOffset == start && s.Ranges[i].Key == key
}

// clone copies s with its own ranges slice, so that it can be changed for a
// new image.
func (s *StreamObjects) clone() *StreamObjects {
	c := *s
	c.Ranges = slices.Clone(s.Ranges)
	return &c
}

// ref is the RangeRef of one of o's ranges.
func (o *Object) ref(r ObjectRange) RangeRef {
	return RangeRef{StartOffset: r.StartOffset, EndOffset: r.EndOffset, Key: o.Key, ObjectSize: o.Size}
}

// sameContent reports whether a and b describe the same object (CreatedMs
// aside: a retried commit may carry a new timestamp).
func sameContent(a, b *Object) bool {
	return a.Key == b.Key && a.Size == b.Size && a.Kind == b.Kind && slices.Equal(a.Ranges, b.Ranges)
}

// cloneObject returns a copy of o that shares nothing with it.
func cloneObject(o Object) *Object {
	o.Ranges = slices.Clone(o.Ranges)
	return &o
}

// sortRanges puts ranges in the order objects keep them: by stream, then
// start offset.
func sortRanges(ranges []ObjectRange) {
	slices.SortStableFunc(ranges, func(a, b ObjectRange) int {
		if a.Stream != b.Stream {
			if a.Stream < b.Stream {
				return -1
			}
			return 1
		}
		switch {
		case a.StartOffset < b.StartOffset:
			return -1
		case a.StartOffset > b.StartOffset:
			return 1
		}
		return 0
	})
}

// checkObject verifies an object's own fields: a key, a known kind, ranges
// sorted by (stream, start) that do not overlap, each non-empty and inside
// the object's bytes; a stream object holds one stream only.
func checkObject(o *Object) error {
	switch {
	case o.Key == "" || len(o.Key) > maxObjectKeyLen:
		return fmt.Errorf("%w: object key of %d bytes", ErrInvalidRequest, len(o.Key))
	case o.Kind != KindStreamSet && o.Kind != KindStream:
		return fmt.Errorf("%w: object %s has kind %d", ErrInvalidRequest, o.Key, o.Kind)
	case o.Size < 0:
		return fmt.Errorf("%w: object %s has size %d", ErrInvalidRequest, o.Key, o.Size)
	case len(o.Ranges) == 0:
		return fmt.Errorf("%w: object %s has no ranges", ErrInvalidRequest, o.Key)
	}
	for i, r := range o.Ranges {
		switch {
		case r.Stream == 0:
			return fmt.Errorf("%w: object %s range %d has stream 0", ErrInvalidRequest, o.Key, i)
		case r.StartOffset < 0 || r.EndOffset <= r.StartOffset:
			return fmt.Errorf("%w: object %s stream %d range [%d, %d) is empty or negative",
				ErrRangeConflict, o.Key, r.Stream, r.StartOffset, r.EndOffset)
		case r.Position < 0 || r.Size < 0 || r.Position > o.Size || r.Size > o.Size-r.Position:
			return fmt.Errorf("%w: object %s stream %d bytes [%d, +%d) outside the object's %d bytes",
				ErrInvalidRequest, o.Key, r.Stream, r.Position, r.Size, o.Size)
		case o.Kind == KindStream && r.Stream != o.Ranges[0].Stream:
			return fmt.Errorf("%w: stream object %s holds streams %d and %d", ErrInvalidRequest, o.Key, o.Ranges[0].Stream, r.Stream)
		}
		if i == 0 {
			continue
		}
		p := o.Ranges[i-1]
		switch {
		case p.Stream > r.Stream || (p.Stream == r.Stream && p.StartOffset > r.StartOffset):
			return fmt.Errorf("%w: object %s ranges are not sorted by stream and offset", ErrInvalidRequest, o.Key)
		case p.Stream == r.Stream && r.StartOffset < p.EndOffset:
			return fmt.Errorf("%w: object %s stream %d ranges [%d, %d) and [%d, %d) overlap",
				ErrRangeConflict, o.Key, r.Stream, p.StartOffset, p.EndOffset, r.StartOffset, r.EndOffset)
		}
	}
	return nil
}

// checkTime verifies the clock values a command carries.
func checkTime(nowMs, graceMs int64) error {
	if nowMs < 0 || graceMs < 0 {
		return fmt.Errorf("%w: time %d ms, grace %d ms", ErrInvalidRequest, nowMs, graceMs)
	}
	return nil
}

// deleteAfter is nowMs + graceMs, saturated at the largest int64.
func deleteAfter(nowMs, graceMs int64) int64 {
	if nowMs > 1<<63-1-graceMs {
		return 1<<63 - 1
	}
	return nowMs + graceMs
}
