package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// CreateAcls: v0-3
//
// Behavior:
// * needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for every
//   creation); with --authorizer none: SECURITY_DISABLED, as Kafka
// * each creation is checked as Kafka does (a concrete resource type,
//   LITERAL or PREFIXED, a concrete operation, ALLOW or DENY, a non-empty
//   name, "kafka-cluster" for the cluster, a principal Type:name):
//   INVALID_REQUEST with a message for the creation that fails
// * the valid creations are stored in one metadata command: all or none;
//   a binding that exists already succeeds and changes nothing
//
// Version notes:
// * v0: LITERAL patterns only; v1: pattern types (KIP-290); v2: flexible;
//   v3: USER resources (KIP-554)

func (b *Broker) handleCreateAcls(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	denied := b.aclAPIAllowed(r, opAlter)
	errs := make([]error, len(req.Creations))
	var valid []metadata.ACLBinding
	var validAt []int
	for i, c := range req.Creations {
		bnd := metadata.ACLBinding{
			ResourceType: metadata.ACLResourceType(c.ResourceType),
			ResourceName: c.ResourceName,
			PatternType:  metadata.ACLPatternType(c.ResourcePatternType),
			Principal:    c.Principal,
			Host:         c.Host,
			Operation:    metadata.ACLOperation(c.Operation),
			Permission:   metadata.ACLPermission(c.PermissionType),
		}
		if errs[i] = denied; errs[i] == nil {
			errs[i] = bnd.Check()
		}
		if errs[i] == nil {
			valid, validAt = append(valid, bnd), append(validAt, i)
		}
	}
	if len(valid) > 0 {
		ctx, cancel := adminTimeout(ctx, 30_000)
		defer cancel()
		if err := b.meta.CreateACLs(ctx, valid); err != nil {
			for _, i := range validAt {
				errs[i] = err
			}
		}
	}
	for _, err := range errs {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = errCode(err), errMessage(err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
