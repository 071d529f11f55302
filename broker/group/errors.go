package group

import "errors"

// Sentinel errors of the group coordinator. broker/errcode.go maps each to
// its Kafka error code; the name of the code is given after each sentinel.
var (
	// ErrInvalidGroupID: the group id is empty (INVALID_GROUP_ID).
	ErrInvalidGroupID = errors.New("group: invalid group id")
	// ErrCoordinatorNotAvailable: the coordinator is closed or the group is
	// being deleted (COORDINATOR_NOT_AVAILABLE).
	ErrCoordinatorNotAvailable = errors.New("group: coordinator not available")
	// ErrUnknownMember: the member id is not in the group (UNKNOWN_MEMBER_ID).
	ErrUnknownMember = errors.New("group: unknown member id")
	// ErrMemberIDRequired: a v4+ first join; the result carries the member
	// id to rejoin with (MEMBER_ID_REQUIRED, KIP-394).
	ErrMemberIDRequired = errors.New("group: member id required")
	// ErrIllegalGeneration: the generation is not the group's
	// (ILLEGAL_GENERATION).
	ErrIllegalGeneration = errors.New("group: illegal generation")
	// ErrRebalanceInProgress: the group is rebalancing; rejoin
	// (REBALANCE_IN_PROGRESS).
	ErrRebalanceInProgress = errors.New("group: rebalance in progress")
	// ErrFencedInstanceID: another member took over the static instance id
	// (FENCED_INSTANCE_ID, KIP-345).
	ErrFencedInstanceID = errors.New("group: fenced instance id")
	// ErrInvalidSessionTimeout: the session timeout is outside the
	// coordinator's bounds (INVALID_SESSION_TIMEOUT).
	ErrInvalidSessionTimeout = errors.New("group: invalid session timeout")
	// ErrInconsistentProtocol: the protocol type or protocols do not match
	// the group's, or the group uses the other group protocol
	// (INCONSISTENT_GROUP_PROTOCOL).
	ErrInconsistentProtocol = errors.New("group: inconsistent group protocol")
	// ErrGroupNotEmpty: the group still has members (NON_EMPTY_GROUP).
	ErrGroupNotEmpty = errors.New("group: group is not empty")
	// ErrGroupIDNotFound: no such group, or not of the requested type
	// (GROUP_ID_NOT_FOUND).
	ErrGroupIDNotFound = errors.New("group: group id not found")
	// ErrStaleMemberEpoch: an offset commit with an old member epoch of a
	// consumer (KIP-848) group (STALE_MEMBER_EPOCH).
	ErrStaleMemberEpoch = errors.New("group: stale member epoch")
	// ErrFencedMemberEpoch: a consumer group heartbeat with an epoch the
	// member does not have; rejoin with epoch 0 (FENCED_MEMBER_EPOCH).
	ErrFencedMemberEpoch = errors.New("group: fenced member epoch")
	// ErrUnreleasedInstanceID: a consumer group member still holds the
	// static instance id (UNRELEASED_INSTANCE_ID).
	ErrUnreleasedInstanceID = errors.New("group: unreleased instance id")
	// ErrUnsupportedAssignor: an unknown server assignor name
	// (UNSUPPORTED_ASSIGNOR).
	ErrUnsupportedAssignor = errors.New("group: unsupported assignor")
	// ErrInvalidRegex: SubscribedTopicRegex does not compile
	// (INVALID_REGULAR_EXPRESSION).
	ErrInvalidRegex = errors.New("group: invalid regular expression")
	// ErrInvalidRequest: a malformed request, e.g. a consumer group join
	// without subscription (INVALID_REQUEST).
	ErrInvalidRequest = errors.New("group: invalid request")
)
