package group

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ConsumerHeartbeatRequest is a ConsumerGroupHeartbeat (KIP-848). Nil
// fields mean "unchanged since the last heartbeat".
type ConsumerHeartbeatRequest struct {
	Group       string
	MemberID    string
	MemberEpoch int32 // 0 joins, -1 leaves, -2 leaves temporarily (static)
	InstanceID  *string
	RackID      *string
	ClientID    string
	ClientHost  string
	// RebalanceTimeout bounds how long the member may take to revoke
	// partitions; negative means unchanged.
	RebalanceTimeout     time.Duration
	SubscribedTopicNames []string
	SubscribedTopicRegex *string
	ServerAssignor       *string
	// Owned are the partitions the member owns now; nil means unchanged.
	Owned []TopicPartitions
}

// TopicPartitions are partitions of one topic.
type TopicPartitions struct {
	TopicID    [16]byte
	Topic      string // filled in descriptions
	Partitions []int32
}

// ConsumerHeartbeatResult is the answer to a ConsumerHeartbeatRequest.
type ConsumerHeartbeatResult struct {
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	// Assignment is the member's full assignment when HasAssignment; a
	// heartbeat that changes nothing carries none.
	HasAssignment bool
	Assignment    []TopicPartitions
}

// consumerMember is one member of a consumer group.
type consumerMember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string
	epoch      int32
	prevEpoch  int32
	names      []string
	regex      *regexp.Regexp
	regexText  *string
	assignor   string
	rebalance  time.Duration

	assigned       tpSet // the partitions the member may own
	revoking       tpSet // partitions it must release before it gets more
	revokeDeadline time.Time
	deadline       time.Time // session expiry
	leftStatic     bool      // left with epoch -2: kept until its session expires
}

// consumerGroup is the pure state machine of one consumer (KIP-848)
// group: the group epoch, the target assignment computed by the server
// assignor at the assignment epoch, and each member's reconciliation
// towards its target.
type consumerGroup struct {
	id  string
	cfg *Config

	epoch           int32
	assignmentEpoch int32
	assignorName    string
	target          map[string]tpSet
	members         map[string]*consumerMember
	static          map[string]string // instance id -> member id
	fingerprint     string            // subscribed topics' ids and sizes
	names           map[[16]byte]string
}

func newConsumerGroup(id string, cfg *Config) *consumerGroup {
	return &consumerGroup{id: id, cfg: cfg, target: map[string]tpSet{}, members: map[string]*consumerMember{},
		static: map[string]string{}, names: map[[16]byte]string{}}
}

// heartbeat handles one heartbeat; newID is the id a v0 join without
// member id gets.
func (g *consumerGroup) heartbeat(req ConsumerHeartbeatRequest, newID string, topics map[string]TopicInfo,
	now time.Time) (ConsumerHeartbeatResult, error) {
	switch {
	case req.MemberEpoch == -1 || req.MemberEpoch == -2:
		return g.leave(req, topics, now)
	case req.MemberEpoch == 0:
		return g.join(req, newID, topics, now)
	case req.MemberEpoch < -2:
		return ConsumerHeartbeatResult{}, fmt.Errorf("%w: member epoch %d", ErrInvalidRequest, req.MemberEpoch)
	}
	m := g.members[req.MemberID]
	if m == nil || m.leftStatic {
		return ConsumerHeartbeatResult{}, ErrUnknownMember
	}
	if req.MemberEpoch > m.epoch || req.MemberEpoch < m.epoch &&
		(req.MemberEpoch != m.prevEpoch || req.Owned != nil && !ownedSubset(req.Owned, m.assigned)) {
		return ConsumerHeartbeatResult{}, fmt.Errorf("%w: %d, the member is at %d", ErrFencedMemberEpoch, req.MemberEpoch, m.epoch)
	}
	if err := g.update(m, req, topics); err != nil {
		return ConsumerHeartbeatResult{}, err
	}
	return g.respond(m, req.Owned, req.Owned != nil, now), nil
}

