package group

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Classic group states, named as Kafka lists them.
const (
	StateEmpty               = "Empty"
	StatePreparingRebalance  = "PreparingRebalance"
	StateCompletingRebalance = "CompletingRebalance"
	StateStable              = "Stable"
	StateDead                = "Dead"
)

// Consumer (KIP-848) group states, named as Kafka lists them.
const (
	StateAssigning   = "Assigning"
	StateReconciling = "Reconciling"
)

// Protocol is one assignor protocol a classic member supports, with its
// metadata (opaque to the coordinator).
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a classic JoinGroup of one member.
type JoinRequest struct {
	Group        string
	MemberID     string // "" on a first join
	InstanceID   *string
	ClientID     string
	ClientHost   string
	ProtocolType string
	Protocols    []Protocol
	// SessionTimeout and RebalanceTimeout as the member asked (v0 has no
	// rebalance timeout: pass the session timeout, as Kafka does).
	SessionTimeout, RebalanceTimeout time.Duration
	// RequireKnownMemberID is set from JoinGroup v4 (KIP-394).
	RequireKnownMemberID bool
	// SupportsSkipAssignment is set from JoinGroup v9: a static leader that
	// rejoins a stable group is told to skip the assignment.
	SupportsSkipAssignment bool
}

// JoinMember is one member as the leader's JoinGroup response lists it.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResult is the answer to a JoinRequest. With ErrMemberIDRequired,
// MemberID is the id to rejoin with.
type JoinResult struct {
	Err            error
	MemberID       string
	Generation     int32
	ProtocolType   string
	Protocol       string // "" when the group has none yet
	Leader         string
	SkipAssignment bool
	Members        []JoinMember // only for the leader
}

// SyncRequest is a classic SyncGroup.
type SyncRequest struct {
	Group        string
	MemberID     string
	InstanceID   *string
	Generation   int32
	ProtocolType *string // v5+; nil: not checked
	Protocol     *string // v5+; nil: not checked
	Assignments  map[string][]byte
}

// SyncResult is the answer to a SyncRequest.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest is a classic Heartbeat.
type HeartbeatRequest struct {
	Group      string
	MemberID   string
	InstanceID *string
	Generation int32
}

// LeaveMember is one member of a LeaveGroup (v3+ batches them).
type LeaveMember struct {
	MemberID   string // may be "" when InstanceID is set
	InstanceID *string
}

// classicMember is one member of a classic group.
type classicMember struct {
	id           string
	instanceID   *string
	clientID     string
	clientHost   string
	protocolType string
	protocols    []Protocol
	session      time.Duration
	rebalance    time.Duration
	assignment   []byte
	seq          uint64    // join order: the leader is the earliest joined
	deadline     time.Time // session expiry, while not awaiting join or sync

	// joinCh and syncCh hold the waiting JoinGroup / SyncGroup of the
	// member (buffered, one answer each); nil when none waits.
	joinCh chan JoinResult
	syncCh chan SyncResult
}

// classicGroup is the pure state machine of one classic group. Its methods
// take the current time and never block: answers to waiting joins and
// syncs go to the members' buffered channels, timers are deadlines that
// the driver checks with tick.
type classicGroup struct {
	id  string
	cfg *Config

	state        string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*classicMember
	static       map[string]string    // instance id -> member id
	pending      map[string]time.Time // KIP-394 member ids handed out, expiring
	seq          uint64

	joinDeadline   time.Time // PreparingRebalance
	initialDelay   bool      // the join waits out the initial delay window
	delayLimit     time.Time // the initial delay is extended up to here
	joinedInWindow int       // new members in the current delay window
	syncDeadline   time.Time // CompletingRebalance: members not synced by then are removed
}

func newClassicGroup(id string, cfg *Config) *classicGroup {
	return &classicGroup{id: id, cfg: cfg, state: StateEmpty,
		members: map[string]*classicMember{}, static: map[string]string{}, pending: map[string]time.Time{}}
}

// sortedMembers returns the members in join order.
func (g *classicGroup) sortedMembers() []*classicMember {
	ms := make([]*classicMember, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *classicMember) int { return cmp.Compare(a.seq, b.seq) })
	return ms
}

// empty reports whether the group has neither members nor pending ones.
func (g *classicGroup) empty() bool { return len(g.members) == 0 && len(g.pending) == 0 }

