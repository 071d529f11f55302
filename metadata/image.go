package metadata

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
)

// Image is one immutable version of the cluster metadata. A Store publishes a
// new Image for every change and never modifies a published one; callers must
// not modify it either (maps, topics and partition slices are shared between
// versions).
type Image struct {
	ClusterID string
	// Members are the brokers admitted to the cluster and WALGroups the
	// layout of the WAL Raft groups, indexed by group id (cluster.go).
	// RemovedMembers are the ids of removed brokers, never reused.
	Members        map[int32]Member
	WALGroups      []WALGroup
	RemovedMembers []int32
	// Brokers are the registered brokers' Kafka addresses.
	Brokers    map[int32]Broker
	Topics     map[string]*Topic
	TopicsByID map[TopicID]*Topic

	// Objects are the objects in object storage that hold live ranges, by key.
	Objects map[string]*Object
	// Streams holds every existing stream's committed history, by stream id.
	Streams map[uint64]*StreamObjects
	// PendingDeletes are objects nothing refers to any more, waiting for
	// their grace period to pass; sorted by (DeleteAfterMs, Key).
	PendingDeletes []PendingDelete

	// Offsets holds the committed offsets of every consumer group that has
	// any, by group id; see GroupOffsets.
	Offsets map[string]map[TopicPartition]CommittedOffset

	// Scram holds the users' SCRAM credentials, by user and mechanism
	// (scram.go).
	Scram map[string]map[ScramMechanism]ScramCredential

	// Quotas holds the client quotas, by entity and key (quotas.go).
	Quotas map[QuotaEntity]map[string]float64

	// ACLs holds the access control bindings (acls.go); nil when none.
	ACLs *ACLTable

	// NextStreamID is the stream id the next partition gets. Stream ids start
	// at 1 and are never reused, also after a topic is deleted.
	NextStreamID uint64
	// NextProducerID is the first id of the next producer id block.
	NextProducerID int64
	// Index is the Raft log index of the last command that changed the image
	// (0 for the empty image).
	Index uint64
}

// Broker is one registered broker and the addresses it serves.
type Broker struct {
	ID          int32
	Host        string // advertised Kafka host (of the first listener)
	Port        int32  // advertised Kafka port (of the first listener)
	Rack        string // optional
	ClusterAddr string // cluster (Raft) listener, host:port
	// Listeners are the advertised endpoints of every Kafka listener; a
	// registration written before listeners had names has none (its
	// Host and Port serve every client).
	Listeners []Endpoint `json:",omitempty"`
}

// Endpoint is one advertised Kafka listener of a broker.
type Endpoint struct {
	Name             string // listener name, e.g. "PLAINTEXT", "SASL_SSL"
	Host             string
	Port             int32
	SecurityProtocol string // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
}

// Endpoint returns the broker's endpoint of the named listener. A
// registration without listeners answers every name with Host and Port.
func (b Broker) Endpoint(listener string) (Endpoint, bool) {
	if len(b.Listeners) == 0 {
		return Endpoint{Name: listener, Host: b.Host, Port: b.Port}, true
	}
	for _, e := range b.Listeners {
		if e.Name == listener {
			return e, true
		}
	}
	return Endpoint{}, false
}

// checkEndpoints checks a registration's listeners: named, unique, with a
// host and a port.
func checkEndpoints(b Broker) error {
	names := map[string]bool{}
	for _, e := range b.Listeners {
		switch {
		case e.Name == "" || names[e.Name]:
			return fmt.Errorf("%w: broker %d listener name %q empty or repeated", ErrInvalidRequest, b.ID, e.Name)
		case e.Host == "" || e.Port <= 0 || e.Port > 65535:
			return fmt.Errorf("%w: broker %d listener %s has no host or a bad port", ErrInvalidRequest, b.ID, e.Name)
		}
		names[e.Name] = true
	}
	return nil
}

// equal reports whether two registrations are the same.
func (b Broker) equal(o Broker) bool {
	return b.ID == o.ID && b.Host == o.Host && b.Port == o.Port && b.Rack == o.Rack &&
		b.ClusterAddr == o.ClusterAddr && slices.Equal(b.Listeners, o.Listeners)
}

