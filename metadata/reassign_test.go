package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// moveImage is the three-broker layout (groups 0=[1 2 3], 1=[2 3 1],
// 2=[3 1 2]) with topic "t" of two partitions, in groups 0 and 1.
func moveImage(t *testing.T) *Image {
	t.Helper()
	im := threeBrokerLayout(t)
	return applyOK(t, im, CreateTopicCmd{Name: "t", ID: testID, Partitions: 2, ReplicationFactor: 3, WALGroups: []uint32{0, 1}})
}

// applyErr applies c (through the log encoding) and returns its error; a
// failed command must not change the image.
func applyErr(t *testing.T, im *Image, c Command) error {
	t.Helper()
	next, err := applyCmd(t, im, c)
	if err == nil && next != im {
		t.Fatalf("%s: no error, want one", c.Type())
	}
	return err
}

func TestWALGroupFor(t *testing.T) {
	im := threeBrokerLayout(t)
	im = im.next(im.Index + 1)
	im.WALGroups = append(cloneWALGroups(im.WALGroups),
		WALGroup{ID: 3, Replicas: []int32{1, 3, 2}}, WALGroup{ID: 4, Replicas: []int32{4, 5, 6}},
		WALGroup{ID: 5, Replicas: []int32{7}}, WALGroup{ID: 6, Replicas: []int32{7}})
	im = applyOK(t, im, CreateTopicCmd{Name: "x", ID: testID, Partitions: 2, ReplicationFactor: 1, WALGroups: []uint32{5}})
	for _, tc := range []struct {
		replicas []int32
		current  uint32
		want     uint32
		err      string
	}{
		{replicas: []int32{2, 3, 1}, current: 0, want: 1}, // exact order
		{replicas: []int32{1, 2, 3}, current: 3, want: 0}, // exact beats same leader
		{replicas: []int32{1, 3, 2}, current: 0, want: 3}, // exact
		{replicas: []int32{3, 2, 1}, current: 0, want: 2}, // same set and preferred leader
		{replicas: []int32{2, 1, 3}, current: 0, want: 1}, // same set and preferred leader
		{replicas: []int32{1, 3, 2}, current: 3, want: 3}, // already there
		{replicas: []int32{4, 6, 5}, current: 0, want: 4}, // same leader
		{replicas: []int32{5, 4, 6}, current: 0, want: 4}, // same set only
		{replicas: []int32{7}, current: 0, want: 6},       // tie: fewer partitions
		{replicas: []int32{7}, current: 5, want: 5},       // tie: the current group
		{replicas: []int32{1, 2}, err: "the groups are 0=[1 2 3] 1=[2 3 1]"},
		{replicas: []int32{1, 1, 2}, err: "repeated"},
		{replicas: []int32{-1}, err: "negative"},
		{replicas: nil, err: "empty"},
	} {
		got, err := im.WALGroupFor(tc.replicas, tc.current)
		switch {
		case tc.err != "":
			if !errors.Is(err, ErrInvalidReplicaAssignment) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: %v, want ErrInvalidReplicaAssignment with %q", tc.replicas, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("%v from group %d: group %d, %v; want %d", tc.replicas, tc.current, got, err, tc.want)
		}
	}
}

