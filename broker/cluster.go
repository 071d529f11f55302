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

// The first layout of a cluster, derived from Config.Peers alone, so that
// every broker of a new cluster proposes the same (metadata.InitLayout;
// the first proposal wins, later ones change nothing). From then on the
// layout lives in the metadata: brokers join and leave with AddMember and
// RemoveMember (shoalctl cluster add-broker|remove-broker), and every
// broker opens the WAL groups the metadata assigns it (walgroups.go).
//
//   - members: every peer, sorted by node id.
//   - metadata group: the first 3 members vote (the first 5 when there are
//     5 or more); the others follow as non-voters.
//   - WAL groups: one per broker. Group i ("wal-<i>") is replicated on
//     min(3, n) members: members[i], members[i+1], ... (mod n). members[i]
//     is the group's preferred leader, so that each broker leads about one
//     group.
//
// The embedded default (no peers, or only this node) is one broker with
// one metadata voter and the single group "wal-0".

const (
	// MaxClusterSize bounds the static peer list of a new cluster; more
	// brokers join later with shoalctl cluster add-broker.
	MaxClusterSize = 64
	// groupReplicas is the number of replicas of a WAL group in a cluster
	// of at least that many brokers.
	groupReplicas = 3
)

// bootstrapLayout is the layout a new cluster starts with.
type bootstrapLayout struct {
	members []metadata.Member
	meta    []raftgroup.Peer // the metadata group's first members (nil: this node alone)
	groups  [][]int32        // replicas of WAL group i, preferred leader first
}

// newBootstrapLayout derives the first layout from the configured peers
// (already validated: unique numeric ids, this node among them); selfAddr
// is this node's cluster address when it runs alone.
func newBootstrapLayout(self int32, selfAddr string, peers []raftgroup.Peer) bootstrapLayout {
	if len(peers) <= 1 {
		return bootstrapLayout{
			members: []metadata.Member{{ID: self, ClusterAddr: selfAddr}},
			groups:  [][]int32{{self}},
		}
	}
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, func(a, b raftgroup.Peer) int { return cmp.Compare(peerID(a), peerID(b)) })
	var l bootstrapLayout
	voters := metadata.MetadataVoters(len(sorted))
	for i, p := range sorted {
		p.NonVoter = i >= voters
		l.meta = append(l.meta, p)
		l.members = append(l.members, metadata.Member{ID: int32(peerID(p)), ClusterAddr: p.Address})
	}
	n := len(sorted)
	for i := range n {
		var g []int32
		for j := range min(groupReplicas, n) {
			g = append(g, int32(peerID(sorted[(i+j)%n])))
		}
		l.groups = append(l.groups, g)
	}
	return l
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

// groupName is the Raft group name (and directory) of WAL group i.
func groupName(i int) string { return "wal-" + strconv.Itoa(i) }

// groupIDs lists the WAL groups of im, starting at start and wrapping
// around, so that topics created one after another start their round
// robin on different groups.
func groupIDs(im *metadata.Image, start int) []uint32 {
	n := max(len(im.WALGroups), 1)
	ids := make([]uint32, n)
	for i := range n {
		ids[i] = uint32((start + i) % n)
	}
	return ids
}

// maxReplicationFactor is the largest replication factor a topic may ask
// for: the replica count of a WAL group.
func maxReplicationFactor(im *metadata.Image) int { return min(groupReplicas, max(len(im.Members), 1)) }

// checkPeers validates the cluster members: none (this node alone), or a
// list of at most MaxClusterSize with unique numeric ids that includes this
// node at the address its cluster listener binds. A joining broker (Join)
// may be absent from the list: it only names brokers of the cluster.
func (c *Config) checkPeers() error {
	if len(c.Peers) == 0 {
		return nil
	}
	if len(c.Peers) > MaxClusterSize {
		return fmt.Errorf("broker config: peers: %d nodes given; a cluster starts with at most %d (add more with shoalctl cluster add-broker)",
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
	if own == nil && c.Join {
		return nil
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
	im := b.meta.Image()
	return groupIDs(im, len(im.Topics))
}

// topicGroups is the WAL group order of an existing topic: every group,
// starting at its partition 0's, so that added partitions continue its
// round robin.
func (b *Broker) topicGroups(t *metadata.Topic) []uint32 {
	start := 0
	if len(t.Partitions) > 0 {
		start = int(t.Partitions[0].WALGroup)
	}
	return groupIDs(b.meta.Image(), start)
}
