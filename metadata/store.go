package metadata

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/internal/raftgroup"
)

// GroupName is the name of the metadata Raft group on the cluster listener.
const GroupName = "metadata"

// DefaultApplyTimeout bounds a write when Config.ApplyTimeout is zero.
const DefaultApplyTimeout = 10 * time.Second

// Config configures a Store.
type Config struct {
	Dir    string         // Raft log, stable store and snapshots of the metadata group
	NodeID string         // this broker's node id in the group
	Mux    *raftgroup.Mux // the broker's cluster listener; the caller owns and closes it
	// Peers are the initial members of the metadata group, the same list on
	// every broker; members marked NonVoter follow without voting (see
	// VoterPeers). Empty: this node alone.
	Peers []raftgroup.Peer
	// Join opens the group on a broker new to an existing cluster: nothing
	// is bootstrapped, and Open waits until the leader adds this node
	// (after AddMember) and the image has arrived.
	Join   bool
	Logger *slog.Logger // nil: slog.Default()
	// ApplyTimeout bounds each write (0: DefaultApplyTimeout); a shorter
	// context deadline wins.
	ApplyTimeout time.Duration
	// DefaultPartitions replaces a TopicSpec partition count of -1 (0: 1).
	DefaultPartitions int32
	// DefaultReplicationFactor replaces a TopicSpec replication factor of -1 (0: 1).
	DefaultReplicationFactor int16
}

// Store is the cluster metadata of one broker: a replica of the metadata Raft
// group and the image it applies. Reads (Image) are lock-free; writes work on
// every member and go through Raft on the leader, forwarded over the cluster
// listener from followers.
type Store struct {
	cfg    Config
	logger *slog.Logger
	fsm    *fsm
	group  *raftgroup.Group
	raft   *raft.Raft
	rpc    *raftgroup.RPCClient // forwards writes to the leader
	server *raftgroup.RPCServer // applies writes forwarded to this node
	closed atomic.Bool
	done   chan struct{} // closed by Close

	// hooks are set by tests before any write.
	hooks struct {
		// afterForward sees (and may replace) each forward's answer.
		afterForward func(addr string, reply []byte, err error) ([]byte, error)
	}
}

// Open opens the metadata group in cfg.Dir (bootstrapping it on first start),
// waits for a leader and for the cluster to be initialised: on a fresh
// cluster the leader sets a random ClusterID exactly once. On the leader,
// Open returns with every committed entry applied; a follower returns once it
// has applied the log it had on disk and the cluster id, and may still lag
// the leader. ctx bounds the wait.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	switch {
	case cfg.Dir == "":
		return nil, fmt.Errorf("%w: config has no Dir", ErrInvalidRequest)
	case cfg.NodeID == "":
		return nil, fmt.Errorf("%w: config has no NodeID", ErrInvalidRequest)
	case cfg.Mux == nil:
		return nil, fmt.Errorf("%w: config has no Mux", ErrInvalidRequest)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = DefaultApplyTimeout
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.DefaultReplicationFactor <= 0 {
		cfg.DefaultReplicationFactor = 1
	}
	s := &Store{cfg: cfg, logger: cfg.Logger.With("component", "metadata"), fsm: newFSM(cfg.Logger), done: make(chan struct{})}
	g, err := raftgroup.Open(raftgroup.Config{
		Name: GroupName, Dir: cfg.Dir, NodeID: cfg.NodeID, Mux: cfg.Mux, Peers: cfg.Peers, Logger: cfg.Logger,
		Join: cfg.Join,
	}, s.fsm)
	if err != nil {
		return nil, fmt.Errorf("metadata: open: %w", err)
	}
	s.group, s.raft = g, g.Raft
	rpcCfg := raftgroup.RPCConfig{Timeout: cfg.ApplyTimeout, Logger: cfg.Logger, Mux: cfg.Mux}
	s.rpc = raftgroup.NewRPCClient(RPCChannel, rpcCfg)
	if s.server, err = raftgroup.ServeRPC(cfg.Mux, RPCChannel, s.serveForward, rpcCfg); err != nil {
		s.Close()
		return nil, fmt.Errorf("metadata: open: %w", err)
	}
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("metadata: open: %w", err)
	}
	return s, nil
}