// join handles epoch 0: a new member, a static member coming back, or a
// member re-joining after a lost response (it keeps its assignment).
func (g *consumerGroup) join(req ConsumerHeartbeatRequest, newID string, topics map[string]TopicInfo,
	now time.Time) (ConsumerHeartbeatResult, error) {
	if len(req.Owned) > 0 {
		return ConsumerHeartbeatResult{}, fmt.Errorf("%w: a joining member owns no partitions", ErrInvalidRequest)
	}
	id := req.MemberID
	if id == "" {
		id = newID
	}
	m := g.members[id]
	if req.InstanceID != nil {
		if oldID, ok := g.static[*req.InstanceID]; ok && oldID != id {
			old := g.members[oldID]
			if !old.leftStatic {
				return ConsumerHeartbeatResult{}, fmt.Errorf("%w: %s", ErrUnreleasedInstanceID, *req.InstanceID)
			}
			// The static member is back under a new id: it takes over the
			// old one's assignment and epoch, no rebalance (KIP-848).
			delete(g.members, oldID)
			old.id, old.leftStatic = id, false
			g.members[id] = old
			g.static[*req.InstanceID] = id
			g.target[id] = g.target[oldID]
			delete(g.target, oldID)
			m = old
		}
	}
	if m == nil {
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return ConsumerHeartbeatResult{}, fmt.Errorf("%w: the first heartbeat must subscribe", ErrInvalidRequest)
		}
		if req.RebalanceTimeout < 0 {
			return ConsumerHeartbeatResult{}, fmt.Errorf("%w: the first heartbeat must give a rebalance timeout", ErrInvalidRequest)
		}
		m = &consumerMember{id: id, instanceID: req.InstanceID, assigned: tpSet{}, revoking: tpSet{}}
		if err := g.update(m, req, topics); err != nil {
			return ConsumerHeartbeatResult{}, err
		}
		g.members[id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = id
		}
		g.bump(topics)
	} else {
		m.leftStatic = false
		if err := g.update(m, req, topics); err != nil {
			return ConsumerHeartbeatResult{}, err
		}
	}
	return g.respond(m, []TopicPartitions{}, true, now), nil
}

// leave handles epoch -1 (the member leaves) and -2 (a static member
// leaves for now; its partitions stay reserved until its session expires).
func (g *consumerGroup) leave(req ConsumerHeartbeatRequest, topics map[string]TopicInfo,
	now time.Time) (ConsumerHeartbeatResult, error) {
	id := req.MemberID
	if req.InstanceID != nil {
		if sid, ok := g.static[*req.InstanceID]; ok {
			if id != "" && sid != id {
				return ConsumerHeartbeatResult{}, ErrFencedInstanceID
			}
			id = sid
		}
	}
	m := g.members[id]
	if m == nil {
		return ConsumerHeartbeatResult{}, ErrUnknownMember
	}
	res := ConsumerHeartbeatResult{MemberID: id, MemberEpoch: req.MemberEpoch}
	if req.MemberEpoch == -2 && m.instanceID != nil {
		m.leftStatic = true
		m.deadline = now.Add(g.cfg.ConsumerSessionTimeout)
		return res, nil
	}
	g.remove(id, topics)
	return res, nil
}

// update applies the heartbeat's changed fields; a subscription change
// bumps the group epoch.
func (g *consumerGroup) update(m *consumerMember, req ConsumerHeartbeatRequest, topics map[string]TopicInfo) error {
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		if *req.ServerAssignor != AssignorUniform && *req.ServerAssignor != AssignorRange {
			return fmt.Errorf("%w: %q (uniform or range)", ErrUnsupportedAssignor, *req.ServerAssignor)
		}
	}
	changed := false
	if req.SubscribedTopicRegex != nil && (m.regexText == nil || *m.regexText != *req.SubscribedTopicRegex) {
		var re *regexp.Regexp
		if *req.SubscribedTopicRegex != "" {
			var err error
			if re, err = regexp.Compile("^(?:" + *req.SubscribedTopicRegex + ")$"); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidRegex, err)
			}
		}
		m.regex, m.regexText, changed = re, req.SubscribedTopicRegex, true
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Sorted(slices.Values(req.SubscribedTopicNames))
		names = slices.Compact(names)
		if !slices.Equal(names, m.names) {
			m.names, changed = names, true
		}
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor, changed = *req.ServerAssignor, true
	}
	if req.RebalanceTimeout >= 0 {
		m.rebalance = req.RebalanceTimeout
	}
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	if changed && g.members[m.id] == m {
		g.bump(topics)
	}
	return nil
}

