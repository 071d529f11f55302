package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeUserScramCredentials: v0
//
// Behavior:
// * Users null or empty: every user with a SCRAM credential, sorted
// * a listed user without credentials: RESOURCE_NOT_FOUND; a user listed
//   twice: DUPLICATE_RESOURCE (once, for that user)
// * each credential shows its mechanism and iteration count, never a salt
//   or key
// * DESCRIBE on the cluster is needed: without it the top-level
//   CLUSTER_AUTHORIZATION_FAILED and no results, as Kafka
//
// Version notes:
// * v0: flexible (KIP-554)

func (b *Broker) handleDescribeUserScramCredentials(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if err := b.clusterDenied(r, opDescribe); err != nil { // authz.go
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	im := b.meta.Image()
	var users []string
	if len(req.Users) == 0 {
		users = im.SortedScramUsers()
	} else {
		for _, u := range req.Users {
			users = append(users, u.Name)
		}
	}
	count := map[string]int{}
	for _, u := range users {
		count[u]++
	}
	reported := map[string]bool{}
	for _, u := range users {
		if reported[u] {
			continue
		}
		reported[u] = true
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u
		creds := im.ScramCredentials(u)
		switch {
		case count[u] > 1:
			err := fmt.Errorf("%w: cannot describe SCRAM credentials for the same user twice in a single request: %s", errDuplicateResource, u)
			res.ErrorCode, res.ErrorMessage = errCode(err), errMessage(err)
		case len(creds) == 0:
			err := fmt.Errorf("%w: attempt to describe a user credential that does not exist: %s", errResourceNotFound, u)
			res.ErrorCode, res.ErrorMessage = errCode(err), errMessage(err)
		}
		for _, cr := range creds {
			if res.ErrorCode != 0 {
				break
			}
			ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			ci.Mechanism, ci.Iterations = int8(cr.Mechanism), cr.Iterations
			res.CredentialInfos = append(res.CredentialInfos, ci)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
