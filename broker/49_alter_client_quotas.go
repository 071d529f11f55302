package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// AlterClientQuotas: v0-1
//
// Behavior:
// * an entity is a user, a client-id, or both; a null name is the
//   <default> entity; the keys are producer_byte_rate, consumer_byte_rate
//   (integers) and request_percentage, each above 0
// * per entry, as Kafka validates: no components, a component type given
//   twice, an unknown type, an empty name, an unknown key or a bad value
//   to set, a key given twice: INVALID_REQUEST; ip entities (connection
//   rates) are not supported: INVALID_REQUEST; an entity given twice in
//   the request: INVALID_REQUEST for each occurrence
// * removing a key that is not set succeeds and changes nothing; an entity
//   left without keys is removed
// * the valid entries are committed through the metadata Raft group in one
//   command (all or none: a failed commit gives every one of them its
//   error); refused entries change nothing
// * ValidateOnly checks everything and changes nothing
// * ALTER_CONFIGS on the cluster is needed (CLUSTER_AUTHORIZATION_FAILED
//   for every entry, nothing changed)
//
// Version notes:
// * v1: flexible

func (b *Broker) handleAlterClientQuotas(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	ctx, cancel := adminTimeout(ctx, 30_000)
	defer cancel()
	alts := make([]metadata.QuotaAlteration, len(req.Entries))
	errs := make([]error, len(req.Entries))
	count := map[metadata.QuotaEntity]int{}
	for i, e := range req.Entries {
		alts[i], errs[i] = quotaAlteration(e)
		if errs[i] == nil {
			count[alts[i].Entity]++
		}
	}
	if denied := b.clusterDenied(r, opAlterConfigs); denied != nil { // authz.go
		for i := range errs {
			errs[i] = denied
		}
	}
	var valid []metadata.QuotaAlteration
	for i := range alts {
		if errs[i] == nil && count[alts[i].Entity] > 1 {
			errs[i] = fmt.Errorf("%w: quota entity %s appears more than once", errInvalidRequest, alts[i].Entity)
		}
		if errs[i] == nil && (len(alts[i].Set) > 0 || len(alts[i].Remove) > 0) {
			valid = append(valid, alts[i])
		}
	}
	if len(valid) > 0 && !req.ValidateOnly {
		if err := b.meta.AlterClientQuotas(ctx, valid); err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
	}
	for i, e := range req.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, c := range e.Entity {
			rc := kmsg.NewAlterClientQuotasResponseEntryEntity()
			rc.Type, rc.Name = c.Type, c.Name
			re.Entity = append(re.Entity, rc)
		}
		if errs[i] != nil {
			re.ErrorCode, re.ErrorMessage = errCode(errs[i]), errMessage(errs[i])
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp, nil
}

// quotaAlteration checks one request entry and returns its alteration.
func quotaAlteration(e kmsg.AlterClientQuotasRequestEntry) (metadata.QuotaAlteration, error) {
	var a metadata.QuotaAlteration
	if len(e.Entity) == 0 {
		return a, fmt.Errorf("%w: empty client quota entity", errInvalidRequest)
	}
	seen := map[string]bool{}
	for _, c := range e.Entity {
		if seen[c.Type] {
			return a, fmt.Errorf("%w: entity type %s given twice", errInvalidRequest, c.Type)
		}
		seen[c.Type] = true
		name := metadata.QuotaDefault
		if c.Name != nil {
			if *c.Name == "" {
				return a, fmt.Errorf("%w: empty %s name", errInvalidRequest, c.Type)
			}
			name = metadata.QuotaNamed(*c.Name)
		}
		switch c.Type {
		case quotaEntityUser:
			a.Entity.User = name
		case quotaEntityClientID:
			a.Entity.ClientID = name
		case quotaEntityIP:
			return a, fmt.Errorf("%w: ip quotas (connection_creation_rate) are not supported", errInvalidRequest)
		default:
			return a, fmt.Errorf("%w: unknown client quota entity type %q", errInvalidRequest, c.Type)
		}
	}
	keys := map[string]bool{}
	for _, op := range e.Ops {
		if keys[op.Key] {
			return a, fmt.Errorf("%w: quota key %q given twice", errInvalidRequest, op.Key)
		}
		keys[op.Key] = true
		if op.Remove {
			a.Remove = append(a.Remove, op.Key)
			continue
		}
		if err := metadata.CheckQuotaValue(op.Key, op.Value); err != nil {
			return a, err // metadata.ErrInvalidRequest: INVALID_REQUEST
		}
		if a.Set == nil {
			a.Set = map[string]float64{}
		}
		a.Set[op.Key] = op.Value
	}
	return a, a.Check()
}
