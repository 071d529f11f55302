package metadata

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// The object index keeps one invariant, checked by checkObjectIndex: an
// object is in Objects exactly while at least one of its ranges is referenced
// by its stream, and a range of a live object is referenced exactly when its
// stream exists and the range ends above the stream's StartOffset. Objects
// never change after their commit; an object that loses its last reference
// moves to PendingDeletes.

func (im *Image) applyCommitObject(c CommitObjectCmd, index uint64) (*Image, any) {
	o := &c.Object
	if old, ok := im.Objects[o.Key]; ok {
		if sameContent(old, o) {
			return nil, nil // a retried commit
		}
		return nil, fmt.Errorf("%w: %s with different content", ErrObjectExists, o.Key)
	}
	if im.isPending(o.Key) {
		return nil, nil // committed before and released since: a late retry
	}
	if err := im.checkAppend(o); err != nil {
		return nil, err
	}
	n := im.next(index)
	n.withStreams()
	obj := cloneObject(*o)
	if n.appendRanges(obj) {
		n.withObjects()
		n.Objects[obj.Key] = obj
	} else {
		n.addPending([]PendingDelete{{Key: obj.Key, DeleteAfterMs: deleteAfter(c.NowMs, c.GraceMs)}})
	}
	return n, nil
}

// checkAppend verifies that each stream's ranges in o continue that stream's
// history without gap or overlap. Ranges of streams that do not exist are
// not checked: they are dropped.
func (im *Image) checkAppend(o *Object) error {
	for i, r := range o.Ranges {
		s := im.Streams[r.Stream]
		if s == nil {
			continue
		}
		if i > 0 && o.Ranges[i-1].Stream == r.Stream {
			if prev := o.Ranges[i-1]; r.StartOffset != prev.EndOffset {
				return fmt.Errorf("%w: object %s stream %d has a gap between offsets %d and %d",
					ErrRangeConflict, o.Key, r.Stream, prev.EndOffset, r.StartOffset)
			}
			continue
		}
		if !s.accepts(r.StartOffset) {
			return fmt.Errorf("%w: object %s stream %d range starts at %d, the stream's committed end is %d",
				ErrRangeConflict, o.Key, r.Stream, r.StartOffset, s.EndOffset)
		}
	}
	return nil
}

// appendRanges adds the RangeRefs of o's ranges to their streams (n.Streams
// must be owned) and reports whether any of them is live. A range of a
// stream that does not exist, or that ends at or below its stream's
// StartOffset, is not referenced; it still advances EndOffset.
func (n *Image) appendRanges(o *Object) (live bool) {
	for i := 0; i < len(o.Ranges); {
		id := o.Ranges[i].Stream
		j := i + 1
		for j < len(o.Ranges) && o.Ranges[j].Stream == id {
			j++
		}
		if old := n.Streams[id]; old != nil {
			s := old.clone()
			for _, r := range o.Ranges[i:j] {
				if r.EndOffset > s.StartOffset {
					s.Ranges = append(s.Ranges, o.ref(r))
					live = true
				}
				s.EndOffset = r.EndOffset
			}
			n.Streams[id] = s
		}
		i = j
	}
	return live
}

func (im *Image) applyCompactObjects(c CompactObjectsCmd, index uint64) (*Image, any) {
	inputs := make(map[string]bool, len(c.Inputs))
	affected := map[uint64]bool{}
	for _, k := range c.Inputs {
		o := im.Objects[k]
		if o == nil {
			if im.compactionDone(c) {
				return nil, nil // a retried compaction
			}
			return nil, fmt.Errorf("%w: compaction input %s", ErrUnknownObject, k)
		}
		inputs[k] = true
		for _, r := range o.Ranges {
			affected[r.Stream] = true
		}
	}
	pending := im.pendingSet()
	outs := map[uint64][]RangeRef{}
	for i := range c.Outputs {
		o := &c.Outputs[i]
		if im.Objects[o.Key] != nil || pending[o.Key] {
			return nil, fmt.Errorf("%w: compaction output %s", ErrObjectExists, o.Key)
		}
		for _, r := range o.Ranges {
			outs[r.Stream] = append(outs[r.Stream], o.ref(r))
			affected[r.Stream] = true
		}
	}
	updated := map[uint64]*StreamObjects{}
	for _, id := range slices.Sorted(maps.Keys(affected)) {
		s := im.Streams[id]
		if s == nil {
			continue // deleted: the inputs' ranges are gone, the outputs' are dropped
		}
		merged, changed, err := s.replace(inputs, outs[id])
		if err != nil {
			return nil, err
		}
		if changed {
			updated[id] = &StreamObjects{Stream: id, StartOffset: s.StartOffset, EndOffset: s.EndOffset, Ranges: merged}
		}
	}

	n := im.next(index)
	n.withStreams()
	maps.Copy(n.Streams, updated)
	n.withObjects()
	due := deleteAfter(c.NowMs, c.GraceMs)
	added := make([]PendingDelete, 0, len(c.Inputs))
	for _, k := range c.Inputs {
		delete(n.Objects, k)
		added = append(added, PendingDelete{Key: k, DeleteAfterMs: due})
	}
	for i := range c.Outputs {
		o := cloneObject(c.Outputs[i])
		if n.objectLive(o) {
			n.Objects[o.Key] = o
		} else {
			added = append(added, PendingDelete{Key: o.Key, DeleteAfterMs: due})
		}
	}
	n.addPending(added)
	return n, nil
}

