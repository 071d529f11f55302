package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// AlterUserScramCredentials: v0
//
// Behavior:
// * the client sends salted passwords (KIP-554); the broker stores the
//   salt, the iterations, StoredKey and ServerKey in the metadata, never
//   the salted password
// * one result per user, in order of first mention; a user's deletions and
//   upsertions apply together or not at all (one metadata command)
// * empty user: UNACCEPTABLE_CREDENTIAL; a mechanism other than
//   SCRAM-SHA-256/512: UNSUPPORTED_SASL_MECHANISM; iterations outside
//   4096..16384, an empty salt or salted password: UNACCEPTABLE_CREDENTIAL;
//   one mechanism of a user named twice (deletion or upsertion):
//   DUPLICATE_RESOURCE; deleting a credential that does not exist:
//   RESOURCE_NOT_FOUND
// * ALTER on the cluster is needed (CLUSTER_AUTHORIZATION_FAILED for every
//   user, nothing changed). With --authorizer none anyone may alter, which
//   is how the first user is created (over a PLAINTEXT or SSL listener, see
//   docs/security.md); with acl, a super user (docs/acls.md)
//
// Version notes:
// * v0: flexible

// userScramChange is one user's alteration, checked.
type userScramChange struct {
	set  []metadata.ScramCredential
	del  []metadata.ScramMechanism
	seen map[metadata.ScramMechanism]bool
	err  error
}

func (b *Broker) handleAlterUserScramCredentials(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	var order []string
	changes := map[string]*userScramChange{}
	change := func(user string, m int8) *userScramChange {
		c := changes[user]
		if c == nil {
			c = &userScramChange{seen: map[metadata.ScramMechanism]bool{}}
			changes[user] = c
			order = append(order, user)
		}
		mech := metadata.ScramMechanism(m)
		switch {
		case c.err != nil:
		case user == "":
			c.err = fmt.Errorf("%w: username must not be empty", metadata.ErrUnacceptableCredential)
		case !mech.Valid():
			c.err = fmt.Errorf("%w: unknown SCRAM mechanism %d", metadata.ErrUnsupportedScramMechanism, m)
		case c.seen[mech]:
			c.err = fmt.Errorf("%w: a user credential cannot be altered twice in the same request", errDuplicateResource)
		}
		c.seen[mech] = true
		return c
	}
	for _, d := range req.Deletions {
		if c := change(d.Name, d.Mechanism); c.err == nil {
			c.del = append(c.del, metadata.ScramMechanism(d.Mechanism))
		}
	}
	for _, u := range req.Upsertions {
		c := change(u.Name, u.Mechanism)
		if c.err != nil {
			continue
		}
		cred, err := upsertCredential(u)
		if err != nil {
			c.err = err
			continue
		}
		c.set = append(c.set, cred)
	}
	denied := b.clusterDenied(r, opAlter) // authz.go
	for _, user := range order {
		c := changes[user]
		err := c.err
		if denied != nil {
			err = denied
		}
		if err == nil {
			err = b.meta.AlterUserScram(ctx, user, c.set, c.del)
		}
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = user, errCode(err), errMessage(err)
		if err == nil {
			b.logger.Info("SCRAM credentials altered", "user", user, "set", len(c.set), "deleted", len(c.del))
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// upsertCredential derives the stored credential of an upsertion.
func upsertCredential(u kmsg.AlterUserSCRAMCredentialsRequestUpsertion) (metadata.ScramCredential, error) {
	m := metadata.ScramMechanism(u.Mechanism)
	switch {
	case u.Iterations < metadata.MinScramIterations:
		return metadata.ScramCredential{}, fmt.Errorf("%w: too few iterations (%d, at least %d)",
			metadata.ErrUnacceptableCredential, u.Iterations, metadata.MinScramIterations)
	case u.Iterations > metadata.MaxScramIterations:
		return metadata.ScramCredential{}, fmt.Errorf("%w: too many iterations (%d, at most %d)",
			metadata.ErrUnacceptableCredential, u.Iterations, metadata.MaxScramIterations)
	case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
		return metadata.ScramCredential{}, fmt.Errorf("%w: empty salt or salted password", metadata.ErrUnacceptableCredential)
	}
	stored, server := scramKeys(scramHash(m), u.SaltedPassword)
	return metadata.ScramCredential{Mechanism: m, Salt: u.Salt, Iterations: u.Iterations, StoredKey: stored, ServerKey: server}, nil
}
