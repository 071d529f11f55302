package broker

import "errors"

// Sentinel errors of the broker's own request validation. errcode.go maps
// them (and those of wal, metadata, protocol and s3stream) to Kafka codes.
var (
	errUnknownTopicOrPartition = errors.New("broker: unknown topic or partition")
	errUnknownTopicID          = errors.New("broker: unknown topic id")
	errInvalidRequiredAcks     = errors.New("broker: acks must be -1, 0 or 1")
	errMessageTooLarge         = errors.New("broker: record batch larger than max.message.bytes")
	errOneBatch                = errors.New("broker: a produce partition must hold exactly one record batch")
	errControlBatch            = errors.New("broker: clients may not produce control batches")
	errTransactions            = errors.New("broker: transactions are not supported")
	errZstdVersion             = errors.New("broker: zstd needs produce v7 or fetch v10")
	errFencedLeaderEpoch       = errors.New("broker: leader epoch older than the current one")
	errUnknownLeaderEpoch      = errors.New("broker: leader epoch newer than the current one")
	errLeaderNotAvailable      = errors.New("broker: partition has no leader")
	errNotLeader               = errors.New("broker: this broker does not lead the partition")
	errInvalidRequest          = errors.New("broker: invalid request")
	errUnsupportedVersion      = errors.New("broker: unsupported api version")
	errFetchSessionNotFound    = errors.New("broker: fetch sessions are not supported")
	errMismatchedEndpoint      = errors.New("broker: this endpoint serves brokers, not controllers")
	errRebootstrap             = errors.New("broker: request addressed to another cluster or node")
	errTimeout                 = errors.New("broker: request timed out")
	errStorage                 = errors.New("broker: object storage read failed")

	// admin APIs (21_delete_records.go, 37_create_partitions.go, 43_elect_leaders.go)
	errPolicyViolation             = errors.New("broker: request violates the topic's policy")
	errInvalidReplicaAssignment    = errors.New("broker: invalid replica assignment")
	errElectionNotNeeded           = errors.New("broker: the preferred leader already leads")
	errPreferredLeaderNotAvailable = errors.New("broker: the partition has no leader to elect")
	errEligibleLeadersNotAvailable = errors.New("broker: no eligible leader: an election is under way")

	// committed offsets (08_offset_commit.go, 09_offset_fetch.go, 47_offset_delete.go)
	errOffsetMetadataTooLarge = errors.New("broker: offset metadata larger than offset.metadata.max.bytes")
	errGroupSubscribedToTopic = errors.New("broker: the group consumes the topic")
	errOffsetGroupID          = errors.New("broker: empty group id")
	errOffsetGroupNotFound    = errors.New("broker: group has neither members nor committed offsets")

	// compression and compacted topics (recompress.go)
	errCompactedNoKey = errors.New("broker: compacted topic cannot accept message without key")

	// cluster (cluster.go, groups.go)
	errNotCoordinator = errors.New("broker: this broker does not coordinate groups: the metadata leader does")
)
