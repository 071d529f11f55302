package metadata

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// mustApply applies c to im and fails the test on a rejection.
func mustApply(t *testing.T, im *Image, c Command, index uint64) (*Image, any) {
	t.Helper()
	next, resp := im.apply(c, index)
	if err, ok := resp.(error); ok {
		t.Fatalf("apply %s: %v", c.Type(), err)
	}
	if next == nil {
		t.Fatalf("apply %s changed nothing", c.Type())
	}
	return next, resp
}

func TestApplyCopyOnWrite(t *testing.T) {
	im0 := emptyImage()
	im1, _ := mustApply(t, im0, CreateTopicCmd{Name: "a", ID: TopicID{1}, Partitions: 2, ReplicationFactor: 1, WALGroups: []uint32{0}}, 1)
	im2, _ := mustApply(t, im1, CreateTopicCmd{Name: "b", ID: TopicID{2}, Partitions: 1, ReplicationFactor: 1, WALGroups: []uint32{0}}, 2)
	im3, resp := mustApply(t, im2, CreatePartitionsCmd{Name: "a", Total: 4}, 3)
	im4, _ := mustApply(t, im3, AlterTopicConfigsCmd{Name: "a", Set: map[string]string{"retention.ms": "5"}}, 4)

	if len(im0.Topics) != 0 || len(im1.Topics) != 1 || len(im2.Topics) != 2 {
		t.Fatalf("topic counts %d %d %d: an older image changed", len(im0.Topics), len(im1.Topics), len(im2.Topics))
	}
	if len(im2.Topics["a"].Partitions) != 2 || len(im3.Topics["a"].Partitions) != 4 {
		t.Fatalf("partitions: old image has %d, new %d", len(im2.Topics["a"].Partitions), len(im3.Topics["a"].Partitions))
	}
	if resp.(*Topic) != im3.Topics["a"] || im3.TopicsByID[TopicID{1}] != im3.Topics["a"] {
		t.Error("result and the two maps do not hold the same topic")
	}
	if im3.Topics["b"] != im2.Topics["b"] {
		t.Error("an unchanged topic was copied")
	}
	if len(im3.Topics["a"].Configs) != 0 || im4.Topics["a"].Configs["retention.ms"] != "5" {
		t.Error("config change leaked into the older image or was lost")
	}
	if im4.Index != 4 || im3.Index != 3 {
		t.Errorf("indexes %d %d", im3.Index, im4.Index)
	}
}

func TestApplyStreamIDsNeverReused(t *testing.T) {
	im := emptyImage()
	seen := map[uint64]bool{}
	record := func(parts []Partition) {
		for _, p := range parts {
			if seen[p.Stream] || p.Stream == 0 {
				t.Fatalf("stream id %d reused or zero", p.Stream)
			}
			seen[p.Stream] = true
		}
	}
	var resp any
	for i := range 5 {
		im, resp = mustApply(t, im, CreateTopicCmd{Name: "t", ID: TopicID{byte(i + 1)}, Partitions: 3, ReplicationFactor: 1,
			WALGroups: []uint32{7, 8}}, uint64(3*i+1))
		top := resp.(*Topic)
		record(top.Partitions)
		if got := []uint32{top.Partitions[0].WALGroup, top.Partitions[1].WALGroup, top.Partitions[2].WALGroup}; !reflect.DeepEqual(got, []uint32{7, 8, 7}) {
			t.Fatalf("wal groups %v", got)
		}
		im, resp = mustApply(t, im, CreatePartitionsCmd{Name: "t", Total: 5}, uint64(3*i+2))
		top = resp.(*Topic)
		record(top.Partitions[3:])
		if top.Partitions[3].WALGroup != 8 || top.Partitions[4].WALGroup != 7 {
			t.Fatalf("grown partitions in groups %d, %d", top.Partitions[3].WALGroup, top.Partitions[4].WALGroup)
		}
		im, _ = mustApply(t, im, DeleteTopicCmd{Name: "t"}, uint64(3*i+3))
	}
	if len(seen) != 25 || im.NextStreamID != 26 {
		t.Errorf("%d distinct streams, next %d", len(seen), im.NextStreamID)
	}
}

