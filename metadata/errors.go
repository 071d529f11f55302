package metadata

import "errors"

// Sentinel errors. Callers test them with errors.Is; the broker maps them to
// Kafka error codes.
var (
	// ErrTopicExists is returned when a topic of that name already exists.
	ErrTopicExists = errors.New("metadata: topic already exists")
	// ErrUnknownTopic is returned for an operation on a topic that does not exist.
	ErrUnknownTopic = errors.New("metadata: unknown topic")
	// ErrInvalidTopicName is returned for a name outside Kafka's rules, or one
	// that collides with an existing topic once '.' and '_' are treated alike.
	ErrInvalidTopicName = errors.New("metadata: invalid topic name")
	// ErrInvalidPartitions is returned for a partition count out of range, or a
	// CreatePartitions that does not grow the topic.
	ErrInvalidPartitions = errors.New("metadata: invalid partition count")
	// ErrInvalidReplicationFactor is returned for a replication factor below 1
	// (other than -1, which asks for the default).
	ErrInvalidReplicationFactor = errors.New("metadata: invalid replication factor")
	// ErrInvalidConfig is returned for an unknown topic config key or a value
	// its definition rejects; the error names the key.
	ErrInvalidConfig = errors.New("metadata: invalid config")
	// ErrInvalidRequest is returned for other arguments out of range (a broker
	// registration without host, a producer id block of size 0).
	ErrInvalidRequest = errors.New("metadata: invalid request")
	// ErrInvalidCommand is returned when a log entry or snapshot does not
	// decode to a well-formed command or image.
	ErrInvalidCommand = errors.New("metadata: invalid command")
	// ErrNotLeader is returned by a write that no leader of the metadata
	// group took within the apply timeout: none was elected, or it could not
	// be reached. The write may still apply later, at most once.
	ErrNotLeader = errors.New("metadata: not the leader")
	// ErrClosed is returned by a Store after Close.
	ErrClosed = errors.New("metadata: closed")
)

// Object index errors.
var (
	// ErrRangeConflict is returned when committed ranges would leave a gap or
	// overlap in a stream's history, or a compaction's outputs do not cover
	// exactly the live ranges of its inputs.
	ErrRangeConflict = errors.New("metadata: range conflict")
	// ErrUnknownObject is returned when a compaction input is not a live
	// object (for example, another compaction replaced it already).
	ErrUnknownObject = errors.New("metadata: unknown object")
	// ErrObjectExists is returned when an object key is committed again with
	// different content, or a compaction output reuses a known key.
	ErrObjectExists = errors.New("metadata: object already exists")
)

// Membership errors.
var (
	// ErrMemberExists is returned when a broker id is admitted again with
	// another cluster address.
	ErrMemberExists = errors.New("metadata: broker is already a member")
	// ErrMemberRemoved is returned when a removed broker id is admitted or
	// registered again: ids are never reused.
	ErrMemberRemoved = errors.New("metadata: broker was removed from the cluster")
	// ErrUnknownMember is returned for a broker id that is not a member.
	ErrUnknownMember = errors.New("metadata: unknown broker")
)
