package metadata

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// applyOK applies c to im and fails the test on an error result.
func applyOK(t *testing.T, im *Image, c Command) *Image {
	t.Helper()
	next, resp := im.apply(c, im.Index+1)
	if err, ok := resp.(error); ok {
		t.Fatalf("%s: %v", c.Type(), err)
	}
	if next == nil {
		return im
	}
	return next
}

func threeBrokerLayout(t *testing.T) *Image {
	t.Helper()
	members := []Member{{1, "h1:1"}, {2, "h2:1"}, {3, "h3:1"}}
	return applyOK(t, emptyImage(), InitLayoutCmd{Members: members, Groups: [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}})
}

func replicas(im *Image) [][]int32 {
	var out [][]int32
	for _, g := range im.WALGroups {
		out = append(out, g.Replicas)
	}
	return out
}

func TestLayoutInitOnce(t *testing.T) {
	im := threeBrokerLayout(t)
	again := applyOK(t, im, InitLayoutCmd{Members: []Member{{9, "x:1"}}, Groups: [][]int32{{9}}})
	if again != im || len(im.Members) != 3 || len(im.WALGroups) != 3 {
		t.Fatalf("second InitLayout changed the image: %+v", again.Members)
	}
	for i, g := range im.WALGroups {
		if g.ID != uint32(i) || !slices.Equal(g.Initial, g.Replicas) || g.Leader != -1 {
			t.Errorf("group %d: %+v", i, g)
		}
	}
	if err := (InitLayoutCmd{Members: []Member{{1, "a:1"}}, Groups: [][]int32{{1, 2}}}).check(); err == nil {
		t.Error("a group replica that is not a member passed the check")
	}
}

// TestLayoutReplaceDeadBroker: removing a broker shrinks its groups (no
// spare), admitting a new one fills them and makes it the preferred leader
// of the group the removed broker preferred; the new broker joins (it is
// not an initial replica).
func TestLayoutReplaceDeadBroker(t *testing.T) {
	im := applyOK(t, threeBrokerLayout(t), RemoveMemberCmd{ID: 2})
	if got := replicas(im); !slices.EqualFunc(got, [][]int32{{1, 3}, {3, 1}, {3, 1}}, slices.Equal) {
		t.Fatalf("after removing 2: %v", got)
	}
	if _, ok := im.Members[2]; ok || !slices.Contains(im.RemovedMembers, 2) {
		t.Fatalf("broker 2 still a member")
	}
	im = applyOK(t, im, AddMemberCmd{Member: Member{4, "h4:1"}, Replicas: 3})
	got := replicas(im)
	if !slices.EqualFunc(got, [][]int32{{1, 3, 4}, {4, 1, 3}, {3, 1, 4}}, slices.Equal) {
		t.Fatalf("after adding 4: %v", got)
	}
	for _, g := range im.WALGroups {
		if g.Bootstraps(4) || !g.HasReplica(4) {
			t.Errorf("group %d: broker 4 bootstraps %v, replica %v", g.ID, g.Bootstraps(4), g.HasReplica(4))
		}
	}
	// Ids are never reused; a retried admission is a no-op; a changed one conflicts.
	if _, resp := im.apply(AddMemberCmd{Member: Member{2, "h2:1"}, Replicas: 3}, im.Index+1); !errors.Is(resp.(error), ErrMemberRemoved) {
		t.Errorf("re-adding 2: %v", resp)
	}
	if _, resp := im.apply(RegisterBrokerCmd{Broker: Broker{ID: 2, Host: "h", Port: 1}}, im.Index+1); !errors.Is(resp.(error), ErrMemberRemoved) {
		t.Errorf("registering 2: %v", resp)
	}
	if next, resp := im.apply(AddMemberCmd{Member: Member{4, "h4:1"}, Replicas: 3}, im.Index+1); next != nil || resp != nil {
		t.Errorf("retried admission: %v %v", next, resp)
	}
	if _, resp := im.apply(AddMemberCmd{Member: Member{4, "other:1"}, Replicas: 3}, im.Index+1); !errors.Is(resp.(error), ErrMemberExists) {
		t.Errorf("admitting 4 at another address: %v", resp)
	}
}

