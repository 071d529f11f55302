package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// ConsumerGroupDescribe: v0-1
//
// Behavior:
// * consumer (KIP-848) groups with their state, group and assignment
//   epochs, assignor, and members with their current and target
//   assignments (topic ids and names)
// * errors: INVALID_GROUP_ID (empty id), GROUP_ID_NOT_FOUND (unknown, or a
//   classic group, as Kafka 4)
// * DESCRIBE on the group is needed (GROUP_AUTHORIZATION_FAILED)
// * authorized operations, when asked, are those the client may perform
//   on the group
//
// Version notes:
// * v1: MemberType (1: consumer protocol)

// memberTypeConsumer is ConsumerGroupDescribe v1's MemberType of members
// that use the consumer protocol.
const memberTypeConsumer int8 = 1

func (b *Broker) handleConsumerGroupDescribe(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range req.Groups {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group = id
		d, err := b.groups.DescribeConsumer(id)
		if denied := b.groupDenied(r, opDescribe, id); denied != nil { // authz.go
			err = denied
		} else if id == "" {
			err = group.ErrInvalidGroupID
		} else if err != nil {
			err = fmt.Errorf("%w: %s is not a consumer group", err, id)
		}
		if err != nil {
			g.ErrorCode, g.ErrorMessage = groupErrCode(err), errMessage(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName = d.State, d.Epoch, d.AssignmentEpoch, d.Assignor
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = b.authorizedOps(r, resGroup, id)
		}
		for _, m := range d.Members {
			rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.RackID, rm.MemberEpoch = m.MemberID, m.InstanceID, m.RackID, m.MemberEpoch
			rm.ClientID, rm.ClientHost = m.ClientID, m.ClientHost
			rm.SubscribedTopics, rm.SubscribedTopicRegex = m.SubscribedTopics, m.SubscribedRegex
			if rm.SubscribedTopics == nil {
				rm.SubscribedTopics = []string{}
			}
			rm.Assignment, rm.TargetAssignment = describedAssignment(m.Assignment), describedAssignment(m.TargetAssignment)
			rm.MemberType = memberTypeConsumer
			g.Members = append(g.Members, rm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func describedAssignment(tps []group.TopicPartitions) kmsg.Assignment {
	a := kmsg.NewAssignment()
	for _, t := range tps {
		at := kmsg.NewAssignmentTopicPartition()
		at.TopicID, at.Topic, at.Partitions = t.TopicID, t.Topic, t.Partitions
		a.TopicPartitions = append(a.TopicPartitions, at)
	}
	return a
}
