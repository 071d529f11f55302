package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol/prototest"
)

func TestTopology(t *testing.T) {
	t.Parallel()
	p := func(id string) raftgroup.Peer { return raftgroup.Peer{ID: id, Address: "h" + id + ":1"} }
	ids := func(ps []raftgroup.Peer) string {
		var out []string
		for _, x := range ps {
			s := x.ID
			if x.NonVoter {
				s += "(nv)"
			}
			out = append(out, s)
		}
		return strings.Join(out, ",")
	}
	gids := func(gs [][]int32) []string {
		var out []string
		for _, g := range gs {
			var parts []string
			for _, id := range g {
				parts = append(parts, strconv.Itoa(int(id)))
			}
			out = append(out, strings.Join(parts, ","))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		self   int32
		peers  []raftgroup.Peer
		meta   string
		groups []string
	}{
		{"embedded", 1, nil, "", []string{"1"}},
		{"one", 7, []raftgroup.Peer{p("7")}, "", []string{"7"}},
		{"two", 2, []raftgroup.Peer{p("2"), p("1")}, "1,2", []string{"1,2", "2,1"}},
		{"three by id", 3, []raftgroup.Peer{p("10"), p("3"), p("9")}, "3,9,10", []string{"3,9,10", "9,10,3", "10,3,9"}},
		{"four", 1, []raftgroup.Peer{p("1"), p("2"), p("3"), p("4")}, "1,2,3,4(nv)",
			[]string{"1,2,3", "2,3,4", "3,4,1", "4,1,2"}},
		{"five", 1, []raftgroup.Peer{p("1"), p("2"), p("3"), p("4"), p("5")}, "1,2,3,4,5",
			[]string{"1,2,3", "2,3,4", "3,4,5", "4,5,1", "5,1,2"}},
	} {
		l := newBootstrapLayout(tc.self, "127.0.0.1:9093", tc.peers)
		if got := ids(l.meta); got != tc.meta {
			t.Errorf("%s: metadata members %q, want %q", tc.name, got, tc.meta)
		}
		if got := gids(l.groups); !slices.Equal(got, tc.groups) {
			t.Errorf("%s: groups %q, want %q", tc.name, got, tc.groups)
		}
		if len(l.members) != max(len(tc.peers), 1) {
			t.Errorf("%s: %d members", tc.name, len(l.members))
		}
	}
	im := &metadata.Image{WALGroups: make([]metadata.WALGroup, 3), Members: map[int32]metadata.Member{1: {}, 2: {}, 3: {}}}
	if got := groupIDs(im, 4); !slices.Equal(got, []uint32{1, 2, 0}) {
		t.Errorf("groupIDs(4) = %v", got)
	}
	if maxReplicationFactor(im) != 3 || maxReplicationFactor(&metadata.Image{}) != 1 {
		t.Errorf("max replication factor")
	}
}

func TestClusterConfigPeers(t *testing.T) {
	t.Parallel()
	peers := func(s string) []raftgroup.Peer {
		var out []raftgroup.Peer
		for e := range strings.SplitSeq(s, ",") {
			id, addr, _ := strings.Cut(e, "@")
			out = append(out, raftgroup.Peer{ID: id, Address: addr})
		}
		return out
	}
	for _, tc := range []struct {
		name, listen, peers string
		want                string // "" valid, else a substring of the error
	}{
		{"three", "127.0.0.1:9093", "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293", ""},
		{"any address", "0.0.0.0:9093", "2@10.0.0.2:9093,1@10.0.0.1:9093", ""},
		{"four", "127.0.0.1:9093", "1@127.0.0.1:9093,2@b:1,3@c:1,4@d:1", ""},
		{"not listed", "127.0.0.1:9093", "2@b:1,3@c:1", "not listed"},
		{"other address", "127.0.0.1:9093", "1@127.0.0.1:9999,2@b:1", "does not match cluster-listen"},
		{"other host", "127.0.0.1:9093", "1@10.0.0.1:9093,2@b:1", "does not match cluster-listen"},
		{"twice", "127.0.0.1:9093", "1@127.0.0.1:9093,1@b:1", "listed twice"},
		{"bad id", "127.0.0.1:9093", "1@127.0.0.1:9093,x@b:1", "bad node id"},
		{"bad address", "127.0.0.1:9093", "1@127.0.0.1:9093,2@b", "HOST:PORT"},
	} {
		c := DefaultConfig()
		c.ClusterListen, c.Peers = tc.listen, peers(tc.peers)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestClusterFailover: a 3-broker cluster agrees on leaders, serves
// producers and consumers through any broker, coordinates groups on the
// metadata leader, and keeps every acknowledged record, exactly once with
// dense offsets, when the broker leading the most partitions dies.
func TestClusterFailover(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBalanced(10 * time.Second)
	const topic, partitions = "failover", 6
	adm := kadm.NewClient(clusterClient(t, c.seeds()[:1]))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if resp, err := adm.CreateTopic(ctx, partitions, 3, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 4, nil, "rf4"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 4: %v", err)
	}

	// Every broker reports the same leaders, epochs, replicas and ISR,
	// spread over the three brokers.
	eventually(t, 10*time.Second, func() error {
		var first []partitionView
		for _, b := range c.running() {
			view, err := metadataView(t, b, topic)
			if err != nil {
				return err
			}
			if first == nil {
				first = view
				continue
			}
			if !slices.Equal(view, first) {
				return fmt.Errorf("broker %d sees %v, broker 1 %v", b.cfg.NodeID, view, first)
			}
		}
		for _, p := range first {
			if p.replicas != "[1 2 3]" || p.isr != "[1 2 3]" {
				return fmt.Errorf("replicas/isr %v", p)
			}
		}
		return nil
	})
	counts := leaderCounts(t, c.brokers[0], topic)
	if len(counts) != 3 {
		t.Fatalf("partitions led per broker: %v", counts)
	}

	testClusterGroups(t, c, topic)
	testLeaderHints(t, c, topic)

	// Sustained writes through broker 2, then the broker leading the most
	// partitions dies.
	log := newAckLog()
	prod := clusterClient(t, c.seeds()[1:2], kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(2000))
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); produceLoop(pctx, prod, topic, partitions, log) }()
	defer func() { stop(); <-done }()
	eventually(t, 10*time.Second, func() error {
		if n := log.count(); n < 1000 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	victim := c.brokers[0]
	for _, b := range c.brokers {
		if counts[b.cfg.NodeID] > counts[victim.cfg.NodeID] {
			victim = b
		}
	}
	var affected []int32
	view, _ := metadataView(t, victim, topic)
	for i, p := range view {
		if p.leader == victim.cfg.NodeID {
			affected = append(affected, int32(i))
		}
	}
	before := log.count()
	killedAt := log.mark()
	crash(victim)
	c.brokers[victim.cfg.NodeID-1] = nil
	eventually(t, 15*time.Second, func() error {
		log.mu.Lock()
		defer log.mu.Unlock()
		for p := range int32(partitions) {
			if _, ok := log.firstAt[p]; !ok {
				return fmt.Errorf("partition %d: no write acknowledged since the kill", p)
			}
		}
		return nil
	})
	log.mu.Lock()
	var failover time.Duration
	for _, p := range affected {
		failover = max(failover, log.firstAt[p].Sub(killedAt))
	}
	log.mu.Unlock()
	t.Logf("killed broker %d (led partitions %v); writes to every partition acknowledged again %v after the kill",
		victim.cfg.NodeID, affected, failover.Round(time.Millisecond))
	eventually(t, 10*time.Second, func() error {
		if n := log.count(); n < before+1000 {
			return fmt.Errorf("%d acknowledged since the kill", n-before)
		}
		return nil
	})
	stop()
	<-done
	if len(log.errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(log.errs), log.errs[0])
	}
	verifyTopic(t, c.seeds(), topic, partitions, log)

	// The survivors lead every partition and drop the dead broker from
	// the ISR of the partitions they lead; it stays a replica.
	dead := strconv.Itoa(int(victim.cfg.NodeID))
	eventually(t, 5*time.Second, func() error {
		for _, b := range c.running() {
			view, err := metadataView(t, b, topic)
			if err != nil {
				return err
			}
			for i, p := range view {
				switch {
				case p.leader == victim.cfg.NodeID || p.replicas != "[1 2 3]":
					return fmt.Errorf("broker %d: partition %d: %+v", b.cfg.NodeID, i, p)
				case p.leader == b.cfg.NodeID && strings.Contains(p.isr, dead):
					return fmt.Errorf("broker %d: partition %d: ISR %s", b.cfg.NodeID, i, p.isr)
				}
			}
		}
		return nil
	})
}

// testClusterGroups: FindCoordinator names the metadata leader from every
// broker, the others refuse group APIs with NOT_COORDINATOR, and a kgo
// consumer group seeded with a follower consumes and commits.
func testClusterGroups(t *testing.T, c *testCluster, topic string) {
	t.Helper()
	var leader *Broker
	for _, b := range c.running() {
		if b.meta.IsLeader() {
			leader = b
		}
	}
	if leader == nil {
		t.Fatal("no metadata leader")
	}
	var follower *Broker
	for _, b := range c.running() {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.Version, fc.CoordinatorKeys = 4, []string{"g1"}
		resp := dialRaw(t, b).do(fc).(*kmsg.FindCoordinatorResponse)
		if got := resp.Coordinators[0]; got.ErrorCode != 0 || got.NodeID != leader.cfg.NodeID ||
			got.Port != leader.advPort {
			t.Fatalf("broker %d: coordinator %+v, want broker %d", b.cfg.NodeID, got, leader.cfg.NodeID)
		}
		if b != leader {
			follower = b
		}
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType, join.SessionTimeoutMillis = 9, "g1", "consumer", 10000
	if resp := dialRaw(t, follower).do(join).(*kmsg.JoinGroupResponse); resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join on a follower: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 8
	of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g1"}}
	if resp := dialRaw(t, follower).do(of).(*kmsg.OffsetFetchResponse); resp.Groups[0].ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("offset fetch on a follower: %v", kerr.ErrorForCode(resp.Groups[0].ErrorCode))
	}

	// 30 records through the follower, consumed by a group through it.
	cl := clusterClient(t, []string{follower.Addr().String()})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for i := range 30 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("g-" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	cons := clusterClient(t, []string{follower.Addr().String()}, kgo.ConsumerGroup("g1"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 30 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group consumed %d of 30: %v", got, ctx.Err())
		}
		got += len(fs.Records())
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	adm := kadm.NewClient(clusterClient(t, []string{follower.Addr().String()}))
	offs, err := adm.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 30 {
		t.Fatalf("committed offsets sum to %d, want 30", committed)
	}
	cons.Close()
}

// testLeaderHints: Produce and Fetch on a broker that does not lead the
// partition get NOT_LEADER_OR_FOLLOWER with the leader, its epoch and its
// address (KIP-951).
func testLeaderHints(t *testing.T, c *testCluster, topic string) {
	t.Helper()
	view, err := metadataView(t, c.brokers[0], topic)
	if err != nil {
		t.Fatal(err)
	}
	var b *Broker
	var part int32 = -1
	for i, p := range view {
		if p.leader != c.brokers[0].cfg.NodeID {
			b, part = c.brokers[0], int32(i)
			break
		}
	}
	want := view[part]
	leader := c.brokers[want.leader-1]
	checkBroker := func(api string, id int32, host string, port int32) {
		if id != want.leader || host != leader.advHost || port != leader.advPort {
			t.Errorf("%s: node endpoint %d %s:%d, want broker %d at %s:%d", api, id, host, port, want.leader, leader.advHost, leader.advPort)
		}
	}

	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis = 11, -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = part, prototest.Batch(prototest.Values("hint"))
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	presp := dialRaw(t, b).do(pr).(*kmsg.ProduceResponse)
	got := presp.Topics[0].Partitions[0]
	if got.ErrorCode != kerr.NotLeaderForPartition.Code || got.CurrentLeader.LeaderID != want.leader ||
		got.CurrentLeader.LeaderEpoch != want.epoch || len(presp.Brokers) != 1 {
		t.Fatalf("produce to a follower: %v, current leader %+v, brokers %+v (want %d epoch %d)",
			kerr.ErrorForCode(got.ErrorCode), got.CurrentLeader, presp.Brokers, want.leader, want.epoch)
	}
	checkBroker("produce", presp.Brokers[0].NodeID, presp.Brokers[0].Host, presp.Brokers[0].Port)

	fr := kmsg.NewPtrFetchRequest()
	fr.Version, fr.MaxBytes, fr.ReplicaID = 16, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = b.meta.Image().Topics[topic].ID // v13+: topics by id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.PartitionMaxBytes = part, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	fresp := dialRaw(t, b).do(fr).(*kmsg.FetchResponse)
	fgot := fresp.Topics[0].Partitions[0]
	if fgot.ErrorCode != kerr.NotLeaderForPartition.Code || fgot.CurrentLeader.LeaderID != want.leader ||
		fgot.CurrentLeader.LeaderEpoch != want.epoch || len(fresp.Brokers) != 1 {
		t.Fatalf("fetch from a follower: %v, current leader %+v, brokers %+v",
			kerr.ErrorForCode(fgot.ErrorCode), fgot.CurrentLeader, fresp.Brokers)
	}
	checkBroker("fetch", fresp.Brokers[0].NodeID, fresp.Brokers[0].Host, fresp.Brokers[0].Port)
}

// TestClusterGracefulClose: Close hands the closing broker's groups over
// first, so a producer running through it sees retriable errors only and
// the survivors have leaders as soon as Close returns.
func TestClusterGracefulClose(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBalanced(10 * time.Second)
	const topic, partitions = "graceful", 3
	adm := kadm.NewClient(clusterClient(t, c.seeds()))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}
	log := newAckLog()
	prod := clusterClient(t, c.seeds(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); produceLoop(pctx, prod, topic, partitions, log) }()
	defer func() { stop(); <-done }()
	eventually(t, 10*time.Second, func() error {
		if n := log.count(); n < 500 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})

	// Close the metadata leader: it leads a WAL group and the metadata group.
	var closing *Broker
	for _, b := range c.running() {
		if b.meta.IsLeader() {
			closing = b
		}
	}
	start := time.Now()
	if err := closing.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	took := time.Since(start)
	c.brokers[closing.cfg.NodeID-1] = nil
	closedID := strconv.Itoa(int(closing.cfg.NodeID))
	// The survivors know the new leaders at once: sooner than a follower
	// would even suspect a dead leader (500 ms).
	eventually(t, 250*time.Millisecond, func() error {
		for _, b := range c.running() {
			for _, ws := range b.localWALs() {
				if l := ws.g.Leader(); l == "" || l == closedID {
					return fmt.Errorf("broker %d: wal group %d has leader %q after the close", b.cfg.NodeID, ws.id, l)
				}
			}
		}
		return nil
	})
	before := log.count()
	eventually(t, 10*time.Second, func() error {
		if n := log.count(); n < before+500 {
			return fmt.Errorf("%d acknowledged since the close", n-before)
		}
		return nil
	})
	stop()
	<-done
	t.Logf("graceful close of broker %s took %v; longest gap between acks of a partition %v",
		closedID, took.Round(time.Millisecond), log.maxGap().Round(time.Millisecond))
	if len(log.errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(log.errs), log.errs[0])
	}
	verifyTopic(t, c.seeds(), topic, partitions, log)
}