// replace returns s's ranges with the refs to inputs replaced by outs. The
// result must be contiguous and cover the same offsets at and above
// StartOffset as before; output refs that end at or below StartOffset are
// dropped. changed is false when s has neither input nor output refs.
func (s *StreamObjects) replace(inputs map[string]bool, outs []RangeRef) (merged []RangeRef, changed bool, err error) {
	merged = make([]RangeRef, 0, len(s.Ranges)+len(outs))
	removed := 0
	for _, r := range s.Ranges {
		if inputs[r.Key] {
			removed++
		} else {
			merged = append(merged, r)
		}
	}
	for _, r := range outs {
		if r.EndOffset > s.StartOffset {
			merged = append(merged, r)
		}
	}
	if removed == 0 && len(merged) == len(s.Ranges) {
		return nil, false, nil
	}
	slices.SortFunc(merged, func(a, b RangeRef) int { return cmp.Compare(a.StartOffset, b.StartOffset) })
	conflict := func(why string, args ...any) error {
		return fmt.Errorf("%w: compaction of stream %d: %s", ErrRangeConflict, s.Stream, fmt.Sprintf(why, args...))
	}
	for i := 1; i < len(merged); i++ {
		if a, b := merged[i-1], merged[i]; b.StartOffset != a.EndOffset {
			return nil, false, conflict("[%d, %d) of %s and [%d, %d) of %s leave a gap or overlap",
				a.StartOffset, a.EndOffset, a.Key, b.StartOffset, b.EndOffset, b.Key)
		}
	}
	if len(merged) == 0 || len(s.Ranges) == 0 {
		return nil, false, conflict("outputs hold %d live ranges where the stream had %d", len(merged), len(s.Ranges))
	}
	oldFirst, oldEnd := max(s.Ranges[0].StartOffset, s.StartOffset), s.Ranges[len(s.Ranges)-1].EndOffset
	newFirst, newEnd := max(merged[0].StartOffset, s.StartOffset), merged[len(merged)-1].EndOffset
	if oldFirst != newFirst || oldEnd != newEnd {
		return nil, false, conflict("outputs cover [%d, %d), the live ranges [%d, %d)", newFirst, newEnd, oldFirst, oldEnd)
	}
	return merged, true, nil
}

// compactionDone reports whether c was applied already: none of its inputs
// is live and every output is live with the same content.
func (im *Image) compactionDone(c CompactObjectsCmd) bool {
	if len(c.Outputs) == 0 {
		return false
	}
	for _, k := range c.Inputs {
		if im.Objects[k] != nil {
			return false
		}
	}
	for i := range c.Outputs {
		if o := im.Objects[c.Outputs[i].Key]; o == nil || !sameContent(o, &c.Outputs[i]) {
			return false
		}
	}
	return true
}

func (im *Image) applyTrimStream(c TrimStreamCmd, index uint64) (*Image, any) {
	s := im.Streams[c.Stream]
	if s == nil {
		return nil, fmt.Errorf("%w: stream %d", ErrUnknownTopic, c.Stream)
	}
	if c.NewStart <= s.StartOffset {
		return nil, nil // never backwards
	}
	cut := sort.Search(len(s.Ranges), func(i int) bool { return s.Ranges[i].EndOffset > c.NewStart })
	keys := make(map[string]bool, cut)
	for _, r := range s.Ranges[:cut] {
		keys[r.Key] = true
	}
	var rest []RangeRef // nil when empty, as a restored image has it
	if cut < len(s.Ranges) {
		// Refs are never changed in place, so the new version may share them.
		rest = slices.Clip(s.Ranges[cut:])
	}
	n := im.next(index)
	n.withStreams()
	n.Streams[c.Stream] = &StreamObjects{Stream: c.Stream, StartOffset: c.NewStart, EndOffset: s.EndOffset, Ranges: rest}
	n.release(keys, deleteAfter(c.NowMs, c.GraceMs))
	return n, nil
}

func (im *Image) applyObjectsDeleted(c ObjectsDeletedCmd, index uint64) (*Image, any) {
	drop := make(map[string]bool, len(c.Keys))
	for _, k := range c.Keys {
		drop[k] = true
	}
	kept := make([]PendingDelete, 0, len(im.PendingDeletes))
	for _, p := range im.PendingDeletes {
		if !drop[p.Key] {
			kept = append(kept, p)
		}
	}
	if len(kept) == len(im.PendingDeletes) {
		return nil, nil
	}
	if len(kept) == 0 {
		kept = nil // as a restored image has it
	}
	n := im.next(index)
	n.PendingDeletes = kept
	return n, nil
}

