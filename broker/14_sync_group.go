package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// SyncGroup: v0-5
//
// Behavior:
// * the leader's assignments are handed to every member of the
//   generation; followers wait for the leader's SyncGroup (the request
//   releases the connection's reader at once); in a stable group a member
//   gets its current assignment at once
// * members named in no assignment get an empty one
// * errors: INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//   REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID, COORDINATOR_NOT_AVAILABLE
//   (shutting down)
// * READ on the group is needed (GROUP_AUTHORIZATION_FAILED)
//
// Version notes:
// * v3: group.instance.id; v4: flexible
// * v5: ProtocolType and ProtocolName are checked against the group's
//   (INCONSISTENT_GROUP_PROTOCOL) and returned

func (b *Broker) handleSyncGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	r.release()
	if err := b.groupDenied(r, opRead, req.Group); err != nil { // authz.go
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	sr := group.SyncRequest{Group: req.Group, MemberID: req.MemberID, Generation: req.Generation,
		Assignments: make(map[string][]byte, len(req.GroupAssignment))}
	if req.Version >= 3 {
		sr.InstanceID = req.InstanceID
	}
	if req.Version >= 5 {
		sr.ProtocolType, sr.Protocol = req.ProtocolType, req.Protocol
	}
	for _, a := range req.GroupAssignment {
		sr.Assignments[a.MemberID] = a.MemberAssignment
	}
	wctx, cancel := r.waitCtx(ctx)
	defer cancel()
	res := b.groups.Sync(wctx, sr)
	resp.ErrorCode = groupErrCode(res.Err)
	if res.Err != nil {
		return resp, nil
	}
	pt, proto := res.ProtocolType, res.Protocol
	resp.ProtocolType, resp.Protocol = &pt, &proto
	resp.MemberAssignment = res.Assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp, nil
}
