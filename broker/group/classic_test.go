package group

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

// clock is a fake clock for the pure state machines.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Unix(1_700_000_000, 0)} }
func testCfg() *Config {
	c := DefaultConfig()
	c.InitialRebalanceDelay = 0
	c.Logger = slog.New(slog.DiscardHandler)
	return &c
}
func ptr[T any](v T) *T                 { return &v }
func protos(names ...string) []Protocol { return protosMeta("", names...) }
func protosMeta(meta string, names ...string) []Protocol {
	var out []Protocol
	for _, n := range names {
		out = append(out, Protocol{Name: n, Metadata: []byte(meta + n)})
	}
	return out
}

// joinReq is a v9 join of a consumer with the range protocol.
func joinReq(member string) JoinRequest {
	return JoinRequest{Group: "g", MemberID: member, ClientID: "c", ProtocolType: "consumer",
		Protocols: protos("range"), SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second,
		RequireKnownMemberID: true, SupportsSkipAssignment: true}
}

// joined is a join in flight: its immediate result or its channel.
type joined struct {
	res *JoinResult
	ch  chan JoinResult
}

func doJoin(g *classicGroup, req JoinRequest, newID string, now time.Time) joined {
	ch := make(chan JoinResult, 1)
	return joined{res: g.join(req, newID, ch, now), ch: ch}
}

// result returns the join's answer; it fails if none came yet.
func (j joined) result(t *testing.T) JoinResult {
	t.Helper()
	if j.res != nil {
		return *j.res
	}
	select {
	case r := <-j.ch:
		return r
	default:
		t.Fatal("join has no answer yet")
		return JoinResult{}
	}
}

func (j joined) waiting() bool {
	if j.res != nil {
		return false
	}
	select {
	case r := <-j.ch:
		j.ch <- r
		return false
	default:
		return true
	}
}

// stableGroup builds a stable group of the given member ids (the first is
// the leader) at generation 1, every member assigned its own id.
func stableGroup(t *testing.T, clk *clock, ids ...string) *classicGroup {
	t.Helper()
	g := newClassicGroup("g", testCfg())
	var js []joined
	for _, id := range ids {
		js = append(js, doJoin(g, joinReq(""), id, clk.now()))
		if r := js[len(js)-1].result(t); !errors.Is(r.Err, ErrMemberIDRequired) || r.MemberID != id {
			t.Fatalf("first join: %+v", r)
		}
	}
	js = js[:0]
	for _, id := range ids {
		js = append(js, doJoin(g, joinReq(id), "", clk.now()))
	}
	for i, j := range js {
		r := j.result(t)
		if r.Err != nil || r.Generation != 1 || r.Leader != ids[0] || (i == 0) != (len(r.Members) == len(ids)) {
			t.Fatalf("join %s: %+v", ids[i], r)
		}
	}
	assign := map[string][]byte{}
	for _, id := range ids {
		assign[id] = []byte("a-" + id)
	}
	chs := map[string]chan SyncResult{}
	for i := len(ids) - 1; i >= 0; i-- { // followers first: they wait for the leader
		chs[ids[i]] = make(chan SyncResult, 1)
		req := SyncRequest{Group: "g", MemberID: ids[i], Generation: 1}
		if i == 0 {
			req.Assignments = assign
		}
		if res := g.sync(req, chs[ids[i]], clk.now()); res != nil {
			t.Fatalf("sync %s answered early: %+v", ids[i], res)
		}
	}
	for _, id := range ids {
		if r := <-chs[id]; r.Err != nil || string(r.Assignment) != "a-"+id {
			t.Fatalf("sync %s: %+v", id, r)
		}
	}
	if g.state != StateStable {
		t.Fatalf("state %s, want Stable", g.state)
	}
	return g
}

