package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// DescribeClientQuotas: v0-1
//
// Behavior:
// * filters as Kafka's broker does (KIP-546): each component names an
//   entity type and a match type: exact (0, a name: the entity has that
//   component with that name), default (1, no name: the entity has the
//   <default> component) or any (2, no name: the entity has that
//   component, named or <default>); an entity matches when it satisfies
//   every component; with Strict it must also have no other component
// * no components: every entity (with Strict: none)
// * entity types user, client-id and ip; no ip quotas exist, so an ip
//   component matches nothing
// * an empty entity type, a type given twice, exact without a name,
//   default or any with a name, ip together with user or client-id:
//   INVALID_REQUEST; an unknown entity or match type: UNSUPPORTED_VERSION
//   (both as Kafka answers, in the response's error code)
// * DESCRIBE_CONFIGS on the cluster is needed (top-level
//   CLUSTER_AUTHORIZATION_FAILED, as Kafka)
// * entries are sorted: user entities first (<default> first), then
//   client-id entities; values by key
//
// Version notes:
// * v1: flexible

// The entity types of client quotas.
const (
	quotaEntityUser     = "user"
	quotaEntityClientID = "client-id"
	quotaEntityIP       = "ip"
)

// quotaComponentFilter is one component of a describe filter.
type quotaComponentFilter struct {
	present bool               // the filter names this entity type
	any     bool               // any name or the default
	name    metadata.QuotaName // exact name, or the default
}

// matches reports whether an entity's component n satisfies f.
func (f quotaComponentFilter) matches(n metadata.QuotaName) bool {
	switch {
	case !f.present:
		return true
	case f.any:
		return n.IsSet()
	}
	return n == f.name
}

func (b *Broker) handleDescribeClientQuotas(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if err := b.clusterDenied(r, opDescribeConfigs); err != nil { // authz.go
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	user, client, ip, err := parseQuotaFilter(req.Components)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	if ip {
		return resp, nil // there are no ip quotas
	}
	im := b.meta.Image()
	for _, e := range im.SortedQuotaEntities() {
		if !user.matches(e.User) || !client.matches(e.ClientID) {
			continue
		}
		if req.Strict && (e.User.IsSet() && !user.present || e.ClientID.IsSet() && !client.present) {
			continue
		}
		resp.Entries = append(resp.Entries, describeQuotaEntry(e, im.ClientQuotas(e)))
	}
	return resp, nil
}

// parseQuotaFilter checks a describe filter and returns its user and
// client-id components, and whether it names ip.
func parseQuotaFilter(components []kmsg.DescribeClientQuotasRequestComponent) (user, client quotaComponentFilter, ip bool, err error) {
	seen := map[string]bool{}
	for _, c := range components {
		switch {
		case c.EntityType == "":
			return user, client, false, fmt.Errorf("%w: empty entity type", errInvalidRequest)
		case seen[c.EntityType]:
			return user, client, false, fmt.Errorf("%w: entity type %s appears more than once in the filter", errInvalidRequest, c.EntityType)
		}
		seen[c.EntityType] = true
		f := quotaComponentFilter{present: true}
		switch c.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if c.Match == nil {
				return user, client, false, fmt.Errorf("%w: exact match of %s without a name", errInvalidRequest, c.EntityType)
			}
			f.name = metadata.QuotaNamed(*c.Match)
		case kmsg.QuotasMatchTypeDefault, kmsg.QuotasMatchTypeAny:
			if c.Match != nil {
				return user, client, false, fmt.Errorf("%w: %s match of %s with a name", errInvalidRequest, c.MatchType, c.EntityType)
			}
			f.name, f.any = metadata.QuotaDefault, c.MatchType == kmsg.QuotasMatchTypeAny
		default:
			return user, client, false, fmt.Errorf("%w: unknown match type %d", errUnsupportedVersion, c.MatchType)
		}
		switch c.EntityType {
		case quotaEntityUser:
			user = f
		case quotaEntityClientID:
			client = f
		case quotaEntityIP:
			ip = true
		default:
			return user, client, false, fmt.Errorf("%w: unsupported entity type %q", errUnsupportedVersion, c.EntityType)
		}
	}
	if ip && (user.present || client.present) {
		return user, client, false, fmt.Errorf("%w: an ip component cannot be combined with user or client-id", errInvalidRequest)
	}
	return user, client, ip, nil
}

// describeQuotaEntry builds the response entry of one entity.
func describeQuotaEntry(e metadata.QuotaEntity, values map[string]float64) kmsg.DescribeClientQuotasResponseEntry {
	entry := kmsg.NewDescribeClientQuotasResponseEntry()
	for _, c := range []struct {
		typ  string
		name metadata.QuotaName
	}{{quotaEntityUser, e.User}, {quotaEntityClientID, e.ClientID}} {
		if !c.name.IsSet() {
			continue
		}
		ec := kmsg.NewDescribeClientQuotasResponseEntryEntity()
		ec.Type = c.typ
		if !c.name.Default {
			ec.Name = kmsg.StringPtr(c.name.Name)
		}
		entry.Entity = append(entry.Entity, ec)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := kmsg.NewDescribeClientQuotasResponseEntryValue()
		v.Key, v.Value = k, values[k]
		entry.Values = append(entry.Values, v)
	}
	return entry
}
