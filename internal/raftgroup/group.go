package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Peer is one initial member of a group.
type Peer struct {
	ID      string // node id, e.g. "1"
	Address string // cluster listener address, host:port
	// NonVoter makes the member follow the group's log without voting or
	// leading (raft.Nonvoter). A group needs at least one voter.
	NonVoter bool
}

// Config describes one Raft group on this broker.
type Config struct {
	Name   string       // group name, unique on the cluster listener ("metadata", "wal-0")
	Dir    string       // directory for the log store and snapshots
	NodeID string       // this broker's node id
	Mux    *Mux         // the broker's cluster listener
	Peers  []Peer       // initial members (voters unless NonVoter); empty means this node alone
	Logger *slog.Logger // nil means slog.Default()

	// NoSync skips the fsync after each log write: an entry is durable once
	// it is in the page cache of a quorum, as Kafka's replicas are (a
	// process crash loses nothing; a power loss of a quorum at once may).
	NoSync bool

	// Join opens a group this node is new to without bootstrapping it: the
	// node waits until the group's leader adds it (Reconcile) and then
	// receives the group's snapshot and log. Peers are ignored.
	Join bool

	// KeepAllLogs disables log compaction after snapshots. The WAL keeps its
	// entries until they are uploaded, because reads are served from them.
	KeepAllLogs bool
	// SnapshotThreshold is the number of entries between snapshots (0: raft's default).
	SnapshotThreshold uint64
	// SnapshotRetain is how many snapshots stay on disk (0: 2). The WAL
	// keeps one: its snapshots hold the data not yet uploaded.
	SnapshotRetain int
}

// Group is an open Raft group with its stores.
type Group struct {
	Raft *raft.Raft
	// Logs is the group's log store, readable for entries the FSM indexed.
	Logs raft.LogStore

	bolt      *raftboltdb.BoltStore
	transport raft.Transport
}

// logCacheEntries is how many of the newest log entries each group keeps
// in memory besides its log store (raft.LogCache). Replication reads them
// right after they are stored. At the WAL's 256 KiB entries that is up to
// 16 MiB per group, mostly the same bytes the WAL's tail cache references.
const logCacheEntries = 64

// DefaultRaftConfig returns raft settings tuned for brokers on one LAN.
func DefaultRaftConfig(nodeID string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(nodeID)
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.MaxAppendEntries = 256
	c.BatchApplyCh = true
	return c
}

// Open opens (and on first start bootstraps) a Raft group driving fsm.
func Open(cfg Config, fsm raft.FSM) (*Group, error) {
	if cfg.Mux == nil {
		return nil, errors.New("raftgroup: config has no Mux")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftgroup %s: create dir: %w", cfg.Name, err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:   filepath.Join(cfg.Dir, "raft.db"),
		NoSync: cfg.NoSync,
		// Fail fast when another process holds the file, instead of hanging.
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true},
	})
	if err != nil {
		return nil, fmt.Errorf("raftgroup %s: open log store %s: %w", cfg.Name, cfg.Dir, err)
	}
	// The leader reads every entry back to send it to its followers, right
	// after storing it: a small cache of the newest entries saves a bolt
	// read and a msgpack decode per entry and follower.
	logs, err := raft.NewLogCache(logCacheEntries, bolt)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raftgroup %s: log cache: %w", cfg.Name, err)
	}
	retain := cfg.SnapshotRetain
	if retain <= 0 {
		retain = 2
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, retain, newHCLogger("raft-snap-"+cfg.Name, logger))
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raftgroup %s: open snapshot store: %w", cfg.Name, err)
	}
	transport, err := cfg.Mux.Transport(cfg.Name, logger)
	if err != nil {
		bolt.Close()
		return nil, err
	}
	rc := DefaultRaftConfig(cfg.NodeID)
	rc.Logger = newHCLogger("raft-"+cfg.Name, logger)
	if cfg.KeepAllLogs {
		rc.TrailingLogs = math.MaxUint64
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	g := &Group{Logs: logs, bolt: bolt, transport: transport}
	existing, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		g.closeStores()
		return nil, fmt.Errorf("raftgroup %s: inspect state: %w", cfg.Name, err)
	}
	r, err := raft.NewRaft(rc, fsm, logs, bolt, snaps, transport)
	if err != nil {
		g.closeStores()
		return nil, fmt.Errorf("raftgroup %s: start raft: %w", cfg.Name, err)
	}
	g.Raft = r
	// Raft bootstraps only on voters; a non-voter learns the configuration
	// from the leader's first entries.
	if !existing && !cfg.Join && !localNonVoter(cfg) {
		if err := r.BootstrapCluster(bootstrapConfig(cfg, transport)).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			g.Close()
			return nil, fmt.Errorf("raftgroup %s: bootstrap: %w", cfg.Name, err)
		}
	}
	return g, nil
}