func TestClassicJoinErrors(t *testing.T) {
	clk := newClock()
	for _, tc := range []struct {
		name string
		edit func(*JoinRequest)
		want error
	}{
		{"empty protocol type", func(r *JoinRequest) { r.ProtocolType = "" }, ErrInconsistentProtocol},
		{"no protocols", func(r *JoinRequest) { r.Protocols = nil }, ErrInconsistentProtocol},
		{"other protocol type", func(r *JoinRequest) { r.ProtocolType = "connect" }, ErrInconsistentProtocol},
		{"no common protocol", func(r *JoinRequest) { r.Protocols = protos("roundrobin") }, ErrInconsistentProtocol},
		{"unknown member", func(r *JoinRequest) { r.MemberID = "nobody" }, ErrUnknownMember},
		{"fenced instance", func(r *JoinRequest) { r.MemberID, r.InstanceID = "a", ptr("other-instance-of-b") }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := stableGroup(t, clk, "a", "b")
			req := joinReq("")
			tc.edit(&req)
			r := doJoin(g, req, "new", clk.now())
			if tc.want == nil {
				return
			}
			if res := r.result(t); !errors.Is(res.Err, tc.want) || res.Generation != -1 {
				t.Fatalf("got %+v, want %v", res, tc.want)
			}
			if g.state != StateStable {
				t.Fatalf("a refused join changed the state to %s", g.state)
			}
		})
	}
}

func TestClassicMemberIDRequired(t *testing.T) {
	clk := newClock()
	g := newClassicGroup("g", testCfg())
	req := joinReq("")
	r := doJoin(g, req, "m-1", clk.now()).result(t)
	if !errors.Is(r.Err, ErrMemberIDRequired) || r.MemberID != "m-1" {
		t.Fatalf("got %+v", r)
	}
	// A pending id that never comes back expires after the session timeout.
	clk.advance(11 * time.Second)
	g.tick(clk.now())
	if len(g.pending) != 0 {
		t.Fatal("pending member id did not expire")
	}
	if r := doJoin(g, joinReq("m-1"), "", clk.now()).result(t); !errors.Is(r.Err, ErrUnknownMember) {
		t.Fatalf("expired id: %+v", r)
	}
	// v3 and older joins get an id at once.
	req.RequireKnownMemberID = false
	r = doJoin(g, req, "m-2", clk.now()).result(t)
	if r.Err != nil || r.MemberID != "m-2" || r.Generation != 1 || r.Leader != "m-2" {
		t.Fatalf("v3 join: %+v", r)
	}
}

func TestClassicRebalanceOnJoinAndLeave(t *testing.T) {
	clk := newClock()
	g := stableGroup(t, clk, "a", "b")
	// A third member starts a rebalance; heartbeats tell the others.
	doJoin(g, joinReq(""), "c", clk.now())
	jc := doJoin(g, joinReq("c"), "", clk.now())
	if g.state != StatePreparingRebalance || !jc.waiting() {
		t.Fatalf("state %s, want PreparingRebalance with c waiting", g.state)
	}
	if err := g.heartbeat(HeartbeatRequest{Group: "g", MemberID: "b", Generation: 1}, clk.now()); !errors.Is(err, ErrRebalanceInProgress) {
		t.Fatalf("heartbeat during rebalance: %v", err)
	}
	ja := doJoin(g, joinReq("a"), "", clk.now())
	if !ja.waiting() {
		t.Fatal("join completed before b rejoined")
	}
	jb := doJoin(g, joinReq("b"), "", clk.now())
	for _, j := range []joined{ja, jb, jc} {
		if r := j.result(t); r.Err != nil || r.Generation != 2 || r.Leader != "a" || r.Protocol != "range" {
			t.Fatalf("rejoin: %+v", r)
		}
	}
	if g.state != StateCompletingRebalance {
		t.Fatalf("state %s", g.state)
	}
	// Old generation is refused everywhere.
	if err := g.heartbeat(HeartbeatRequest{Group: "g", MemberID: "b", Generation: 1}, clk.now()); !errors.Is(err, ErrIllegalGeneration) {
		t.Fatalf("stale heartbeat: %v", err)
	}
	if r := g.sync(SyncRequest{Group: "g", MemberID: "b", Generation: 1}, nil, clk.now()); !errors.Is(r.Err, ErrIllegalGeneration) {
		t.Fatalf("stale sync: %+v", r)
	}
	if err := g.validateCommit("b", nil, 2); !errors.Is(err, ErrRebalanceInProgress) {
		t.Fatalf("commit while completing: %v", err)
	}
	// Leave: the others rebalance without c.
	chb := make(chan SyncResult, 1)
	g.sync(SyncRequest{Group: "g", MemberID: "b", Generation: 2}, chb, clk.now())
	errs := g.leave([]LeaveMember{{MemberID: "c"}, {MemberID: "zzz"}}, clk.now())
	if errs[0] != nil || !errors.Is(errs[1], ErrUnknownMember) {
		t.Fatalf("leave errors %v", errs)
	}
	if r := <-chb; !errors.Is(r.Err, ErrRebalanceInProgress) {
		t.Fatalf("waiting sync after leave: %+v", r)
	}
	if g.state != StatePreparingRebalance || len(g.members) != 2 {
		t.Fatalf("state %s members %d", g.state, len(g.members))
	}
}

