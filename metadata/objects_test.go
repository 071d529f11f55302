package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// objImage is an image with topic "a" (streams 1 and 2) and topic "b"
// (stream 3) and no objects.
func objImage(t *testing.T) *Image {
	t.Helper()
	im := emptyImage()
	im, _ = mustApply(t, im, CreateTopicCmd{Name: "a", ID: TopicID{1}, Partitions: 2, ReplicationFactor: 1, WALGroups: []uint32{0}}, 1)
	im, _ = mustApply(t, im, CreateTopicCmd{Name: "b", ID: TopicID{2}, Partitions: 1, ReplicationFactor: 1, WALGroups: []uint32{0}}, 2)
	return im
}

// rng is a range of stream; obj lays ranges out 100 bytes each.
func rng(stream uint64, start, end int64) ObjectRange {
	return ObjectRange{Stream: stream, StartOffset: start, EndOffset: end}
}

func obj(key string, kind ObjectKind, ranges ...ObjectRange) Object {
	o := Object{Key: key, Kind: kind, CreatedMs: 1, Size: int64(100 * len(ranges)), Ranges: slices.Clone(ranges)}
	for i := range o.Ranges {
		o.Ranges[i].Position, o.Ranges[i].Size = int64(100*i), 100
	}
	return o
}

func sso(key string, ranges ...ObjectRange) Object { return obj(key, KindStreamSet, ranges...) }
func so(key string, ranges ...ObjectRange) Object  { return obj(key, KindStream, ranges...) }

// applyCmd runs c through the log encoding and the FSM's apply, as a replica
// does, and checks the object index of the result.
func applyCmd(t *testing.T, im *Image, c Command) (*Image, error) {
	t.Helper()
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := DecodeCommand(b)
	if err != nil {
		return nil, err
	}
	next, resp := im.apply(dc, im.Index+1)
	if err, ok := resp.(error); ok {
		if next != nil {
			t.Fatalf("%s failed (%v) and still changed the image", c.Type(), err)
		}
		return nil, err
	}
	if next != nil {
		if err := next.checkObjectIndex(); err != nil {
			t.Fatalf("after %s: %v", c.Type(), err)
		}
	}
	return next, nil
}

// mustChange applies c and fails unless it succeeds and changes the image.
func mustChange(t *testing.T, im *Image, c Command) *Image {
	t.Helper()
	next, err := applyCmd(t, im, c)
	if err != nil || next == nil {
		t.Fatalf("%s %+v: %v, changed %v", c.Type(), c, err, next != nil)
	}
	return next
}

// mustRefuse applies c and fails unless it is refused with want.
func mustRefuse(t *testing.T, im *Image, c Command, want error) {
	t.Helper()
	if next, err := applyCmd(t, im, c); !errors.Is(err, want) || next != nil {
		t.Errorf("%s %+v: %v, want %v", c.Type(), c, err, want)
	}
}

// mustNoop applies c and fails unless it succeeds without a change.
func mustNoop(t *testing.T, im *Image, c Command) {
	t.Helper()
	if next, err := applyCmd(t, im, c); err != nil || next != nil {
		t.Errorf("%s %+v: %v, changed %v; want a no-op", c.Type(), c, err, next != nil)
	}
}

func commit(o Object) CommitObjectCmd { return CommitObjectCmd{Object: o, NowMs: 1000, GraceMs: 10} }

// keysOf lists the keys of a stream's ranges with their offsets.
func keysOf(im *Image, stream uint64) []string {
	var out []string
	for _, r := range im.StreamObjectsOf(stream).Ranges {
		out = append(out, fmt.Sprintf("%s[%d,%d)", r.Key, r.StartOffset, r.EndOffset))
	}
	return out
}

func pendingKeys(im *Image) []string {
	var out []string
	for _, p := range im.PendingDeletes {
		out = append(out, fmt.Sprintf("%s@%d", p.Key, p.DeleteAfterMs))
	}
	return out
}

