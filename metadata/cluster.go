package metadata

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
)

// Cluster membership and the WAL-group layout.
//
// Members are the brokers admitted to the cluster, with their cluster
// listener addresses; the static --peers list of the first start becomes
// the initial members (InitLayout), later brokers are admitted with
// AddMember and leave with RemoveMember. Member ids are never reused.
//
// WALGroups assign every WAL Raft group its replicas (Replicas[0] is the
// preferred leader). A group is bootstrapped by its Initial replicas; a
// replica added later joins an existing group and receives only what the
// group holds (its snapshot: the WAL tail not yet in object storage), never
// partition history. The assignment is computed inside apply, so every
// replica of the metadata group derives the same layout. Each WAL group's
// Raft leader reports itself with SetWALLeader, so that brokers outside the
// group can name it in Metadata responses.

// Member is one broker admitted to the cluster.
type Member struct {
	ID          int32  `json:"id"`
	ClusterAddr string `json:"cluster_addr"` // cluster (Raft) listener, host:port
}

// WALGroup is one WAL Raft group: its replicas and its last reported leader.
type WALGroup struct {
	ID uint32 `json:"id"`
	// Replicas are the voters the group should have; the first is its
	// preferred leader.
	Replicas []int32 `json:"replicas"`
	// Initial are the replicas that bootstrapped the group; a replica not
	// among them joins it instead.
	Initial []int32 `json:"initial"`
	// Leader and LeaderEpoch are the last leader the group reported (-1:
	// none yet) and its Raft term.
	Leader      int32 `json:"leader"`
	LeaderEpoch int32 `json:"leader_epoch"`
}

// HasReplica reports whether broker id is one of the group's replicas.
func (g WALGroup) HasReplica(id int32) bool { return slices.Contains(g.Replicas, id) }

// Bootstraps reports whether broker id bootstrapped the group (rather than
// joining it later).
func (g WALGroup) Bootstraps(id int32) bool { return slices.Contains(g.Initial, id) }

