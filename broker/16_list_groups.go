package broker

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/broker/group"
)

// ListGroups: v0-5
//
// Behavior:
// * every classic and consumer (KIP-848) group of the coordinator, and
//   every group that only has committed offsets (Empty, classic, empty
//   protocol type), sorted by id
// * DESCRIBE on the cluster lists every group; without it only the groups
//   the client may DESCRIBE
//
// Version notes:
// * v3: flexible
// * v4: StatesFilter (case-insensitive, empty means all) and GroupState
// * v5: TypesFilter ("classic", "consumer"; case-insensitive) and
//   GroupType (KIP-848)

func (b *Broker) handleListGroups(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	listed := b.groups.List()
	known := make(map[string]bool, len(listed))
	for _, l := range listed {
		known[l.Group] = true
	}
	for _, name := range b.meta.Image().GroupNames() {
		if !known[name] {
			listed = append(listed, group.Listing{Group: name, State: group.StateEmpty, Type: group.TypeClassic})
		}
	}
	slices.SortFunc(listed, func(a, b group.Listing) int { return strings.Compare(a.Group, b.Group) })
	all := b.clusterDenied(r, opDescribe) == nil // authz.go
	for _, l := range listed {
		if req.Version >= 4 && !matchesFilter(req.StatesFilter, l.State) ||
			req.Version >= 5 && !matchesFilter(req.TypesFilter, l.Type) ||
			!all && b.groupDenied(r, opDescribe, l.Group) != nil {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = l.Group, l.ProtocolType, l.State, l.Type
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// matchesFilter reports whether v is in filter (case-insensitive); an
// empty filter matches everything.
func matchesFilter(filter []string, v string) bool {
	return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
}