// waitReady waits until the image is current and has a cluster id. The
// leader waits for every earlier entry to apply (Barrier), then proposes the
// id if none is set; InitCluster is a no-op when applied to an initialised
// image, so two leaders racing still set it once. A follower waits until it
// has applied its log as it stood at open and the image has a cluster id.
func (s *Store) waitReady(ctx context.Context) error {
	if err := s.group.WaitLeader(ctx); err != nil {
		return err
	}
	target := s.raft.LastIndex()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := s.fsm.changed()
		if s.IsLeader() {
			err := s.catchUpAndInit(ctx)
			if err == nil || !errors.Is(err, ErrNotLeader) {
				return err
			}
			continue
		}
		if s.fsm.current().ClusterID != "" && s.raft.AppliedIndex() >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the metadata log: %w", ctx.Err())
		case <-changed:
		case <-tick.C:
		}
	}
}

// catchUpAndInit applies every committed entry on the leader and sets the
// cluster id of a fresh cluster.
func (s *Store) catchUpAndInit(ctx context.Context) error {
	timeout := s.applyTimeout(ctx)
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	if err := s.raft.Barrier(timeout).Error(); err != nil {
		return mapRaftError(err)
	}
	if s.fsm.current().ClusterID != "" {
		return nil
	}
	_, err := s.propose(ctx, InitClusterCmd{ClusterID: newClusterID()})
	return err
}

// Close shuts the Store's Raft replica and its write channel down; writes in
// flight end. The Mux stays open. Close is idempotent; writes after Close
// return ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.done)
	s.rpc.Close()
	// Raft first: its shutdown ends the applies that forwarded writes wait on.
	err := s.group.Close()
	if s.server != nil {
		s.server.Close()
	}
	if err != nil {
		return fmt.Errorf("metadata: close: %w", err)
	}
	return nil
}

// Image returns the current image; never nil. The image never changes; a
// write publishes a new one.
func (s *Store) Image() *Image { return s.fsm.current() }

// Changed returns a channel that is closed when the image is next replaced.
// Take the channel before reading Image to never miss a change:
//
//	for {
//		ch := s.Changed()
//		use(s.Image())
//		select { case <-ch: case <-ctx.Done(): return }
//	}
//
// Close does not close the channel; watchers also wait on their own context.
func (s *Store) Changed() <-chan struct{} { return s.fsm.changed() }

// IsLeader reports whether this node leads the metadata group.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// TransferLeadership hands the metadata group to another voter when this
// node leads it (a graceful shutdown) and returns once another leader is
// known, or when ctx ends. A node that does not lead returns at once.
func (s *Store) TransferLeadership(ctx context.Context) error {
	if !s.IsLeader() {
		return nil
	}
	self := string(s.cfg.NodeID)
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("metadata: leadership transfer: %w", err)
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if id := s.LeaderID(); id != "" && id != self {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("metadata: waiting for the new leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Raft returns the metadata group's Raft replica, for its state (metrics,
// admin views); writes go through the Store's methods.
func (s *Store) Raft() *raft.Raft { return s.raft }

// Servers returns the metadata group's Raft configuration as this node
// knows it.
func (s *Store) Servers() ([]raft.Server, error) { return s.group.Servers() }

// LeaderID returns the node id of the group's current leader, or "" while
// there is none.
func (s *Store) LeaderID() string {
	_, id := s.raft.LeaderWithID()
	return string(id)
}

// applyTimeout is the time a write may take: the configured timeout, or less
// when ctx has an earlier deadline.
func (s *Store) applyTimeout(ctx context.Context) time.Duration {
	timeout := s.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	return timeout
}

// mapRaftError turns raft's errors into this package's sentinels, keeping
// raft's error in the chain.
func mapRaftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("metadata: raft: %w", err)
}

// newClusterID returns 16 random bytes in URL-safe base64 without padding,
// the form of Kafka's cluster ids.
func newClusterID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newTopicID returns a random version-4 UUID that is not in use in im.
func newTopicID(im *Image) TopicID {
	for {
		var id TopicID
		rand.Read(id[:])
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		if _, used := im.TopicsByID[id]; !used {
			return id
		}
	}
}

// cloneGroups returns groups, or {0} when empty.
func cloneGroups(groups []uint32) []uint32 {
	if len(groups) == 0 {
		return []uint32{0}
	}
	return slices.Clone(groups)
}