// TopicID is a topic's UUID (Kafka's topic id): 16 random bytes, never all zero.
type TopicID [16]byte

// String formats the id like Kafka: URL-safe base64 without padding.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// IsZero reports whether the id is all zero (Kafka's "no id").
func (id TopicID) IsZero() bool { return id == TopicID{} }

// MarshalText encodes the id as String does.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes the form String produces.
func (id *TopicID) UnmarshalText(b []byte) error {
	if base64.RawURLEncoding.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("%w: topic id %q has the wrong length", ErrInvalidCommand, b)
	}
	var out TopicID
	if _, err := base64.RawURLEncoding.Decode(out[:], b); err != nil {
		return fmt.Errorf("%w: topic id %q: %w", ErrInvalidCommand, b, err)
	}
	*id = out
	return nil
}

// Topic is one topic. Its partitions are indexed 0..len-1.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions []Partition
	// Configs holds the explicitly set configs only; see EffectiveConfig.
	Configs           map[string]string
	ReplicationFactor int16
}

// Partition is one partition of a topic: a stream with a cluster-unique id,
// stored in one WAL group.
type Partition struct {
	Index       int32
	Stream      uint64
	WALGroup    uint32
	LeaderEpoch int32
	// Move is the partition's move to another WAL group, while one is in
	// progress (reassign.go).
	Move *PartitionMove `json:",omitempty"`
}

// TopicSpec is a request to create a topic.
type TopicSpec struct {
	Name              string
	Partitions        int32 // -1: Config.DefaultPartitions
	ReplicationFactor int16 // -1: Config.DefaultReplicationFactor
	Configs           map[string]string
	// WALGroups are the WAL groups the partitions are spread over, round
	// robin in partition order; empty means {0}.
	WALGroups []uint32
}

// SortedTopicNames returns the topic names in ascending order.
func (im *Image) SortedTopicNames() []string {
	return slices.Sorted(maps.Keys(im.Topics))
}

// SortedBrokers returns the brokers in ascending id order.
func (im *Image) SortedBrokers() []Broker {
	out := slices.Collect(maps.Values(im.Brokers))
	slices.SortFunc(out, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// emptyImage is the image of a fresh group, before any command.
func emptyImage() *Image {
	return &Image{
		Brokers:      map[int32]Broker{},
		Members:      map[int32]Member{},
		Topics:       map[string]*Topic{},
		TopicsByID:   map[TopicID]*Topic{},
		Objects:      map[string]*Object{},
		Streams:      map[uint64]*StreamObjects{},
		Offsets:      map[string]map[TopicPartition]CommittedOffset{},
		Scram:        map[string]map[ScramMechanism]ScramCredential{},
		Quotas:       map[QuotaEntity]map[string]float64{},
		NextStreamID: 1,
	}
}

// clone copies the image struct; its maps and slices stay shared until a
// with... method copies them.
func (im *Image) clone() *Image {
	c := *im
	return &c
}

// withTopics gives the image its own shallow copies of the topic maps.
func (im *Image) withTopics() {
	im.Topics = maps.Clone(im.Topics)
	im.TopicsByID = maps.Clone(im.TopicsByID)
}

// withBrokers gives the image its own copy of the broker map.
func (im *Image) withBrokers() {
	im.Brokers = maps.Clone(im.Brokers)
}

// withObjects gives the image its own shallow copy of the object map.
func (im *Image) withObjects() {
	im.Objects = maps.Clone(im.Objects)
}

// withStreams gives the image its own shallow copy of the stream map.
func (im *Image) withStreams() {
	im.Streams = maps.Clone(im.Streams)
}

// putTopic stores t under its name and id; the maps must be owned (withTopics).
func (im *Image) putTopic(t *Topic) {
	im.Topics[t.Name] = t
	im.TopicsByID[t.ID] = t
}

// clone deep-copies a topic so that it can be changed for a new image.
func (t *Topic) clone() *Topic {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	c.Configs = maps.Clone(t.Configs)
	if c.Configs == nil {
		c.Configs = map[string]string{}
	}
	return &c
}
