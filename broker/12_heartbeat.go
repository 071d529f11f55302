package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// Heartbeat: v0-4
//
// Behavior:
// * keeps a classic member's session alive; REBALANCE_IN_PROGRESS tells it
//   to rejoin
// * errors: INVALID_GROUP_ID, UNKNOWN_MEMBER_ID (also for an unknown group
//   or a consumer (KIP-848) group), ILLEGAL_GENERATION, FENCED_INSTANCE_ID
// * READ on the group is needed (GROUP_AUTHORIZATION_FAILED)
//
// Version notes:
// * v3: group.instance.id (KIP-345); v4: flexible

func (b *Broker) handleHeartbeat(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if err := b.groupDenied(r, opRead, req.Group); err != nil { // authz.go
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	hr := group.HeartbeatRequest{Group: req.Group, MemberID: req.MemberID, Generation: req.Generation}
	if req.Version >= 3 {
		hr.InstanceID = req.InstanceID
	}
	resp.ErrorCode = groupErrCode(b.groups.Heartbeat(hr))
	return resp, nil
}