func TestObjectCommitContiguous(t *testing.T) {
	im := objImage(t)
	if s := im.StreamObjectsOf(1); s == nil || s.EndOffset != 0 || len(s.Ranges) != 0 || im.StreamObjectsOf(99) != nil {
		t.Fatalf("fresh streams: %+v, unknown %+v", s, im.StreamObjectsOf(99))
	}
	im = mustChange(t, im, commit(sso("A", rng(1, 0, 10), rng(2, 5, 20)))) // first ranges start anywhere
	im = mustChange(t, im, commit(sso("B", rng(1, 10, 30))))
	im = mustChange(t, im, commit(sso("C", rng(1, 30, 35), rng(1, 35, 40), rng(2, 20, 25))))
	if got, want := keysOf(im, 1), []string{"A[0,10)", "B[10,30)", "C[30,35)", "C[35,40)"}; !slices.Equal(got, want) {
		t.Fatalf("stream 1 ranges %v, want %v", got, want)
	}
	if got, want := keysOf(im, 2), []string{"A[5,20)", "C[20,25)"}; !slices.Equal(got, want) {
		t.Fatalf("stream 2 ranges %v, want %v", got, want)
	}
	if s := im.StreamObjectsOf(1); s.EndOffset != 40 || s.StartOffset != 0 || im.StreamObjectsOf(3).EndOffset != 0 {
		t.Fatalf("end offsets %d, %d", s.EndOffset, im.StreamObjectsOf(3).EndOffset)
	}
	if len(im.Objects) != 3 || im.Objects["C"].Size != 300 || len(im.PendingDeletes) != 0 {
		t.Fatalf("objects %v, pending %v", slices.Sorted(func(y func(string) bool) {
			for k := range im.Objects {
				y(k)
			}
		}), im.PendingDeletes)
	}
	if ref, ok := im.Locate(2, 19); !ok || ref.Key != "A" || ref.ObjectSize != 200 {
		t.Fatalf("Locate(2, 19) = %+v, %v", ref, ok)
	}
}

func TestObjectCommitRejects(t *testing.T) {
	im := objImage(t)
	im = mustChange(t, im, commit(sso("A", rng(1, 0, 10), rng(2, 0, 10))))
	for name, o := range map[string]Object{
		"gap":                 sso("X", rng(1, 11, 20)),
		"overlap":             sso("X", rng(1, 5, 20)),
		"restart at 0":        sso("X", rng(1, 0, 20)),
		"second stream gap":   sso("X", rng(1, 10, 20), rng(2, 12, 20)),
		"gap inside object":   sso("X", rng(1, 10, 20), rng(1, 21, 30)),
		"overlap in object":   sso("X", rng(1, 10, 20), rng(1, 15, 30)),
		"empty range":         sso("X", rng(1, 10, 10)),
		"backwards range":     sso("X", rng(3, 10, 5)),
		"negative first":      sso("X", rng(3, -5, 5)),
		"conflict after good": sso("X", rng(1, 10, 20), rng(2, 9, 12), rng(3, 0, 5)),
	} {
		t.Run(name, func(t *testing.T) { mustRefuse(t, im, commit(o), ErrRangeConflict) })
	}
	for name, o := range map[string]Object{
		"no key":          sso("", rng(1, 10, 20)),
		"no ranges":       sso("X"),
		"stream 0":        sso("X", rng(0, 10, 20)),
		"bad kind":        obj("X", 7, rng(1, 10, 20)),
		"bytes outside":   {Key: "X", Kind: KindStreamSet, Size: 10, Ranges: []ObjectRange{{Stream: 1, StartOffset: 10, EndOffset: 20, Position: 5, Size: 6}}},
		"SO of 2 streams": so("X", rng(1, 10, 20), rng(2, 10, 20)),
		"unsorted":        {Key: "X", Kind: KindStreamSet, Ranges: []ObjectRange{rng(2, 10, 20), rng(1, 10, 20)}},
	} {
		t.Run(name, func(t *testing.T) { mustRefuse(t, im, commit(o), ErrInvalidRequest) })
	}

	// A retried commit is a no-op, even with a new timestamp; the same key
	// with other content is refused.
	retry := sso("A", rng(1, 0, 10), rng(2, 0, 10))
	retry.CreatedMs = 99
	mustNoop(t, im, commit(retry))
	mustRefuse(t, im, commit(sso("A", rng(1, 10, 20))), ErrObjectExists)
	other := sso("A", rng(1, 0, 10), rng(2, 0, 10))
	other.Size++
	mustRefuse(t, im, commit(other), ErrObjectExists)
}