func TestClassicSessionExpiryAndRebalanceTimeout(t *testing.T) {
	clk := newClock()
	g := stableGroup(t, clk, "a", "b")
	// b keeps heartbeating, a does not.
	for range 3 {
		clk.advance(4 * time.Second)
		if err := g.heartbeat(HeartbeatRequest{Group: "g", MemberID: "b", Generation: 1}, clk.now()); err != nil {
			t.Fatal(err)
		}
		g.tick(clk.now())
	}
	if g.members["a"] != nil || g.state != StatePreparingRebalance {
		t.Fatalf("a not expired: state %s", g.state)
	}
	// b never rejoins: the rebalance timeout removes it and the group empties.
	if d := g.nextDeadline(); d.IsZero() {
		t.Fatal("no deadline while rebalancing")
	}
	clk.advance(31 * time.Second)
	g.tick(clk.now())
	if g.state != StateEmpty || len(g.members) != 0 || g.generation != 2 {
		t.Fatalf("state %s members %d generation %d", g.state, len(g.members), g.generation)
	}
	if err := g.validateCommit("", nil, -1); err != nil {
		t.Fatalf("admin commit on empty group: %v", err)
	}
}

func TestClassicInitialDelay(t *testing.T) {
	clk := newClock()
	cfg := testCfg()
	cfg.InitialRebalanceDelay = 3 * time.Second
	g := newClassicGroup("g", cfg)
	req := joinReq("")
	req.RequireKnownMemberID = false
	ja := doJoin(g, req, "a", clk.now())
	clk.advance(2 * time.Second)
	jb := doJoin(g, req, "b", clk.now())
	clk.advance(time.Second) // the first window ends; b joined in it: extend
	g.tick(clk.now())
	if !ja.waiting() || !jb.waiting() {
		t.Fatal("join completed although a member joined during the delay")
	}
	clk.advance(3 * time.Second)
	g.tick(clk.now())
	if r := ja.result(t); r.Err != nil || r.Generation != 1 || len(r.Members) != 2 {
		t.Fatalf("after delay: %+v", r)
	}
}

