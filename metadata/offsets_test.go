package metadata

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
)

// offsetImage has topics "a" (2 partitions) and "b" (1 partition).
func offsetImage(t *testing.T) *Image {
	t.Helper()
	im := emptyImage()
	im = mustChange(t, im, CreateTopicCmd{Name: "a", ID: TopicID{1}, Partitions: 2, ReplicationFactor: 1, WALGroups: []uint32{0}})
	return mustChange(t, im, CreateTopicCmd{Name: "b", ID: TopicID{2}, Partitions: 1, ReplicationFactor: 1, WALGroups: []uint32{0}})
}

func oc(topic string, partition int32, offset int64) OffsetCommit {
	return OffsetCommit{TopicPartition{topic, partition}, CommittedOffset{Offset: offset, LeaderEpoch: -1, CommitMs: 1000}}
}

func commitOffsets(group string, offsets ...OffsetCommit) CommitOffsetsCmd {
	return CommitOffsetsCmd{Group: group, Offsets: offsets}
}

// offsetsOf lists a group's offsets as "topic-partition=offset" by partition.
func offsetsOf(im *Image, group string) map[TopicPartition]int64 {
	out := map[TopicPartition]int64{}
	for tp, o := range im.GroupOffsets(group) {
		out[tp] = o.Offset
	}
	return out
}

func TestOffsetCommitFetchOverwrite(t *testing.T) {
	im0 := offsetImage(t)
	if im0.GroupOffsets("g") != nil || len(im0.GroupNames()) != 0 {
		t.Fatal("fresh image has offsets")
	}
	full := OffsetCommit{TopicPartition{"a", 1}, CommittedOffset{Offset: 5, LeaderEpoch: 3, Metadata: "meta", CommitMs: 1234, ExpireMs: 9999}}
	im1 := mustChange(t, im0, commitOffsets("g", oc("a", 0, 10), full))
	if got := im1.GroupOffsets("g")[full.TopicPartition]; got != full.CommittedOffset {
		t.Fatalf("committed %+v, read back %+v", full.CommittedOffset, got)
	}
	im2 := mustChange(t, im1, commitOffsets("g", oc("a", 0, 20), oc("b", 0, 1)))
	im3 := mustChange(t, im2, commitOffsets("h", oc("a", 0, 99)))
	want := map[TopicPartition]int64{{"a", 0}: 20, {"a", 1}: 5, {"b", 0}: 1}
	if got := offsetsOf(im3, "g"); !maps.Equal(got, want) {
		t.Fatalf("group g: %v, want %v", got, want)
	}
	if got := im3.GroupNames(); !reflect.DeepEqual(got, []string{"g", "h"}) {
		t.Fatalf("GroupNames = %v", got)
	}
	// Copy-on-write: older images keep their offsets; a commit of one group
	// leaves the other group's map shared.
	if offsetsOf(im1, "g")[TopicPartition{"a", 0}] != 10 || im0.GroupOffsets("g") != nil || im2.GroupOffsets("h") != nil {
		t.Fatal("an older image changed")
	}
	im4 := mustChange(t, im3, commitOffsets("h", oc("b", 0, 1)))
	if reflect.ValueOf(im4.GroupOffsets("g")).Pointer() != reflect.ValueOf(im3.GroupOffsets("g")).Pointer() {
		t.Error("a commit of group h copied group g's offsets")
	}
	if im4.Topics["a"] != im3.Topics["a"] || im4.Index != im3.Index+1 {
		t.Error("a commit copied a topic or did not advance the index")
	}
}

func TestOffsetCommitAllOrNothing(t *testing.T) {
	im := mustChange(t, offsetImage(t), commitOffsets("g", oc("a", 0, 10)))
	mustRefuse(t, im, commitOffsets("g", oc("a", 0, 11), oc("nope", 0, 1)), ErrUnknownTopic)
	mustRefuse(t, im, commitOffsets("g", oc("a", 0, 11), oc("a", 2, 1)), ErrUnknownTopic)
	for name, c := range map[string]CommitOffsetsCmd{
		"empty group":   commitOffsets("", oc("a", 0, 1)),
		"no offsets":    commitOffsets("g"),
		"twice":         commitOffsets("g", oc("a", 0, 1), oc("a", 0, 2)),
		"negative part": commitOffsets("g", oc("a", -1, 1)),
		"empty topic":   commitOffsets("g", oc("", 0, 1)),
	} {
		if err := c.check(); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: check = %v, want ErrInvalidRequest", name, err)
		}
	}
	if got := offsetsOf(im, "g")[TopicPartition{"a", 0}]; got != 10 {
		t.Fatalf("offset after refused commits: %d", got)
	}
}