func TestObjectLocateManyRanges(t *testing.T) {
	im := objImage(t)
	const n = 300
	var end int64
	for i := range n {
		size := int64(1 + i%7) // ranges of 1 to 7 offsets
		im = mustChange(t, im, commit(sso(fmt.Sprintf("o%03d", i), rng(1, end+100, end+100+size))))
		end += size
	}
	for off := range end {
		ref, ok := im.Locate(1, off+100)
		if !ok || ref.StartOffset > off+100 || ref.EndOffset <= off+100 {
			t.Fatalf("Locate(%d) = %+v, %v", off+100, ref, ok)
		}
		if want, _ := im.StreamObjectsOf(1).Locate(off + 100); want != ref {
			t.Fatalf("image and stream Locate differ at %d", off+100)
		}
	}
	for _, off := range []int64{-1, 0, 99, end + 100, end + 1000} {
		if ref, ok := im.Locate(1, off); ok {
			t.Errorf("Locate(%d) = %+v, want none", off, ref)
		}
	}
	if _, ok := im.Locate(2, 0); ok {
		t.Error("Locate on a stream without ranges found one")
	}
	if _, ok := im.Locate(42, 0); ok {
		t.Error("Locate on an unknown stream found one")
	}
	// Below the start offset nothing is found, even inside a live range.
	im = mustChange(t, im, TrimStreamCmd{Stream: 1, NewStart: 105, NowMs: 1, GraceMs: 1})
	if _, ok := im.Locate(1, 104); ok {
		t.Error("Locate below the start offset found a range")
	}
	if ref, ok := im.Locate(1, 105); !ok || ref.StartOffset > 105 {
		t.Errorf("Locate(105) = %+v, %v", ref, ok)
	}
}