// respond reconciles m and builds its answer; withAssignment forces the
// full assignment into the answer.
func (g *consumerGroup) respond(m *consumerMember, owned []TopicPartitions, withAssignment bool, now time.Time) ConsumerHeartbeatResult {
	before := m.assigned.clone()
	g.reconcile(m, owned, now)
	m.deadline = now.Add(g.cfg.ConsumerSessionTimeout)
	res := ConsumerHeartbeatResult{MemberID: m.id, MemberEpoch: m.epoch, HeartbeatInterval: g.cfg.ConsumerHeartbeatInterval}
	if withAssignment || !before.equal(m.assigned) {
		res.HasAssignment = true
		res.Assignment = g.topicPartitions(m.assigned)
	}
	return res
}

// reconcile moves m towards its target: partitions it must give up are
// revoked first (the member keeps its epoch until it reports them
// released), then it gets the target's partitions that no other member
// owns, and its epoch becomes the assignment epoch. owned nil: unchanged.
func (g *consumerGroup) reconcile(m *consumerMember, owned []TopicPartitions, now time.Time) {
	if len(m.revoking) > 0 {
		if owned == nil || ownedIntersects(owned, m.revoking) {
			return
		}
		m.revoking, m.revokeDeadline = tpSet{}, time.Time{}
	}
	target := g.target[m.id]
	if revoke := m.assigned.minus(target); len(revoke) > 0 {
		for p := range revoke {
			delete(m.assigned, p)
		}
		m.revoking = revoke
		m.revokeDeadline = now.Add(max(m.rebalance, time.Second))
		return
	}
	owners := g.owners(m.id)
	for p := range target.minus(m.assigned) {
		if !owners[p] {
			m.assigned[p] = struct{}{}
		}
	}
	if m.epoch != g.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, g.assignmentEpoch
	}
}

// owners returns the partitions members other than except own or are
// revoking.
func (g *consumerGroup) owners(except string) map[tp]bool {
	out := map[tp]bool{}
	for id, o := range g.members {
		if id == except {
			continue
		}
		for p := range o.assigned {
			out[p] = true
		}
		for p := range o.revoking {
			out[p] = true
		}
	}
	return out
}

// remove drops a member and rebalances the others.
func (g *consumerGroup) remove(id string, topics map[string]TopicInfo) {
	m := g.members[id]
	if m == nil {
		return
	}
	delete(g.members, id)
	delete(g.target, id)
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	g.bump(topics)
}

// bump starts a new group epoch and computes its target assignment.
func (g *consumerGroup) bump(topics map[string]TopicInfo) {
	g.epoch++
	g.computeTarget(topics)
}

// topicsChanged recomputes the target when a subscribed topic appeared,
// vanished or grew.
func (g *consumerGroup) topicsChanged(topics map[string]TopicInfo) {
	if len(g.members) > 0 && g.subscriptionFingerprint(topics) != g.fingerprint {
		g.bump(topics)
	}
}

// subscriptions resolves every member's subscription against topics.
func (g *consumerGroup) subscriptions(topics map[string]TopicInfo) []memberTopics {
	names := slices.Sorted(maps.Keys(topics))
	var out []memberTopics
	for _, m := range g.members {
		mt := memberTopics{id: m.id}
		for _, name := range names {
			if slices.Contains(m.names, name) || m.regex != nil && m.regex.MatchString(name) {
				t := topics[name]
				mt.topics = append(mt.topics, subscribedTopic{name: name, id: t.ID, partitions: t.Partitions})
				g.names[t.ID] = name
			}
		}
		out = append(out, mt)
	}
	slices.SortFunc(out, func(a, b memberTopics) int { return cmp.Compare(a.id, b.id) })
	return out
}