// join handles a JoinGroup; the result is nil when the member must wait
// for the rebalance (the answer then goes to ch).
func (g *classicGroup) join(req JoinRequest, newID string, ch chan JoinResult, now time.Time) *JoinResult {
	if g.state == StateDead {
		return &JoinResult{Err: ErrCoordinatorNotAvailable, MemberID: req.MemberID, Generation: -1}
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 ||
		(g.state != StateEmpty || len(g.members) > 0) && !g.supports(req.ProtocolType, req.Protocols) {
		return &JoinResult{Err: ErrInconsistentProtocol, MemberID: req.MemberID, Generation: -1}
	}
	if req.MemberID == "" {
		return g.joinNew(req, newID, ch, now)
	}
	if err := g.checkStatic(req.MemberID, req.InstanceID); err != nil {
		return &JoinResult{Err: err, MemberID: req.MemberID, Generation: -1}
	}
	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		g.addMember(req, req.MemberID, ch, now)
		return nil
	}
	m := g.members[req.MemberID]
	if m == nil {
		return &JoinResult{Err: ErrUnknownMember, MemberID: req.MemberID, Generation: -1}
	}
	switch g.state {
	case StatePreparingRebalance:
		g.updateMember(m, req, ch)
		g.tryCompleteJoin(now)
		return nil
	case StateCompletingRebalance:
		if sameProtocols(m.protocols, req.Protocols) {
			// A retried join: answer with the current generation.
			m.deadline = now.Add(m.session)
			r := g.resultFor(m)
			return &r
		}
		g.updateMember(m, req, ch)
		g.prepareRebalance(now)
		return nil
	case StateStable:
		if m.id == g.leader || !sameProtocols(m.protocols, req.Protocols) {
			// The leader rejoins to reassign (e.g. metadata changed).
			g.updateMember(m, req, ch)
			g.prepareRebalance(now)
			return nil
		}
		m.deadline = now.Add(m.session)
		r := g.resultFor(m)
		r.Members = nil
		return &r
	default: // Empty: members cannot exist
		return &JoinResult{Err: ErrUnknownMember, MemberID: req.MemberID, Generation: -1}
	}
}

// joinNew handles a join without member id.
func (g *classicGroup) joinNew(req JoinRequest, newID string, ch chan JoinResult, now time.Time) *JoinResult {
	if req.InstanceID != nil {
		return g.joinStatic(req, newID, ch, now)
	}
	if req.RequireKnownMemberID {
		// KIP-394: hand out the id; the member rejoins with it within its
		// session timeout.
		g.pending[newID] = now.Add(req.SessionTimeout)
		return &JoinResult{Err: ErrMemberIDRequired, MemberID: newID, Generation: -1}
	}
	g.addMember(req, newID, ch, now)
	return nil
}

// joinStatic handles a static member's join without member id (KIP-345):
// a known instance id replaces the old member, without a rebalance when
// the group is stable and the selected protocol stays.
func (g *classicGroup) joinStatic(req JoinRequest, newID string, ch chan JoinResult, now time.Time) *JoinResult {
	oldID, known := g.static[*req.InstanceID]
	if !known {
		g.addMember(req, newID, ch, now)
		return nil
	}
	m := g.replaceStatic(oldID, newID)
	switch g.state {
	case StatePreparingRebalance:
		g.updateMember(m, req, ch)
		g.tryCompleteJoin(now)
		return nil
	case StateCompletingRebalance:
		g.updateMember(m, req, ch)
		g.prepareRebalance(now)
		return nil
	}
	// Stable.
	oldProtocols := m.protocols
	m.protocols, m.clientID, m.clientHost = req.Protocols, req.ClientID, req.ClientHost
	m.session, m.rebalance = req.SessionTimeout, req.RebalanceTimeout
	if g.selectProtocol() != g.protocol {
		m.protocols = oldProtocols
		g.updateMember(m, req, ch)
		g.prepareRebalance(now)
		return nil
	}
	m.deadline = now.Add(m.session)
	r := g.resultFor(m)
	r.Members = nil
	if m.id == g.leader && req.SupportsSkipAssignment {
		// The leader learns the members but keeps the assignment (KIP-814).
		r.Members, r.SkipAssignment = g.joinMembers(), true
	}
	return &r
}

