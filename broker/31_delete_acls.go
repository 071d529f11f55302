package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// DeleteAcls: v0-3
//
// Behavior:
// * needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for every
//   filter); with --authorizer none: SECURITY_DISABLED, as Kafka
// * each filter selects bindings as in DescribeAcls; a filter with an
//   unknown code: INVALID_REQUEST for that filter
// * the valid filters are applied in one metadata command; each filter's
//   result lists the bindings it selected, which are gone (a binding two
//   filters select is listed under both)
//
// Version notes:
// * v0: LITERAL patterns only; v1: pattern types (KIP-290); v2: flexible;
//   v3: USER resources (KIP-554)

func (b *Broker) handleDeleteAcls(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	denied := b.aclAPIAllowed(r, opAlter)
	errs := make([]error, len(req.Filters))
	matched := make([][]metadata.ACLBinding, len(req.Filters))
	var valid []metadata.ACLFilter
	var validAt []int
	for i, rf := range req.Filters {
		f := aclFilter(rf.ResourceType, rf.ResourceName, rf.ResourcePatternType, rf.Principal, rf.Host, rf.Operation, rf.PermissionType)
		if errs[i] = denied; errs[i] == nil {
			errs[i] = f.Check()
		}
		if errs[i] == nil {
			valid, validAt = append(valid, f), append(validAt, i)
		}
	}
	if len(valid) > 0 {
		ctx, cancel := adminTimeout(ctx, 30_000)
		defer cancel()
		deleted, err := b.meta.DeleteACLs(ctx, valid)
		for j, i := range validAt {
			if err != nil {
				errs[i] = err
			} else {
				matched[i] = deleted[j]
			}
		}
	}
	for i, err := range errs {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = errCode(err), errMessage(err)
		for _, bnd := range matched[i] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName = kmsg.ACLResourceType(bnd.ResourceType), bnd.ResourceName
			m.ResourcePatternType = kmsg.ACLResourcePatternType(bnd.PatternType)
			m.Principal, m.Host = bnd.Principal, bnd.Host
			m.Operation, m.PermissionType = kmsg.ACLOperation(bnd.Operation), kmsg.ACLPermissionType(bnd.Permission)
			res.MatchingACLs = append(res.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
