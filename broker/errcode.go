package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoal-io/shoal/broker/group"
	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/wal"
)

// errorCodes maps every sentinel the broker sees to its Kafka error code.
// This is the only place Kafka error codes are produced; the domain packages
// never import kerr. The first match in order wins, so more specific
// sentinels come first.
var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	// broker
	{errUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{errUnknownTopicID, kerr.UnknownTopicID},
	{errInvalidRequiredAcks, kerr.InvalidRequiredAcks},
	{errMessageTooLarge, kerr.MessageTooLarge},
	{errOneBatch, kerr.InvalidRecord},
	{errControlBatch, kerr.InvalidRecord},
	// A broker that hands out no transactional ids refuses them the way
	// Kafka refuses an unauthorised transactional id.
	{errTransactions, kerr.TransactionalIDAuthorizationFailed},
	{errZstdVersion, kerr.UnsupportedCompressionType},
	{errFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{errUnknownLeaderEpoch, kerr.UnknownLeaderEpoch},
	{errLeaderNotAvailable, kerr.LeaderNotAvailable},
	{errNotLeader, kerr.NotLeaderForPartition},
	{errInvalidRequest, kerr.InvalidRequest},
	{errUnsupportedVersion, kerr.UnsupportedVersion},
	{errFetchSessionNotFound, kerr.FetchSessionIDNotFound},
	{errMismatchedEndpoint, kerr.MismatchedEndpointType},
	{errRebootstrap, kerr.RebootstrapRequired},
	{errTimeout, kerr.RequestTimedOut},
	{errStorage, kerr.KafkaStorageError},

	// admin APIs (21_delete_records.go, 37_create_partitions.go, 43_elect_leaders.go)
	{errPolicyViolation, kerr.PolicyViolation},
	{errInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{errElectionNotNeeded, kerr.ElectionNotNeeded},
	{errPreferredLeaderNotAvailable, kerr.PreferredLeaderNotAvailable},
	{errEligibleLeadersNotAvailable, kerr.EligibleLeadersNotAvailable},

	// compression and compacted topics (recompress.go)
	{errCompactedNoKey, kerr.InvalidRecord},

	// cluster (cluster.go, groups.go)
	{errNotCoordinator, kerr.NotCoordinator},

	// authentication and SCRAM credentials (sasl.go, 17, 36, 50, 51)
	{errSASLAuthenticationFailed, kerr.SaslAuthenticationFailed},
	{errIllegalSASLState, kerr.IllegalSaslState},
	{errUnsupportedSASLMechanism, kerr.UnsupportedSaslMechanism},
	{errDuplicateResource, kerr.DuplicateResource},
	{errResourceNotFound, kerr.ResourceNotFound},
	{metadata.ErrUnknownScramCredential, kerr.ResourceNotFound},
	{metadata.ErrUnacceptableCredential, kerr.UnacceptableCredential},
	{metadata.ErrUnsupportedScramMechanism, kerr.UnsupportedSaslMechanism},

	// authorisation (authz.go, 29-31)
	{errTopicAuthorization, kerr.TopicAuthorizationFailed},
	{errGroupAuthorization, kerr.GroupAuthorizationFailed},
	{errClusterAuthorization, kerr.ClusterAuthorizationFailed},
	{errTransactionalIDAuthorization, kerr.TransactionalIDAuthorizationFailed},
	{errSecurityDisabled, kerr.SecurityDisabled},

	// group coordinator (broker/group; 10-16, 42, 68, 69 and groups.go)
	{group.ErrInvalidGroupID, kerr.InvalidGroupID},
	{group.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
	{group.ErrUnknownMember, kerr.UnknownMemberID},
	{group.ErrMemberIDRequired, kerr.MemberIDRequired},
	{group.ErrIllegalGeneration, kerr.IllegalGeneration},
	{group.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{group.ErrFencedInstanceID, kerr.FencedInstanceID},
	{group.ErrInvalidSessionTimeout, kerr.InvalidSessionTimeout},
	{group.ErrInconsistentProtocol, kerr.InconsistentGroupProtocol},
	{group.ErrGroupNotEmpty, kerr.NonEmptyGroup},
	{group.ErrGroupIDNotFound, kerr.GroupIDNotFound},
	{group.ErrStaleMemberEpoch, kerr.StaleMemberEpoch},
	{group.ErrFencedMemberEpoch, kerr.FencedMemberEpoch},
	{group.ErrUnreleasedInstanceID, kerr.UnreleasedInstanceID},
	{group.ErrUnsupportedAssignor, kerr.UnsupportedAssignor},
	{group.ErrInvalidRegex, kerr.InvalidRegularExpression},
	{group.ErrInvalidRequest, kerr.InvalidRequest},

	// committed offsets (08_offset_commit.go, 09_offset_fetch.go, 47_offset_delete.go)
	{errOffsetMetadataTooLarge, kerr.OffsetMetadataTooLarge},
	{errGroupSubscribedToTopic, kerr.GroupSubscribedToTopic},
	{errOffsetGroupID, kerr.InvalidGroupID},
	{errOffsetGroupNotFound, kerr.GroupIDNotFound},

	// protocol: record batch validation
	{protocol.ErrUnsupportedMagic, kerr.UnsupportedForMessageFormat},
	{protocol.ErrCorruptBatch, kerr.CorruptMessage},
	{protocol.ErrInvalidBatch, kerr.InvalidRecord},
	// An unknown codec id: Kafka fails to read such a batch; CORRUPT_MESSAGE
	// tells the client the bytes are bad.
	{protocol.ErrUnsupportedCodec, kerr.CorruptMessage},
	{protocol.ErrDecompressedTooLarge, kerr.RecordListTooLarge},

	// wal
	{wal.ErrNotLeader, kerr.NotLeaderForPartition},
	{wal.ErrClosed, kerr.NotLeaderForPartition}, // shutting down: the client retries elsewhere
	{wal.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{wal.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{wal.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{wal.ErrInvalidBatch, kerr.CorruptMessage},
	{wal.ErrTimeout, kerr.RequestTimedOut},
	{wal.ErrCorrupt, kerr.KafkaStorageError},
	// Object storage is behind and the WAL's budget is used up: retriable.
	{wal.ErrWALFull, kerr.KafkaStorageError},

	// metadata
	{metadata.ErrTopicExists, kerr.TopicAlreadyExists},
	{metadata.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{metadata.ErrInvalidTopicName, kerr.InvalidTopicException},
	{metadata.ErrInvalidPartitions, kerr.InvalidPartitions},
	{metadata.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{metadata.ErrInvalidConfig, kerr.InvalidConfig},
	{metadata.ErrInvalidRequest, kerr.InvalidRequest},
	{metadata.ErrNotLeader, kerr.NotController},
	{metadata.ErrClosed, kerr.NotController},
	{metadata.ErrRangeConflict, kerr.KafkaStorageError},
	{metadata.ErrUnknownObject, kerr.KafkaStorageError},
	{metadata.ErrObjectExists, kerr.KafkaStorageError},

	// s3stream
	{s3stream.ErrUnreachable, kerr.KafkaStorageError},
	{s3stream.ErrAccessDenied, kerr.KafkaStorageError},
	{s3stream.ErrNotFound, kerr.KafkaStorageError},

	// context: a deadline that passed is a timeout
	{context.DeadlineExceeded, kerr.RequestTimedOut},
}

// errCode returns the Kafka error code for err: 0 for nil,
// UNKNOWN_SERVER_ERROR for an error no sentinel matches.
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// errMessage returns err's text for the ErrorMessage fields of responses, or
// nil for nil.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// producerIDErrCode is the code for a failed producer id allocation: a
// metadata group without a leader (or shutting down) is
// COORDINATOR_NOT_AVAILABLE, which idempotent producers retry.
func producerIDErrCode(err error) int16 {
	if errors.Is(err, metadata.ErrNotLeader) || errors.Is(err, metadata.ErrClosed) {
		return kerr.CoordinatorNotAvailable.Code
	}
	return errCode(err)
}

// isUnknownCode reports UNKNOWN_SERVER_ERROR: an error no sentinel
// explains, worth a log line.
func isUnknownCode(code int16) bool { return code == kerr.UnknownServerError.Code }
