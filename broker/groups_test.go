package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// groupBroker starts a broker with short group timeouts for tests.
func groupBroker(t *testing.T) *Broker {
	return startBroker(t, func(c *Config) {
		c.Groups = group.Config{
			MinSessionTimeout:         100 * time.Millisecond,
			InitialRebalanceDelay:     50 * time.Millisecond,
			ConsumerSessionTimeout:    time.Second,
			ConsumerHeartbeatInterval: 100 * time.Millisecond,
		}
	})
}

// ownership tracks which member owns which partitions, from the kgo
// group callbacks.
type ownership struct {
	mu sync.Mutex
	m  map[string]map[int32]bool // member -> partitions
}

func (o *ownership) opts(name string) []kgo.Opt {
	set := func(ps map[string][]int32, owned bool) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.m == nil {
			o.m = map[string]map[int32]bool{}
		}
		if o.m[name] == nil {
			o.m[name] = map[int32]bool{}
		}
		for _, parts := range ps {
			for _, p := range parts {
				if owned {
					o.m[name][p] = true
				} else {
					delete(o.m[name], p)
				}
			}
		}
	}
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { set(ps, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { set(ps, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { set(ps, false) }),
	}
}

func (o *ownership) drop(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, name)
}

// check reports an error unless partitions 0..n-1 are each owned by
// exactly one member and members members own at least one.
func (o *ownership) check(n int32, members int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	owners := map[int32][]string{}
	busy := 0
	for name, ps := range o.m {
		if len(ps) > 0 {
			busy++
		}
		for p := range ps {
			owners[p] = append(owners[p], name)
		}
	}
	for p := range n {
		if len(owners[p]) != 1 {
			return fmt.Errorf("partition %d owned by %v", p, owners[p])
		}
	}
	if busy != members {
		return fmt.Errorf("%d members own partitions, want %d: %v", busy, members, o.m)
	}
	return nil
}

// member is one kgo group consumer polling in the background.
type member struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// startMember starts a consumer of topic in group that polls until stop.
func startMember(t *testing.T, b *Broker, grp, topic string, own *ownership, name string, opts ...kgo.Opt) *member {
	t.Helper()
	opts = append([]kgo.Opt{kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(3 * time.Second), kgo.ClientID(name)}, opts...)
	opts = append(opts, own.opts(name)...)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr().String())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop stops polling and closes the client (a classic member leaves).
func (m *member) stop() {
	m.cancel()
	<-m.done
	m.cl.Close()
}

func TestGroupClassicKgo(t *testing.T) {
	b := groupBroker(t)
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, grp := "classic-"+tc.name, "g-"+tc.name
			createTopic(t, b, topic, 6)
			own := &ownership{}
			var ms []*member
			for i := range 3 {
				ms = append(ms, startMember(t, b, grp, topic, own, fmt.Sprint("m", i), kgo.Balancers(tc.balancer)))
			}
			eventually(t, 10*time.Second, func() error { return own.check(6, 3) })
			// A member leaves: the other two own everything.
			ms[2].stop()
			own.drop("m2")
			eventually(t, 10*time.Second, func() error { return own.check(6, 2) })
			// A member joins.
			startMember(t, b, grp, topic, own, "m3", kgo.Balancers(tc.balancer))
			eventually(t, 10*time.Second, func() error { return own.check(6, 3) })
			st, members := b.groups.GroupState(grp)
			if st != group.StateStable || !members {
				t.Fatalf("state %s", st)
			}
		})
	}
}

// rawJoin joins grp as a classic member over a raw connection (v9, with
// the KIP-394 round trip) and returns the join response.
func rawJoin(t *testing.T, c *rawConn, grp string, instance *string, session time.Duration) *kmsg.JoinGroupResponse {
	return rawJoinProtocol(t, c, grp, "range", "x", instance, session)
}

// rawJoinProtocol is rawJoin with one protocol subscribing to topic.
func rawJoinProtocol(t *testing.T, c *rawConn, grp, protocol, topic string, instance *string, session time.Duration) *kmsg.JoinGroupResponse {
	t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group, req.InstanceID, req.ProtocolType = grp, instance, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(session/time.Millisecond), 3000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = protocol, (&kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{topic}}).AppendTo(nil)
	req.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	resp := c.do(req).(*kmsg.JoinGroupResponse)
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		req.MemberID = resp.MemberID
		resp = c.do(req).(*kmsg.JoinGroupResponse)
	}
	return resp
}

