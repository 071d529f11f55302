package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// OffsetCommit: v2-10
//
// Behavior:
// * the offsets of one request are committed through the metadata Raft group
//   in one entry, all or nothing; the response comes after the commit, so a
//   later OffsetFetch on any broker that applied it sees them
// * the group coordinator validates member id, instance id and generation
//   (classic groups) or member epoch (consumer groups); its error
//   (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS,
//   FENCED_INSTANCE_ID, STALE_MEMBER_EPOCH, INVALID_GROUP_ID,
//   COORDINATOR_NOT_AVAILABLE) goes to every partition and nothing is stored;
//   generation -1 with an empty member id commits for a group without
//   members (admin tools, manual commits)
// * per partition: UNKNOWN_TOPIC_OR_PARTITION (v10: UNKNOWN_TOPIC_ID) for a
//   partition that does not exist, OFFSET_METADATA_TOO_LARGE for metadata
//   longer than offset.metadata.max.bytes (4096); the other partitions of
//   the request are committed
// * a partition named twice: the last valid one counts
// * READ on the group is needed (GROUP_AUTHORIZATION_FAILED for every
//   partition, nothing stored) and READ on each topic
//   (TOPIC_AUTHORIZATION_FAILED, checked before existence)
// * the metadata group without a leader: COORDINATOR_NOT_AVAILABLE
//   (clients retry)
// * each committed offset keeps its commit time; offsets of groups without
//   members expire offsets.retention.minutes (7 days) after their commit
//   (see expireOffsets)
//
// Version notes:
// * v0-1 are not served (Kafka 4 dropped them)
// * v2-4: RetentionTimeMillis (-1: the broker default) sets the offsets'
//   expiry time; v5 dropped it
// * v6: LeaderEpoch is stored and returned by OffsetFetch v5+
// * v7: InstanceID (KIP-345); v8: flexible
// * v9: GenerationID carries the member epoch of consumer groups (KIP-848)
// * v10: topics by TopicID

// offsetMetadataMaxBytes is Kafka's offset.metadata.max.bytes default.
const offsetMetadataMaxBytes = 4096

// offsetCoordinator is what the offset APIs need of the group coordinator
// (*group.Coordinator).
type offsetCoordinator interface {
	// ValidateOffsetCommit checks that a member may commit offsets for group.
	ValidateOffsetCommit(group, memberID string, instanceID *string, generation int32) error
	// GroupState returns the group's state name and whether it has members.
	GroupState(group string) (state string, hasMembers bool)
}

// offsetGroups returns the broker's group coordinator, or nil while it has
// none (then commits are not validated and every group counts as empty).
func (b *Broker) offsetGroups() offsetCoordinator {
	if b.groups == nil {
		return nil
	}
	return b.groups
}

// offsetPart is one partition of an OffsetCommit request being answered.
type offsetPart struct {
	sp  *kmsg.OffsetCommitResponseTopicPartition
	tp  metadata.TopicPartition
	err error
}

func (b *Broker) handleOffsetCommit(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	im := b.meta.Image()
	now := time.Now().UnixMilli()
	expire := int64(0)
	if req.Version <= 4 && req.RetentionTimeMillis > 0 {
		expire = now + req.RetentionTimeMillis
	}
	var (
		parts   []offsetPart
		commits = map[metadata.TopicPartition]metadata.CommittedOffset{}
		order   []metadata.TopicPartition
	)
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Default()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		topic, terr := offsetTopic(im, req.Version >= 10, rt.Topic, rt.TopicID)
		if denied := b.topicDenied(r, opRead, topic, req.Version >= 10, rt.Topic); denied != nil { // authz.go
			topic, terr = nil, denied
		}
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			p := offsetPart{sp: sp, err: terr}
			if topic != nil {
				p.tp = metadata.TopicPartition{Topic: topic.Name, Partition: rp.Partition}
				p.err = checkOffsetCommit(topic, rp)
			}
			if p.err == nil {
				if _, dup := commits[p.tp]; !dup {
					order = append(order, p.tp)
				}
				commits[p.tp] = metadata.CommittedOffset{Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch,
					Metadata: deref(rp.Metadata), CommitMs: now, ExpireMs: expire}
			}
			parts = append(parts, p)
		}
	}
	err := b.groupDenied(r, opRead, req.Group)
	if err == nil {
		err = b.validateOffsetCommit(req)
	}
	if err != nil {
		// A refused member commits nothing: every partition gets the group's error.
		for _, p := range parts {
			p.sp.ErrorCode = errCode(err)
		}
		return resp, nil
	}
	for _, p := range parts {
		p.sp.ErrorCode = errCode(p.err)
	}
	if len(order) == 0 {
		return resp, nil
	}
	offsets := make([]metadata.OffsetCommit, 0, len(order))
	for _, tp := range order {
		offsets = append(offsets, metadata.OffsetCommit{TopicPartition: tp, CommittedOffset: commits[tp]})
	}
	if err := b.meta.CommitOffsets(ctx, req.Group, offsets); err != nil {
		code := offsetErrCode(err)
		if isUnknownCode(code) {
			b.logger.Warn("offset commit failed", "group", req.Group, "err", err)
		}
		for _, p := range parts {
			if p.err == nil {
				p.sp.ErrorCode = code
			}
		}
	}
	return resp, nil
}

// validateOffsetCommit asks the coordinator whether the request's member may
// commit.
func (b *Broker) validateOffsetCommit(req *kmsg.OffsetCommitRequest) error {
	if req.Group == "" {
		return fmt.Errorf("%w: offset commit", errOffsetGroupID)
	}
	groups := b.offsetGroups()
	if groups == nil {
		return nil
	}
	return groups.ValidateOffsetCommit(req.Group, req.MemberID, req.InstanceID, req.Generation)
}

// checkOffsetCommit checks one partition of an OffsetCommit request.
func checkOffsetCommit(t *metadata.Topic, rp kmsg.OffsetCommitRequestTopicPartition) error {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return fmt.Errorf("%w: %s-%d", errUnknownTopicOrPartition, t.Name, rp.Partition)
	}
	if rp.Metadata != nil && len(*rp.Metadata) > offsetMetadataMaxBytes {
		return fmt.Errorf("%w: %d bytes for %s-%d", errOffsetMetadataTooLarge, len(*rp.Metadata), t.Name, rp.Partition)
	}
	return nil
}

// offsetTopic resolves a topic of an offset request by id (v10+) or name.
func offsetTopic(im *metadata.Image, byID bool, name string, id [16]byte) (*metadata.Topic, error) {
	if byID {
		if t := im.TopicsByID[metadata.TopicID(id)]; t != nil {
			return t, nil
		}
		return nil, fmt.Errorf("%w: %s", errUnknownTopicID, metadata.TopicID(id))
	}
	if t := im.Topics[name]; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("%w: %s", errUnknownTopicOrPartition, name)
}

// offsetErrCode is the code for a failed offset commit or delete: a
// metadata group without a leader, or shutting down, is
// COORDINATOR_NOT_AVAILABLE, which clients retry.
func offsetErrCode(err error) int16 { return producerIDErrCode(err) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
