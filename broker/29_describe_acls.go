package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// DescribeAcls: v0-3
//
// Behavior:
// * needs DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED); with
//   --authorizer none: SECURITY_DISABLED, as Kafka without an authorizer
// * the filter selects bindings as Kafka's AclBindingFilter: ANY codes and
//   null strings match everything, MATCH finds the bindings that apply to a
//   name (the literal name, the literal "*", its prefixes); an unknown
//   code: INVALID_REQUEST
// * the bindings come grouped by resource pattern, sorted
//
// Version notes:
// * v0: LITERAL patterns only; v1: pattern types (KIP-290); v2: flexible;
//   v3: USER resources (KIP-554)

func (b *Broker) handleDescribeAcls(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	f := aclFilter(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	err := b.aclAPIAllowed(r, opDescribe)
	if err == nil {
		err = f.Check()
	}
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	var cur *kmsg.DescribeACLsResponseResource
	for _, bnd := range b.meta.Image().ACLs.Filter(f) {
		if cur == nil || metadata.ACLResourceType(cur.ResourceType) != bnd.ResourceType ||
			cur.ResourceName != bnd.ResourceName || metadata.ACLPatternType(cur.ResourcePatternType) != bnd.PatternType {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType = kmsg.ACLResourceType(bnd.ResourceType)
			res.ResourceName = bnd.ResourceName
			res.ResourcePatternType = kmsg.ACLResourcePatternType(bnd.PatternType)
			resp.Resources = append(resp.Resources, res)
			cur = &resp.Resources[len(resp.Resources)-1]
		}
		acl := kmsg.NewDescribeACLsResponseResourceACL()
		acl.Principal, acl.Host = bnd.Principal, bnd.Host
		acl.Operation, acl.PermissionType = kmsg.ACLOperation(bnd.Operation), kmsg.ACLPermissionType(bnd.Permission)
		cur.ACLs = append(cur.ACLs, acl)
	}
	return resp, nil
}

// aclAPIAllowed checks the ACL APIs' requirement: an authorizer, and op on
// the cluster.
func (b *Broker) aclAPIAllowed(r *request, op metadata.ACLOperation) error {
	if b.cfg.Authorizer != AuthorizerACL {
		return errSecurityDisabled
	}
	return b.clusterDenied(r, op)
}

// aclFilter converts a request's filter fields. Version 0 requests carry
// no pattern type; kmsg defaults it to LITERAL, as Kafka reads them.
func aclFilter(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal, host *string,
	op kmsg.ACLOperation, perm kmsg.ACLPermissionType) metadata.ACLFilter {
	return metadata.ACLFilter{
		ResourceType: metadata.ACLResourceType(rt),
		ResourceName: name,
		PatternType:  metadata.ACLPatternType(pt),
		Principal:    principal,
		Host:         host,
		Operation:    metadata.ACLOperation(op),
		Permission:   metadata.ACLPermission(perm),
	}
}