// subscriptionFingerprint names the subscribed topics with their ids and
// sizes.
func (g *consumerGroup) subscriptionFingerprint(topics map[string]TopicInfo) string {
	seen := map[string]bool{}
	var parts []string
	for _, mt := range g.subscriptions(topics) {
		for _, t := range mt.topics {
			if !seen[t.name] {
				seen[t.name] = true
				parts = append(parts, fmt.Sprintf("%s/%x/%d", t.name, t.id, t.partitions))
			}
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// computeTarget runs the group's assignor for the current epoch.
func (g *consumerGroup) computeTarget(topics map[string]TopicInfo) {
	subs := g.subscriptions(topics)
	g.fingerprint = g.subscriptionFingerprint(topics)
	g.assignorName = g.pickAssignor()
	if g.assignorName == AssignorRange {
		g.target = assignRange(subs)
	} else {
		g.target = assignUniform(subs, g.target)
	}
	g.assignmentEpoch = g.epoch
}

// pickAssignor is the assignor most members ask for, else the default.
func (g *consumerGroup) pickAssignor() string {
	votes := map[string]int{}
	for _, m := range g.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := g.cfg.DefaultAssignor
	for _, name := range []string{AssignorUniform, AssignorRange} {
		if votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// topicPartitions lists a set by topic, partitions sorted.
func (g *consumerGroup) topicPartitions(s tpSet) []TopicPartitions {
	out := []TopicPartitions{}
	for _, p := range s.sorted() {
		if n := len(out); n == 0 || out[n-1].TopicID != p.topic {
			out = append(out, TopicPartitions{TopicID: p.topic, Topic: g.names[p.topic]})
		}
		last := &out[len(out)-1]
		last.Partitions = append(last.Partitions, p.part)
	}
	return out
}

func ownedIntersects(owned []TopicPartitions, s tpSet) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if _, ok := s[tp{t.TopicID, p}]; ok {
				return true
			}
		}
	}
	return false
}

func ownedSubset(owned []TopicPartitions, s tpSet) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if _, ok := s[tp{t.TopicID, p}]; !ok {
				return false
			}
		}
	}
	return true
}

// nextDeadline is the earliest session or revocation deadline.
func (g *consumerGroup) nextDeadline() time.Time {
	var next time.Time
	for _, m := range g.members {
		for _, t := range []time.Time{m.deadline, m.revokeDeadline} {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return next
}

// tick removes members whose session expired or who did not revoke in
// time.
func (g *consumerGroup) tick(now time.Time, topics map[string]TopicInfo) {
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		expired := !m.deadline.IsZero() && !now.Before(m.deadline)
		late := !m.revokeDeadline.IsZero() && !now.Before(m.revokeDeadline)
		if expired || late {
			g.cfg.logger().Info("consumer group member fenced", "group", g.id, "member", id,
				"session_expired", expired, "revocation_late", late)
			g.remove(id, topics)
		}
	}
}

// state is the group's state as Kafka lists it.
func (g *consumerGroup) state() string {
	switch {
	case len(g.members) == 0:
		return StateEmpty
	case g.assignmentEpoch < g.epoch:
		return StateAssigning
	}
	for id, m := range g.members {
		if m.epoch != g.assignmentEpoch || len(m.revoking) > 0 || !m.assigned.equal(g.target[id]) {
			return StateReconciling
		}
	}
	return StateStable
}

// validateCommit checks an offset commit's member fields, as Kafka's
// ConsumerGroup.validateOffsetCommit; the previous member epoch is also
// accepted, since the commit may race with the heartbeat that bumped it.
func (g *consumerGroup) validateCommit(memberID string, epoch int32) error {
	if epoch < 0 && len(g.members) == 0 {
		return nil
	}
	m := g.members[memberID]
	if m == nil {
		return ErrUnknownMember
	}
	if epoch != m.epoch && (m.prevEpoch <= 0 || epoch != m.prevEpoch) {
		return fmt.Errorf("%w: %d, the member is at %d", ErrStaleMemberEpoch, epoch, m.epoch)
	}
	return nil
}