// dropStreams removes the histories of t's streams (n.Streams must not be
// shared with another image yet: it is copied here) and releases the objects
// left without a live range.
func (n *Image) dropStreams(t *Topic, due int64) {
	n.withStreams()
	keys := map[string]bool{}
	for _, p := range t.Partitions {
		if s := n.Streams[p.Stream]; s != nil {
			for _, r := range s.Ranges {
				keys[r.Key] = true
			}
			delete(n.Streams, p.Stream)
		}
	}
	n.release(keys, due)
}

// release moves the objects of keys that have no live range left from
// Objects to PendingDeletes, due at due. It copies the object map when it
// changes it.
func (n *Image) release(keys map[string]bool, due int64) {
	var added []PendingDelete
	for k := range keys {
		if o := n.Objects[k]; o != nil && !n.objectLive(o) {
			added = append(added, PendingDelete{Key: k, DeleteAfterMs: due})
		}
	}
	if len(added) == 0 {
		return
	}
	n.withObjects()
	for _, p := range added {
		delete(n.Objects, p.Key)
	}
	n.addPending(added)
}

// objectLive reports whether a stream still refers to one of o's ranges.
func (im *Image) objectLive(o *Object) bool {
	for _, r := range o.Ranges {
		if s := im.Streams[r.Stream]; s != nil && s.hasRef(r.StartOffset, o.Key) {
			return true
		}
	}
	return false
}

// addPending gives n a new PendingDeletes with added merged in order.
func (n *Image) addPending(added []PendingDelete) {
	if len(added) == 0 {
		return
	}
	p := make([]PendingDelete, 0, len(n.PendingDeletes)+len(added))
	p = append(append(p, n.PendingDeletes...), added...)
	slices.SortFunc(p, comparePending)
	n.PendingDeletes = p
}

func comparePending(a, b PendingDelete) int {
	if c := cmp.Compare(a.DeleteAfterMs, b.DeleteAfterMs); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

// isPending reports whether key waits for deletion.
func (im *Image) isPending(key string) bool {
	return slices.ContainsFunc(im.PendingDeletes, func(p PendingDelete) bool { return p.Key == key })
}

// pendingSet returns the keys waiting for deletion.
func (im *Image) pendingSet() map[string]bool {
	m := make(map[string]bool, len(im.PendingDeletes))
	for _, p := range im.PendingDeletes {
		m[p.Key] = true
	}
	return m
}

// checkObjectIndex verifies the object index's invariants (see the top of
// this file); restore and tests use it.
func (im *Image) checkObjectIndex() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: object index: %s", ErrInvalidCommand, fmt.Sprintf(format, args...))
	}
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			if im.Streams[p.Stream] == nil {
				return bad("stream %d of topic %s has no history", p.Stream, t.Name)
			}
		}
	}
	refs := 0
	for id, s := range im.Streams {
		if s == nil || s.Stream != id || s.StartOffset < 0 || s.EndOffset < 0 {
			return bad("stream %d is malformed", id)
		}
		for i, r := range s.Ranges {
			o := im.Objects[r.Key]
			switch {
			case i > 0 && r.StartOffset != s.Ranges[i-1].EndOffset:
				return bad("stream %d ranges are not contiguous at %d", id, r.StartOffset)
			case r.EndOffset <= s.StartOffset:
				return bad("stream %d keeps range [%d, %d) below its start %d", id, r.StartOffset, r.EndOffset, s.StartOffset)
			case o == nil || o.Size != r.ObjectSize:
				return bad("stream %d refers to unknown object %s", id, r.Key)
			case !slices.ContainsFunc(o.Ranges, func(or ObjectRange) bool {
				return or.Stream == id && or.StartOffset == r.StartOffset && or.EndOffset == r.EndOffset
			}):
				return bad("stream %d range [%d, %d) is not in object %s", id, r.StartOffset, r.EndOffset, r.Key)
			}
		}
		if len(s.Ranges) > 0 && s.Ranges[len(s.Ranges)-1].EndOffset != s.EndOffset {
			return bad("stream %d ranges end before its end offset %d", id, s.EndOffset)
		}
		refs += len(s.Ranges)
	}
	want := 0
	for k, o := range im.Objects {
		if o == nil || o.Key != k {
			return bad("object %s is malformed", k)
		}
		for _, r := range o.Ranges {
			if s := im.Streams[r.Stream]; s != nil && r.EndOffset > s.StartOffset {
				want++
			}
		}
		if !im.objectLive(o) {
			return bad("object %s has no live range", k)
		}
	}
	if refs != want {
		return bad("%d range refs for %d live object ranges", refs, want)
	}
	if len(im.pendingSet()) != len(im.PendingDeletes) {
		return bad("a pending delete is repeated")
	}
	for i, p := range im.PendingDeletes {
		if im.Objects[p.Key] != nil || (i > 0 && comparePending(im.PendingDeletes[i-1], p) >= 0) {
			return bad("pending delete %s is live or out of order", p.Key)
		}
	}
	return nil
}
