package broker

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/metadata"
)

// The cluster topology: which Raft groups a broker takes part in, derived
// from Config.Peers alone, so every broker of a cluster computes the same.
//
//   - members: every broker, sorted by node id.
//   - metadata group: the first 3 members vote (the first 5 when there are
//     5 or more); the others follow as non-voters.
//   - WAL groups: one per broker. Group i ("wal-<i>") is replicated on
//     min(3, n) members: members[i], members[i+1], ... (mod n). members[i]
//     is the group's preferred leader, so that each broker leads about one
//     group. With n <= 3 every broker is a replica of every group.
//
// The embedded default (no peers, or only this node) is one broker with
// one metadata voter and the single group "wal-0", exactly as before
// clusters existed.

const (
	// MaxClusterSize is the largest cluster this version runs: until the
	// leader registry lands, a broker must be a replica of every WAL group
	// to know its leader, which holds for up to 3 brokers.
	MaxClusterSize = 3
	// groupReplicas is the number of replicas of a WAL group in a cluster
	// of at least that many brokers.
	groupReplicas = 3
)

// topology is this broker's view of the cluster layout.
type topology struct {
	self    string           // this broker's node id
	members []raftgroup.Peer // every broker, by node id; nil on the embedded default
	meta    []raftgroup.Peer // the metadata group's members (nil: this node alone)
	groups  [][]raftgroup.Peer
}

// newTopology derives the layout from the configured peers (already
// validated: unique numeric ids, this node among them).
func newTopology(self int32, peers []raftgroup.Peer) topology {
	t := topology{self: strconv.Itoa(int(self))}
	if len(peers) == 0 {
		t.groups = [][]raftgroup.Peer{nil}
		return t
	}
	t.members = slices.Clone(peers)
	slices.SortFunc(t.members, func(a, b raftgroup.Peer) int { return cmp.Compare(peerID(a), peerID(b)) })
	n := len(t.members)
	voters := 3
	if n >= 5 {
		voters = 5
	}
	for i, p := range t.members {
		p.NonVoter = i >= voters
		t.meta = append(t.meta, p)
	}
	replicas := min(groupReplicas, n)
	for i := range n {
		var g []raftgroup.Peer
		for j := range replicas {
			p := t.members[(i+j)%n]
			p.NonVoter = false
			g = append(g, p)
		}
		t.groups = append(t.groups, g)
	}
	return t
}

// peerID is a peer's numeric node id (-1 if it does not parse; validated
// configs never have one).
func peerID(p raftgroup.Peer) int64 {
	n, err := strconv.ParseInt(p.ID, 10, 32)
	if err != nil {
		return -1
	}
	return n
}

// size is the number of brokers (1 on the embedded default).
func (t topology) size() int { return max(len(t.members), 1) }

// groupName is the Raft group name (and directory) of WAL group i.
func groupName(i int) string { return "wal-" + strconv.Itoa(i) }

// isLocal reports whether this broker is a replica of WAL group i.
func (t topology) isLocal(i int) bool {
	if i < 0 || i >= len(t.groups) {
		return false
	}
	if t.groups[i] == nil {
		return true
	}
	return slices.ContainsFunc(t.groups[i], func(p raftgroup.Peer) bool { return p.ID == t.self })
}

// preferred is the node id of WAL group i's preferred leader ("" on the
// embedded default).
func (t topology) preferred(i int) raftgroup.Peer {
	if i < 0 || i >= len(t.groups) || len(t.groups[i]) == 0 {
		return raftgroup.Peer{}
	}
	return t.groups[i][0]
}

// groupIDs lists every WAL group id, starting at start and wrapping
// around, so that topics created one after another start their round robin
// on different groups.
func (t topology) groupIDs(start int) []uint32 {
	n := len(t.groups)
	ids := make([]uint32, n)
	for i := range n {
		ids[i] = uint32((start + i) % n)
	}
	return ids
}

// maxReplicationFactor is the largest replication factor a topic may ask
// for: the replica count of a WAL group.
func (t topology) maxReplicationFactor() int { return min(groupReplicas, t.size()) }

// checkPeers validates the cluster members: none (this node alone), or a
// list of at most MaxClusterSize with unique numeric ids that includes this
// node at the address its cluster listener binds.
func (c *Config) checkPeers() error {
	if len(c.Peers) == 0 {
		return nil
	}
	if len(c.Peers) > MaxClusterSize {
		return fmt.Errorf("broker config: peers: %d nodes given; clusters of more than %d brokers are not supported yet",
			len(c.Peers), MaxClusterSize)
	}
	self := strconv.Itoa(int(c.NodeID))
	seen := map[string]bool{}
	var own *raftgroup.Peer
	for i, p := range c.Peers {
		n, err := strconv.ParseInt(p.ID, 10, 32)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != p.ID {
			return fmt.Errorf("broker config: peers: bad node id %q", p.ID)
		}
		if seen[p.ID] {
			return fmt.Errorf("broker config: peers: node id %s listed twice", p.ID)
		}
		seen[p.ID] = true
		if err := checkHostPort("peers", p.Address, false); err != nil {
			return err
		}
		if p.ID == self {
			own = &c.Peers[i]
		}
	}
	if own == nil {
		if len(c.Peers) == 1 {
			return fmt.Errorf("broker config: peers: the only peer must be this node (id %d), not %q", c.NodeID, c.Peers[0].ID)
		}
		return fmt.Errorf("broker config: peers: this node (id %d) is not listed", c.NodeID)
	}
	if len(c.Peers) > 1 && !sameEndpoint(c.ClusterListen, own.Address) {
		return fmt.Errorf("broker config: peers: this node's entry %s@%s does not match cluster-listen %s",
			own.ID, own.Address, c.ClusterListen)
	}
	return nil
}

// sameEndpoint reports whether a listener bound to listen is reachable at
// addr: same port, and same host unless the listener binds every address.
func sameEndpoint(listen, addr string) bool {
	lh, lp, err1 := net.SplitHostPort(listen)
	ah, ap, err2 := net.SplitHostPort(addr)
	if err1 != nil || err2 != nil || lp != ap {
		return false
	}
	if lh == "" || lh == "0.0.0.0" || lh == "::" || lh == ah {
		return true
	}
	lip, aip := net.ParseIP(lh), net.ParseIP(ah)
	return lip != nil && aip != nil && lip.Equal(aip)
}

// newTopicGroups is the WAL group order a new topic's partitions take,
// round robin: every group, starting after the groups the previous topics
// started on, so that single-partition topics spread too.
func (b *Broker) newTopicGroups() []uint32 {
	return b.topo.groupIDs(len(b.meta.Image().Topics))
}

// topicGroups is the WAL group order of an existing topic: every group,
// starting at its partition 0's, so that added partitions continue its
// round robin.
func (b *Broker) topicGroups(t *metadata.Topic) []uint32 {
	start := 0
	if len(t.Partitions) > 0 {
		start = int(t.Partitions[0].WALGroup)
	}
	return b.topo.groupIDs(start)
}
