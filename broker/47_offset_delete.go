package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// OffsetDelete: v0
//
// Behavior:
// * removes the group's committed offsets of the given partitions through
//   the metadata Raft group, in one entry
// * a group with members: every partition is GROUP_SUBSCRIBED_TO_TOPIC.
//   Kafka refuses only topics a member subscribes to; the coordinator keeps
//   the subscriptions opaque (classic protocol metadata), so Shoal refuses
//   all while the group has members
// * a group with neither members nor offsets: GROUP_ID_NOT_FOUND; an empty
//   group id: INVALID_GROUP_ID
// * per partition: UNKNOWN_TOPIC_OR_PARTITION for a partition that does not
//   exist; a partition without a committed offset succeeds
// * the metadata group without a leader: COORDINATOR_NOT_AVAILABLE (top
//   level; clients retry)
// * DELETE on the group is needed (top-level GROUP_AUTHORIZATION_FAILED)
//   and READ on each topic (TOPIC_AUTHORIZATION_FAILED, checked before
//   existence)

func (b *Broker) handleOffsetDelete(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	im := b.meta.Image()
	if err := b.groupDenied(r, opDelete, req.Group); err != nil { // authz.go
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	if req.Group == "" {
		resp.ErrorCode = errCode(fmt.Errorf("%w: offset delete", errOffsetGroupID))
		return resp, nil
	}
	hasMembers := false
	if groups := b.offsetGroups(); groups != nil {
		_, hasMembers = groups.GroupState(req.Group)
	}
	if !hasMembers && im.GroupOffsets(req.Group) == nil {
		resp.ErrorCode = errCode(fmt.Errorf("%w: %s", errOffsetGroupNotFound, req.Group))
		return resp, nil
	}
	var parts []metadata.TopicPartition
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		topic := im.Topics[rt.Topic]
		denied := b.topicDenied(r, opRead, topic, false, rt.Topic)
		st.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			switch {
			case denied != nil:
				sp.ErrorCode = errCode(denied)
			case topic == nil || rp.Partition < 0 || int(rp.Partition) >= len(topic.Partitions):
				sp.ErrorCode = errCode(fmt.Errorf("%w: %s-%d", errUnknownTopicOrPartition, rt.Topic, rp.Partition))
			case hasMembers:
				sp.ErrorCode = errCode(fmt.Errorf("%w: group %s has members", errGroupSubscribedToTopic, req.Group))
			default:
				parts = append(parts, metadata.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
			}
		}
	}
	if len(parts) == 0 { // nil parts would delete every offset of the group
		return resp, nil
	}
	if err := b.meta.DeleteGroupOffsets(ctx, req.Group, parts); err != nil {
		resp.ErrorCode = offsetErrCode(err)
		if isUnknownCode(resp.ErrorCode) {
			b.logger.Warn("offset delete failed", "group", req.Group, "err", err)
		}
	}
	return resp, nil
}