// SortedMembers returns the members in ascending id order.
func (im *Image) SortedMembers() []Member {
	out := slices.Collect(maps.Values(im.Members))
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// WALGroup returns group id, if it exists.
func (im *Image) WALGroup(id uint32) (WALGroup, bool) {
	if int(id) >= len(im.WALGroups) {
		return WALGroup{}, false
	}
	return im.WALGroups[id], true
}

// InitLayoutCmd sets the members and WAL groups of a new cluster; once a
// layout exists it changes nothing. Groups[i] are the replicas of group i.
type InitLayoutCmd struct {
	Members []Member  `json:"members"`
	Groups  [][]int32 `json:"groups"`
}

// AddMemberCmd admits a broker. It becomes a replica of every group with
// fewer than Replicas replicas; when no group needs one, a new group is
// created with the new broker as its preferred leader.
type AddMemberCmd struct {
	Member   Member `json:"member"`
	Replicas int    `json:"replicas"`
}

// RemoveMemberCmd removes a broker for good. In each of its groups a
// broker that is not yet a replica (the one with the fewest replicas) takes
// its place, when there is one.
type RemoveMemberCmd struct {
	ID int32 `json:"id"`
}

// SetWALLeaderCmd records the leader a WAL group reports; older terms are
// ignored.
type SetWALLeaderCmd struct {
	Group  uint32 `json:"group"`
	Leader int32  `json:"leader"`
	Epoch  int32  `json:"epoch"`
}

// Type implements Command.
func (InitLayoutCmd) Type() CommandType { return CmdInitLayout }

// Type implements Command.
func (AddMemberCmd) Type() CommandType { return CmdAddMember }

// Type implements Command.
func (RemoveMemberCmd) Type() CommandType { return CmdRemoveMember }

// Type implements Command.
func (SetWALLeaderCmd) Type() CommandType { return CmdSetWALLeader }

func (c InitLayoutCmd) check() error {
	if len(c.Members) == 0 || len(c.Groups) == 0 {
		return fmt.Errorf("%w: a layout needs members and groups", ErrInvalidCommand)
	}
	ids := map[int32]bool{}
	for _, m := range c.Members {
		if err := checkMember(m); err != nil {
			return err
		}
		if ids[m.ID] {
			return fmt.Errorf("%w: member %d listed twice", ErrInvalidCommand, m.ID)
		}
		ids[m.ID] = true
	}
	for i, g := range c.Groups {
		if len(g) == 0 {
			return fmt.Errorf("%w: wal group %d has no replicas", ErrInvalidCommand, i)
		}
		for j, id := range g {
			if !ids[id] || slices.Contains(g[:j], id) {
				return fmt.Errorf("%w: wal group %d: replica %d is not a member or repeated", ErrInvalidCommand, i, id)
			}
		}
	}
	return nil
}

func (c AddMemberCmd) check() error {
	if c.Replicas < 1 {
		return fmt.Errorf("%w: replica count %d", ErrInvalidCommand, c.Replicas)
	}
	return checkMember(c.Member)
}

func (c RemoveMemberCmd) check() error {
	if c.ID < 0 {
		return fmt.Errorf("%w: broker id %d is negative", ErrInvalidRequest, c.ID)
	}
	return nil
}

func (c SetWALLeaderCmd) check() error {
	if c.Leader < 0 || c.Epoch < 0 {
		return fmt.Errorf("%w: wal group %d leader %d epoch %d", ErrInvalidCommand, c.Group, c.Leader, c.Epoch)
	}
	return nil
}

func checkMember(m Member) error {
	if m.ID < 0 {
		return fmt.Errorf("%w: broker id %d is negative", ErrInvalidRequest, m.ID)
	}
	if m.ClusterAddr == "" {
		return fmt.Errorf("%w: broker %d has no cluster address", ErrInvalidRequest, m.ID)
	}
	return nil
}

func (im *Image) applyInitLayout(c InitLayoutCmd, index uint64) (*Image, any) {
	if len(im.Members) > 0 {
		return nil, nil // a layout exists: every broker proposes the same one at start
	}
	n := im.next(index)
	n.Members = map[int32]Member{}
	for _, m := range c.Members {
		n.Members[m.ID] = m
	}
	n.WALGroups = make([]WALGroup, len(c.Groups))
	for i, g := range c.Groups {
		n.WALGroups[i] = WALGroup{ID: uint32(i), Replicas: slices.Clone(g), Initial: slices.Clone(g), Leader: -1}
	}
	return n, nil
}

func (im *Image) applyAddMember(c AddMemberCmd, index uint64) (*Image, any) {
	id := c.Member.ID
	if old, ok := im.Members[id]; ok {
		if old == c.Member {
			return nil, nil // a retried admission
		}
		return nil, fmt.Errorf("%w: broker %d is a member at %s", ErrMemberExists, id, old.ClusterAddr)
	}
	if slices.Contains(im.RemovedMembers, id) {
		return nil, fmt.Errorf("%w: broker id %d was removed from the cluster and cannot come back", ErrMemberRemoved, id)
	}
	if len(im.Members) == 0 {
		return nil, fmt.Errorf("%w: the cluster has no layout yet", ErrInvalidRequest)
	}
	n := im.next(index)
	n.Members = maps.Clone(im.Members)
	n.Members[id] = c.Member
	n.WALGroups = cloneWALGroups(im.WALGroups)
	filled := false
	for i := range n.WALGroups {
		if g := &n.WALGroups[i]; len(g.Replicas) < c.Replicas {
			g.Replicas = append(g.Replicas, id)
			filled = true
		}
	}
	if !filled {
		replicas := append([]int32{id}, n.leastLoaded(c.Replicas-1, nil, id)...)
		n.WALGroups = append(n.WALGroups, WALGroup{
			ID: uint32(len(n.WALGroups)), Replicas: replicas, Initial: slices.Clone(replicas), Leader: -1,
		})
	}
	n.balancePreferred()
	return n, nil
}

func (im *Image) applyRemoveMember(c RemoveMemberCmd, index uint64) (*Image, any) {
	if _, ok := im.Members[c.ID]; !ok {
		return nil, fmt.Errorf("%w: broker %d", ErrUnknownMember, c.ID)
	}
	if len(im.Members) == 1 {
		return nil, fmt.Errorf("%w: broker %d is the last member", ErrInvalidRequest, c.ID)
	}
	n := im.next(index)
	n.Members = maps.Clone(im.Members)
	delete(n.Members, c.ID)
	n.RemovedMembers = append(slices.Clone(im.RemovedMembers), c.ID)
	n.withBrokers()
	delete(n.Brokers, c.ID)
	n.WALGroups = cloneWALGroups(im.WALGroups)
	for i := range n.WALGroups {
		g := &n.WALGroups[i]
		at := slices.Index(g.Replicas, c.ID)
		if at < 0 {
			continue
		}
		if spare := n.leastLoaded(1, g.Replicas, -1); len(spare) == 1 {
			g.Replicas[at] = spare[0]
		} else if len(g.Replicas) == 1 {
			return nil, fmt.Errorf("%w: broker %d is the only replica of wal group %d and no other broker can take it",
				ErrInvalidRequest, c.ID, g.ID)
		} else {
			g.Replicas = slices.Delete(g.Replicas, at, at+1)
		}
		if g.Leader == c.ID {
			g.Leader = -1
		}
	}
	n.balancePreferred()
	return n, nil
}

func (im *Image) applySetWALLeader(c SetWALLeaderCmd, index uint64) (*Image, any) {
	g, ok := im.WALGroup(c.Group)
	if !ok {
		return nil, fmt.Errorf("%w: wal group %d", ErrInvalidRequest, c.Group)
	}
	if c.Epoch < g.LeaderEpoch || (c.Epoch == g.LeaderEpoch && c.Leader == g.Leader) {
		return nil, nil
	}
	n := im.next(index)
	n.WALGroups = cloneWALGroups(im.WALGroups)
	n.WALGroups[c.Group].Leader, n.WALGroups[c.Group].LeaderEpoch = c.Leader, c.Epoch
	return n, nil
}

// leastLoaded picks k members that are not in exclude (nor the broker
// skip), those with the fewest replicas first, ties by id.
func (im *Image) leastLoaded(k int, exclude []int32, skip int32) []int32 {
	load := map[int32]int{}
	for _, g := range im.WALGroups {
		for _, id := range g.Replicas {
			load[id]++
		}
	}
	var cands []int32
	for id := range im.Members {
		if id != skip && !slices.Contains(exclude, id) {
			cands = append(cands, id)
		}
	}
	slices.SortFunc(cands, func(a, b int32) int {
		return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(a, b))
	})
	return cands[:min(k, len(cands))]
}

