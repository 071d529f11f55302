package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// JoinGroup: v0-9
//
// Behavior:
// * classic group membership, assignment is the client leader's: every
//   assignor protocol (range, roundrobin, sticky, cooperative-sticky, ...)
//   passes through; the group's protocol is the one every member supports
//   with the most preference votes
// * the request waits until the join phase completes: every member
//   rejoined, or the rebalance timeout passed (the first rebalance of an
//   empty group waits group.initial.rebalance.delay.ms, extended while
//   members keep joining); it releases the connection's reader at once
// * errors: INVALID_GROUP_ID (empty id), INVALID_SESSION_TIMEOUT (outside
//   group.min/max.session.timeout.ms), INCONSISTENT_GROUP_PROTOCOL (no
//   protocol in common, another protocol type, or a consumer (KIP-848)
//   group with members), UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
//   MEMBER_ID_REQUIRED, COORDINATOR_NOT_AVAILABLE (shutting down)
// * READ on the group is needed (GROUP_AUTHORIZATION_FAILED)
//
// Version notes:
// * v0: no rebalance timeout; the session timeout serves as both
// * v4: a first join without member id gets MEMBER_ID_REQUIRED with the id
//   to rejoin with (KIP-394)
// * v5: group.instance.id, static membership (KIP-345): a known instance
//   id replaces its old member, without rebalance when the group is stable
//   and its protocols stay; the old member is fenced (FENCED_INSTANCE_ID)
// * v6: flexible; v7: ProtocolType in the response; v8: Reason (ignored)
// * v9: SkipAssignment: a static leader replaced in a stable group gets
//   the members but keeps the current assignment (KIP-814)

func (b *Broker) handleJoinGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	r.release()
	if err := b.groupDenied(r, opRead, req.Group); err != nil { // authz.go
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	jr := group.JoinRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID,
		ClientID: r.clientID(), ClientHost: r.clientHost(), ProtocolType: req.ProtocolType,
		SessionTimeout:         time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:       time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		RequireKnownMemberID:   req.Version >= 4,
		SupportsSkipAssignment: req.Version >= 9,
	}
	if req.Version < 5 {
		jr.InstanceID = nil
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	wctx, cancel := r.waitCtx(ctx)
	defer cancel()
	res := b.groups.Join(wctx, jr)
	resp.ErrorCode = groupErrCode(res.Err)
	resp.MemberID, resp.Generation, resp.LeaderID = res.MemberID, res.Generation, res.Leader
	if res.Err != nil {
		return resp, nil
	}
	pt, proto := res.ProtocolType, res.Protocol
	resp.ProtocolType, resp.Protocol = &pt, &proto
	resp.SkipAssignment = res.SkipAssignment
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
