package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// LeaveGroup: v0-5
//
// Behavior:
// * the members leave the classic group at once and the others rebalance
// * a static member is named by its group.instance.id; with a member id
//   that is not the instance's current one it is FENCED_INSTANCE_ID
// * errors: INVALID_GROUP_ID (top level), UNKNOWN_MEMBER_ID (top level for
//   an unknown group, else per member)
// * READ on the group is needed (GROUP_AUTHORIZATION_FAILED, top level)
//
// Version notes:
// * v0-2: one MemberID; its error is the top-level error
// * v3: batched Members with instance ids (KIP-345), errors per member
// * v4: flexible; v5: Reason per member (ignored)

func (b *Broker) handleLeaveGroup(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if err := b.groupDenied(r, opRead, req.Group); err != nil { // authz.go
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	var members []group.LeaveMember
	if req.Version < 3 {
		members = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			members = append(members, group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	errs, err := b.groups.Leave(req.Group, members)
	if err != nil {
		resp.ErrorCode = groupErrCode(err)
		return resp, nil
	}
	if req.Version < 3 {
		resp.ErrorCode = groupErrCode(errs[0])
		return resp, nil
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		rm.ErrorCode = groupErrCode(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