// balancePreferred reorders each group's replicas so that preferred
// leaderships spread: a group whose preferred leader prefers other groups
// too moves a replica that prefers none to the front.
func (im *Image) balancePreferred() {
	count := map[int32]int{}
	for _, g := range im.WALGroups {
		count[g.Replicas[0]]++
	}
	for i := range im.WALGroups {
		g := &im.WALGroups[i]
		if count[g.Replicas[0]] <= 1 {
			continue
		}
		for j, id := range g.Replicas[1:] {
			if count[id] == 0 {
				count[g.Replicas[0]]--
				count[id]++
				g.Replicas[0], g.Replicas[j+1] = id, g.Replicas[0]
				break
			}
		}
	}
}

func cloneWALGroups(gs []WALGroup) []WALGroup {
	out := slices.Clone(gs)
	for i := range out {
		out[i].Replicas = slices.Clone(out[i].Replicas)
	}
	return out
}

// InitLayout proposes the layout of a new cluster (see InitLayoutCmd); on
// a cluster that has one it changes nothing.
func (s *Store) InitLayout(ctx context.Context, members []Member, groups [][]int32) error {
	c := InitLayoutCmd{Members: members, Groups: groups}
	if err := c.check(); err != nil {
		return err
	}
	if len(s.Image().Members) > 0 {
		return nil
	}
	_, err := s.propose(ctx, c)
	return err
}

// AddMember admits broker m with groups of up to replicas replicas; the
// metadata leader then adds it to the Raft groups (ReconcileVoters and the
// WAL group leaders). Admitting a member again with the same address
// succeeds and changes nothing.
func (s *Store) AddMember(ctx context.Context, m Member, replicas int) error {
	_, err := s.propose(ctx, AddMemberCmd{Member: m, Replicas: replicas})
	return err
}

// RemoveMember removes broker id from the cluster for good.
func (s *Store) RemoveMember(ctx context.Context, id int32) error {
	_, err := s.propose(ctx, RemoveMemberCmd{ID: id})
	return err
}

// SetWALLeader records that broker leader leads WAL group group in term epoch.
func (s *Store) SetWALLeader(ctx context.Context, group uint32, leader, epoch int32) error {
	_, err := s.propose(ctx, SetWALLeaderCmd{Group: group, Leader: leader, Epoch: epoch})
	return err
}
