package group

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var topicT = [16]byte{1}

func sixPartitions() map[string]TopicInfo {
	return map[string]TopicInfo{"t": {ID: topicT, Partitions: 6}}
}

func cjoin(id string) ConsumerHeartbeatRequest {
	return ConsumerHeartbeatRequest{Group: "g", MemberID: id, MemberEpoch: 0, RebalanceTimeout: 10 * time.Second,
		SubscribedTopicNames: []string{"t"}, ServerAssignor: ptr(AssignorUniform)}
}

// owned turns a result's assignment into the request's Owned.
func owned(res ConsumerHeartbeatResult) []TopicPartitions { return res.Assignment }

// checkExclusive fails when a partition is assigned or revoking in two
// members at once.
func checkExclusive(t *testing.T, g *consumerGroup) {
	t.Helper()
	seen := map[tp]string{}
	for id, m := range g.members {
		for _, s := range []tpSet{m.assigned, m.revoking} {
			for p := range s {
				if other, dup := seen[p]; dup {
					t.Fatalf("partition %d held by %s and %s", p.part, other, id)
				}
				seen[p] = id
			}
		}
	}
}

func count(res ConsumerHeartbeatResult) int {
	n := 0
	for _, t := range res.Assignment {
		n += len(t.Partitions)
	}
	return n
}

func TestConsumerReconciliation(t *testing.T) {
	clk := newClock()
	g := newConsumerGroup("g", testCfg())
	topics := sixPartitions()
	a, err := g.heartbeat(cjoin("a"), "", topics, clk.now())
	if err != nil || count(a) != 6 || a.MemberEpoch != 1 {
		t.Fatalf("first member: %+v %v", a, err)
	}
	b, err := g.heartbeat(cjoin("b"), "", topics, clk.now())
	if err != nil || count(b) != 0 || b.MemberEpoch != 2 {
		t.Fatalf("second member must wait for a's revocation: %+v %v", b, err)
	}
	checkExclusive(t, g)
	// a heartbeats with what it owns: it is told to keep 3.
	ra, err := g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, Owned: owned(a)}, "", topics, clk.now())
	if err != nil || count(ra) != 3 || ra.MemberEpoch != 1 {
		t.Fatalf("revocation: %+v %v", ra, err)
	}
	if g.state() != StateReconciling {
		t.Fatalf("state %s", g.state())
	}
	// b still gets nothing while a has not released.
	if rb, _ := g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "b", MemberEpoch: 2, RebalanceTimeout: -1, Owned: []TopicPartitions{}}, "", topics, clk.now()); count(rb) != 0 {
		t.Fatalf("b got partitions before a released them: %+v", rb)
	}
	checkExclusive(t, g)
	// a releases: epoch 2; b then gets its 3.
	ra, err = g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, Owned: owned(ra)}, "", topics, clk.now())
	if err != nil || ra.MemberEpoch != 2 || count(ra) != 3 {
		t.Fatalf("after release: %+v %v", ra, err)
	}
	rb, err := g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "b", MemberEpoch: 2, RebalanceTimeout: -1, Owned: []TopicPartitions{}}, "", topics, clk.now())
	if err != nil || count(rb) != 3 {
		t.Fatalf("b after release: %+v %v", rb, err)
	}
	checkExclusive(t, g)
	if g.state() != StateStable {
		t.Fatalf("state %s", g.state())
	}
	// Keepalive (nothing changed) carries no assignment.
	if k, _ := g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "b", MemberEpoch: 2, RebalanceTimeout: -1}, "", topics, clk.now()); k.HasAssignment {
		t.Fatalf("keepalive carried an assignment: %+v", k)
	}
	// Commits: current and previous epoch pass, older are stale.
	if err := g.validateCommit("a", 2); err != nil {
		t.Fatal(err)
	}
	if err := g.validateCommit("b", 0); !errors.Is(err, ErrStaleMemberEpoch) {
		t.Fatalf("stale commit: %v", err)
	}
	if err := g.validateCommit("zz", 2); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("unknown member commit: %v", err)
	}
	// a leaves: b gets everything.
	if res, err := g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: -1}, "", topics, clk.now()); err != nil || res.MemberEpoch != -1 {
		t.Fatalf("leave: %+v %v", res, err)
	}
	rb, _ = g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "b", MemberEpoch: 2, RebalanceTimeout: -1, Owned: owned(rb)}, "", topics, clk.now())
	if count(rb) != 6 || rb.MemberEpoch != 3 {
		t.Fatalf("after leave: %+v", rb)
	}
}

