package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// DescribeGroups: v0-6
//
// Behavior:
// * classic groups with their state, protocol and members; member metadata
//   and assignments only when the group is Stable, as Kafka
// * a group that only has committed offsets is Empty with an empty
//   protocol type (like a simple consumer group in Kafka)
// * a consumer (KIP-848) group is GROUP_ID_NOT_FOUND ("not a classic
//   group", as Kafka 4); use ConsumerGroupDescribe
// * an unknown group is Dead without error before v6; an empty id is
//   INVALID_GROUP_ID
// * DESCRIBE on the group is needed (GROUP_AUTHORIZATION_FAILED, nothing
//   else said about the group)
// * authorized operations (v3+, when asked) are those the client may
//   perform on the group
//
// Version notes:
// * v1: ThrottleMillis; v3: IncludeAuthorizedOperations; v4: instance ids
// * v5: flexible
// * v6: ErrorMessage; an unknown group is GROUP_ID_NOT_FOUND (KIP-1043)

func (b *Broker) handleDescribeGroups(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	im := b.meta.Image()
	for _, id := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = id
		d, isConsumer, err := b.groups.DescribeClassic(id)
		switch denied := b.groupDenied(r, opDescribe, id); { // authz.go
		case denied != nil:
			d, err = group.ClassicDescription{}, denied
		case id == "":
			err = group.ErrInvalidGroupID
		case isConsumer:
			err = fmt.Errorf("%w: %s is a consumer group, not a classic group", group.ErrGroupIDNotFound, id)
		case errors.Is(err, group.ErrGroupIDNotFound) && len(im.GroupOffsets(id)) > 0:
			d, err = group.ClassicDescription{State: group.StateEmpty}, nil
		case errors.Is(err, group.ErrGroupIDNotFound):
			d.State = group.StateDead
			if req.Version < 6 {
				err = nil
			}
		}
		g.State = d.State
		if err != nil {
			g.ErrorCode = groupErrCode(err)
			if req.Version >= 6 {
				g.ErrorMessage = errMessage(err)
			}
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.ProtocolType, g.Protocol = d.ProtocolType, d.Protocol
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = b.authorizedOps(r, resGroup, id)
		}
		for _, m := range d.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
			rm.ProtocolMetadata, rm.MemberAssignment = nonNil(m.Metadata), nonNil(m.Assignment)
			g.Members = append(g.Members, rm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
