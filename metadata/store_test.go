package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-io/shoal/internal/raftgroup"
)

// testNode is one broker's metadata state: a directory and a cluster listener
// that outlive the stores opened on them.
type testNode struct {
	id     string
	dir    string
	mux    *raftgroup.Mux
	logger *slog.Logger
	peers  []raftgroup.Peer
}

func newTestNode(t *testing.T, id string) *testNode {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	mux, err := raftgroup.Listen("127.0.0.1:0", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	return &testNode{id: id, dir: t.TempDir(), mux: mux, logger: logger}
}

func (n *testNode) open(t *testing.T) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Dir: n.dir, NodeID: n.id, Mux: n.mux, Peers: n.peers, Logger: n.logger})
	if err != nil {
		t.Fatalf("open node %s: %v", n.id, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTestStore(t *testing.T) *Store { return newTestNode(t, "1").open(t) }

func TestStoreTopics(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	if id := s.Image().ClusterID; len(id) != 22 || !s.IsLeader() || s.LeaderID() != "1" {
		t.Fatalf("cluster id %q, leader %v %q", id, s.IsLeader(), s.LeaderID())
	}

	orders, err := s.CreateTopic(ctx, TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "60000"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(orders.Partitions) != 3 || orders.ID.IsZero() || orders.Configs["retention.ms"] != "60000" {
		t.Fatalf("created %+v", orders)
	}
	for i, p := range orders.Partitions {
		if p.Index != int32(i) || p.Stream == 0 || p.WALGroup != 0 {
			t.Errorf("partition %+v", p)
		}
	}
	if im := s.Image(); im.Topics["orders"] != orders || im.TopicsByID[orders.ID] != orders {
		t.Fatal("image does not hold the created topic")
	}
	if _, err := s.CreateTopic(ctx, TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate: %v", err)
	}

	for _, tc := range []struct {
		spec TopicSpec
		want error
	}{
		{TopicSpec{Name: "bad name", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{TopicSpec{Name: "..", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{TopicSpec{Name: strings.Repeat("x", 250), Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{TopicSpec{Name: "x", Partitions: 0, ReplicationFactor: 1}, ErrInvalidPartitions},
		{TopicSpec{Name: "x", Partitions: -2, ReplicationFactor: 1}, ErrInvalidPartitions},
		{TopicSpec{Name: "x", Partitions: MaxPartitions + 1, ReplicationFactor: 1}, ErrInvalidPartitions},
		{TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 0}, ErrInvalidReplicationFactor},
		{TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: -3}, ErrInvalidReplicationFactor},
		{TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "soon"}}, ErrInvalidConfig},
		{TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"bogus": "1"}}, ErrInvalidConfig},
	} {
		if _, err := s.CreateTopic(ctx, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("CreateTopic(%q, %d, %d, %v) = %v, want %v", tc.spec.Name, tc.spec.Partitions, tc.spec.ReplicationFactor, tc.spec.Configs, err, tc.want)
		}
	}
	if _, ok := s.Image().Topics["x"]; ok {
		t.Fatal("a rejected topic was created")
	}

	def, err := s.CreateTopic(ctx, TopicSpec{Name: "defaults", Partitions: -1, ReplicationFactor: -1, WALGroups: []uint32{4, 5}})
	if err != nil || len(def.Partitions) != 1 || def.ReplicationFactor != 1 || def.Partitions[0].WALGroup != 4 {
		t.Fatalf("defaults: %+v, %v", def, err)
	}

	// Delete and recreate: new topic id, new stream ids.
	deleted, err := s.DeleteTopic(ctx, "orders")
	if err != nil || deleted.ID != orders.ID || len(deleted.Partitions) != 3 {
		t.Fatalf("delete: %+v, %v", deleted, err)
	}
	if _, err := s.DeleteTopic(ctx, "orders"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("second delete: %v", err)
	}
	if _, ok := s.Image().TopicsByID[orders.ID]; ok {
		t.Fatal("deleted topic still found by id")
	}
	again, err := s.CreateTopic(ctx, TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == orders.ID || len(again.Configs) != 0 {
		t.Fatalf("recreated topic kept id or configs: %+v", again)
	}
	for i := range again.Partitions {
		if again.Partitions[i].Stream <= def.Partitions[0].Stream {
			t.Errorf("recreated partition %d has old-range stream %d", i, again.Partitions[i].Stream)
		}
	}

	// Grow only, with fresh streams.
	grown, err := s.CreatePartitions(ctx, "orders", 5)
	if err != nil || len(grown.Partitions) != 5 {
		t.Fatalf("grow: %+v, %v", grown, err)
	}
	if !slices.Equal(grown.Partitions[:3], again.Partitions) || grown.Partitions[3].Stream != s.Image().NextStreamID-2 ||
		grown.Partitions[4].Stream != s.Image().NextStreamID-1 || grown.Partitions[4].Index != 4 {
		t.Fatalf("grown partitions %+v", grown.Partitions)
	}
	for _, total := range []int32{5, 2, MaxPartitions + 1} {
		if _, err := s.CreatePartitions(ctx, "orders", total); !errors.Is(err, ErrInvalidPartitions) {
			t.Errorf("CreatePartitions to %d: %v", total, err)
		}
	}
	if _, err := s.CreatePartitions(ctx, "nope", 2); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("CreatePartitions unknown: %v", err)
	}
	if _, err := s.CreateTopic(ctx, TopicSpec{Name: "order_s", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx, TopicSpec{Name: "order.s", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrInvalidTopicName) {
		t.Errorf("colliding name: %v", err)
	}
	if got := s.Image().SortedTopicNames(); !slices.Equal(got, []string{"defaults", "order_s", "orders"}) {
		t.Errorf("SortedTopicNames = %v", got)
	}
}

func TestStoreConfigsAndBrokers(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	if _, err := s.CreateTopic(ctx, TopicSpec{Name: "logs", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "1000", "cleanup.policy": "compact"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AlterTopicConfigs(ctx, "logs", map[string]string{"retention.bytes": "1024"}, []string{"cleanup.policy"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"retention.ms": "1000", "retention.bytes": "1024"}
	if got := s.Image().Topics["logs"].Configs; !reflect.DeepEqual(got, want) {
		t.Fatalf("configs %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name string
		set  map[string]string
		del  []string
		want error
	}{
		{"logs", map[string]string{"retention.ms": "x"}, nil, ErrInvalidConfig},
		{"logs", map[string]string{"nope": "1"}, nil, ErrInvalidConfig},
		{"logs", nil, []string{"nope"}, ErrInvalidConfig},
		{"logs", map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, nil, ErrInvalidConfig},
		{"missing", map[string]string{"retention.ms": "1"}, nil, ErrUnknownTopic},
	} {
		if err := s.AlterTopicConfigs(ctx, tc.name, tc.set, tc.del); !errors.Is(err, tc.want) {
			t.Errorf("AlterTopicConfigs(%s, %v, %v) = %v, want %v", tc.name, tc.set, tc.del, err, tc.want)
		}
	}
	if got := s.Image().Topics["logs"].Configs; !reflect.DeepEqual(got, want) {
		t.Fatalf("rejected alter changed configs: %v", got)
	}

	b2 := Broker{ID: 2, Host: "10.0.0.2", Port: 9092, ClusterAddr: "10.0.0.2:9093"}
	b1 := Broker{ID: 1, Host: "10.0.0.1", Port: 9092, Rack: "a"}
	for _, b := range []Broker{b2, b1} {
		if err := s.RegisterBroker(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	b1.Port = 19092
	if err := s.RegisterBroker(ctx, b1); err != nil {
		t.Fatal(err)
	}
	if got := s.Image().SortedBrokers(); !reflect.DeepEqual(got, []Broker{b1, b2}) {
		t.Fatalf("brokers %+v", got)
	}
	for _, bad := range []Broker{{ID: -1, Host: "h", Port: 1}, {ID: 1, Port: 1}, {ID: 1, Host: "h", Port: 70000}} {
		if err := s.RegisterBroker(ctx, bad); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("RegisterBroker(%+v) = %v", bad, err)
		}
	}
}

func TestStoreProducerIDsNeverOverlap(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	const workers, rounds, block = 4, 10, 1000
	firsts := make(chan int64, workers*rounds)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				first, err := s.AllocateProducerIDs(t.Context(), block)
				if err != nil {
					t.Error(err)
					return
				}
				firsts <- first
			}
		})
	}
	wg.Wait()
	close(firsts)
	got := slices.Sorted(func(yield func(int64) bool) {
		for f := range firsts {
			if !yield(f) {
				return
			}
		}
	})
	for i, f := range got {
		if f != int64(i)*block {
			t.Fatalf("blocks %v overlap or leave gaps", got)
		}
	}
	if next := s.Image().NextProducerID; next != workers*rounds*block {
		t.Fatalf("next producer id %d", next)
	}
	for _, n := range []int64{0, -1, 1 << 40} {
		if _, err := s.AllocateProducerIDs(t.Context(), n); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("AllocateProducerIDs(%d) = %v", n, err)
		}
	}
}

func TestStoreChanged(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ch := s.Changed()
	before := s.Image()
	select {
	case <-ch:
		t.Fatal("Changed fired before a change")
	default:
	}
	if _, err := s.CreateTopic(t.Context(), TopicSpec{Name: "w", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed did not fire")
	}
	if s.Image() == before || s.Image().Topics["w"] == nil || before.Topics["w"] != nil {
		t.Fatal("image not replaced, or the old image changed")
	}
	select {
	case <-s.Changed():
		t.Fatal("the new Changed channel is already closed")
	default:
	}
}

func TestStoreConcurrentCreateOneWins(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.CreateTopic(t.Context(), TopicSpec{Name: "race", Partitions: 2, ReplicationFactor: 1})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrTopicExists):
			t.Errorf("loser got %v", err)
		}
	}
	if wins != 1 || s.Image().NextStreamID != 3 {
		t.Fatalf("%d winners, next stream %d", wins, s.Image().NextStreamID)
	}
}

// writeSome makes changes of every kind; the name suffix keeps rounds apart.
func writeSome(t *testing.T, s *Store, round int) {
	t.Helper()
	ctx := t.Context()
	name := fmt.Sprintf("t%d", round)
	if _, err := s.CreateTopic(ctx, TopicSpec{Name: name, Partitions: 2, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "1000"}, WALGroups: []uint32{0, 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePartitions(ctx, name, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.AlterTopicConfigs(ctx, name, map[string]string{"cleanup.policy": "compact"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx, TopicSpec{Name: name + "-gone", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	writeObjects(t, s, name)
	if _, err := s.DeleteTopic(ctx, name+"-gone"); err != nil {
		t.Fatal(err)
	}
	compactObjects(t, s, name)
	if _, err := s.AllocateProducerIDs(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterBroker(ctx, Broker{ID: int32(round), Host: "h", Port: 9092}); err != nil {
		t.Fatal(err)
	}
}

func TestStoreRestart(t *testing.T) {
	t.Parallel()
	node := newTestNode(t, "1")
	s := node.open(t)
	writeSome(t, s, 1)
	want := s.Image()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(t.Context(), TopicSpec{Name: "late", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}

	s = node.open(t)
	if got := s.Image(); !reflect.DeepEqual(got, want) {
		t.Fatalf("image after restart differs:\n got %+v\nwant %+v", got, want)
	}

	// Snapshot, write more, restart: snapshot plus log replay.
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	writeSome(t, s, 2)
	want = s.Image()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = node.open(t)
	if got := s.Image(); !reflect.DeepEqual(got, want) {
		t.Fatalf("image after snapshot and restart differs:\n got %+v\nwant %+v", got, want)
	}
	if want.ClusterID == "" || want.NextProducerID != 200 || len(want.Topics) != 2 || want.NextStreamID != 9 ||
		len(want.Objects) != 2 || len(want.PendingDeletes) != 6 {
		t.Fatalf("unexpected image %+v", want)
	}
	// Counters continue after the restart.
	top, err := s.CreateTopic(t.Context(), TopicSpec{Name: "after", Partitions: 1, ReplicationFactor: 1})
	if err != nil || top.Partitions[0].Stream != want.NextStreamID {
		t.Fatalf("create after restart: %+v, %v", top, err)
	}
	if first, err := s.AllocateProducerIDs(t.Context(), 1); err != nil || first != want.NextProducerID {
		t.Fatalf("producer ids after restart: %d, %v", first, err)
	}
}

func TestStoreThreeVoters(t *testing.T) {
	t.Parallel()
	nodes := []*testNode{newTestNode(t, "1"), newTestNode(t, "2"), newTestNode(t, "3")}
	var peers []raftgroup.Peer
	for _, n := range nodes {
		peers = append(peers, raftgroup.Peer{ID: n.id, Address: n.mux.Addr().String()})
	}
	stores := make([]*Store, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		n.peers = peers
		wg.Go(func() { stores[i] = n.open(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var leader *Store
	var followers []*Store
	for _, s := range stores {
		if s.Image().ClusterID != stores[0].Image().ClusterID {
			t.Fatalf("cluster ids differ: %q, %q", s.Image().ClusterID, stores[0].Image().ClusterID)
		}
		if s.IsLeader() {
			leader = s
		} else {
			followers = append(followers, s)
		}
	}
	if leader == nil || len(followers) != 2 {
		t.Fatalf("leader %v, %d followers", leader != nil, len(followers))
	}
	top, err := leader.CreateTopic(t.Context(), TopicSpec{Name: "shared", Partitions: 2, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range followers {
		deadline := time.After(5 * time.Second)
		for {
			ch := f.Changed()
			if got := f.Image().Topics["shared"]; got != nil {
				if !reflect.DeepEqual(got, top) {
					t.Fatalf("follower topic %+v, leader %+v", got, top)
				}
				break
			}
			select {
			case <-ch:
			case <-deadline:
				t.Fatal("follower did not apply the topic")
			}
		}
		// A follower's write reaches the leader and shows in its own image
		// on return.
		name := "f" + f.cfg.NodeID
		if top, err := f.CreateTopic(t.Context(), TopicSpec{Name: name, Partitions: 1, ReplicationFactor: 1}); err != nil ||
			!reflect.DeepEqual(f.Image().Topics[name], top) {
			t.Fatalf("follower write: %+v, %v", top, err)
		}
	}
}

func TestOpenFails(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "1")
	for _, cfg := range []Config{
		{NodeID: "1", Mux: n.mux},
		{Dir: n.dir, Mux: n.mux},
		{Dir: n.dir, NodeID: "1"},
	} {
		if _, err := Open(t.Context(), cfg); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Open(%+v) = %v, want ErrInvalidRequest", cfg, err)
		}
	}
	// A voter whose peers never start cannot elect a leader: Open gives up
	// when ctx ends and releases the group, so it can be opened again.
	n.peers = []raftgroup.Peer{{ID: "1", Address: n.mux.Addr().String()}, {ID: "2", Address: "127.0.0.1:1"}, {ID: "3", Address: "127.0.0.1:2"}}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := Open(ctx, Config{Dir: n.dir, NodeID: "1", Mux: n.mux, Peers: n.peers, Logger: discardLogger()}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open without quorum = %v, want DeadlineExceeded", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := Open(ctx, Config{Dir: n.dir, NodeID: "1", Mux: n.mux, Peers: n.peers, Logger: discardLogger()}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Open without quorum = %v, want DeadlineExceeded", err)
	}
}

// writeObjects commits objects of topic name and of name+"-gone".
func writeObjects(t *testing.T, s *Store, name string) {
	t.Helper()
	im := s.Image()
	p0, gone := im.Topics[name].Partitions[0].Stream, im.Topics[name+"-gone"].Partitions[0].Stream
	p1 := im.Topics[name].Partitions[1].Stream
	for _, o := range []Object{
		sso(name+"/a", rng(p0, 0, 10), rng(gone, 0, 10)),
		sso(name+"/b", rng(gone, 10, 20)),
		sso(name+"/c", rng(p1, 0, 5), rng(p0, 10, 20)), // out of order: CommitObject sorts
	} {
		if err := s.CommitObject(t.Context(), o); err != nil {
			t.Fatalf("commit %s: %v", o.Key, err)
		}
	}
}

// compactObjects compacts what writeObjects committed into stream objects,
// trims one of them away and forgets one pending delete.
func compactObjects(t *testing.T, s *Store, name string) {
	t.Helper()
	ctx := t.Context()
	p0, p1 := s.Image().Topics[name].Partitions[0].Stream, s.Image().Topics[name].Partitions[1].Stream
	if err := s.CompactObjects(ctx, []string{name + "/a", name + "/c"},
		[]Object{so(name+"/s0", rng(p0, 0, 20)), so(name+"/s1", rng(p1, 0, 5))}, 1000, 60_000); err != nil {
		t.Fatal(err)
	}
	if err := s.TrimStream(ctx, p1, 5, 2000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.ObjectsDeleted(ctx, []string{name + "/b"}); err != nil {
		t.Fatal(err)
	}
	im := s.Image()
	if ref, ok := im.Locate(p0, 15); !ok || ref.Key != name+"/s0" || im.Objects[name+"/s1"] != nil {
		t.Fatalf("after compaction: Locate = %+v, %v", ref, ok)
	}
	if err := im.checkObjectIndex(); err != nil {
		t.Fatal(err)
	}
}

func TestStoreObjects(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	top, err := s.CreateTopic(ctx, TopicSpec{Name: "obj", Partitions: 2, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := top.Partitions[0].Stream, top.Partitions[1].Stream
	a := sso("a", rng(p0, 100, 110), rng(p1, 0, 10))
	if err := s.CommitObject(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitObject(ctx, a); err != nil {
		t.Fatalf("retried commit: %v", err)
	}
	for _, tc := range []struct {
		o    Object
		want error
	}{
		{sso("a", rng(p0, 110, 120)), ErrObjectExists},
		{sso("b", rng(p0, 111, 120)), ErrRangeConflict},
		{sso("b", rng(p0, 105, 120)), ErrRangeConflict},
		{sso("b", rng(p0, 110, 110)), ErrRangeConflict},
		{sso("", rng(p0, 110, 120)), ErrInvalidRequest},
	} {
		if err := s.CommitObject(ctx, tc.o); !errors.Is(err, tc.want) {
			t.Errorf("CommitObject(%+v) = %v, want %v", tc.o, err, tc.want)
		}
	}
	if err := s.CommitObject(ctx, sso("b", rng(p0, 110, 120))); err != nil {
		t.Fatal(err)
	}
	if err := s.CompactObjects(ctx, []string{"a", "x"}, []Object{so("c", rng(p0, 100, 120))}, 1, 1); !errors.Is(err, ErrUnknownObject) {
		t.Errorf("compaction of an unknown input: %v", err)
	}
	if err := s.CompactObjects(ctx, []string{"a", "b"}, []Object{so("c", rng(p0, 100, 120))}, 1, 1); !errors.Is(err, ErrRangeConflict) {
		t.Errorf("compaction that loses a stream: %v", err)
	}
	if err := s.CompactObjects(ctx, nil, nil, 1, 1); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("compaction without inputs: %v", err)
	}
	if err := s.TrimStream(ctx, 999, 1, 1, 1); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("trim of an unknown stream: %v", err)
	}
	if s.Image().StreamObjectsOf(p0).EndOffset != 120 || len(s.Image().Objects) != 2 {
		t.Fatal("a refused write changed the index")
	}
	if _, err := s.DeleteTopicAt(ctx, "obj", 5000, 700); err != nil {
		t.Fatal(err)
	}
	if got := pendingKeys(s.Image()); !slices.Equal(got, []string{"a@5700", "b@5700"}) || len(s.Image().Objects) != 0 {
		t.Fatalf("pending after delete %v", got)
	}
}
