package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Group types as ListGroups v5 reports them.
const (
	TypeClassic  = "classic"
	TypeConsumer = "consumer"
)

// Coordinator coordinates every group of this broker: classic groups
// (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) and consumer groups
// (ConsumerGroupHeartbeat, KIP-848). A group id is of one type at a time;
// an empty group may change type.
//
// Its state lives in memory: after a restart members rejoin (committed
// offsets are kept by the metadata store, not here).
type Coordinator struct {
	cfg  Config
	kick chan struct{} // wakes the timer loop after a change
	stop chan struct{}
	wg   sync.WaitGroup

	closeOnce sync.Once

	mu struct {
		sync.Mutex
		groups map[string]*entry
		closed bool
	}
}

// entry is one group: exactly one of classic and consumer is set.
type entry struct {
	classic  *classicGroup
	consumer *consumerGroup
}

// New validates cfg and starts the coordinator's goroutines: the timer
// loop (sessions, rebalance and sync deadlines, the initial delay) and,
// when cfg.Topics is set, the topic watcher that updates consumer groups'
// target assignments. Close stops both.
func New(cfg Config) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	c.mu.groups = map[string]*entry{}
	c.wg.Add(1)
	go c.timerLoop()
	if cfg.Topics != nil {
		c.wg.Add(1)
		go c.watchTopics()
	}
	return c, nil
}

// Close answers every waiting join and sync with ErrCoordinatorNotAvailable,
// stops the goroutines and waits for them.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.mu.closed = true
		for _, e := range c.mu.groups {
			if e.classic != nil {
				e.classic.close(ErrCoordinatorNotAvailable)
			}
		}
		c.mu.Unlock()
		close(c.stop)
		c.wg.Wait()
	})
	return nil
}

// wake tells the timer loop that deadlines may have changed.
func (c *Coordinator) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// timerLoop fires due timers of every group, sleeping until the next one.
func (c *Coordinator) timerLoop() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		next := c.tickLocked(c.cfg.now())
		c.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-c.stop:
			return
		case <-c.kick:
		case <-timer.C:
		}
	}
}

