package group

import (
	"cmp"
	"slices"
)

// Server assignors of consumer (KIP-848) groups, as clients name them in
// ConsumerGroupHeartbeat's ServerAssignor.
const (
	// AssignorUniform spreads every subscribed partition evenly over the
	// members (at most one apart when subscriptions are equal), keeping
	// partitions where they are when that stays balanced.
	AssignorUniform = "uniform"
	// AssignorRange gives each member a contiguous range of every topic it
	// subscribes to, members ordered by id, like the classic range assignor.
	AssignorRange = "range"
)

// tp is one partition of a topic, by topic id.
type tp struct {
	topic [16]byte
	part  int32
}

func compareTP(a, b tp) int {
	if c := slices.Compare(a.topic[:], b.topic[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.part, b.part)
}

// tpSet is a set of partitions.
type tpSet map[tp]struct{}

func (s tpSet) sorted() []tp {
	out := make([]tp, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	slices.SortFunc(out, compareTP)
	return out
}

func (s tpSet) clone() tpSet {
	out := make(tpSet, len(s))
	for p := range s {
		out[p] = struct{}{}
	}
	return out
}

func (s tpSet) equal(o tpSet) bool {
	if len(s) != len(o) {
		return false
	}
	for p := range s {
		if _, ok := o[p]; !ok {
			return false
		}
	}
	return true
}

// minus returns the partitions of s not in o.
func (s tpSet) minus(o tpSet) tpSet {
	out := tpSet{}
	for p := range s {
		if _, ok := o[p]; !ok {
			out[p] = struct{}{}
		}
	}
	return out
}

// memberTopics is one member's resolved subscription: topic ids, sorted
// by topic name.
type memberTopics struct {
	id     string
	topics []subscribedTopic
}

// subscribedTopic is a subscribed topic that exists.
type subscribedTopic struct {
	name       string
	id         [16]byte
	partitions int32
}

// assignUniform computes a balanced assignment: partitions in (topic name,
// partition) order go first to their previous owner while it stays within
// its share, then to the eligible member with the fewest partitions (ties:
// member id order). With equal subscriptions no two members differ by more
// than one partition.
func assignUniform(members []memberTopics, prev map[string]tpSet) map[string]tpSet {
	out := make(map[string]tpSet, len(members))
	eligible := map[tp][]string{}
	var parts []tp
	slices.SortFunc(members, func(a, b memberTopics) int { return cmp.Compare(a.id, b.id) })
	for _, m := range members {
		out[m.id] = tpSet{}
		for _, t := range m.topics {
			for p := range t.partitions {
				k := tp{t.id, p}
				if _, seen := eligible[k]; !seen {
					parts = append(parts, k)
				}
				eligible[k] = append(eligible[k], m.id)
			}
		}
	}
	active := 0
	for _, m := range members {
		if len(m.topics) > 0 {
			active++
		}
	}
	if active == 0 {
		return out
	}
	quota, extra := len(parts)/active, len(parts)%active
	assigned := map[tp]bool{}
	// Sticky pass: keep previous targets within the share.
	for _, m := range members {
		for _, k := range prev[m.id].sorted() {
			if !slices.Contains(eligible[k], m.id) || assigned[k] {
				continue
			}
			n := len(out[m.id])
			if n < quota || n == quota && extra > 0 {
				if n == quota {
					extra--
				}
				out[m.id][k] = struct{}{}
				assigned[k] = true
			}
		}
	}
	// The rest to the least loaded eligible member.
	for _, k := range parts {
		if assigned[k] {
			continue
		}
		best := ""
		for _, id := range eligible[k] {
			if best == "" || len(out[id]) < len(out[best]) {
				best = id
			}
		}
		out[best][k] = struct{}{}
	}
	return out
}

// assignRange gives each member, per topic it subscribes to, a contiguous
// range of partitions; the first members (by id) get one more when the
// partitions do not divide evenly.
func assignRange(members []memberTopics) map[string]tpSet {
	out := make(map[string]tpSet, len(members))
	byTopic := map[[16]byte][]string{}
	counts := map[[16]byte]int32{}
	slices.SortFunc(members, func(a, b memberTopics) int { return cmp.Compare(a.id, b.id) })
	for _, m := range members {
		out[m.id] = tpSet{}
		for _, t := range m.topics {
			byTopic[t.id] = append(byTopic[t.id], m.id)
			counts[t.id] = t.partitions
		}
	}
	for id, ms := range byTopic {
		n := int32(len(ms))
		per, extra := counts[id]/n, counts[id]%n
		next := int32(0)
		for i, m := range ms {
			size := per
			if int32(i) < extra {
				size++
			}
			for p := next; p < next+size; p++ {
				out[m][tp{id, p}] = struct{}{}
			}
			next += size
		}
	}
	return out
}
