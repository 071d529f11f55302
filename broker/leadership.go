package broker

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/wal"
)

// Leadership of the local WAL groups, followed by one watcher goroutine
// per group:
//
//   - readiness: a replica that becomes leader serves its partitions only
//     once it has applied every entry committed before its term (a Raft
//     barrier), so that its high watermarks, producer states and tail cache
//     are complete; until then its partitions answer LEADER_NOT_AVAILABLE.
//   - in-sync replicas: on the leader, a voter whose heartbeats fail (Raft's
//     failed/resumed heartbeat observations) is out of the ISR until it
//     answers again.
//   - balance: the leader of group i hands it to the group's preferred
//     leader (members[i]) once it has led it for Config.LeaderBalanceDelay
//     and the preferred broker answers heartbeats, so that each broker
//     leads about one group after failures heal.
//   - graceful shutdown: transferLeadership moves every group this broker
//     leads to another voter before the broker closes.

const (
	// watchInterval is how often a watcher looks at its group besides
	// reacting to Raft's observations.
	watchInterval = 100 * time.Millisecond
	// defaultLeaderBalanceDelay is Config.LeaderBalanceDelay's default.
	defaultLeaderBalanceDelay = 10 * time.Second
	// transferTimeout bounds the leadership hand-over of a closing broker.
	transferTimeout = 3 * time.Second
)

// walState is one local WAL group and its leadership state.
type walState struct {
	id int
	g  *wal.Group

	cancel context.CancelFunc // stops the watcher and the uploader
	tasks  sync.WaitGroup     // the watcher and the uploader

	// readyTerm is the term in which this replica, as leader, has applied
	// every earlier entry (0: never).
	readyTerm atomic.Uint64
	// readySince is when readyTerm was set (Unix nanoseconds).
	readySince atomic.Int64

	obsCh chan raft.Observation
	obs   *raft.Observer

	mu struct {
		sync.Mutex
		failed map[raft.ServerID]bool // voters whose heartbeats fail (leader only)
		term   uint64                 // the term failed belongs to
	}
	// The watcher's own state.
	lastBalance   time.Time // last hand-over attempt
	lastReconcile time.Time // last membership check
	lastReport    time.Time // last leader report
}

// newWALState prepares the state of group id; single-voter groups are
// ready at once when this node leads (wal.Open applied the whole log).
func newWALState(id int, g *wal.Group, voters int) *walState {
	ws := &walState{id: id, g: g}
	ws.mu.failed = map[raft.ServerID]bool{}
	if voters <= 1 && g.IsLeader() {
		ws.setReady(uint64(g.LeaderEpoch()))
	}
	return ws
}

func (ws *walState) setReady(term uint64) {
	ws.readySince.Store(time.Now().UnixNano())
	ws.readyTerm.Store(term)
}

// ready reports whether this replica leads the group and has applied
// every entry of earlier terms.
func (ws *walState) ready() bool {
	return ws.g.IsLeader() && ws.readyTerm.Load() == ws.g.Raft().CurrentTerm()
}

// voters lists the group's voting members by node id, in configuration order.
func (ws *walState) voters() []int32 {
	f := ws.g.Raft().GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var ids []int32
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			ids = append(ids, nodeID(string(s.ID)))
		}
	}
	return ids
}

// inSync lists the voters the leader hears from (on a non-leader: every
// voter, as it cannot tell).
func (ws *walState) inSync(voters []int32) []int32 {
	if !ws.g.IsLeader() {
		return slices.Clone(voters)
	}
	term := ws.g.Raft().CurrentTerm()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.mu.term != term {
		return slices.Clone(voters)
	}
	out := make([]int32, 0, len(voters))
	for _, id := range voters {
		if !ws.mu.failed[raft.ServerID(strconv.Itoa(int(id)))] {
			out = append(out, id)
		}
	}
	return out
}

// observe records a heartbeat observation of the current term.
func (ws *walState) observe(o raft.Observation) {
	term := ws.g.Raft().CurrentTerm()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.mu.term != term {
		ws.mu.term = term
		clear(ws.mu.failed)
	}
	switch d := o.Data.(type) {
	case raft.FailedHeartbeatObservation:
		ws.mu.failed[d.PeerID] = true
	case raft.ResumedHeartbeatObservation:
		delete(ws.mu.failed, d.PeerID)
	}
}

// peerFailing reports whether the leader's heartbeats to id fail.
func (ws *walState) peerFailing(id string) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.mu.term == ws.g.Raft().CurrentTerm() && ws.mu.failed[raft.ServerID(id)]
}

