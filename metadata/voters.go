package metadata

import (
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/internal/raftgroup"
)

// MetadataVoters is the number of voters the metadata group has in a
// cluster of n members: every member up to 3, 5 from 5 members on.
func MetadataVoters(n int) int {
	if n >= 5 {
		return 5
	}
	return min(n, 3)
}

// ReconcileVoters makes one change that brings the metadata group's Raft
// configuration in line with the members (see raftgroup.Reconcile), on the
// leader only, and describes it ("" when nothing changed). The voters are
// the current voters that are still members, topped up with the other
// members in id order to MetadataVoters; the other members follow as
// non-voters, and removed members leave the group.
func (s *Store) ReconcileVoters(timeout time.Duration) (string, error) {
	if !s.IsLeader() {
		return "", nil
	}
	im := s.Image()
	if len(im.Members) == 0 {
		return "", nil
	}
	servers, err := s.group.Servers()
	if err != nil {
		return "", err
	}
	target := MetadataVoters(len(im.Members))
	voters := map[int32]bool{}
	for _, srv := range servers {
		id, err := strconv.ParseInt(string(srv.ID), 10, 32)
		if _, member := im.Members[int32(id)]; err == nil && member && srv.Suffrage == raft.Voter && len(voters) < target {
			voters[int32(id)] = true
		}
	}
	members := im.SortedMembers()
	for _, m := range members {
		if len(voters) < target {
			voters[m.ID] = true
		}
	}
	desired := make([]raftgroup.Peer, 0, len(members))
	for _, m := range members {
		desired = append(desired, raftgroup.Peer{ID: strconv.Itoa(int(m.ID)), Address: m.ClusterAddr, NonVoter: !voters[m.ID]})
	}
	slices.SortStableFunc(desired, func(a, b raftgroup.Peer) int {
		switch { // voters first: a promotion before an addition
		case !a.NonVoter && b.NonVoter:
			return -1
		case a.NonVoter && !b.NonVoter:
			return 1
		}
		return 0
	})
	return raftgroup.Reconcile(s.raft, s.cfg.NodeID, desired, timeout)
}