// replaceStatic gives the static member oldID the id newID; the old id's
// waiting join or sync is fenced.
func (g *classicGroup) replaceStatic(oldID, newID string) *classicMember {
	m := g.members[oldID]
	delete(g.members, oldID)
	if m.joinCh != nil {
		m.joinCh <- JoinResult{Err: ErrFencedInstanceID, MemberID: oldID, Generation: -1}
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- SyncResult{Err: ErrFencedInstanceID}
		m.syncCh = nil
	}
	m.id = newID
	g.members[newID] = m
	g.static[*m.instanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	return m
}

// checkStatic fences a member whose instance id now belongs to another
// member id.
func (g *classicGroup) checkStatic(memberID string, instanceID *string) error {
	if instanceID == nil {
		return nil
	}
	if id, ok := g.static[*instanceID]; ok && id != memberID {
		return ErrFencedInstanceID
	}
	return nil
}

// addMember adds a new member awaiting the join and starts or advances a
// rebalance.
func (g *classicGroup) addMember(req JoinRequest, id string, ch chan JoinResult, now time.Time) {
	g.seq++
	m := &classicMember{id: id, instanceID: req.InstanceID, seq: g.seq}
	g.members[id] = m
	if req.InstanceID != nil {
		g.static[*req.InstanceID] = id
	}
	g.updateMember(m, req, ch)
	if g.initialDelay {
		g.joinedInWindow++
	}
	if g.state == StatePreparingRebalance {
		g.tryCompleteJoin(now)
		return
	}
	g.prepareRebalance(now)
}

// updateMember takes the join's fields and parks its answer channel.
func (g *classicGroup) updateMember(m *classicMember, req JoinRequest, ch chan JoinResult) {
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	m.protocolType, m.protocols = req.ProtocolType, req.Protocols
	m.session, m.rebalance = req.SessionTimeout, req.RebalanceTimeout
	if m.joinCh != nil && m.joinCh != ch {
		// A second join of the same member replaces the first.
		m.joinCh <- JoinResult{Err: ErrRebalanceInProgress, MemberID: m.id, Generation: -1}
	}
	m.joinCh = ch
}

// prepareRebalance moves the group to PreparingRebalance: waiting syncs
// learn of the rebalance, and every member must rejoin before the
// rebalance timeout (the first rebalance of an empty group waits out the
// initial delay instead).
func (g *classicGroup) prepareRebalance(now time.Time) {
	if g.state == StateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.syncCh != nil {
				m.syncCh <- SyncResult{Err: ErrRebalanceInProgress}
				m.syncCh = nil
			}
		}
	}
	timeout := g.rebalanceTimeout()
	if g.state == StateEmpty && g.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay, g.joinedInWindow = true, 0
		g.delayLimit = now.Add(timeout)
		g.joinDeadline = now.Add(min(g.cfg.InitialRebalanceDelay, timeout))
	} else {
		g.initialDelay = false
		g.joinDeadline = now.Add(timeout)
	}
	g.state = StatePreparingRebalance
	g.syncDeadline = time.Time{}
	g.tryCompleteJoin(now)
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *classicGroup) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

// tryCompleteJoin completes the join phase once every member (and no
// pending one) waits, unless the initial delay is running.
func (g *classicGroup) tryCompleteJoin(now time.Time) {
	if g.state != StatePreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return
		}
	}
	g.completeJoin(now)
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are removed, the next generation starts, the leader gets the members.
func (g *classicGroup) completeJoin(now time.Time) {
	for id, m := range g.members {
		if m.joinCh == nil && m.instanceID == nil {
			g.removeMember(id)
		}
	}
	g.generation++
	g.initialDelay = false
	g.joinDeadline = time.Time{}
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = StateEmpty, "", ""
		return
	}
	g.protocol = g.selectProtocol()
	g.protocolType = g.sortedMembers()[0].protocolType
	if m := g.members[g.leader]; m == nil || m.joinCh == nil {
		g.leader = ""
		for _, m := range g.sortedMembers() {
			if m.joinCh != nil {
				g.leader = m.id
				break
			}
		}
		if g.leader == "" {
			g.leader = g.sortedMembers()[0].id
		}
	}
	g.state = StateCompletingRebalance
	g.syncDeadline = now.Add(g.rebalanceTimeout())
	for _, m := range g.members {
		m.deadline = now.Add(m.session)
		if m.joinCh != nil {
			m.joinCh <- g.resultFor(m)
			m.joinCh = nil
		}
	}
}

// resultFor is a successful join answer for m; the leader gets the members.
func (g *classicGroup) resultFor(m *classicMember) JoinResult {
	r := JoinResult{MemberID: m.id, Generation: g.generation, ProtocolType: g.protocolType,
		Protocol: g.protocol, Leader: g.leader}
	if m.id == g.leader {
		r.Members = g.joinMembers()
	}
	return r
}