// watch follows one group's leadership until ctx ends.
func (b *Broker) watch(ctx context.Context, ws *walState) {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		b.checkReady(ctx, ws)
		b.reportLeader(ctx, ws)
		b.reconcileGroup(ws)
		b.balance(ws)
		select {
		case o := <-ws.obsCh:
			ws.observe(o)
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// checkReady makes a new leader ready: a barrier commits after every
// earlier entry, and returns once the FSM applied them.
func (b *Broker) checkReady(ctx context.Context, ws *walState) {
	r := ws.g.Raft()
	term := r.CurrentTerm()
	if r.State() != raft.Leader || ws.readyTerm.Load() == term || ctx.Err() != nil {
		return
	}
	start := time.Now()
	if err := r.Barrier(5 * time.Second).Error(); err != nil {
		b.logger.Info("wal group leader not ready", "group", ws.id, "term", term, "err", err)
		return
	}
	if r.State() == raft.Leader && r.CurrentTerm() == term {
		ws.setReady(term)
		b.logger.Info("wal group leader ready", "group", ws.id, "term", term, "took", time.Since(start))
	}
}

// balance hands the group to its preferred leader when this broker has led
// it long enough and the preferred broker answers heartbeats.
func (b *Broker) balance(ws *walState) {
	delay := b.cfg.LeaderBalanceDelay
	if delay == 0 {
		delay = defaultLeaderBalanceDelay
	}
	p := b.preferredLeader(ws.id)
	if delay < 0 || p.ID == "" || p.ID == ws.g.Leader() || !ws.ready() || b.closing.Load() ||
		time.Since(time.Unix(0, ws.readySince.Load())) < delay || time.Since(ws.lastBalance) < delay ||
		ws.peerFailing(p.ID) {
		return
	}
	ws.lastBalance = time.Now()
	err := ws.g.Raft().LeadershipTransferToServer(raft.ServerID(p.ID), raft.ServerAddress(p.Address)).Error()
	b.logger.Info("wal group handed to its preferred leader", "group", ws.id, "to", p.ID, "err", err)
}

// transferLeadership hands every Raft group this broker leads (the WAL
// groups and the metadata group) to another voter and waits, up to
// timeout, until each has another leader. Groups without another voter
// stay.
func (b *Broker) transferLeadership(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var wg sync.WaitGroup
	for _, ws := range b.localWALs() {
		if !ws.g.IsLeader() || len(ws.voters()) < 2 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			for time.Now().Before(deadline) {
				if ws.g.IsLeader() {
					if err := ws.g.Raft().LeadershipTransfer().Error(); err != nil {
						time.Sleep(20 * time.Millisecond)
					}
					continue
				}
				if l := ws.g.Leader(); l != "" && l != b.selfID() {
					break // the new leader has been heard from
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.logger.Info("wal group leadership handed over", "group", ws.id, "to", ws.g.Leader(),
				"took", time.Since(start), "still_leader", ws.g.IsLeader())
		}()
	}
	if b.meta.IsLeader() && len(b.meta.Image().Members) > 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			if err := b.meta.TransferLeadership(ctx); err != nil {
				b.logger.Info("metadata leadership not handed over", "err", err)
			}
		}()
	}
	wg.Wait()
}

// leaveGroups is the first step of a graceful Close in a cluster: hand
// every group over, then stop the layout follower, the watchers, the
// uploaders and the storage tasks and close the WAL groups, so that this broker cannot be given a
// WAL group back (by an election or another broker's balancing) while its
// connections drain. Requests still running get NOT_LEADER_OR_FOLLOWER
// (or LEADER_NOT_AVAILABLE) and retry on the new leaders. The metadata
// group stays open until the end: draining requests may still write
// through it.
func (b *Broker) leaveGroups() {
	b.transferLeadership(transferTimeout)
	b.stopFollower()
	b.stopReassigner()
	b.stopBackground()
	b.closeLocalGroups()
}

// closeLocalGroups closes every local WAL group, keeping its data.
func (b *Broker) closeLocalGroups() error {
	var errs []error
	for _, ws := range b.localWALs() {
		if err := b.closeGroup(ws, false); err != nil {
			b.logger.Warn("wal group close failed", "group", ws.id, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// walReady reports whether WAL group id is led by this broker and ready.
func (b *Broker) walReady(id uint32) bool {
	ws := b.localGroup(id)
	return ws != nil && ws.ready()
}
