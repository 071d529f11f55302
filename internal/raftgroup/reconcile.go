package raftgroup

import (
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Reconcile makes one change that brings the configuration of r, which
// this node (self) leads, closer to desired, and describes it ("" when the
// configuration matches). Changes come in this order, one per call, so that
// the group keeps a quorum of live voters through a replacement:
//
//  1. remove a server that is not desired (a leader that is not desired
//     hands its leadership over instead; the next leader removes it);
//  2. add a desired server that is missing, as a voter or a non-voter;
//  3. promote a desired voter that is a non-voter, demote the reverse.
//
// Removing first matters when a dead voter is replaced: removing it leaves
// the live voters a quorum of their own, and the new voter then joins a
// configuration that commits without waiting for it to catch up.
func Reconcile(r *raft.Raft, self string, desired []Peer, timeout time.Duration) (string, error) {
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return "", fmt.Errorf("read configuration: %w", err)
	}
	servers := f.Configuration().Servers
	want := func(id raft.ServerID) (Peer, bool) {
		i := slices.IndexFunc(desired, func(p Peer) bool { return raft.ServerID(p.ID) == id })
		if i < 0 {
			return Peer{}, false
		}
		return desired[i], true
	}
	for _, s := range servers {
		if _, ok := want(s.ID); ok {
			continue
		}
		if string(s.ID) == self {
			if err := r.LeadershipTransfer().Error(); err != nil {
				return "", fmt.Errorf("hand over before leaving: %w", err)
			}
			return "leadership handed over before leaving the group", nil
		}
		if err := r.RemoveServer(s.ID, 0, timeout).Error(); err != nil {
			return "", fmt.Errorf("remove %s: %w", s.ID, err)
		}
		return fmt.Sprintf("removed %s", s.ID), nil
	}
	for _, p := range desired {
		i := slices.IndexFunc(servers, func(s raft.Server) bool { return s.ID == raft.ServerID(p.ID) })
		id, addr := raft.ServerID(p.ID), raft.ServerAddress(p.Address)
		switch {
		case i < 0 && p.NonVoter:
			if err := r.AddNonvoter(id, addr, 0, timeout).Error(); err != nil {
				return "", fmt.Errorf("add non-voter %s: %w", id, err)
			}
			return fmt.Sprintf("added non-voter %s at %s", id, addr), nil
		case i < 0 || (!p.NonVoter && servers[i].Suffrage != raft.Voter):
			if err := r.AddVoter(id, addr, 0, timeout).Error(); err != nil {
				return "", fmt.Errorf("add voter %s: %w", id, err)
			}
			return fmt.Sprintf("added voter %s at %s", id, addr), nil
		case p.NonVoter && servers[i].Suffrage == raft.Voter && p.ID != self:
			if err := r.DemoteVoter(id, 0, timeout).Error(); err != nil {
				return "", fmt.Errorf("demote %s: %w", id, err)
			}
			return fmt.Sprintf("demoted %s to non-voter", id), nil
		}
	}
	return "", nil
}

// Servers returns the group's current configuration.
func (g *Group) Servers() ([]raft.Server, error) {
	f := g.Raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}
