package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/internal/raftgroup"
)

// Config configures a WAL group.
type Config struct {
	// Raft names the group, its directory, this node and its peers.
	Raft raftgroup.Config
	// TailCacheBytes bounds the batch bytes held in memory (default 256 MiB).
	TailCacheBytes int64
	// TargetEntryBytes is the size group commit aims for per Raft entry
	// (default 256 KiB: raft-boltdb's sweet spot on this kind of machine).
	TargetEntryBytes int
	// MaxInFlight bounds the entries handed to Raft and not yet committed (default 16).
	MaxInFlight int
	// QueueDepth bounds the submitted appends waiting for an entry (default 4096).
	QueueDepth int
	// ApplyTimeout bounds how long an entry may wait to be committed (default 10 s).
	ApplyTimeout time.Duration
	// MaxPendingBytes bounds the committed data not yet uploaded; beyond it
	// Submit fails with ErrWALFull until uploads catch up (0: unbounded).
	MaxPendingBytes int64
}

// DefaultConfig returns the defaults for the tuning fields; Raft must be filled in.
func DefaultConfig() Config {
	return Config{
		TailCacheBytes:   256 << 20,
		TargetEntryBytes: 256 << 10,
		MaxInFlight:      16,
		QueueDepth:       4096,
		ApplyTimeout:     10 * time.Second,
	}
}

func (c *Config) applyDefaults() {
	d := DefaultConfig()
	if c.TailCacheBytes <= 0 {
		c.TailCacheBytes = d.TailCacheBytes
	}
	if c.TargetEntryBytes <= 0 {
		c.TargetEntryBytes = d.TargetEntryBytes
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = d.QueueDepth
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = d.ApplyTimeout
	}
	if c.Raft.Logger == nil {
		c.Raft.Logger = slog.Default()
	}
}

// Group is one WAL Raft group: the appender that packs submissions into
// entries, the FSM that indexes them, and the reads.
type Group struct {
	cfg    Config
	logger *slog.Logger
	rg     *raftgroup.Group
	fsm    *fsm

	queue    chan *Append
	slots    chan struct{} // one token per uncommitted entry
	inflight chan inflightEntry
	closing  chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool

	stats groupStats // counters behind Stats (stats.go)

	compactMu sync.Mutex // serialises log compactions
	snapIndex uint64     // index of the last snapshot compactLog took (under compactMu)
}

// inflightEntry is an entry handed to Raft, in log order.
type inflightEntry struct {
	future  raft.ApplyFuture
	appends []*Append
}

// Open opens the group's Raft state, replays it, waits for a leader and, on
// the leader, for every earlier entry to be applied, then starts the appender.
func Open(ctx context.Context, cfg Config) (*Group, error) {
	cfg.applyDefaults()
	cfg.Raft.KeepAllLogs = true
	cfg.Raft.SnapshotRetain = 1 // snapshots hold the pending data: keep one
	g := &Group{
		cfg:      cfg,
		logger:   cfg.Raft.Logger.With("wal", cfg.Raft.Name),
		fsm:      newFSM(cfg.TailCacheBytes, cfg.Raft.Logger),
		queue:    make(chan *Append, cfg.QueueDepth),
		slots:    make(chan struct{}, cfg.MaxInFlight),
		inflight: make(chan inflightEntry, cfg.MaxInFlight),
		closing:  make(chan struct{}),
	}
	g.fsm.replicated.Store(len(cfg.Raft.Peers) > 1 || cfg.Raft.Join)
	rg, err := raftgroup.Open(cfg.Raft, g.fsm)
	if err != nil {
		return nil, fmt.Errorf("wal: open group %s: %w", cfg.Raft.Name, err)
	}
	g.rg = rg
	if servers, err := rg.Servers(); err == nil && len(servers) > 1 {
		g.fsm.replicated.Store(true) // replicas were added since the first start
	}
	g.fsm.setLogStore(rg.Logs)
	if err := rg.WaitLeader(ctx); err != nil {
		rg.Close()
		return nil, fmt.Errorf("wal: group %s: %w", cfg.Raft.Name, err)
	}
	if rg.IsLeader() {
		// A barrier commits after everything before it, so the FSM has
		// replayed the whole log before the first append or read.
		if err := rg.Raft.Barrier(cfg.ApplyTimeout).Error(); err != nil {
			rg.Close()
			return nil, fmt.Errorf("wal: group %s: replay barrier: %w", cfg.Raft.Name, err)
		}
	}
	g.wg.Add(3)
	go g.appendLoop()
	go g.commitLoop()
	go g.compactLoop()
	return g, nil
}

// PrepareReplication readies a group that has had a single voter to take
// more: from now on its snapshots carry the batches not yet uploaded, and a
// snapshot is taken at once, so that a replica added next receives the
// whole WAL tail (a one-voter group's snapshots leave it to the log, which
// may be compacted past it).
func (g *Group) PrepareReplication() error {
	if g.fsm.replicated.Swap(true) {
		return nil
	}
	// The barrier's entry makes the snapshot newer than the last one, which
	// was taken without the data.
	err := g.rg.Raft.Barrier(g.cfg.ApplyTimeout).Error()
	if err == nil {
		err = g.rg.Raft.Snapshot().Error()
	}
	if err != nil {
		g.fsm.replicated.Store(false)
		return fmt.Errorf("wal: group %s: snapshot before replication: %w", g.cfg.Raft.Name, err)
	}
	return nil
}

// Close stops the appender, fails what was not handed to Raft, waits for what
// was, and shuts Raft down.
func (g *Group) Close() error {
	g.closeMu.Lock()
	if g.closed {
		g.closeMu.Unlock()
		return nil
	}
	g.closed = true
	close(g.closing)
	g.closeMu.Unlock()
	g.wg.Wait()
	for {
		select {
		case a := <-g.queue:
			a.finish(result{}, ErrClosed)
		default:
			return g.rg.Close()
		}
	}
}

// IsLeader reports whether this replica leads the group (and so takes appends).
func (g *Group) IsLeader() bool { return g.rg.IsLeader() }

// Leader returns the leader's node id, or "" when there is none.
func (g *Group) Leader() string {
	_, id := g.rg.Raft.LeaderWithID()
	return string(id)
}

// LeaderEpoch is the Kafka leader epoch of every stream of the group: the
// current Raft term plus the epoch base that streams moved in raised
// (move.go).
func (g *Group) LeaderEpoch() int32 { return int32(g.rg.Raft.CurrentTerm()) + g.fsm.epochBase.Load() }

// Changed returns a channel closed when the next entry is applied.
func (g *Group) Changed() <-chan struct{} { return g.fsm.changed() }

// Raft exposes the group's Raft instance for status reporting.
func (g *Group) Raft() *raft.Raft { return g.rg.Raft }

func mapRaftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("wal: commit: %w", err)
}