func TestClassicStaticMembership(t *testing.T) {
	clk := newClock()
	cfg := testCfg()
	cfg.InitialRebalanceDelay = time.Second
	g := newClassicGroup("g", cfg)
	ids := []string{"a", "b"}
	var js []joined
	for _, id := range ids {
		req := joinReq("")
		req.InstanceID = ptr("inst-" + id)
		js = append(js, doJoin(g, req, id, clk.now()))
	}
	for range 2 { // b joined in the first delay window: one more window
		clk.advance(time.Second)
		g.tick(clk.now())
	}
	for _, j := range js {
		if r := j.result(t); r.Err != nil || r.Generation != 1 {
			t.Fatalf("static join: %+v", r)
		}
	}
	ch := make(chan SyncResult, 1)
	g.sync(SyncRequest{Group: "g", MemberID: "a", Generation: 1, Assignments: map[string][]byte{"a": []byte("A"), "b": []byte("B")}}, ch, clk.now())
	<-ch
	// b restarts: same instance id, no member id -> replaces without rebalance.
	req := joinReq("")
	req.InstanceID = ptr("inst-b")
	r := doJoin(g, req, "b2", clk.now()).result(t)
	if r.Err != nil || r.MemberID != "b2" || r.Generation != 1 || g.state != StateStable || r.SkipAssignment {
		t.Fatalf("static rejoin: %+v, state %s", r, g.state)
	}
	if res := g.sync(SyncRequest{Group: "g", MemberID: "b2", Generation: 1}, nil, clk.now()); res == nil || string(res.Assignment) != "B" {
		t.Fatalf("replaced member's assignment: %+v", res)
	}
	// The old b is fenced.
	if err := g.heartbeat(HeartbeatRequest{Group: "g", MemberID: "b", InstanceID: ptr("inst-b"), Generation: 1}, clk.now()); !errors.Is(err, ErrFencedInstanceID) {
		t.Fatalf("old member heartbeat: %v", err)
	}
	if err := g.validateCommit("b", ptr("inst-b"), 1); !errors.Is(err, ErrFencedInstanceID) {
		t.Fatalf("old member commit: %v", err)
	}
	// The static leader rejoining (v9) gets the members and skips assignment.
	req.InstanceID = ptr("inst-a")
	r = doJoin(g, req, "a2", clk.now()).result(t)
	if r.Err != nil || !r.SkipAssignment || len(r.Members) != 2 || r.Leader != "a2" || g.state != StateStable {
		t.Fatalf("static leader rejoin: %+v", r)
	}
	// Leave by instance id with a wrong member id is fenced, then works.
	errs := g.leave([]LeaveMember{{MemberID: "a", InstanceID: ptr("inst-a")}, {InstanceID: ptr("inst-b")}}, clk.now())
	if !errors.Is(errs[0], ErrFencedInstanceID) || errs[1] != nil {
		t.Fatalf("leave: %v", errs)
	}
	if g.state != StatePreparingRebalance {
		t.Fatalf("state %s", g.state)
	}
}

func TestClassicProtocolSelection(t *testing.T) {
	clk := newClock()
	g := newClassicGroup("g", testCfg())
	var js []joined
	for i, ps := range [][]Protocol{protos("cooperative-sticky", "range"), protos("range", "cooperative-sticky"),
		protos("range", "cooperative-sticky", "roundrobin")} {
		req := joinReq("")
		req.RequireKnownMemberID = false
		req.Protocols = ps
		js = append(js, doJoin(g, req, string(rune('a'+i)), clk.now()))
	}
	_ = js
	// Two of three members prefer range.
	if g.selectProtocol() != "range" {
		t.Fatalf("selected %q, want range (2 votes of 3)", g.selectProtocol())
	}
}

func TestClassicSyncTimeoutRemovesSilentLeader(t *testing.T) {
	clk := newClock()
	g := newClassicGroup("g", testCfg())
	req := joinReq("")
	req.RequireKnownMemberID = false
	req.RebalanceTimeout = 5 * time.Second
	ja := doJoin(g, req, "a", clk.now())
	ja.result(t)
	// b joins: a must rejoin; both do; the leader a never syncs.
	jb := doJoin(g, req, "b", clk.now())
	req.MemberID = "a"
	ja = doJoin(g, req, "", clk.now())
	ja.result(t)
	jb.result(t)
	chb := make(chan SyncResult, 1)
	g.sync(SyncRequest{Group: "g", MemberID: "b", Generation: 2}, chb, clk.now())
	clk.advance(6 * time.Second) // past the rebalance timeout, within the session
	g.tick(clk.now())
	if g.members["a"] != nil || g.members["b"] == nil {
		t.Fatal("the silent leader was not removed")
	}
	if r := <-chb; !errors.Is(r.Err, ErrRebalanceInProgress) {
		t.Fatalf("waiting follower: %+v", r)
	}
}

func TestClassicValidateCommit(t *testing.T) {
	clk := newClock()
	g := stableGroup(t, clk, "a", "b")
	for _, tc := range []struct {
		member string
		gen    int32
		want   error
	}{
		{"a", 1, nil},
		{"a", 0, ErrIllegalGeneration},
		{"x", 1, ErrUnknownMember},
		{"", -1, ErrUnknownMember},
	} {
		if err := g.validateCommit(tc.member, nil, tc.gen); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("commit %s/%d: %v, want %v", tc.member, tc.gen, err, tc.want)
		}
	}
}