func rawSync(t *testing.T, c *rawConn, grp string, join *kmsg.JoinGroupResponse, instance *string) *kmsg.SyncGroupResponse {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation, req.InstanceID = grp, join.MemberID, join.Generation, instance
	req.ProtocolType, req.Protocol = join.ProtocolType, join.Protocol
	for _, m := range join.Members {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = m.MemberID, []byte("assignment-of-"+m.MemberID)
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	return c.do(req).(*kmsg.SyncGroupResponse)
}

func TestGroupSessionExpiryWithKgo(t *testing.T) {
	b := groupBroker(t)
	createTopic(t, b, "expiry", 6)
	own := &ownership{}
	for i := range 2 {
		startMember(t, b, "g-expiry", "expiry", own, fmt.Sprint("m", i))
	}
	eventually(t, 10*time.Second, func() error { return own.check(6, 2) })
	// A third member joins over a raw connection, syncs, and then its
	// process "stops": no heartbeats. Its session (300 ms) expires.
	c := dialRaw(t, b)
	join := rawJoinProtocol(t, c, "g-expiry", "cooperative-sticky", "expiry", nil, 300*time.Millisecond)
	if join.ErrorCode != 0 {
		t.Fatalf("raw join: %v", kerr.ErrorForCode(join.ErrorCode))
	}
	if s := rawSync(t, c, "g-expiry", join, nil); s.ErrorCode != 0 {
		t.Fatalf("raw sync: %v", kerr.ErrorForCode(s.ErrorCode))
	}
	eventually(t, 10*time.Second, func() error {
		d, _, err := b.groups.DescribeClassic("g-expiry")
		if err != nil || len(d.Members) != 2 || d.State != group.StateStable {
			return fmt.Errorf("%d members, state %s, %v", len(d.Members), d.State, err)
		}
		return own.check(6, 2)
	})
}

func TestGroupStaticRejoinWithoutRebalance(t *testing.T) {
	b := groupBroker(t)
	c1, c2 := dialRaw(t, b), dialRaw(t, b)
	inst := "instance-1"
	j1 := rawJoin(t, c1, "g-static", &inst, time.Second)
	if j1.ErrorCode != 0 || j1.Generation != 1 || j1.LeaderID != j1.MemberID {
		t.Fatalf("join: %+v", j1)
	}
	if s := rawSync(t, c1, "g-static", j1, &inst); s.ErrorCode != 0 || string(s.MemberAssignment) != "assignment-of-"+j1.MemberID {
		t.Fatalf("sync: %+v", s)
	}
	// The same instance restarts: same generation, no rebalance; the
	// leader is told to skip the assignment (v9).
	j2 := rawJoin(t, c2, "g-static", &inst, time.Second)
	if j2.ErrorCode != 0 || j2.Generation != 1 || j2.MemberID == j1.MemberID || !j2.SkipAssignment {
		t.Fatalf("static rejoin: %+v", j2)
	}
	if st, _ := b.groups.GroupState("g-static"); st != group.StateStable {
		t.Fatalf("state %s after static rejoin", st)
	}
	// The old member is fenced.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g-static", j1.MemberID, 1, &inst
	if r := c1.do(hb).(*kmsg.HeartbeatResponse); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old member heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	hb.MemberID = j2.MemberID
	if r := c2.do(hb).(*kmsg.HeartbeatResponse); r.ErrorCode != 0 {
		t.Fatalf("new member heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestGroupConsumerProtocolKgo(t *testing.T) {
	b := groupBroker(t)
	createTopic(t, b, "next-gen", 6)
	own := &ownership{}
	var ms []*member
	for i := range 3 {
		ms = append(ms, startMember(t, b, "g-848", "next-gen", own, fmt.Sprint("m", i), kgo.ServerSideBalancer()))
	}
	eventually(t, 15*time.Second, func() error { return own.check(6, 3) })
	d, err := b.groups.DescribeConsumer("g-848")
	if err != nil || len(d.Members) != 3 || d.Assignor != group.AssignorUniform {
		t.Fatalf("describe: %+v %v", d, err)
	}
	for _, m := range d.Members {
		if n := len(m.Assignment[0].Partitions); n != 2 {
			t.Fatalf("uniform assignment gave %s %d partitions", m.MemberID, n)
		}
	}
	ms[0].stop()
	own.drop("m0")
	eventually(t, 15*time.Second, func() error { return own.check(6, 2) })
	// ConsumerGroupDescribe through the wire.
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{"g-848", "nope"}
	resp, err := req.RequestWith(t.Context(), ms[1].cl)
	if err != nil {
		t.Fatal(err)
	}
	got := []int16{resp.Groups[0].ErrorCode, resp.Groups[1].ErrorCode}
	want := []int16{0, kerr.GroupIDNotFound.Code}
	if !slices.Equal(got, want) || len(resp.Groups[0].Members) != 2 || resp.Groups[0].Members[0].Assignment.TopicPartitions[0].Topic != "next-gen" {
		t.Fatalf("describe: codes %v, %+v", got, resp.Groups[0])
	}
}
