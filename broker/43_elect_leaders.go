package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// ElectLeaders: v0-2
//
// Behavior:
// * a partition's leader is its WAL group's Raft leader, and Metadata lists
//   that leader as the only (so the preferred) replica; Raft elects a new
//   leader by itself when one fails. So no election is ever run here:
//   - the group has a leader: ELECTION_NOT_NEEDED, as Kafka answers when
//     the preferred replica already leads (preferred) or a leader is alive
//     (unclean)
//   - the group has no leader (an election is under way):
//     PREFERRED_LEADER_NOT_AVAILABLE (preferred) or
//     ELIGIBLE_LEADERS_NOT_AVAILABLE (unclean); clients retry
// * Topics null: every partition, leaving out those answered
//   ELECTION_NOT_NEEDED (and topics left empty), as Kafka does; so a
//   healthy cluster answers with an empty list
// * unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; an election
//   type other than 0 (preferred) or 1 (unclean): INVALID_REQUEST per
//   partition; a partition named twice is answered once
// * ALTER on the cluster is needed: without it the top-level error and
//   every requested partition's is CLUSTER_AUTHORIZATION_FAILED
//
// Version notes:
// * v1: ElectionType (KIP-460) and the top-level ErrorCode (always 0);
//   v0 is a preferred election
// * v2: flexible

// electDenied answers a request the client may not make, as Kafka does.
func electDenied(req *kmsg.ElectLeadersRequest, resp *kmsg.ElectLeadersResponse, err error) *kmsg.ElectLeadersResponse {
	resp.ErrorCode = errCode(err)
	for _, rt := range req.Topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition, sp.ErrorCode, sp.ErrorMessage = idx, errCode(err), errMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// Election types of ElectLeaders v1+.
const (
	electionPreferred int8 = 0
	electionUnclean   int8 = 1
)

func (b *Broker) handleElectLeaders(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if err := b.clusterDenied(r, opAlter); err != nil { // authz.go
		return electDenied(req, resp, err), nil
	}
	im := b.meta.Image()
	all := req.Topics == nil
	for _, rt := range electionTargets(im, req.Topics) {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			err := b.electLeader(im.Topics[rt.Topic], idx, req.ElectionType)
			if all && errors.Is(err, errElectionNotNeeded) {
				continue
			}
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = idx
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = errCode(err), errMessage(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		if all && len(st.Partitions) == 0 {
			continue
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// electionTargets returns the requested partitions, each once, or every
// partition of every topic when topics is nil.
func electionTargets(im *metadata.Image, topics []kmsg.ElectLeadersRequestTopic) []kmsg.ElectLeadersRequestTopic {
	if topics == nil {
		var out []kmsg.ElectLeadersRequestTopic
		for _, name := range im.SortedTopicNames() {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic = name
			for _, p := range im.Topics[name].Partitions {
				rt.Partitions = append(rt.Partitions, p.Index)
			}
			out = append(out, rt)
		}
		return out
	}
	var out []kmsg.ElectLeadersRequestTopic
	index := map[string]int{}
	seen := map[string]map[int32]bool{}
	for _, rt := range topics {
		i, ok := index[rt.Topic]
		if !ok {
			i = len(out)
			index[rt.Topic] = i
			seen[rt.Topic] = map[int32]bool{}
			t := kmsg.NewElectLeadersRequestTopic()
			t.Topic = rt.Topic
			out = append(out, t)
		}
		for _, p := range rt.Partitions {
			if !seen[rt.Topic][p] {
				seen[rt.Topic][p] = true
				out[i].Partitions = append(out[i].Partitions, p)
			}
		}
	}
	return out
}

// electLeader answers one partition's election; see the comment above.
func (b *Broker) electLeader(t *metadata.Topic, idx int32, electionType int8) error {
	if t == nil || idx < 0 || int(idx) >= len(t.Partitions) {
		return errUnknownTopicOrPartition
	}
	if electionType != electionPreferred && electionType != electionUnclean {
		return fmt.Errorf("%w: unknown election type %d", errInvalidRequest, electionType)
	}
	p := t.Partitions[idx]
	if ws := b.localGroup(p.WALGroup); ws != nil && ws.g.Leader() != "" {
		return errElectionNotNeeded
	}
	if mg, ok := b.meta.Image().WALGroup(p.WALGroup); ok && mg.Leader >= 0 {
		return errElectionNotNeeded
	}
	if electionType == electionUnclean {
		return errEligibleLeadersNotAvailable
	}
	return errPreferredLeaderNotAvailable
}