// TestLayoutGrow: a broker added to a full cluster gets a new group it
// prefers, on the least loaded brokers; a removal then gives its place to
// the broker that is not yet a replica.
func TestLayoutGrow(t *testing.T) {
	im := applyOK(t, threeBrokerLayout(t), AddMemberCmd{Member: Member{4, "h4:1"}, Replicas: 3})
	if len(im.WALGroups) != 4 {
		t.Fatalf("groups: %v", replicas(im))
	}
	g := im.WALGroups[3]
	if !slices.Equal(g.Replicas, []int32{4, 1, 2}) || !slices.Equal(g.Initial, g.Replicas) {
		t.Fatalf("new group: %+v", g)
	}
	im = applyOK(t, im, RemoveMemberCmd{ID: 1})
	want := [][]int32{{4, 2, 3}, {2, 3, 4}, {3, 4, 2}, {4, 3, 2}}
	// Broker 1's place goes to the broker that is not yet a replica of
	// the group, at the same position.
	if got := replicas(im); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after removing 1: %v, want %v", got, want)
	}
	for _, g := range im.WALGroups {
		if g.HasReplica(1) || len(g.Replicas) != 3 {
			t.Errorf("group %d after removing 1: %v", g.ID, g.Replicas)
		}
	}
	// The last replica of a group cannot go.
	single := applyOK(t, emptyImage(), InitLayoutCmd{Members: []Member{{1, "a:1"}, {2, "b:1"}}, Groups: [][]int32{{1}, {2}}})
	single = applyOK(t, single, RemoveMemberCmd{ID: 2}) // broker 1 takes group 1
	if !slices.Equal(single.WALGroups[1].Replicas, []int32{1}) {
		t.Fatalf("group 1 after removing 2: %v", single.WALGroups[1].Replicas)
	}
	if _, resp := single.apply(RemoveMemberCmd{ID: 1}, single.Index+1); !errors.Is(resp.(error), ErrInvalidRequest) {
		t.Errorf("removing the last member: %v", resp)
	}
	if _, resp := single.apply(RemoveMemberCmd{ID: 7}, single.Index+1); !errors.Is(resp.(error), ErrUnknownMember) {
		t.Errorf("removing an unknown broker: %v", resp)
	}
}

func TestSetWALLeader(t *testing.T) {
	im := applyOK(t, threeBrokerLayout(t), SetWALLeaderCmd{Group: 1, Leader: 2, Epoch: 4})
	im = applyOK(t, im, SetWALLeaderCmd{Group: 1, Leader: 3, Epoch: 3}) // older term: ignored
	if g := im.WALGroups[1]; g.Leader != 2 || g.LeaderEpoch != 4 {
		t.Fatalf("group 1 leader %d epoch %d", g.Leader, g.LeaderEpoch)
	}
	if _, resp := im.apply(SetWALLeaderCmd{Group: 9, Leader: 1, Epoch: 1}, im.Index+1); !errors.Is(resp.(error), ErrInvalidRequest) {
		t.Errorf("unknown group: %v", resp)
	}
	im = applyOK(t, im, RemoveMemberCmd{ID: 2})
	if g := im.WALGroups[1]; g.Leader != -1 {
		t.Errorf("removed leader still recorded: %+v", g)
	}
}

func TestLayoutSnapshotAndCodec(t *testing.T) {
	im := applyOK(t, threeBrokerLayout(t), RemoveMemberCmd{ID: 3})
	im = applyOK(t, im, SetWALLeaderCmd{Group: 0, Leader: 1, Epoch: 2})
	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, im); err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.SortedMembers(), im.SortedMembers()) || !slices.Equal(got.RemovedMembers, []int32{3}) ||
		!slices.EqualFunc(replicas(got), replicas(im), slices.Equal) || got.WALGroups[0].Leader != 1 {
		t.Fatalf("restored layout %+v %v, want %+v %v", got.Members, replicas(got), im.Members, replicas(im))
	}
	for _, c := range []Command{
		InitLayoutCmd{Members: []Member{{1, "a:1"}}, Groups: [][]int32{{1}}},
		AddMemberCmd{Member: Member{2, "b:1"}, Replicas: 3},
		RemoveMemberCmd{ID: 2},
		SetWALLeaderCmd{Group: 0, Leader: 1, Epoch: 1},
	} {
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeCommand(data)
		if err != nil || back.Type() != c.Type() {
			t.Errorf("%s: %v %v", c.Type(), back, err)
		}
	}
	if _, err := DecodeCommand(append([]byte{byte(CmdAddMember)}, `{"member":{"id":1,"cluster_addr":""},"replicas":3}`...)); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("member without address: %v", err)
	}
}