func TestObjectCompaction(t *testing.T) {
	im := objImage(t)
	im = mustChange(t, im, commit(sso("A", rng(1, 0, 10), rng(2, 0, 5))))
	im = mustChange(t, im, commit(sso("B", rng(1, 10, 20), rng(2, 5, 8), rng(3, 0, 4))))
	im = mustChange(t, im, commit(sso("C", rng(1, 20, 30))))
	before := im

	// A and B become one SO per stream; C stays.
	c := CompactObjectsCmd{Inputs: []string{"A", "B"}, Outputs: []Object{
		so("S1", rng(1, 0, 20)), so("S2", rng(2, 0, 8)), so("S3", rng(3, 0, 4)),
	}, NowMs: 5000, GraceMs: 300}
	im = mustChange(t, im, c)
	if got, want := keysOf(im, 1), []string{"S1[0,20)", "C[20,30)"}; !slices.Equal(got, want) {
		t.Fatalf("stream 1 after compaction %v, want %v", got, want)
	}
	if got, want := pendingKeys(im), []string{"A@5300", "B@5300"}; !slices.Equal(got, want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	if im.Objects["A"] != nil || im.Objects["S2"] == nil || len(im.Objects) != 4 {
		t.Fatalf("objects after compaction: %d", len(im.Objects))
	}
	for _, tc := range []struct {
		stream uint64
		off    int64
		key    string
	}{{1, 0, "S1"}, {1, 19, "S1"}, {1, 20, "C"}, {2, 7, "S2"}, {3, 3, "S3"}} {
		if ref, ok := im.Locate(tc.stream, tc.off); !ok || ref.Key != tc.key {
			t.Errorf("Locate(%d, %d) = %+v, %v; want %s", tc.stream, tc.off, ref, ok, tc.key)
		}
	}
	if ref, _ := before.Locate(1, 0); ref.Key != "A" || before.Objects["A"] == nil || len(before.PendingDeletes) != 0 {
		t.Fatal("compaction changed the older image")
	}
	mustNoop(t, im, c) // a retried compaction

	// Cover mismatches (before the compaction above), unknown inputs and
	// known outputs (after it) are refused.
	for name, tc := range map[string]struct {
		im   *Image
		c    CompactObjectsCmd
		want error
	}{
		"misses a range": {before, CompactObjectsCmd{Inputs: []string{"A", "B"}, Outputs: []Object{
			so("X1", rng(1, 0, 20)), so("X2", rng(2, 0, 8))}}, ErrRangeConflict},
		"covers less": {before, CompactObjectsCmd{Inputs: []string{"A", "B"}, Outputs: []Object{
			so("X1", rng(1, 0, 19)), so("X2", rng(2, 0, 8)), so("X3", rng(3, 0, 4))}}, ErrRangeConflict},
		"covers more": {before, CompactObjectsCmd{Inputs: []string{"A", "B"}, Outputs: []Object{
			so("X1", rng(1, 0, 25)), so("X2", rng(2, 0, 8)), so("X3", rng(3, 0, 4))}}, ErrRangeConflict},
		"starts early": {before, CompactObjectsCmd{Inputs: []string{"C"}, Outputs: []Object{so("X1", rng(1, 19, 30))}}, ErrRangeConflict},
		"gap inside": {before, CompactObjectsCmd{Inputs: []string{"A", "B"}, Outputs: []Object{
			so("X1", rng(1, 0, 9), rng(1, 10, 20)), so("X2", rng(2, 0, 8)), so("X3", rng(3, 0, 4))}}, ErrRangeConflict},
		"foreign stream": {before, CompactObjectsCmd{Inputs: []string{"C"}, Outputs: []Object{
			sso("X1", rng(1, 20, 30), rng(3, 4, 5))}}, ErrRangeConflict},
		"no outputs":    {before, CompactObjectsCmd{Inputs: []string{"C"}}, ErrRangeConflict},
		"unknown input": {im, CompactObjectsCmd{Inputs: []string{"C", "nope"}, Outputs: []Object{so("X1", rng(1, 20, 30))}}, ErrUnknownObject},
		"compacted":     {im, CompactObjectsCmd{Inputs: []string{"A"}, Outputs: []Object{so("X1", rng(1, 0, 10))}}, ErrUnknownObject},
		"live output":   {im, CompactObjectsCmd{Inputs: []string{"C"}, Outputs: []Object{so("S1", rng(1, 20, 30))}}, ErrObjectExists},
		"output pending": {im, CompactObjectsCmd{Inputs: []string{"C"}, Outputs: []Object{so("A", rng(1, 20, 30))}},
			ErrObjectExists},
		"output is input": {im, CompactObjectsCmd{Inputs: []string{"C"}, Outputs: []Object{so("C", rng(1, 20, 30))}},
			ErrObjectExists},
	} {
		t.Run(name, func(t *testing.T) { mustRefuse(t, tc.im, tc.c, tc.want) })
	}

	// After a trim, outputs may start at the new start offset.
	im = mustChange(t, im, TrimStreamCmd{Stream: 1, NewStart: 25, NowMs: 6000, GraceMs: 1})
	if got := pendingKeys(im); !slices.Contains(got, "S1@6001") {
		t.Fatalf("trimmed S1 not pending: %v", got)
	}
	im = mustChange(t, im, CompactObjectsCmd{Inputs: []string{"C"}, Outputs: []Object{so("T1", rng(1, 25, 30))}, NowMs: 7000})
	if got := keysOf(im, 1); !slices.Equal(got, []string{"T1[25,30)"}) {
		t.Fatalf("stream 1 after late-start compaction %v", got)
	}
	if im.Objects["C"] != nil || !slices.Contains(pendingKeys(im), "C@7000") {
		t.Fatal("input C not released")
	}
}

func TestObjectTrimStream(t *testing.T) {
	im := objImage(t)
	im = mustChange(t, im, commit(sso("A", rng(1, 0, 10), rng(2, 0, 10)))) // shared by two streams
	im = mustChange(t, im, commit(sso("B", rng(1, 10, 20))))
	im = mustChange(t, im, commit(sso("C", rng(1, 20, 30), rng(2, 10, 20))))

	im = mustChange(t, im, TrimStreamCmd{Stream: 1, NewStart: 15, NowMs: 100, GraceMs: 50})
	if got := keysOf(im, 1); !slices.Equal(got, []string{"B[10,20)", "C[20,30)"}) {
		t.Fatalf("stream 1 after trim %v", got)
	}
	if im.Objects["A"] == nil || len(im.PendingDeletes) != 0 || im.StreamObjectsOf(1).StartOffset != 15 {
		t.Fatal("A is still live in stream 2 and must stay")
	}
	mustNoop(t, im, TrimStreamCmd{Stream: 1, NewStart: 15, NowMs: 100})
	mustNoop(t, im, TrimStreamCmd{Stream: 1, NewStart: 3, NowMs: 100}) // never backwards
	im = mustChange(t, im, TrimStreamCmd{Stream: 2, NewStart: 10, NowMs: 200, GraceMs: 50})
	if got, want := pendingKeys(im), []string{"A@250"}; im.Objects["A"] != nil || !slices.Equal(got, want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	im = mustChange(t, im, TrimStreamCmd{Stream: 1, NewStart: 20, NowMs: 100, GraceMs: 50})
	if got, want := pendingKeys(im), []string{"B@150", "A@250"}; !slices.Equal(got, want) {
		t.Fatalf("pending %v, want %v (sorted by due time)", got, want)
	}

	// Beyond the committed end: all ranges go, and the next commit may start
	// anywhere from the old end to the new start.
	im = mustChange(t, im, TrimStreamCmd{Stream: 1, NewStart: 50, NowMs: 300, GraceMs: 0})
	if s := im.StreamObjectsOf(1); len(s.Ranges) != 0 || s.EndOffset != 30 || s.StartOffset != 50 || im.Objects["C"] == nil {
		t.Fatalf("stream 1 after trim past end: %+v", s)
	}
	mustRefuse(t, im, commit(sso("D", rng(1, 29, 60))), ErrRangeConflict)
	mustRefuse(t, im, commit(sso("D", rng(1, 51, 60))), ErrRangeConflict)
	im = mustChange(t, im, commit(sso("D", rng(1, 40, 45)))) // dead on arrival
	if im.Objects["D"] != nil || !slices.Contains(pendingKeys(im), "D@1010") || im.StreamObjectsOf(1).EndOffset != 45 {
		t.Fatalf("dead-on-arrival object: pending %v, end %d", pendingKeys(im), im.StreamObjectsOf(1).EndOffset)
	}
	im = mustChange(t, im, commit(sso("E", rng(1, 45, 60))))
	if ref, ok := im.Locate(1, 50); !ok || ref.Key != "E" {
		t.Fatalf("Locate(1, 50) = %+v, %v", ref, ok)
	}
	mustRefuse(t, im, TrimStreamCmd{Stream: 99, NewStart: 1}, ErrUnknownTopic)
	mustRefuse(t, im, TrimStreamCmd{Stream: 1, NewStart: -1}, ErrInvalidRequest)
	mustRefuse(t, im, TrimStreamCmd{Stream: 1, NewStart: 70, GraceMs: -1}, ErrInvalidRequest)
}

func TestObjectsDeleted(t *testing.T) {
	im := objImage(t)
	im = mustChange(t, im, commit(sso("A", rng(1, 0, 10))))
	im = mustChange(t, im, commit(sso("B", rng(1, 10, 20))))
	im = mustChange(t, im, TrimStreamCmd{Stream: 1, NewStart: 20, NowMs: 10, GraceMs: 5})
	if got := im.DueDeletes(14); len(got) != 0 {
		t.Fatalf("due before the grace passed: %v", got)
	}
	if got := im.DueDeletes(15); len(got) != 2 {
		t.Fatalf("due after the grace: %v", got)
	}
	im = mustChange(t, im, ObjectsDeletedCmd{Keys: []string{"A", "nope"}})
	if got := pendingKeys(im); !slices.Equal(got, []string{"B@15"}) {
		t.Fatalf("pending %v", got)
	}
	mustNoop(t, im, ObjectsDeletedCmd{Keys: []string{"A"}})
	im = mustChange(t, im, ObjectsDeletedCmd{Keys: []string{"B"}})
	if im.PendingDeletes != nil {
		t.Fatalf("pending %v", im.PendingDeletes)
	}
	mustRefuse(t, im, ObjectsDeletedCmd{Keys: []string{""}}, ErrInvalidRequest)
}

func TestObjectDeleteTopicReleases(t *testing.T) {
	im := objImage(t)
	im = mustChange(t, im, commit(sso("A", rng(1, 0, 10), rng(2, 0, 10))))  // topic a only
	im = mustChange(t, im, commit(sso("B", rng(2, 10, 20), rng(3, 0, 10)))) // shared with topic b
	im = mustChange(t, im, DeleteTopicCmd{Name: "a", NowMs: 1000, GraceMs: 60})
	if im.StreamObjectsOf(1) != nil || im.StreamObjectsOf(2) != nil || len(im.Streams) != 1 {
		t.Fatalf("streams of the deleted topic remain: %d", len(im.Streams))
	}
	if got := pendingKeys(im); !slices.Equal(got, []string{"A@1060"}) || im.Objects["B"] == nil {
		t.Fatalf("pending %v, B live %v", got, im.Objects["B"] != nil)
	}
	// An upload that raced the delete: its ranges of the deleted streams are
	// dropped, and an object with nothing else goes straight to deletion.
	im = mustChange(t, im, commit(sso("C", rng(1, 10, 20), rng(3, 10, 20))))
	if got := keysOf(im, 3); !slices.Equal(got, []string{"B[0,10)", "C[10,20)"}) {
		t.Fatalf("stream 3 %v", got)
	}
	im = mustChange(t, im, commit(sso("D", rng(2, 20, 30))))
	if im.Objects["D"] != nil || !slices.Contains(pendingKeys(im), "D@1010") {
		t.Fatalf("dead object D: pending %v", pendingKeys(im))
	}
	mustNoop(t, im, commit(sso("D", rng(2, 20, 30)))) // its retry
	// A compaction that raced the delete drops the outputs' dead ranges.
	im = mustChange(t, im, CompactObjectsCmd{Inputs: []string{"B", "C"}, Outputs: []Object{
		sso("M", rng(2, 10, 20), rng(3, 0, 20))}, NowMs: 2000, GraceMs: 1})
	if got := keysOf(im, 3); !slices.Equal(got, []string{"M[0,20)"}) {
		t.Fatalf("stream 3 after compaction %v", got)
	}
	im = mustChange(t, im, DeleteTopicCmd{Name: "b", NowMs: 3000, GraceMs: 1})
	if len(im.Objects) != 0 || len(im.Streams) != 0 || len(im.PendingDeletes) != 5 {
		t.Fatalf("after deleting every topic: %d objects, %d streams, pending %v", len(im.Objects), len(im.Streams), pendingKeys(im))
	}
}

func TestObjectCopyOnWrite(t *testing.T) {
	im0 := objImage(t)
	im1 := mustChange(t, im0, commit(sso("A", rng(1, 0, 10))))
	im2 := mustChange(t, im1, commit(sso("B", rng(1, 10, 20))))
	im3 := mustChange(t, im2, TrimStreamCmd{Stream: 1, NewStart: 10, NowMs: 1})
	if len(im0.Objects) != 0 || len(im1.StreamObjectsOf(1).Ranges) != 1 || len(im2.StreamObjectsOf(1).Ranges) != 2 {
		t.Fatal("an older image changed")
	}
	if im1.Objects["A"] == nil || len(im2.PendingDeletes) != 0 || len(im3.PendingDeletes) != 1 {
		t.Fatal("trim changed an older image")
	}
	if im2.StreamObjectsOf(2) != im0.StreamObjectsOf(2) || im3.Objects["B"] != im2.Objects["B"] {
		t.Fatal("an unchanged stream or object was copied")
	}
}

func TestObjectSnapshot(t *testing.T) {
	im := objImage(t)
	im = mustChange(t, im, commit(sso("A", rng(1, 0, 10), rng(2, 0, 10))))
	im = mustChange(t, im, commit(sso("B", rng(1, 10, 20), rng(3, 5, 9))))
	im = mustChange(t, im, CompactObjectsCmd{Inputs: []string{"B"}, Outputs: []Object{so("S", rng(1, 10, 20)), so("T", rng(3, 5, 9))}, NowMs: 9})
	im = mustChange(t, im, TrimStreamCmd{Stream: 2, NewStart: 40, NowMs: 10, GraceMs: 3})
	im = mustChange(t, im, TrimStreamCmd{Stream: 1, NewStart: 4, NowMs: 10, GraceMs: 3})

	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, im); err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, im) {
		t.Fatalf("restored image differs:\n got %+v\nwant %+v", got, im)
	}

	// A version 1 snapshot (before the object index) restores with empty
	// stream histories.
	v1 := `{"version":1,"cluster_id":"c","brokers":[],"topics":[{"Name":"a","ID":"AQAAAAAAAAAAAAAAAAAAAA",` +
		`"Partitions":[{"Index":0,"Stream":1,"WALGroup":0,"LeaderEpoch":0}],"Configs":{},"ReplicationFactor":1}],` +
		`"next_stream_id":2,"next_producer_id":0,"index":3}`
	old, err := decodeSnapshot(strings.NewReader(v1))
	if err != nil {
		t.Fatal(err)
	}
	if s := old.StreamObjectsOf(1); s == nil || s.EndOffset != 0 || len(old.Objects) != 0 {
		t.Fatalf("v1 restore: stream %+v, %d objects", s, len(old.Objects))
	}

	// Snapshots that break the index are refused.
	refuseSnapshots(t, buf.Bytes(), map[string]func(d *snapshotData){
		"overlap": func(d *snapshotData) {
			d.Objects = append(d.Objects, &Object{Key: "Z", Kind: KindStream, Ranges: []ObjectRange{rng(1, 15, 25)}})
		},
		"dead object": func(d *snapshotData) {
			d.Objects = append(d.Objects, &Object{Key: "Z", Kind: KindStream, Ranges: []ObjectRange{rng(1, 0, 2)}})
		},
		"unknown stream": func(d *snapshotData) { d.Streams = append(d.Streams, streamOffsets{Stream: 77, EndOffset: 1}) },
		"wrong end":      func(d *snapshotData) { d.Streams[0].EndOffset = 25 },
		"live pending":   func(d *snapshotData) { d.PendingDeletes = append(d.PendingDeletes, PendingDelete{Key: "A"}) },
		"bad object":     func(d *snapshotData) { d.Objects[0].Kind = 0 },
	})
}

