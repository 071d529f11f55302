package group

import (
	"cmp"
	"maps"
	"slices"
)

// Listing is one group as ListGroups reports it.
type Listing struct {
	Group        string
	ProtocolType string // "consumer" for consumer groups
	State        string
	Type         string // TypeClassic or TypeConsumer
}

// List returns every group the coordinator knows, sorted by id.
func (c *Coordinator) List() []Listing {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Listing, 0, len(c.mu.groups))
	for id, e := range c.mu.groups {
		if e.classic != nil {
			out = append(out, Listing{Group: id, ProtocolType: e.classic.protocolType, State: e.classic.state, Type: TypeClassic})
		} else {
			out = append(out, Listing{Group: id, ProtocolType: "consumer", State: e.consumer.state(), Type: TypeConsumer})
		}
	}
	slices.SortFunc(out, func(a, b Listing) int { return cmp.Compare(a.Group, b.Group) })
	return out
}

// ClassicDescription is a classic group as DescribeGroups reports it.
type ClassicDescription struct {
	State        string
	ProtocolType string
	Protocol     string
	Members      []ClassicMemberDescription
}

// ClassicMemberDescription is one member of a described classic group;
// Metadata and Assignment are set only when the group is Stable, as Kafka.
type ClassicMemberDescription struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
}

// DescribeClassic describes a classic group; ErrGroupIDNotFound when the
// coordinator has no such group (or it is a consumer group: then isConsumer).
func (c *Coordinator) DescribeClassic(group string) (d ClassicDescription, isConsumer bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.mu.groups[group]
	switch {
	case e == nil:
		return d, false, ErrGroupIDNotFound
	case e.consumer != nil:
		return d, true, ErrGroupIDNotFound
	}
	g := e.classic
	d = ClassicDescription{State: g.state, ProtocolType: g.protocolType, Protocol: g.protocol}
	for _, m := range g.sortedMembers() {
		md := ClassicMemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if g.state == StateStable {
			for _, p := range m.protocols {
				if p.Name == g.protocol {
					md.Metadata = p.Metadata
				}
			}
			md.Assignment = m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d, false, nil
}

// ConsumerDescription is a consumer group as ConsumerGroupDescribe
// reports it.
type ConsumerDescription struct {
	State           string
	Epoch           int32
	AssignmentEpoch int32
	Assignor        string
	Members         []ConsumerMemberDescription
}

// ConsumerMemberDescription is one member of a described consumer group.
type ConsumerMemberDescription struct {
	MemberID         string
	InstanceID       *string
	RackID           *string
	MemberEpoch      int32
	ClientID         string
	ClientHost       string
	SubscribedTopics []string
	SubscribedRegex  *string
	Assignment       []TopicPartitions
	TargetAssignment []TopicPartitions
}

// DescribeConsumer describes a consumer group; ErrGroupIDNotFound when the
// coordinator has no such consumer group.
func (c *Coordinator) DescribeConsumer(group string) (ConsumerDescription, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.mu.groups[group]
	if e == nil || e.consumer == nil {
		return ConsumerDescription{}, ErrGroupIDNotFound
	}
	g := e.consumer
	d := ConsumerDescription{State: g.state(), Epoch: g.epoch, AssignmentEpoch: g.assignmentEpoch, Assignor: g.assignorName}
	if d.Assignor == "" {
		d.Assignor = c.cfg.DefaultAssignor
	}
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		d.Members = append(d.Members, ConsumerMemberDescription{
			MemberID: id, InstanceID: m.instanceID, RackID: m.rackID, MemberEpoch: m.epoch,
			ClientID: m.clientID, ClientHost: m.clientHost, SubscribedTopics: slices.Clone(m.names),
			SubscribedRegex: m.regexText, Assignment: g.topicPartitions(m.assigned),
			TargetAssignment: g.topicPartitions(g.target[id]),
		})
	}
	return d, nil
}