func TestOffsetDelete(t *testing.T) {
	im := mustChange(t, offsetImage(t), commitOffsets("g", oc("a", 0, 1), oc("a", 1, 2), oc("b", 0, 3)))
	im = mustChange(t, im, commitOffsets("h", oc("b", 0, 4)))
	byParts := mustChange(t, im, DeleteGroupOffsetsCmd{Group: "g", Partitions: []TopicPartition{{"a", 1}, {"b", 0}, {"zz", 0}}})
	if got := offsetsOf(byParts, "g"); !maps.Equal(got, map[TopicPartition]int64{{"a", 0}: 1}) {
		t.Fatalf("after deleting two partitions: %v", got)
	}
	mustNoop(t, byParts, DeleteGroupOffsetsCmd{Group: "g", Partitions: []TopicPartition{{"a", 1}}})
	all := mustChange(t, byParts, DeleteGroupOffsetsCmd{Group: "g", All: true})
	if all.GroupOffsets("g") != nil || !reflect.DeepEqual(all.GroupNames(), []string{"h"}) {
		t.Fatalf("after deleting all: %v, groups %v", all.GroupOffsets("g"), all.GroupNames())
	}
	mustNoop(t, all, DeleteGroupOffsetsCmd{Group: "g", All: true})
	mustNoop(t, all, DeleteGroupOffsetsCmd{Group: "nobody", All: true})
	for _, bad := range []DeleteGroupOffsetsCmd{{Group: "g"}, {Group: "g", All: true, Partitions: []TopicPartition{{"a", 0}}}, {All: true}} {
		if err := bad.check(); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: check = %v", bad, err)
		}
	}
}

func TestOffsetTopicDeletionDropsOffsets(t *testing.T) {
	im := mustChange(t, offsetImage(t), commitOffsets("g", oc("a", 0, 1), oc("a", 1, 2), oc("b", 0, 3)))
	im = mustChange(t, im, commitOffsets("only-a", oc("a", 0, 4)))
	im = mustChange(t, im, commitOffsets("only-b", oc("b", 0, 5)))
	before := im
	im = mustChange(t, im, DeleteTopicCmd{Name: "a"})
	if got := offsetsOf(im, "g"); !maps.Equal(got, map[TopicPartition]int64{{"b", 0}: 3}) {
		t.Fatalf("group g after deleting a: %v", got)
	}
	if !reflect.DeepEqual(im.GroupNames(), []string{"g", "only-b"}) {
		t.Fatalf("groups after deleting a: %v", im.GroupNames())
	}
	if reflect.ValueOf(im.GroupOffsets("only-b")).Pointer() != reflect.ValueOf(before.GroupOffsets("only-b")).Pointer() {
		t.Error("a group without offsets of the deleted topic was copied")
	}
	if len(before.GroupOffsets("g")) != 3 {
		t.Error("the older image lost offsets")
	}
	// A recreated topic starts without offsets.
	im = mustChange(t, im, CreateTopicCmd{Name: "a", ID: TopicID{3}, Partitions: 2, ReplicationFactor: 1, WALGroups: []uint32{0}})
	if _, ok := im.GroupOffsets("g")[TopicPartition{"a", 0}]; ok {
		t.Fatal("recreated topic has the old offsets")
	}
}

func TestOffsetExpire(t *testing.T) {
	im := offsetImage(t)
	im = mustChange(t, im, commitOffsets("g",
		OffsetCommit{TopicPartition{"a", 0}, CommittedOffset{Offset: 1, CommitMs: 1000}},                 // retention: due at 1000+r
		OffsetCommit{TopicPartition{"a", 1}, CommittedOffset{Offset: 2, CommitMs: 5000}},                 // retention: due at 5000+r
		OffsetCommit{TopicPartition{"b", 0}, CommittedOffset{Offset: 3, CommitMs: 1000, ExpireMs: 1500}}, // explicit
	))
	mustNoop(t, im, ExpireGroupOffsetsCmd{Group: "g", NowMs: 1499, RetentionMs: 1000})
	im2 := mustChange(t, im, ExpireGroupOffsetsCmd{Group: "g", NowMs: 1500, RetentionMs: 1000})
	if got := offsetsOf(im2, "g"); !maps.Equal(got, map[TopicPartition]int64{{"a", 0}: 1, {"a", 1}: 2}) {
		t.Fatalf("after the explicit expiry: %v", got)
	}
	im3 := mustChange(t, im2, ExpireGroupOffsetsCmd{Group: "g", NowMs: 2000, RetentionMs: 1000})
	if got := offsetsOf(im3, "g"); !maps.Equal(got, map[TopicPartition]int64{{"a", 1}: 2}) {
		t.Fatalf("after the retention expiry: %v", got)
	}
	// A huge retention saturates instead of overflowing.
	mustNoop(t, im3, ExpireGroupOffsetsCmd{Group: "g", NowMs: 1<<63 - 2, RetentionMs: 1<<63 - 1})
	im4 := mustChange(t, im3, ExpireGroupOffsetsCmd{Group: "g", NowMs: 1<<62 + 5000, RetentionMs: 1 << 62})
	if im4.GroupOffsets("g") != nil || len(im4.GroupNames()) != 0 {
		t.Fatalf("group still has offsets %v", im4.GroupOffsets("g"))
	}
}