func TestReassignSwitchFinish(t *testing.T) {
	im := moveImage(t)
	p := im.Topics["t"].Partitions[0]
	if p.WALGroup != 0 || p.Move != nil {
		t.Fatalf("partition 0: %+v", p)
	}
	im = applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 0, Target: 2})
	m := im.Topics["t"].Partitions[0].Move
	if m == nil || m.ID != im.Index || m.Source != 0 || m.Target != 2 || m.Switched {
		t.Fatalf("move %+v (image index %d)", m, im.Index)
	}
	if again := applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 0, Target: 2}); again != im {
		t.Fatal("a repeated reassignment changed the image")
	}
	if moves := im.Moves(); len(moves) != 1 || moves[0].Topic != "t" || moves[0].Partition.Index != 0 {
		t.Fatalf("moves %+v", moves)
	}
	// Part of the stream is committed: [0, 10).
	stream := p.Stream
	im = applyOK(t, im, CommitObjectCmd{Object: sso("o/1", rng(stream, 0, 10)), NowMs: 1, GraceMs: 1})

	h := StreamHandoff{End: 10, MinEpoch: 7, Epochs: []HandoffEpoch{{Epoch: 2, Start: 0}},
		Producers: []HandoffProducer{{ID: 5, Epoch: 1, Batches: []HandoffBatch{{FirstSeq: 0, LastSeq: 9, Base: 0, Last: 9}}}}}
	sw := SwitchPartitionCmd{Topic: "t", Partition: 0, Stream: stream, Move: m.ID, Handoff: h}
	for name, c := range map[string]SwitchPartitionCmd{
		"another move":   {Topic: "t", Partition: 0, Stream: stream, Move: m.ID + 1, Handoff: h},
		"another stream": {Topic: "t", Partition: 0, Stream: stream + 1, Move: m.ID, Handoff: h},
	} {
		if err := applyErr(t, im, c); !errors.Is(err, ErrNoReassignment) {
			t.Errorf("switch of %s: %v, want ErrNoReassignment", name, err)
		}
	}
	for _, end := range []int64{5, 12} { // not where the committed history ends
		c := sw
		c.Handoff.End = end
		if err := applyErr(t, im, c); !errors.Is(err, ErrRangeConflict) {
			t.Errorf("switch at %d: %v, want ErrRangeConflict", end, err)
		}
	}
	im = applyOK(t, im, sw)
	p = im.Topics["t"].Partitions[0]
	if p.WALGroup != 2 || p.Move == nil || !p.Move.Switched || p.Move.Source != 0 || !reflect.DeepEqual(*p.Move.Handoff, h) {
		t.Fatalf("after the switch: %+v move %+v", p, p.Move)
	}
	if again := applyOK(t, im, sw); again != im {
		t.Fatal("a retried switch changed the image")
	}
	// A switched move cannot be cancelled or redirected; a request for
	// where it goes is fine.
	if err := applyErr(t, im, CancelReassignmentCmd{Topic: "t", Partition: 0}); !errors.Is(err, ErrReassignmentInProgress) {
		t.Errorf("cancel after the switch: %v", err)
	}
	if err := applyErr(t, im, ReassignPartitionCmd{Topic: "t", Partition: 0, Target: 1}); !errors.Is(err, ErrReassignmentInProgress) {
		t.Errorf("redirect after the switch: %v", err)
	}
	if again := applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 0, Target: 2}); again != im {
		t.Error("reassigning to the switched target changed the image")
	}
	if err := applyErr(t, im, FinishReassignmentCmd{Topic: "t", Partition: 0, Stream: stream, Move: m.ID + 1}); !errors.Is(err, ErrNoReassignment) {
		t.Errorf("finish of another move: %v", err)
	}
	im = applyOK(t, im, FinishReassignmentCmd{Topic: "t", Partition: 0, Stream: stream, Move: m.ID})
	if p := im.Topics["t"].Partitions[0]; p.Move != nil || p.WALGroup != 2 {
		t.Fatalf("after finishing: %+v", p)
	}
	if again := applyOK(t, im, FinishReassignmentCmd{Topic: "t", Partition: 0, Stream: stream, Move: m.ID}); again != im {
		t.Fatal("a repeated finish changed the image")
	}
	if len(im.Moves()) != 0 {
		t.Fatalf("moves left: %+v", im.Moves())
	}
}

func TestReassignCancelAndRedirect(t *testing.T) {
	im := moveImage(t)
	if again := applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 1, Target: 1}); again != im {
		t.Fatal("a reassignment to the current group changed the image")
	}
	if err := applyErr(t, im, CancelReassignmentCmd{Topic: "t", Partition: 1}); !errors.Is(err, ErrNoReassignment) {
		t.Fatalf("cancel without a move: %v", err)
	}
	im = applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 1, Target: 0})
	first := im.Topics["t"].Partitions[1].Move
	// A new target replaces the move (new id); switching the old one fails.
	im = applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 1, Target: 2})
	second := im.Topics["t"].Partitions[1].Move
	if second.ID == first.ID || second.Target != 2 || second.Source != 1 {
		t.Fatalf("redirected move %+v (was %+v)", second, first)
	}
	stream := im.Topics["t"].Partitions[1].Stream
	if err := applyErr(t, im, SwitchPartitionCmd{Topic: "t", Partition: 1, Stream: stream, Move: first.ID}); !errors.Is(err, ErrNoReassignment) {
		t.Fatalf("switch of a replaced move: %v", err)
	}
	im = applyOK(t, im, CancelReassignmentCmd{Topic: "t", Partition: 1})
	if p := im.Topics["t"].Partitions[1]; p.Move != nil || p.WALGroup != 1 {
		t.Fatalf("after cancel: %+v", p)
	}
	// Reassigning back to the current group cancels as well.
	im = applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 1, Target: 0})
	im = applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 1, Target: 1})
	if p := im.Topics["t"].Partitions[1]; p.Move != nil {
		t.Fatalf("reassignment back did not cancel: %+v", p.Move)
	}
	// A never-written stream switches at 0.
	im = applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 1, Target: 0})
	m := im.Topics["t"].Partitions[1].Move
	im = applyOK(t, im, SwitchPartitionCmd{Topic: "t", Partition: 1, Stream: stream, Move: m.ID})
	if p := im.Topics["t"].Partitions[1]; p.WALGroup != 0 || !p.Move.Switched || p.Move.Handoff.End != 0 {
		t.Fatalf("switch of an empty stream: %+v", p)
	}
}

