package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// DeleteGroups: v0-3
//
// Behavior:
// * a group without members is removed from the coordinator and its
//   committed offsets are deleted through the metadata Raft group
// * errors: INVALID_GROUP_ID (empty id), NON_EMPTY_GROUP (members remain),
//   GROUP_ID_NOT_FOUND (neither a group nor committed offsets),
//   COORDINATOR_NOT_AVAILABLE (the metadata group has no leader)
// * DELETE on the group is needed (GROUP_AUTHORIZATION_FAILED)
//
// Version notes:
// * v2: flexible; v3: ErrorMessage

func (b *Broker) handleDeleteGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = id
		err := b.groupDenied(r, opDelete, id) // authz.go
		if err == nil {
			err = b.deleteGroup(ctx, id)
		}
		if err != nil {
			g.ErrorCode = groupErrCode(err)
			if req.Version >= 3 {
				g.ErrorMessage = errMessage(err)
			}
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// deleteGroup deletes one group and its committed offsets.
func (b *Broker) deleteGroup(ctx context.Context, id string) error {
	err := b.groups.Delete(id)
	if errors.Is(err, group.ErrGroupIDNotFound) && len(b.meta.Image().GroupOffsets(id)) > 0 {
		err = nil
	}
	if err != nil {
		return err
	}
	if err := b.meta.DeleteGroupOffsets(ctx, id, nil); err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	b.logger.Info("group deleted", "group", id)
	return nil
}
