package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/internal/raftgroup"
)

// testCluster is an in-process metadata group: every member has its own
// cluster listener on 127.0.0.1.
type testCluster struct {
	nodes  []*testNode
	stores []*Store
}

// newTestCluster starts voters voting members and nonVoters non-voting ones
// (the last ones), and waits until every member is open.
func newTestCluster(t *testing.T, voters, nonVoters int) *testCluster {
	t.Helper()
	c := &testCluster{}
	var peers []raftgroup.Peer
	for i := range voters + nonVoters {
		n := newTestNode(t, fmt.Sprint(i+1))
		c.nodes = append(c.nodes, n)
		peers = append(peers, raftgroup.Peer{ID: n.id, Address: n.mux.Addr().String()})
	}
	peers = VoterPeers(peers, voters)
	c.stores = make([]*Store, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		n.peers = peers
		wg.Go(func() { c.stores[i] = n.open(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return c
}

// leader waits for a leader among the open stores.
func (c *testCluster) leader(t *testing.T) *Store {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.stores {
			if !s.closed.Load() && s.IsLeader() {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no metadata leader")
	return nil
}

// others returns the open stores other than s.
func (c *testCluster) others(s *Store) []*Store {
	var out []*Store
	for _, o := range c.stores {
		if o != s && !o.closed.Load() {
			out = append(out, o)
		}
	}
	return out
}

// close closes every store and listener.
func (c *testCluster) close() {
	for _, s := range c.stores {
		s.Close()
	}
	for _, n := range c.nodes {
		n.mux.Close()
	}
}

// converge waits until every store has applied as far as the furthest one,
// then checks that they hold the same image and request outcomes.
func converge(t *testing.T, stores []*Store) {
	t.Helper()
	var target uint64
	for _, s := range stores {
		target = max(target, s.fsm.applied.Load())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, s := range stores {
		if err := s.waitApplied(ctx, target); err != nil {
			t.Fatalf("node %s did not apply index %d: %v", s.cfg.NodeID, target, err)
		}
	}
	var want []byte
	for i, s := range stores {
		var buf bytes.Buffer
		if err := encodeSnapshot(&buf, s.Image()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = buf.Bytes()
		} else if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("node %s image differs from node %s:\n%s\n%s", s.cfg.NodeID, stores[0].cfg.NodeID, buf.Bytes(), want)
		}
	}
}

// goroutines returns the stacks of the running goroutines, leaving out
// hashicorp/raft's handlers of inbound connections: NetworkTransport.Close
// does not close them, they end when the peer closes its side.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "raft.(*NetworkTransport).handleConn") {
			out = append(out, g)
		}
	}
	return out
}

// waitGoroutines waits until no more than want goroutines (as goroutines
// counts them) run.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		gs := goroutines()
		if len(gs) <= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d:\n%s", len(gs), want, strings.Join(gs, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeOffsets commits, deletes and expires offsets of topic name on s and
// checks each change in s's own image on return.
func writeOffsets(t *testing.T, s *Store, name string) {
	t.Helper()
	ctx := t.Context()
	group := "g-" + name
	if err := s.CommitOffsets(ctx, group, []OffsetCommit{oc(name, 0, 5), oc(name, 1, 7), oc(name, 2, 9)}); err != nil {
		t.Fatal(err)
	}
	if got := offsetsOf(s.Image(), group); len(got) != 3 || got[TopicPartition{name, 1}] != 7 {
		t.Fatalf("offsets after commit: %v", got)
	}
	if err := s.DeleteGroupOffsets(ctx, group, []TopicPartition{{name, 0}}); err != nil {
		t.Fatal(err)
	}
	if got := offsetsOf(s.Image(), group); len(got) != 2 {
		t.Fatalf("offsets after delete: %v", got)
	}
	// oc commits at 1000 ms: at 5000 ms with a retention of 1000 ms both expired.
	if n, err := s.ExpireGroupOffsets(ctx, group, 5000, 1000); err != nil || n != 2 {
		t.Fatalf("expire: %d, %v", n, err)
	}
	if got := s.Image().GroupOffsets(group); got != nil {
		t.Fatalf("offsets after expiry: %v", got)
	}
}

// TestForwardEveryWrite calls every write on the followers of a 3-voter
// group with a non-voter: each write reaches the leader, shows in the
// caller's image on return, and every member ends with the same image.
// Sentinel errors of the leader's FSM survive forwarding, and producer id
// blocks allocated from every member at once never overlap.
func TestForwardEveryWrite(t *testing.T) {
	before := len(goroutines())
	c := newTestCluster(t, 3, 1)
	leader := c.leader(t)
	nonVoter := c.stores[3]
	f := nonVoter.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if servers := f.Configuration().Servers; len(servers) != 4 || servers[3].Suffrage != raft.Nonvoter ||
		servers[0].Suffrage != raft.Voter || nonVoter.IsLeader() {
		t.Fatalf("configuration %+v, non-voter leads %v", servers, nonVoter.IsLeader())
	}

	followers := c.others(leader)
	for round, s := range followers {
		writeSome(t, s, round+1)
		writeOffsets(t, s, fmt.Sprintf("t%d", round+1))
	}
	converge(t, c.stores)
	if im := leader.Image(); len(im.Topics) != len(followers) || len(im.Brokers) != len(followers) {
		t.Fatalf("leader image: %d topics, %d brokers", len(im.Topics), len(im.Brokers))
	}

	t.Run("sentinels", func(t *testing.T) { testForwardSentinels(t, nonVoter) })
	t.Run("producer ids", func(t *testing.T) { testForwardProducerIDs(t, c) })
	converge(t, c.stores)

	c.close()
	waitGoroutines(t, before)
}

// testForwardSentinels proposes commands that the leader's FSM rejects from
// a follower (past the local fast checks, which would answer first).
func testForwardSentinels(t *testing.T, s *Store) {
	ctx := t.Context()
	top := s.Image().Topics["t1"]
	p0 := top.Partitions[0].Stream
	end := s.Image().StreamObjectsOf(p0).EndOffset
	for _, tc := range []struct {
		cmd  Command
		want error
	}{
		{CreateTopicCmd{Name: "t1", ID: newTopicID(s.Image()), Partitions: 1, ReplicationFactor: 1, WALGroups: []uint32{0}}, ErrTopicExists},
		{DeleteTopicCmd{Name: "nope"}, ErrUnknownTopic},
		{CreatePartitionsCmd{Name: "t1", Total: 2}, ErrInvalidPartitions},
		{AlterTopicConfigsCmd{Name: "nope"}, ErrUnknownTopic},
		{CommitObjectCmd{Object: sso("gap", rng(p0, end+1, end+5))}, ErrRangeConflict},
		{CommitObjectCmd{Object: sso("t1/s0", rng(p0, end, end+5))}, ErrObjectExists},
		{CompactObjectsCmd{Inputs: []string{"no-such-object"}}, ErrUnknownObject},
		{TrimStreamCmd{Stream: 1 << 40, NewStart: 1}, ErrUnknownTopic},
		{CommitOffsetsCmd{Group: "g", Offsets: []OffsetCommit{oc("nope", 0, 1)}}, ErrUnknownTopic},
	} {
		_, err := s.propose(ctx, tc.cmd)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s from a follower = %v, want %v", tc.cmd.Type(), err, tc.want)
		}
	}
	// Through the write methods: fast checks and FSM answers alike.
	if _, err := s.CreateTopic(ctx, TopicSpec{Name: "t1", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrTopicExists) {
		t.Errorf("CreateTopic of an existing topic = %v", err)
	}
	if err := s.AlterTopicConfigs(ctx, "t1", map[string]string{"retention.ms": "soon"}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("AlterTopicConfigs with a bad value = %v", err)
	}
	if err := s.CommitObject(ctx, sso("gap2", rng(p0, end+1, end+5))); !errors.Is(err, ErrRangeConflict) {
		t.Errorf("CommitObject with a gap = %v", err)
	}
	if _, err := s.CreatePartitions(ctx, "nope", 3); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("CreatePartitions of an unknown topic = %v", err)
	}
	// A write too large for one RPC frame fails without retries: retries
	// would go on for the whole apply timeout (10 s). Encoding the 16 MiB
	// command alone takes seconds under the race detector on a busy
	// machine, hence the wide bound.
	start := time.Now()
	err := s.ObjectsDeleted(ctx, []string{strings.Repeat("k", raftgroup.DefaultMaxRPCFrame)})
	if !errors.Is(err, ErrInvalidRequest) || !errors.Is(err, raftgroup.ErrFrameTooLarge) || time.Since(start) > DefaultApplyTimeout*8/10 {
		t.Errorf("oversized forward = %.200v after %v", err, time.Since(start))
	}
}

// testForwardProducerIDs allocates blocks from every member at once.
func testForwardProducerIDs(t *testing.T, c *testCluster) {
	start := c.stores[0].Image().NextProducerID
	const perMember, block = 20, 3
	firsts := make([][]int64, len(c.stores))
	var wg sync.WaitGroup
	for i, s := range c.stores {
		wg.Go(func() {
			for range perMember {
				first, err := s.AllocateProducerIDs(t.Context(), block)
				if err != nil {
					t.Errorf("node %s: %v", s.cfg.NodeID, err)
					return
				}
				if s.Image().NextProducerID < first+block {
					t.Errorf("node %s does not see its own block at %d", s.cfg.NodeID, first)
				}
				firsts[i] = append(firsts[i], first)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(firsts...)
	slices.Sort(all)
	for i, first := range all {
		if first != start+int64(i)*block {
			t.Fatalf("blocks overlap or leave gaps: %v", all)
		}
	}
	converge(t, c.stores)
	if got, want := c.stores[0].Image().NextProducerID, start+int64(len(c.stores)*perMember*block); got != want {
		t.Fatalf("next producer id %d, want %d", got, want)
	}
}

// TestForwardLeaderLoss drops forwarded answers after the leader applied the
// write, then closes the leader while every survivor writes: each write
// succeeds after the re-election, and none applies twice.
func TestForwardLeaderLoss(t *testing.T) {
	before := len(goroutines())
	c := newTestCluster(t, 3, 1)
	leader := c.leader(t)
	survivors := c.others(leader)

	// Lose the answer of a forward that the leader applied: the retry gets
	// the first outcome.
	var drop, failed atomic.Int32
	for _, s := range survivors {
		s.hooks.afterForward = func(addr string, reply []byte, err error) ([]byte, error) {
			if err != nil || bytes.Contains(reply, []byte(`"retry":true`)) {
				failed.Add(1)
			}
			if err == nil && drop.Add(-1) >= 0 {
				return nil, errors.New("injected: answer lost")
			}
			return reply, err
		}
	}
	s := survivors[0]
	drop.Store(1)
	top, err := s.CreateTopic(t.Context(), TopicSpec{Name: "lost", Partitions: 2, ReplicationFactor: 3})
	if err != nil || drop.Load() >= 0 {
		t.Fatalf("CreateTopic with a lost answer = %+v, %v (drops left %d)", top, err, drop.Load())
	}
	if got := s.Image().Topics["lost"]; got == nil || got.ID != top.ID {
		t.Fatalf("image topic %+v, returned %+v", got, top)
	}
	pid := s.Image().NextProducerID
	drop.Store(1)
	if first, err := s.AllocateProducerIDs(t.Context(), 10); err != nil || first != pid {
		t.Fatalf("AllocateProducerIDs with a lost answer = %d, %v; want %d", first, err, pid)
	}
	if first, err := s.AllocateProducerIDs(t.Context(), 10); err != nil || first != pid+10 {
		t.Fatalf("next allocation = %d, %v; want %d (the retry applied twice?)", first, err, pid+10)
	}
	pid += 20

	// Every survivor writes until it has written after the leader closed.
	var (
		stop    = make(chan struct{})
		closed  atomic.Bool
		wg      sync.WaitGroup
		allocs  atomic.Int64
		created = make([][]string, len(survivors))
		after   = make([]atomic.Int32, len(survivors))
	)
	for i, s := range survivors {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.AllocateProducerIDs(t.Context(), 1); err != nil {
					t.Errorf("node %s allocate: %v", s.cfg.NodeID, err)
					return
				}
				allocs.Add(1)
				name := fmt.Sprintf("s%s-%d", s.cfg.NodeID, n)
				if _, err := s.CreateTopic(t.Context(), TopicSpec{Name: name, Partitions: 1, ReplicationFactor: 3}); err != nil {
					t.Errorf("node %s create %s: %v", s.cfg.NodeID, name, err)
					return
				}
				created[i] = append(created[i], name)
				if closed.Load() {
					after[i].Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	closed.Store(true)
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; i < len(survivors) && !t.Failed(); {
		if after[i].Load() >= 5 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Errorf("node %s wrote %d times after the leader closed", survivors[i].cfg.NodeID, after[i].Load())
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if l := c.leader(t); l == leader {
		t.Fatal("the closed store still leads")
	}
	t.Logf("%d forwards failed or were refused around the leader change", failed.Load())
	converge(t, survivors)
	im := survivors[0].Image()
	if got, want := im.NextProducerID, pid+allocs.Load(); got != want {
		t.Fatalf("next producer id %d after %d allocations of 1, want %d: a write applied twice", got, allocs.Load(), want)
	}
	total := 1 // "lost"
	for i := range created {
		for _, name := range created[i] {
			if im.Topics[name] == nil {
				t.Fatalf("topic %s created but missing", name)
			}
		}
		total += len(created[i])
	}
	if len(im.Topics) != total {
		t.Fatalf("%d topics, %d created", len(im.Topics), total)
	}
	c.close()
	waitGoroutines(t, before)
}

// TestForwardResultsSurviveSnapshots checks the request table: a repeated
// request id gets the first outcome, also after a snapshot round trip, and
// the table forgets the oldest ids beyond its bound.
func TestForwardResultsSurviveSnapshots(t *testing.T) {
	t.Parallel()
	f := newFSM(discardLogger())
	index := uint64(0)
	apply := func(f *fsm, id string, c Command) any {
		t.Helper()
		b, err := EncodeCommand(RequestCmd{ID: id, Cmd: c})
		if err != nil {
			t.Fatal(err)
		}
		index++
		return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: b})
	}
	spec := CreateTopicCmd{Name: "a", ID: testID, Partitions: 2, ReplicationFactor: 1, WALGroups: []uint32{0}}
	first, ok := apply(f, "r1", spec).(*Topic)
	if !ok || f.current().Topics["a"] != first {
		t.Fatalf("first create: %#v", first)
	}
	again, ok := apply(f, "r1", spec).(*Topic)
	if !ok || !reflect.DeepEqual(again, first) || f.applied.Load() != 2 {
		t.Fatalf("repeated create: %#v (applied %d)", again, f.applied.Load())
	}
	if err, _ := apply(f, "r2", spec).(error); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("new create of the same name: %v", err)
	}
	if pid := apply(f, "r3", AllocateProducerIDsCmd{N: 5}); pid != int64(0) {
		t.Fatalf("allocation: %v", pid)
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := encodeState(&buf, snap.(fsmSnapshot)); err != nil {
		t.Fatal(err)
	}
	g := newFSM(discardLogger())
	if err := g.Restore(nopCloser{bytes.NewReader(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if g.applied.Load() != 4 || !reflect.DeepEqual(g.requests.records(), f.requests.records()) {
		t.Fatalf("restored applied %d, %d requests", g.applied.Load(), len(g.requests.records()))
	}
	if err, _ := apply(g, "r2", spec).(error); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("repeated failed create after restore: %v", err)
	}
	if pid := apply(g, "r3", AllocateProducerIDsCmd{N: 5}); pid != int64(0) || g.current().NextProducerID != 5 {
		t.Fatalf("repeated allocation after restore: %v, next %d", pid, g.current().NextProducerID)
	}

	// The oldest ids are forgotten beyond the bound: r3 applies again.
	for i := range maxRequests {
		apply(g, fmt.Sprintf("x%d", i), AllocateProducerIDsCmd{N: 1})
	}
	if len(g.requests.records()) != maxRequests || g.requests.records()[0].ID != "x0" {
		t.Fatalf("table holds %d records", len(g.requests.records()))
	}
	if pid := apply(g, "r3", AllocateProducerIDsCmd{N: 5}); pid != int64(5+maxRequests) {
		t.Fatalf("forgotten request applied at %v", pid)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestResultCodes checks that every sentinel survives encoding, alone and
// wrapped together with another.
func TestResultCodes(t *testing.T) {
	t.Parallel()
	for _, s := range sentinels {
		err := fmt.Errorf("create topic x: %w: %w", s.err, raft.ErrLeadershipLost)
		got, derr := encodeResult(err).decode(CmdCreateTopic)
		if got != nil || !errors.Is(derr, s.err) || derr.Error() != err.Error() {
			t.Errorf("%s: decoded %v, %v", s.code, got, derr)
		}
		for _, other := range sentinels {
			if other.err != s.err && errors.Is(derr, other.err) {
				t.Errorf("%s also matches %s", s.code, other.code)
			}
		}
	}
	two := fmt.Errorf("%w: snapshot: %w", ErrInvalidCommand, ErrRangeConflict)
	if _, err := encodeResult(two).decode(CmdCommitObject); !errors.Is(err, ErrInvalidCommand) || !errors.Is(err, ErrRangeConflict) {
		t.Errorf("two sentinels: %v", err)
	}
	for _, tc := range []struct {
		t CommandType
		v any
	}{
		{CmdAllocateProducerIDs, int64(1) << 40},
		{CmdExpireGroupOffsets, 3},
		{CmdAlterTopicConfigs, nil},
		{CmdCreateTopic, &Topic{Name: "a", ID: testID, Partitions: []Partition{{Index: 0, Stream: 1}}, Configs: map[string]string{}}},
	} {
		got, err := encodeResult(tc.v).decode(tc.t)
		if err != nil || !reflect.DeepEqual(got, tc.v) {
			t.Errorf("%s: %#v round trips to %#v, %v", tc.t, tc.v, got, err)
		}
	}
	if _, err := (result{Value: []byte(`{"bogus":1}`)}).decode(CmdCreateTopic); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("bad value: %v", err)
	}
}

// TestTransferLeadership: the leader hands the group to another voter and
// returns once that voter leads; a follower's call is a no-op.
func TestTransferLeadership(t *testing.T) {
	c := newTestCluster(t, 3, 0)
	defer c.close()
	old := c.leader(t)
	for _, f := range c.others(old) {
		if err := f.TransferLeadership(t.Context()); err != nil {
			t.Fatalf("follower: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := old.TransferLeadership(ctx); err != nil {
		t.Fatal(err)
	}
	if old.IsLeader() || old.LeaderID() == "" || old.LeaderID() == old.cfg.NodeID {
		t.Fatalf("after the transfer: leader %q, old leader %q still leads: %v", old.LeaderID(), old.cfg.NodeID, old.IsLeader())
	}
	// Writes still work, through the new leader.
	if _, err := old.CreateTopic(t.Context(), TopicSpec{Name: "after-transfer", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
}