// joinMembers lists the members with their metadata for the selected
// protocol.
func (g *classicGroup) joinMembers() []JoinMember {
	var out []JoinMember
	for _, m := range g.sortedMembers() {
		jm := JoinMember{MemberID: m.id, InstanceID: m.instanceID}
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				jm.Metadata = p.Metadata
				break
			}
		}
		out = append(out, jm)
	}
	return out
}

// supports reports whether a member with this protocol type and protocols
// can join: same type, and at least one protocol every member supports.
func (g *classicGroup) supports(protocolType string, protocols []Protocol) bool {
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.sortedMembers()[0].protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports with the most
// votes, each member voting for its most preferred candidate, as Kafka
// does; ties go to the name earliest in the oldest member's preference.
func (g *classicGroup) selectProtocol() string {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all && !slices.Contains(candidates, p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func hasProtocol(ps []Protocol, name string) bool {
	return slices.ContainsFunc(ps, func(p Protocol) bool { return p.Name == name })
}

func sameProtocols(a, b []Protocol) bool {
	return slices.EqualFunc(a, b, func(x, y Protocol) bool {
		return x.Name == y.Name && string(x.Metadata) == string(y.Metadata)
	})
}

// removeMember drops a member (and its static id) without touching the
// state.
func (g *classicGroup) removeMember(id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	delete(g.members, id)
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	if m.joinCh != nil {
		m.joinCh <- JoinResult{Err: ErrUnknownMember, MemberID: id, Generation: -1}
	}
	if m.syncCh != nil {
		m.syncCh <- SyncResult{Err: ErrUnknownMember}
	}
	if g.leader == id {
		g.leader = ""
	}
}

// memberGone removes a member that left or expired and rebalances the rest.
func (g *classicGroup) memberGone(id string, now time.Time) {
	g.removeMember(id)
	switch g.state {
	case StatePreparingRebalance:
		g.tryCompleteJoin(now)
	case StateStable, StateCompletingRebalance:
		// The last member leaving also rebalances, to an empty group.
		g.prepareRebalance(now)
	}
}

// sync handles a SyncGroup; nil means wait for the leader (answer on ch).
func (g *classicGroup) sync(req SyncRequest, ch chan SyncResult, now time.Time) *SyncResult {
	if g.state == StateDead {
		return &SyncResult{Err: ErrCoordinatorNotAvailable}
	}
	if err := g.checkStatic(req.MemberID, req.InstanceID); err != nil {
		return &SyncResult{Err: err}
	}
	m := g.members[req.MemberID]
	if m == nil {
		return &SyncResult{Err: ErrUnknownMember}
	}
	if req.Generation != g.generation {
		return &SyncResult{Err: ErrIllegalGeneration}
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType ||
		req.Protocol != nil && *req.Protocol != g.protocol {
		return &SyncResult{Err: ErrInconsistentProtocol}
	}
	switch g.state {
	case StatePreparingRebalance:
		return &SyncResult{Err: ErrRebalanceInProgress}
	case StateStable:
		m.deadline = now.Add(m.session)
		return &SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
	case StateCompletingRebalance:
	default:
		return &SyncResult{Err: ErrUnknownMember}
	}
	if m.syncCh != nil && m.syncCh != ch {
		m.syncCh <- SyncResult{Err: ErrRebalanceInProgress}
	}
	m.syncCh = ch
	m.deadline = now.Add(m.session)
	if m.id != g.leader {
		return nil
	}
	for _, mm := range g.members {
		mm.assignment = req.Assignments[mm.id]
	}
	g.state = StateStable
	g.syncDeadline = time.Time{}
	for _, mm := range g.members {
		if mm.syncCh != nil {
			mm.syncCh <- SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: mm.assignment}
			mm.syncCh = nil
			mm.deadline = now.Add(mm.session)
		}
	}
	return nil
}

// heartbeat handles a Heartbeat.
func (g *classicGroup) heartbeat(req HeartbeatRequest, now time.Time) error {
	if g.state == StateDead {
		return ErrCoordinatorNotAvailable
	}
	if err := g.checkStatic(req.MemberID, req.InstanceID); err != nil {
		return err
	}
	m := g.members[req.MemberID]
	if m == nil {
		return ErrUnknownMember
	}
	if req.Generation != g.generation {
		return ErrIllegalGeneration
	}
	switch g.state {
	case StateStable, StateCompletingRebalance:
		m.deadline = now.Add(m.session)
		return nil
	case StatePreparingRebalance:
		m.deadline = now.Add(m.session)
		return ErrRebalanceInProgress
	default:
		return ErrUnknownMember
	}
}

// leave removes the members of a LeaveGroup; one error per member.
func (g *classicGroup) leave(members []LeaveMember, now time.Time) []error {
	errs := make([]error, len(members))
	for i, lm := range members {
		id := lm.MemberID
		if lm.InstanceID != nil {
			sid, ok := g.static[*lm.InstanceID]
			switch {
			case !ok:
				errs[i] = ErrUnknownMember
				continue
			case id != "" && sid != id:
				errs[i] = ErrFencedInstanceID
				continue
			}
			id = sid
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			g.tryCompleteJoin(now)
			continue
		}
		if g.members[id] == nil {
			errs[i] = ErrUnknownMember
			continue
		}
		g.memberGone(id, now)
	}
	return errs
}

// nextDeadline is the earliest time tick has work to do (zero: none).
func (g *classicGroup) nextDeadline() time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	earlier(g.joinDeadline)
	earlier(g.syncDeadline)
	for _, t := range g.pending {
		earlier(t)
	}
	for _, m := range g.members {
		if m.joinCh == nil && m.syncCh == nil {
			earlier(m.deadline)
		}
	}
	return next
}

// tick fires the timers due at now: pending ids and sessions expire, the
// join and sync phases end.
func (g *classicGroup) tick(now time.Time) {
	for id, t := range g.pending {
		if !now.Before(t) {
			delete(g.pending, id)
			g.tryCompleteJoin(now)
		}
	}
	for _, m := range g.sortedMembers() {
		if m.joinCh == nil && m.syncCh == nil && !m.deadline.IsZero() && !now.Before(m.deadline) &&
			g.members[m.id] == m {
			g.cfg.logger().Info("group member session expired", "group", g.id, "member", m.id)
			g.memberGone(m.id, now)
		}
	}
	if g.state == StatePreparingRebalance && !g.joinDeadline.IsZero() && !now.Before(g.joinDeadline) {
		if g.initialDelay && g.joinedInWindow > 0 && now.Before(g.delayLimit) {
			// New members came during the window: wait another one.
			g.joinedInWindow = 0
			g.joinDeadline = now.Add(min(g.cfg.InitialRebalanceDelay, g.delayLimit.Sub(now)))
		} else {
			g.initialDelay = false
			g.completeJoin(now)
		}
	}
	if g.state == StateCompletingRebalance && !g.syncDeadline.IsZero() && !now.Before(g.syncDeadline) {
		// Members that never synced (the leader's assignment never came)
		// are removed, the rest rebalance.
		for _, m := range g.sortedMembers() {
			if m.syncCh == nil {
				g.removeMember(m.id)
			}
		}
		g.prepareRebalance(now)
	}
}

// stateInfo returns the group's state and whether it has members.
func (g *classicGroup) stateInfo() (string, bool) { return g.state, len(g.members) > 0 }

// validateCommit checks an offset commit's member fields, as Kafka's
// ClassicGroup.validateOffsetCommit.
func (g *classicGroup) validateCommit(memberID string, instanceID *string, generation int32) error {
	if g.state == StateDead {
		return ErrCoordinatorNotAvailable
	}
	if generation < 0 && g.state == StateEmpty {
		return nil // admin or simple consumer
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if err := g.checkStatic(memberID, instanceID); err != nil {
			return err
		}
		if g.members[memberID] == nil {
			return ErrUnknownMember
		}
		if generation != g.generation {
			return fmt.Errorf("%w: %d, the group is at %d", ErrIllegalGeneration, generation, g.generation)
		}
	} else if g.state != StateEmpty {
		return ErrUnknownMember
	}
	if g.state == StateCompletingRebalance {
		return ErrRebalanceInProgress
	}
	return nil
}

// close answers every waiting join and sync with err.
func (g *classicGroup) close(err error) {
	for _, m := range g.members {
		if m.joinCh != nil {
			m.joinCh <- JoinResult{Err: err, MemberID: m.id, Generation: -1}
			m.joinCh = nil
		}
		if m.syncCh != nil {
			m.syncCh <- SyncResult{Err: err}
			m.syncCh = nil
		}
	}
}