// tickLocked fires what is due at now and returns the next deadline.
func (c *Coordinator) tickLocked(now time.Time) time.Time {
	var next time.Time
	var topics map[string]TopicInfo
	for _, e := range c.mu.groups {
		var d time.Time
		if e.classic != nil {
			if d = e.classic.nextDeadline(); !d.IsZero() && !now.Before(d) {
				e.classic.tick(now)
				d = e.classic.nextDeadline()
			}
		} else {
			if d = e.consumer.nextDeadline(); !d.IsZero() && !now.Before(d) {
				if topics == nil {
					topics = c.topics()
				}
				e.consumer.tick(now, topics)
				d = e.consumer.nextDeadline()
			}
		}
		if !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

// watchTopics recomputes consumer groups' targets when topics change.
func (c *Coordinator) watchTopics() {
	defer c.wg.Done()
	for {
		ch := c.cfg.Topics.Changed()
		topics := c.cfg.Topics.Topics()
		c.mu.Lock()
		for _, e := range c.mu.groups {
			if e.consumer != nil {
				e.consumer.topicsChanged(topics)
			}
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.stop:
			return
		}
	}
}

func (c *Coordinator) topics() map[string]TopicInfo {
	if c.cfg.Topics == nil {
		return map[string]TopicInfo{}
	}
	return c.cfg.Topics.Topics()
}

// newMemberID returns prefix-<32 hex digits>, like Kafka's
// clientId-UUID member ids.
func newMemberID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// classicLocked returns the classic group id, creating it if create is
// set; an empty consumer group becomes classic, a non-empty one is err.
func (c *Coordinator) classicLocked(id string, create bool) (*classicGroup, error) {
	if c.mu.closed {
		return nil, ErrCoordinatorNotAvailable
	}
	e := c.mu.groups[id]
	switch {
	case e == nil && !create:
		return nil, nil
	case e == nil:
		e = &entry{classic: newClassicGroup(id, &c.cfg)}
		c.mu.groups[id] = e
	case e.consumer != nil && !create:
		return nil, nil
	case e.consumer != nil && len(e.consumer.members) > 0:
		return nil, fmt.Errorf("%w: %s is a consumer group", ErrInconsistentProtocol, id)
	case e.consumer != nil:
		e.consumer, e.classic = nil, newClassicGroup(id, &c.cfg)
	}
	return e.classic, nil
}

// Join handles a classic JoinGroup; it waits (up to the rebalance) for
// the join phase to complete, or until ctx ends.
func (c *Coordinator) Join(ctx context.Context, req JoinRequest) JoinResult {
	fail := func(err error) JoinResult { return JoinResult{Err: err, MemberID: req.MemberID, Generation: -1} }
	if req.Group == "" {
		return fail(ErrInvalidGroupID)
	}
	if req.SessionTimeout < c.cfg.MinSessionTimeout || req.SessionTimeout > c.cfg.MaxSessionTimeout {
		return fail(fmt.Errorf("%w: %v is outside [%v, %v]", ErrInvalidSessionTimeout,
			req.SessionTimeout, c.cfg.MinSessionTimeout, c.cfg.MaxSessionTimeout))
	}
	ch := make(chan JoinResult, 1)
	c.mu.Lock()
	g, err := c.classicLocked(req.Group, true)
	var res *JoinResult
	if err != nil {
		res = &JoinResult{Err: err, MemberID: req.MemberID, Generation: -1}
	} else {
		prefix := req.ClientID
		if prefix == "" {
			prefix = "member"
		}
		res = g.join(req, newMemberID(prefix), ch, c.cfg.now())
	}
	c.mu.Unlock()
	c.wake()
	if res != nil {
		return *res
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return fail(ErrCoordinatorNotAvailable)
	}
}

// Sync handles a classic SyncGroup; followers wait for the leader's
// assignment, or until ctx ends.
func (c *Coordinator) Sync(ctx context.Context, req SyncRequest) SyncResult {
	if req.Group == "" {
		return SyncResult{Err: ErrInvalidGroupID}
	}
	ch := make(chan SyncResult, 1)
	c.mu.Lock()
	g, err := c.classicLocked(req.Group, false)
	var res *SyncResult
	switch {
	case err != nil:
		res = &SyncResult{Err: err}
	case g == nil:
		res = &SyncResult{Err: ErrUnknownMember}
	default:
		res = g.sync(req, ch, c.cfg.now())
	}
	c.mu.Unlock()
	c.wake()
	if res != nil {
		return *res
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return SyncResult{Err: ErrCoordinatorNotAvailable}
	}
}

// Heartbeat handles a classic Heartbeat.
func (c *Coordinator) Heartbeat(req HeartbeatRequest) error {
	if req.Group == "" {
		return ErrInvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.wake()
	g, err := c.classicLocked(req.Group, false)
	switch {
	case err != nil:
		return err
	case g == nil:
		return ErrUnknownMember
	}
	return g.heartbeat(req, c.cfg.now())
}

// Leave handles a LeaveGroup: a top-level error, or one per member.
func (c *Coordinator) Leave(group string, members []LeaveMember) ([]error, error) {
	if group == "" {
		return nil, ErrInvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.wake()
	g, err := c.classicLocked(group, false)
	switch {
	case err != nil:
		return nil, err
	case g == nil:
		return nil, ErrUnknownMember
	}
	return g.leave(members, c.cfg.now()), nil
}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat (KIP-848).
func (c *Coordinator) ConsumerHeartbeat(req ConsumerHeartbeatRequest) (ConsumerHeartbeatResult, error) {
	if req.Group == "" {
		// Kafka answers INVALID_REQUEST ("GroupId can't be empty.") here,
		// not INVALID_GROUP_ID as the classic APIs do.
		return ConsumerHeartbeatResult{}, fmt.Errorf("%w: group id can't be empty", ErrInvalidRequest)
	}
	topics := c.topics()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.wake()
	if c.mu.closed {
		return ConsumerHeartbeatResult{}, ErrCoordinatorNotAvailable
	}
	e := c.mu.groups[req.Group]
	joining := req.MemberEpoch == 0
	switch {
	case e == nil && !joining:
		// Only a join creates a group, as Kafka.
		return ConsumerHeartbeatResult{}, fmt.Errorf("%w: %s", ErrGroupIDNotFound, req.Group)
	case e == nil:
		e = &entry{consumer: newConsumerGroup(req.Group, &c.cfg)}
		c.mu.groups[req.Group] = e
	case e.classic != nil && (!joining || !e.classic.empty()):
		return ConsumerHeartbeatResult{}, fmt.Errorf("%w: %s is a classic group", ErrGroupIDNotFound, req.Group)
	case e.classic != nil:
		e.classic, e.consumer = nil, newConsumerGroup(req.Group, &c.cfg)
	}
	g := e.consumer
	g.topicsChanged(topics)
	prefix := req.ClientID
	if prefix == "" {
		prefix = "member"
	}
	return g.heartbeat(req, newMemberID(prefix), topics, c.cfg.now())
}

// ValidateOffsetCommit checks an OffsetCommit's member fields against the
// group: generation -1 with an empty member id is an admin/simple-consumer
// commit, allowed when the group has no members (or does not exist);
// classic groups check member id + generation (+ instance id:
// ErrFencedInstanceID); consumer (KIP-848) groups check the member epoch
// (ErrStaleMemberEpoch / ErrUnknownMember).
func (c *Coordinator) ValidateOffsetCommit(group, memberID string, instanceID *string, generation int32) error {
	if group == "" {
		return ErrInvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return ErrCoordinatorNotAvailable
	}
	e := c.mu.groups[group]
	switch {
	case e == nil && generation < 0:
		return nil
	case e == nil:
		return fmt.Errorf("%w: group %s has no generation %d", ErrIllegalGeneration, group, generation)
	case e.classic != nil:
		return e.classic.validateCommit(memberID, instanceID, generation)
	default:
		return e.consumer.validateCommit(memberID, generation)
	}
}

// GroupState reports a group's state name as Kafka lists it ("Empty",
// "Stable", ...; "Dead" when unknown) and whether it has members.
func (c *Coordinator) GroupState(group string) (state string, hasMembers bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.mu.groups[group]
	switch {
	case e == nil:
		return StateDead, false
	case e.classic != nil:
		return e.classic.stateInfo()
	default:
		return e.consumer.state(), len(e.consumer.members) > 0
	}
}

// Delete removes a group without members. ErrGroupIDNotFound: no such
// group here (it may still have committed offsets); ErrGroupNotEmpty: it
// has members.
func (c *Coordinator) Delete(group string) error {
	if group == "" {
		return ErrInvalidGroupID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return ErrCoordinatorNotAvailable
	}
	e := c.mu.groups[group]
	switch {
	case e == nil:
		return ErrGroupIDNotFound
	case e.classic != nil && !e.classic.empty(), e.consumer != nil && len(e.consumer.members) > 0:
		return fmt.Errorf("%w: %s", ErrGroupNotEmpty, group)
	}
	if e.classic != nil {
		e.classic.state = StateDead
	}
	delete(c.mu.groups, group)
	return nil
}
