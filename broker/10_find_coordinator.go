package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// FindCoordinator: v0-5
//
// Behavior:
// * the metadata group's leader coordinates every group (its in-memory
//   group state, the offsets written through its metadata log): the answer
//   is that broker's registered address, from any broker; while the
//   metadata group has no leader, or its leader is not registered yet,
//   COORDINATOR_NOT_AVAILABLE (retriable)
// * key type 0 (group): an empty group id is INVALID_GROUP_ID
// * key type 1 (transaction): TRANSACTIONAL_ID_AUTHORIZATION_FAILED, the
//   answer Produce and InitProducerID give transactional ids (Shoal has no
//   transactions); clients fail at once instead of retrying a coordinator
//   that never comes
// * any other key type: INVALID_REQUEST
// * a group key needs DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED)
//
// Version notes:
// * v1: CoordinatorType, ErrorMessage
// * v3: flexible
// * v4: batched CoordinatorKeys, one result each (KIP-699)
// * v5: no change for groups (transaction key errors, KIP-890)

// Coordinator key types.
const (
	coordinatorGroup       int8 = 0
	coordinatorTransaction int8 = 1
)

func (b *Broker) handleFindCoordinator(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = key, -1, "", -1
		err := b.coordinatorFor(req.CoordinatorType, key)
		if err == nil && req.CoordinatorType == coordinatorGroup {
			err = b.groupDenied(r, opDescribe, key) // authz.go
		}
		if err != nil {
			c.ErrorCode, c.ErrorMessage = errCode(err), errMessage(err)
		} else if br, err := b.coordinatorBroker(); err != nil {
			c.ErrorCode, c.ErrorMessage = errCode(err), errMessage(err)
		} else if ep, ok := r.endpointFor(br); !ok {
			err := fmt.Errorf("%w: the coordinator has no listener %s", group.ErrCoordinatorNotAvailable, r.conn.auth.listenerName())
			c.ErrorCode, c.ErrorMessage = errCode(err), errMessage(err)
		} else {
			c.NodeID, c.Host, c.Port = br.ID, ep.Host, ep.Port
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
	}
	return resp, nil
}

// coordinatorFor checks that this broker coordinates key of type typ.
func (b *Broker) coordinatorFor(typ int8, key string) error {
	switch typ {
	case coordinatorGroup:
		if key == "" {
			return group.ErrInvalidGroupID
		}
		return nil
	case coordinatorTransaction:
		return errTransactions
	default:
		return fmt.Errorf("%w: coordinator key type %d", errInvalidRequest, typ)
	}
}