func TestOffsetSnapshot(t *testing.T) {
	im := mustChange(t, offsetImage(t), commitOffsets("g", oc("a", 1, 1), oc("a", 0, 2), oc("b", 0, 3)))
	im = mustChange(t, im, commitOffsets("h", OffsetCommit{TopicPartition{"b", 0},
		CommittedOffset{Offset: 4, LeaderEpoch: 7, Metadata: "x", CommitMs: 5, ExpireMs: 6}}))
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
	// A version 2 snapshot (before offsets) restores without offsets.
	v2 := strings.Replace(buf.String(), `"version":4`, `"version":2`, 1)
	v2 = v2[:strings.Index(v2, `,"offsets":`)] + "}"
	old, err := decodeSnapshot(strings.NewReader(v2))
	if err != nil {
		t.Fatal(err)
	}
	if len(old.Offsets) != 0 || len(old.Topics) != 2 {
		t.Fatalf("v2 restore: %d groups, %d topics", len(old.Offsets), len(old.Topics))
	}
	refuseSnapshots(t, buf.Bytes(), map[string]func(d *snapshotData){
		"unknown partition": func(d *snapshotData) { d.Offsets[0].Offsets[0].Partition = 9 },
		"group twice":       func(d *snapshotData) { d.Offsets = append(d.Offsets, d.Offsets[0]) },
		"empty group":       func(d *snapshotData) { d.Offsets[0].Offsets = nil },
		"no group id":       func(d *snapshotData) { d.Offsets[0].Group = "" },
	})
}

func TestStoreOffsets(t *testing.T) {
	t.Parallel()
	node := newTestNode(t, "1")
	s := node.open(t)
	ctx := t.Context()
	for _, name := range []string{"a", "b"} {
		if _, err := s.CreateTopic(ctx, TopicSpec{Name: name, Partitions: 2, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CommitOffsets(ctx, "g", []OffsetCommit{oc("a", 0, 1), oc("a", 1, 2), oc("b", 0, 3)}); err != nil {
		t.Fatal(err)
	}
	index := s.Image().Index
	if err := s.CommitOffsets(ctx, "g", []OffsetCommit{oc("a", 0, 50), oc("a", 5, 1)}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("commit with an unknown partition: %v", err)
	}
	if err := s.CommitOffsets(ctx, "", []OffsetCommit{oc("a", 0, 1)}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("commit without group: %v", err)
	}
	if s.Image().Index != index || offsetsOf(s.Image(), "g")[TopicPartition{"a", 0}] != 1 {
		t.Fatal("a refused commit changed the image")
	}
	if err := s.DeleteGroupOffsets(ctx, "g", []TopicPartition{{"a", 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroupOffsets(ctx, "g", []TopicPartition{}); err != nil { // nothing to delete
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "h", []OffsetCommit{oc("b", 1, 9)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroupOffsets(ctx, "h", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTopic(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "old", []OffsetCommit{{TopicPartition{"a", 1}, CommittedOffset{Offset: 1, CommitMs: 10}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireGroupOffsets(ctx, "old", 20, 10); err != nil || n != 1 {
		t.Fatalf("expire: %d, %v", n, err)
	}
	if n, err := s.ExpireGroupOffsets(ctx, "g", 20, 1<<40); err != nil || n != 0 {
		t.Fatalf("expire of nothing: %d, %v", n, err)
	}
	want := map[TopicPartition]int64{{"a", 0}: 1}
	if got := offsetsOf(s.Image(), "g"); !maps.Equal(got, want) || len(s.Image().GroupNames()) != 1 {
		t.Fatalf("offsets %v, groups %v; want %v", got, s.Image().GroupNames(), want)
	}

	// Restart from the log, then from a snapshot plus the log.
	img := s.Image()
	s.Close()
	s = node.open(t)
	if got := s.Image(); !reflect.DeepEqual(got, img) {
		t.Fatalf("image after restart differs:\n got %+v\nwant %+v", got, img)
	}
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "after", []OffsetCommit{oc("a", 1, 77)}); err != nil {
		t.Fatal(err)
	}
	img = s.Image()
	s.Close()
	s = node.open(t)
	if got := s.Image(); !reflect.DeepEqual(got, img) || offsetsOf(got, "after")[TopicPartition{"a", 1}] != 77 ||
		offsetsOf(got, "g")[TopicPartition{"a", 0}] != 1 {
		t.Fatalf("image after snapshot and restart differs:\n got %+v\nwant %+v", got, img)
	}
}