func TestConsumerErrors(t *testing.T) {
	clk := newClock()
	topics := sixPartitions()
	for _, tc := range []struct {
		name string
		req  func() ConsumerHeartbeatRequest
		want error
	}{
		{"unknown member", func() ConsumerHeartbeatRequest {
			return ConsumerHeartbeatRequest{Group: "g", MemberID: "x", MemberEpoch: 1, RebalanceTimeout: -1}
		}, ErrUnknownMember},
		{"epoch from the future", func() ConsumerHeartbeatRequest {
			return ConsumerHeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: 7, RebalanceTimeout: -1}
		}, ErrFencedMemberEpoch},
		{"join owning partitions", func() ConsumerHeartbeatRequest {
			r := cjoin("n")
			r.Owned = []TopicPartitions{{TopicID: topicT, Partitions: []int32{0}}}
			return r
		}, ErrInvalidRequest},
		{"join without subscription", func() ConsumerHeartbeatRequest {
			r := cjoin("n")
			r.SubscribedTopicNames = nil
			return r
		}, ErrInvalidRequest},
		{"bad assignor", func() ConsumerHeartbeatRequest {
			r := cjoin("n")
			r.ServerAssignor = ptr("sticky")
			return r
		}, ErrUnsupportedAssignor},
		{"bad regex", func() ConsumerHeartbeatRequest {
			r := cjoin("n")
			r.SubscribedTopicRegex = ptr("(")
			return r
		}, ErrInvalidRegex},
		{"epoch below -2", func() ConsumerHeartbeatRequest {
			return ConsumerHeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: -3}
		}, ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newConsumerGroup("g", testCfg())
			if _, err := g.heartbeat(cjoin("a"), "", topics, clk.now()); err != nil {
				t.Fatal(err)
			}
			if _, err := g.heartbeat(tc.req(), "", topics, clk.now()); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestConsumerSessionExpiryAndStatic(t *testing.T) {
	clk := newClock()
	cfg := testCfg()
	g := newConsumerGroup("g", cfg)
	topics := sixPartitions()
	ja := cjoin("a")
	ja.InstanceID = ptr("inst-a")
	a, _ := g.heartbeat(ja, "", topics, clk.now())
	// Static leave (-2) keeps the partitions reserved for the instance.
	if _, err := g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: -2, InstanceID: ptr("inst-a")}, "", topics, clk.now()); err != nil {
		t.Fatal(err)
	}
	ja2 := cjoin("a2")
	ja2.InstanceID = ptr("inst-a")
	a2, err := g.heartbeat(ja2, "", topics, clk.now())
	if err != nil || count(a2) != count(a) || a2.MemberEpoch != a.MemberEpoch || g.epoch != 1 {
		t.Fatalf("static rejoin: %+v %v (epoch %d)", a2, err, g.epoch)
	}
	// The instance is held: another member with it is refused.
	ja3 := cjoin("a3")
	ja3.InstanceID = ptr("inst-a")
	if _, err := g.heartbeat(ja3, "", topics, clk.now()); !errors.Is(err, ErrUnreleasedInstanceID) {
		t.Fatalf("duplicate instance: %v", err)
	}
	// A second member; a2 stops heartbeating and expires.
	b, _ := g.heartbeat(cjoin("b"), "", topics, clk.now())
	for range 10 {
		clk.advance(5 * time.Second)
		b, err = g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "b", MemberEpoch: b.MemberEpoch, RebalanceTimeout: -1, Owned: []TopicPartitions{}}, "", topics, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		g.tick(clk.now(), topics)
	}
	if g.members["a2"] != nil || count(b) != 6 {
		t.Fatalf("a2 not expired or b not given everything: %+v", b)
	}
}

func TestConsumerTopicChangesAndRegex(t *testing.T) {
	clk := newClock()
	g := newConsumerGroup("g", testCfg())
	topics := map[string]TopicInfo{"orders-1": {ID: [16]byte{1}, Partitions: 2}, "other": {ID: [16]byte{2}, Partitions: 2}}
	r := cjoin("a")
	r.SubscribedTopicNames, r.SubscribedTopicRegex = nil, ptr("orders-.*")
	a, err := g.heartbeat(r, "", topics, clk.now())
	if err != nil || count(a) != 2 {
		t.Fatalf("regex join: %+v %v", a, err)
	}
	topics["orders-2"] = TopicInfo{ID: [16]byte{3}, Partitions: 3}
	g.topicsChanged(topics)
	a, _ = g.heartbeat(ConsumerHeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: a.MemberEpoch, RebalanceTimeout: -1, Owned: owned(a)}, "", topics, clk.now())
	if count(a) != 5 || a.MemberEpoch != 2 {
		t.Fatalf("after a new matching topic: %+v", a)
	}
	g.topicsChanged(topics) // nothing changed: no new epoch
	if g.epoch != 2 {
		t.Fatalf("epoch %d", g.epoch)
	}
}

func TestAssignors(t *testing.T) {
	members := func(n int, topics ...subscribedTopic) []memberTopics {
		var out []memberTopics
		for i := range n {
			out = append(out, memberTopics{id: fmt.Sprint("m", i), topics: topics})
		}
		return out
	}
	t1 := subscribedTopic{name: "t1", id: [16]byte{1}, partitions: 7}
	t2 := subscribedTopic{name: "t2", id: [16]byte{2}, partitions: 3}
	for _, n := range []int{1, 2, 3, 4, 11} {
		u := assignUniform(members(n, t1, t2), nil)
		total, lo, hi := 0, 1<<30, 0
		for _, s := range u {
			total += len(s)
			lo, hi = min(lo, len(s)), max(hi, len(s))
		}
		if total != 10 || hi-lo > 1 {
			t.Errorf("uniform %d members: total %d, sizes %d..%d", n, total, lo, hi)
		}
		// Sticky: recomputing with the result as previous changes nothing,
		// and one member more moves only what the newcomer takes.
		if again := assignUniform(members(n, t1, t2), u); !sameTarget(again, u) {
			t.Errorf("uniform %d members is not stable", n)
		}
		grown := assignUniform(members(n+1, t1, t2), u)
		moved := 0
		for id, s := range u {
			moved += len(s.minus(grown[id]))
		}
		if moved != len(grown[fmt.Sprint("m", n)]) {
			t.Errorf("uniform %d->%d members moved %d partitions, the newcomer got %d", n, n+1, moved, len(grown[fmt.Sprint("m", n)]))
		}
		r := assignRange(members(n, t1))
		total = 0
		for i := range n {
			total += len(r[fmt.Sprint("m", i)])
		}
		if total != 7 || len(r["m0"]) != (7+n-1)/n {
			t.Errorf("range %d members: total %d, first %d", n, total, len(r["m0"]))
		}
	}
}

func sameTarget(a, b map[string]tpSet) bool {
	if len(a) != len(b) {
		return false
	}
	for id, s := range a {
		if !s.equal(b[id]) {
			return false
		}
	}
	return true
}