// BenchmarkApplyCommitObject measures one upload's commit (an SSO of 64
// streams) on an image of 4,096 streams and as many live objects: the cost of
// the copy-on-write maps dominates.
func BenchmarkApplyCommitObject(b *testing.B) {
	const streams, spread = 4096, 64
	im := emptyImage()
	next, resp := im.apply(CreateTopicCmd{Name: "t", ID: TopicID{1}, Partitions: streams, ReplicationFactor: 1, WALGroups: []uint32{0}}, 1)
	if _, failed := resp.(error); failed {
		b.Fatal(resp)
	}
	im = next
	// Build the base in place: one object per stream.
	for i := range streams {
		o := sso(fmt.Sprintf("base/%d", i), rng(uint64(i+1), 0, 10))
		im.appendRanges(&o)
		im.Objects[o.Key] = &o
	}
	end := int64(10)
	b.ResetTimer()
	for i := range b.N {
		ranges := make([]ObjectRange, spread)
		for j := range ranges {
			ranges[j] = rng(uint64(j*streams/spread+1), end, end+10)
		}
		next, resp := im.apply(CommitObjectCmd{Object: sso(fmt.Sprintf("o/%d", i), ranges...), NowMs: 1}, uint64(i+2))
		if _, failed := resp.(error); failed {
			b.Fatal(resp)
		}
		im, end = next, end+10
	}
}
