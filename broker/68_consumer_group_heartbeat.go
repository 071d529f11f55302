package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// ConsumerGroupHeartbeat: v0-1
//
// Behavior:
// * the KIP-848 consumer protocol: the coordinator assigns partitions with
//   the "uniform" (default) or "range" assignor named in ServerAssignor,
//   bumps the group epoch on every membership, subscription or subscribed
//   topic change, and reconciles each member on its heartbeats: a
//   partition moves to a member only after its previous owner reported it
//   released (in Topics)
// * MemberEpoch 0 joins, -1 leaves, -2 leaves a static member for now (its
//   partitions wait for it until its session expires); null fields mean
//   "unchanged"
// * the response carries the full assignment when it changed or when the
//   request reported its owned partitions
// * errors: INVALID_GROUP_ID, INVALID_REQUEST (v1 without member id, a
//   first heartbeat without subscription or rebalance timeout, or owning
//   partitions), UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH,
//   UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID, UNSUPPORTED_ASSIGNOR,
//   INVALID_REGULAR_EXPRESSION, GROUP_ID_NOT_FOUND (a non-zero epoch for
//   an unknown group, as Kafka; or a classic group with members uses this
//   id; an empty classic group becomes a consumer group)
// * as Kafka: READ on the group is needed (GROUP_AUTHORIZATION_FAILED),
//   and DESCRIBE on every topic of SubscribedTopicNames
//   (TOPIC_AUTHORIZATION_FAILED); a regex subscription is not filtered by
//   authorisation
//
// Version notes:
// * v0: the coordinator generates the member id on the first heartbeat
// * v1: the member generates its id; SubscribedTopicRegex (RE2 syntax,
//   matched against whole topic names)

func (b *Broker) handleConsumerGroupHeartbeat(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	hr := group.ConsumerHeartbeatRequest{
		Group: req.Group, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch,
		InstanceID: req.InstanceID, RackID: req.RackID, ClientID: r.clientID(), ClientHost: r.clientHost(),
		RebalanceTimeout:     time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		SubscribedTopicNames: req.SubscribedTopicNames, ServerAssignor: req.ServerAssignor,
	}
	if req.Version >= 1 {
		hr.SubscribedTopicRegex = req.SubscribedTopicRegex
	}
	if req.Topics != nil {
		hr.Owned = make([]group.TopicPartitions, 0, len(req.Topics))
		for _, t := range req.Topics {
			hr.Owned = append(hr.Owned, group.TopicPartitions{TopicID: t.TopicID, Partitions: t.Partitions})
		}
	}
	var (
		res group.ConsumerHeartbeatResult
		err error
	)
	if req.Version >= 1 && req.MemberID == "" {
		err = fmt.Errorf("%w: the member id must be set", group.ErrInvalidRequest)
	} else if err = b.consumerHeartbeatDenied(r, req); err == nil { // authz.go
		res, err = b.groups.ConsumerHeartbeat(hr)
	}
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = groupErrCode(err), errMessage(err)
		return resp, nil
	}
	id := res.MemberID
	resp.MemberID, resp.MemberEpoch = &id, res.MemberEpoch
	resp.HeartbeatIntervalMillis = int32(res.HeartbeatInterval / time.Millisecond)
	if res.HasAssignment {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for _, t := range res.Assignment {
			at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			at.TopicID, at.Partitions = t.TopicID, t.Partitions
			a.Topics = append(a.Topics, at)
		}
		resp.Assignment = &a
	}
	return resp, nil
}
