package broker

import (
	"strconv"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/wal"
)

// partition is a resolved topic partition: its metadata and the WAL group
// holding its stream.
type partition struct {
	topic *metadata.Topic
	meta  metadata.Partition
	group *wal.Group
}

// stream is the partition's WAL stream id.
func (p partition) stream() uint64 { return p.meta.Stream }

// partitionOf resolves partition idx of t (nil: unknown topic). It fails
// with errUnknownTopicOrPartition, or when this broker cannot serve the
// partition with errNotLeader (another broker leads its WAL group) or
// errLeaderNotAvailable (no leader, or this broker just became leader and
// has not applied the earlier terms' entries yet, or the partition is
// moving in: reassign.go).
func (b *Broker) partitionOf(t *metadata.Topic, idx int32) (partition, error) {
	if t == nil || idx < 0 || int(idx) >= len(t.Partitions) {
		return partition{}, errUnknownTopicOrPartition
	}
	p := t.Partitions[idx]
	ws := b.localGroup(p.WALGroup)
	if ws == nil {
		return partition{}, errNotLeader // the group lives on other brokers
	}
	g := ws.g
	if !g.IsLeader() {
		if g.Leader() == "" {
			return partition{}, errLeaderNotAvailable
		}
		return partition{}, errNotLeader
	}
	if !b.walReady(p.WALGroup) {
		return partition{}, errLeaderNotAvailable
	}
	if err := moveErr(p, g); err != nil {
		return partition{}, err
	}
	return partition{topic: t, meta: p, group: g}, nil
}

// leaderHint is the leader and leader epoch of partition idx of t when
// another broker leads it (KIP-951: NOT_LEADER_OR_FOLLOWER responses name
// the new leader); ok is false when the leader is unknown or this broker.
func (b *Broker) leaderHint(t *metadata.Topic, idx int32) (leader, epoch int32, ok bool) {
	if t == nil || idx < 0 || int(idx) >= len(t.Partitions) {
		return -1, -1, false
	}
	gid := t.Partitions[idx].WALGroup
	if ws := b.localGroup(gid); ws != nil {
		leader, epoch = nodeID(ws.g.Leader()), ws.g.LeaderEpoch()
	} else if mg, ok := b.meta.Image().WALGroup(gid); ok {
		leader, epoch = mg.Leader, mg.LeaderEpoch // as the group last reported
	} else {
		return -1, -1, false
	}
	if leader < 0 || leader == b.cfg.NodeID {
		return -1, -1, false
	}
	return leader, epoch, true
}

// endpoint is a registered broker's Kafka address.
type endpoint struct {
	id   int32
	host string
	port int32
	rack *string
}

// endpoints collects the addresses of brokers named in leader hints, once
// each, for the NodeEndpoints of Produce and Fetch responses (KIP-951).
type endpoints struct {
	im       *metadata.Image
	listener string // the listener the request came on: hints give its addresses
	seen     map[int32]bool
	list     []endpoint
}

// add records broker id's address, if it is registered.
func (e *endpoints) add(id int32) {
	if e.seen[id] {
		return
	}
	br, ok := e.im.Brokers[id]
	if !ok {
		return
	}
	addr, ok := br.Endpoint(e.listener)
	if !ok {
		return // the broker has no such listener: no hint, as Kafka
	}
	if e.seen == nil {
		e.seen = map[int32]bool{}
	}
	e.seen[id] = true
	ep := endpoint{id: br.ID, host: addr.Host, port: addr.Port}
	if br.Rack != "" {
		rack := br.Rack
		ep.rack = &rack
	}
	e.list = append(e.list, ep)
}

// leaderEpoch is the partition's current leader epoch: its WAL group's term.
func (p partition) leaderEpoch() int32 { return p.group.LeaderEpoch() }

// checkLeaderEpoch compares a client's CurrentLeaderEpoch (-1: no check)
// with the partition's (KIP-320).
func checkLeaderEpoch(requested, current int32) error {
	switch {
	case requested == -1:
		return nil
	case requested < current:
		return errFencedLeaderEpoch
	case requested > current:
		return errUnknownLeaderEpoch
	}
	return nil
}

// topicByID looks a topic up by its Kafka topic id; nil if unknown.
func topicByID(im *metadata.Image, id [16]byte) *metadata.Topic {
	return im.TopicsByID[metadata.TopicID(id)]
}

// lookupTopic finds a request's topic by id (byID, Produce v13+ and Fetch
// v13+) or by name; nil if unknown.
func lookupTopic(im *metadata.Image, byID bool, name string, id [16]byte) *metadata.Topic {
	if byID {
		return topicByID(im, id)
	}
	return im.Topics[name]
}

// topicLookupErr is the error for a topic that is not found: by name
// UNKNOWN_TOPIC_OR_PARTITION, by id UNKNOWN_TOPIC_ID.
func topicLookupErr(byID bool) error {
	if byID {
		return errUnknownTopicID
	}
	return errUnknownTopicOrPartition
}

// intConfig returns a topic's int config (explicit or default), or def when
// it does not parse.
func intConfig(t *metadata.Topic, name string, def int64) int64 {
	v, ok := t.EffectiveConfig(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def
	}
	return n
}