// localNonVoter reports whether cfg lists this node as a non-voter.
func localNonVoter(cfg Config) bool {
	for _, p := range cfg.Peers {
		if p.ID == cfg.NodeID {
			return p.NonVoter
		}
	}
	return false
}

func bootstrapConfig(cfg Config, t raft.Transport) raft.Configuration {
	if len(cfg.Peers) == 0 {
		return raft.Configuration{Servers: []raft.Server{{
			ID: raft.ServerID(cfg.NodeID), Address: t.LocalAddr(), Suffrage: raft.Voter,
		}}}
	}
	var c raft.Configuration
	for _, p := range cfg.Peers {
		suffrage := raft.Voter
		if p.NonVoter {
			suffrage = raft.Nonvoter
		}
		c.Servers = append(c.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address), Suffrage: suffrage})
	}
	return c
}

// WaitLeader blocks until the group has a leader or ctx ends.
func (g *Group) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := g.Raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftgroup: waiting for a leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// IsLeader reports whether this node leads the group.
func (g *Group) IsLeader() bool { return g.Raft.State() == raft.Leader }

// shutdownGrace is how long Close waits for Raft's goroutines before it
// closes the transport's connections under them, and again after.
const shutdownGrace = 5 * time.Second

// Close shuts Raft down and closes the stores. Raft's shutdown waits for
// its goroutines; one blocked on a peer's connection holds it, so after
// shutdownGrace the transport's connections are closed to free it, and
// after another one Close gives up on it with an error rather than hang.
func (g *Group) Close() error {
	var err error
	if g.Raft != nil {
		done := make(chan error, 1)
		f := g.Raft.Shutdown()
		go func() { done <- f.Error() }()
		select {
		case err = <-done:
		case <-time.After(shutdownGrace):
			if nt, ok := g.transport.(*raft.NetworkTransport); ok {
				nt.CloseStreams()
			}
			select {
			case err = <-done:
			case <-time.After(shutdownGrace):
				err = fmt.Errorf("raftgroup: raft shutdown still waiting after %v", 2*shutdownGrace)
			}
		}
	}
	return errors.Join(err, g.closeStores())
}

func (g *Group) closeStores() error {
	var errs []error
	if nt, ok := g.transport.(*raft.NetworkTransport); ok {
		nt.CloseStreams() // pooled connections: the peers' handlers would wait on them forever
	}
	if c, ok := g.transport.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	errs = append(errs, g.bolt.Close())
	return errors.Join(errs...)
}

// newHCLogger adapts raft's hclog output to slog: warnings and errors only,
// since raft is chatty at info level.
func newHCLogger(name string, logger *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:        name,
		Level:       hclog.Warn,
		DisableTime: true,
		Output:      slogWriter{logger: logger, name: name},
	})
}

// slogWriter turns hclog's formatted lines ("[WARN]  name: message: k=v")
// into slog records.
type slogWriter struct {
	logger *slog.Logger
	name   string
}

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	switch {
	case strings.HasPrefix(line, "[ERROR]"):
		level = slog.LevelError
	case strings.Contains(line, "starting election"):
		// Every start of a group elects; that is not worth a warning.
		level = slog.LevelInfo
	}
	if i := strings.Index(line, "]"); i >= 0 {
		line = strings.TrimSpace(line[i+1:])
	}
	line = strings.TrimPrefix(line, w.name+": ")
	w.logger.Log(context.Background(), level, line, "component", w.name)
	return len(p), nil
}