func TestReassignUnknownTargets(t *testing.T) {
	im := moveImage(t)
	for _, c := range []Command{
		ReassignPartitionCmd{Topic: "nope", Partition: 0, Target: 1},
		ReassignPartitionCmd{Topic: "t", Partition: 2, Target: 1},
		CancelReassignmentCmd{Topic: "t", Partition: 9},
		SwitchPartitionCmd{Topic: "nope", Partition: 0, Stream: 1, Move: 1},
		FinishReassignmentCmd{Topic: "nope", Partition: 0, Stream: 1, Move: 1},
	} {
		if err := applyErr(t, im, c); !errors.Is(err, ErrUnknownTopic) {
			t.Errorf("%s %+v: %v, want ErrUnknownTopic", c.Type(), c, err)
		}
	}
	if err := applyErr(t, im, ReassignPartitionCmd{Topic: "t", Partition: 0, Target: 9}); !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Errorf("unknown group: %v", err)
	}
}

func TestReassignCommandsRoundTrip(t *testing.T) {
	h := StreamHandoff{End: 3, MinEpoch: 4, Epochs: []HandoffEpoch{{1, 0}},
		Producers: []HandoffProducer{{ID: 1, Epoch: 2, Batches: []HandoffBatch{{0, 2, 0, 2}}}}}
	for _, c := range []Command{
		ReassignPartitionCmd{Topic: "t", Partition: 1, Target: 2},
		CancelReassignmentCmd{Topic: "t", Partition: 1},
		SwitchPartitionCmd{Topic: "t", Partition: 1, Stream: 3, Move: 4, Handoff: h},
		FinishReassignmentCmd{Topic: "t", Partition: 1, Stream: 3, Move: 4},
		RequestCmd{ID: "x", Cmd: SwitchPartitionCmd{Topic: "t", Partition: 1, Stream: 3, Move: 4, Handoff: h}},
	} {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCommand(b)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("%s: round trip %#v, %v", c.Type(), got, err)
		}
		if !strings.Contains(c.Type().String(), "artition") && !strings.Contains(c.Type().String(), "eassignment") &&
			c.Type() != CmdRequest {
			t.Errorf("type %d has no name: %s", c.Type(), c.Type())
		}
	}
	for _, bad := range []string{
		`{"topic":"","partition":0,"target":1}`,
		`{"topic":"t","partition":-1,"target":1}`,
	} {
		if _, err := DecodeCommand(append([]byte{byte(CmdReassignPartition)}, bad...)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
	if _, err := DecodeCommand(append([]byte{byte(CmdSwitchPartition)}, `{"topic":"t","partition":0,"stream":0,"move":1,"handoff":{"end":0,"min_epoch":0}}`...)); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("switch of stream 0: %v", err)
	}
	// The sentinels survive a forwarded answer.
	for _, e := range []error{ErrInvalidReplicaAssignment, ErrNoReassignment, ErrReassignmentInProgress} {
		if got := encodeResult(e).err(); !errors.Is(got, e) {
			t.Errorf("%v did not survive encoding: %v", e, got)
		}
	}
}

func TestSnapshotKeepsMoves(t *testing.T) {
	im := moveImage(t)
	im = applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 0, Target: 1})
	m := im.Topics["t"].Partitions[0].Move
	stream := im.Topics["t"].Partitions[0].Stream
	h := StreamHandoff{MinEpoch: 3, Producers: []HandoffProducer{{ID: 8, Epoch: 0}}}
	im = applyOK(t, im, SwitchPartitionCmd{Topic: "t", Partition: 0, Stream: stream, Move: m.ID, Handoff: h})
	im = applyOK(t, im, ReassignPartitionCmd{Topic: "t", Partition: 1, Target: 2})
	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, im); err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		want, have := im.Topics["t"].Partitions[i], got.Topics["t"].Partitions[i]
		if !reflect.DeepEqual(want, have) {
			t.Errorf("partition %d after restore: %+v %+v, want %+v %+v", i, have, have.Move, want, want.Move)
		}
	}
}

func TestStoreReassignment(t *testing.T) {
	s := openTestStore(t)
	ctx := t.Context()
	if err := s.InitLayout(ctx, []Member{{1, "h:1"}, {2, "h:2"}}, [][]int32{{1, 2}, {2, 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx, TopicSpec{Name: "r", Partitions: 1, ReplicationFactor: 1, WALGroups: []uint32{0}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReassignPartition(ctx, "r", 0, 1); err != nil {
		t.Fatal(err)
	}
	p := s.Image().Topics["r"].Partitions[0]
	if err := s.SwitchPartition(ctx, "r", 0, p.Stream, p.Move.ID, StreamHandoff{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelReassignment(ctx, "r", 0); !errors.Is(err, ErrReassignmentInProgress) {
		t.Fatalf("cancel after switch: %v", err)
	}
	if err := s.FinishReassignment(ctx, "r", 0, p.Stream, p.Move.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelReassignment(ctx, "r", 0); !errors.Is(err, ErrNoReassignment) {
		t.Fatalf("cancel without a move: %v", err)
	}
	if p := s.Image().Topics["r"].Partitions[0]; p.WALGroup != 1 || p.Move != nil {
		t.Fatalf("partition after the move: %+v", p)
	}
}