func TestApplyRejections(t *testing.T) {
	im := emptyImage()
	im, _ = mustApply(t, im, CreateTopicCmd{Name: "a.b", ID: TopicID{1}, Partitions: 2, ReplicationFactor: 1, WALGroups: []uint32{0}}, 1)
	for _, tc := range []struct {
		c    Command
		want error
	}{
		{CreateTopicCmd{Name: "a.b", ID: TopicID{2}, Partitions: 1, ReplicationFactor: 1, WALGroups: []uint32{0}}, ErrTopicExists},
		{CreateTopicCmd{Name: "a_b", ID: TopicID{2}, Partitions: 1, ReplicationFactor: 1, WALGroups: []uint32{0}}, ErrInvalidTopicName},
		{CreateTopicCmd{Name: "c", ID: TopicID{1}, Partitions: 1, ReplicationFactor: 1, WALGroups: []uint32{0}}, ErrInvalidRequest},
		{DeleteTopicCmd{Name: "nope"}, ErrUnknownTopic},
		{CreatePartitionsCmd{Name: "nope", Total: 3}, ErrUnknownTopic},
		{CreatePartitionsCmd{Name: "a.b", Total: 2}, ErrInvalidPartitions},
		{CreatePartitionsCmd{Name: "a.b", Total: 1}, ErrInvalidPartitions},
		{AlterTopicConfigsCmd{Name: "nope"}, ErrUnknownTopic},
	} {
		next, resp := im.apply(tc.c, 9)
		if err, _ := resp.(error); !errors.Is(err, tc.want) || next != nil {
			t.Errorf("%s %+v: %v (image %v), want %v", tc.c.Type(), tc.c, resp, next, tc.want)
		}
	}
}

func TestApplyProducerIDs(t *testing.T) {
	im := emptyImage()
	var resp any
	im, resp = mustApply(t, im, AllocateProducerIDsCmd{N: 1000}, 1)
	if resp.(int64) != 0 {
		t.Fatalf("first block starts at %v", resp)
	}
	im, resp = mustApply(t, im, AllocateProducerIDsCmd{N: 10}, 2)
	if resp.(int64) != 1000 || im.NextProducerID != 1010 {
		t.Fatalf("second block at %v, next %d", resp, im.NextProducerID)
	}
	im.NextProducerID = 1<<63 - 5
	if _, resp := im.apply(AllocateProducerIDsCmd{N: 10}, 3); !errors.Is(resp.(error), ErrInvalidRequest) {
		t.Fatalf("exhausted ids: %v", resp)
	}
}

func TestApplyIdempotentInitAndRegister(t *testing.T) {
	im, _ := mustApply(t, emptyImage(), InitClusterCmd{ClusterID: "first"}, 1)
	if next, resp := im.apply(InitClusterCmd{ClusterID: "second"}, 2); next != nil || resp != nil {
		t.Fatalf("second init: %v, %v", next, resp)
	}
	b := Broker{ID: 3, Host: "h", Port: 9092}
	im, _ = mustApply(t, im, RegisterBrokerCmd{Broker: b}, 3)
	if next, _ := im.apply(RegisterBrokerCmd{Broker: b}, 4); next != nil {
		t.Error("re-registering the same broker published an image")
	}
	b.Port = 9093
	im2, _ := mustApply(t, im, RegisterBrokerCmd{Broker: b}, 5)
	if im2.Brokers[3].Port != 9093 || im.Brokers[3].Port != 9092 {
		t.Error("upsert did not replace copy-on-write")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	f := newFSM(discardLogger())
	logs := []*raft.Log{{Index: 1, Type: raft.LogConfiguration}}
	for i, c := range append(sampleCommands()[:3], AllocateProducerIDsCmd{N: 7}, CreatePartitionsCmd{Name: "orders", Total: 4}) {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(i + 2), Type: raft.LogCommand, Data: b})
	}
	for i, resp := range f.ApplyBatch(logs) {
		if err, ok := resp.(error); ok {
			t.Fatalf("log %d: %v", i, err)
		}
	}
	want := f.current()
	if want.Index != 6 || len(want.Topics["orders"].Partitions) != 4 || want.NextProducerID != 7 {
		t.Fatalf("batch image: index %d, %d partitions, next pid %d", want.Index, len(want.Topics["orders"].Partitions), want.NextProducerID)
	}
	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, want); err != nil {
		t.Fatal(err)
	}
	g := newFSM(discardLogger())
	if err := g.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := g.current(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored image differs:\n got %+v\nwant %+v", got, want)
	}

	for name, bad := range map[string]string{
		"garbage":   "not json",
		"version":   strings.Replace(buf.String(), `"version":8`, `"version":9`, 1),
		"version 0": strings.Replace(buf.String(), `"version":8`, `"version":0`, 1),
		"streams":   strings.Replace(buf.String(), `"next_stream_id":5`, `"next_stream_id":2`, 1),
		"zero id":   strings.Replace(buf.String(), `"ID":"ESIzRFVmR4iZqrvM3e7_AQ"`, `"ID":"AAAAAAAAAAAAAAAAAAAAAA"`, 1),
		"truncated": buf.String()[:buf.Len()/2],
	} {
		if err := newFSM(discardLogger()).Restore(io.NopCloser(strings.NewReader(bad))); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("restore %s: %v, want ErrInvalidCommand", name, err)
		}
	}
}
