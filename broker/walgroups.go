package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/wal"
)

// The local WAL groups follow the layout in the metadata. One goroutine
// per broker (followLayout) opens the groups the layout assigns this
// broker, bootstrapping those it is an initial replica of and joining the
// others, and closes (and deletes) the groups it is no longer assigned; on
// the metadata leader it also brings the metadata group's voters in line
// with the members. Each open group has its own watcher and uploader
// (startGroupTasks); the watcher of a group's leader adds and removes the
// group's Raft voters to match the layout and reports the leader to the
// metadata, for the brokers that do not replicate the group.

const (
	// layoutInterval is how often followLayout looks at the layout besides
	// reacting to metadata changes.
	layoutInterval = 500 * time.Millisecond
	// groupOpenTimeout bounds the opening of one group by followLayout (a
	// joining replica waits there until the group's leader adds it).
	groupOpenTimeout = 30 * time.Second
	// membershipTimeout bounds one Raft configuration change.
	membershipTimeout = 5 * time.Second
	// leaderReportInterval spaces a group leader's failed reports.
	leaderReportInterval = time.Second
)

// localGroups is the broker's open WAL groups by id. The map is replaced,
// never changed, so request paths read it without a lock.
type localGroups struct {
	mu sync.Mutex // serialises replacements
	m  atomic.Pointer[map[uint32]*walState]
}

// load returns the current map (nil before the first group opens).
func (l *localGroups) load() map[uint32]*walState {
	if p := l.m.Load(); p != nil {
		return *p
	}
	return nil
}

// update replaces the map with a copy that f changed.
func (l *localGroups) update(f func(m map[uint32]*walState)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := maps.Clone(l.load())
	if m == nil {
		m = map[uint32]*walState{}
	}
	f(m)
	l.m.Store(&m)
}

// localGroup returns the local replica of WAL group id, or nil.
func (b *Broker) localGroup(id uint32) *walState { return b.local.load()[id] }

// localWALs returns the local WAL groups in id order.
func (b *Broker) localWALs() []*walState {
	m := b.local.load()
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b *walState) int { return cmp.Compare(a.id, b.id) })
	return out
}

// selfID is this broker's node id as Raft names it.
func (b *Broker) selfID() string { return strconv.Itoa(int(b.cfg.NodeID)) }

// initLayout proposes the first layout of a new cluster (a joining broker
// proposes none) and waits until the image has one.
func (b *Broker) initLayout(ctx context.Context) error {
	if !b.cfg.Join {
		l := newBootstrapLayout(b.cfg.NodeID, b.mux.Addr().String(), b.cfg.Peers)
		if err := b.meta.InitLayout(ctx, l.members, l.groups); err != nil {
			return fmt.Errorf("init cluster layout: %w", err)
		}
	}
	for {
		ch := b.meta.Changed()
		im := b.meta.Image()
		if _, ok := im.Members[b.cfg.NodeID]; ok {
			return nil
		}
		if slices.Contains(im.RemovedMembers, b.cfg.NodeID) {
			return fmt.Errorf("broker %d was removed from the cluster: start it with a new --node-id and --join", b.cfg.NodeID)
		}
		select {
		case <-ch:
		case <-time.After(layoutInterval):
		case <-ctx.Done():
			return fmt.Errorf("waiting to be a member of the cluster: %w", ctx.Err())
		}
	}
}

// peersOf resolves broker ids to Raft peers by their member addresses.
func peersOf(im *metadata.Image, ids []int32) []raftgroup.Peer {
	out := make([]raftgroup.Peer, 0, len(ids))
	for _, id := range ids {
		if m, ok := im.Members[id]; ok {
			out = append(out, raftgroup.Peer{ID: strconv.Itoa(int(id)), Address: m.ClusterAddr})
		}
	}
	return out
}

// openGroup opens this broker's replica of WAL group mg and starts its
// watcher and uploader.
func (b *Broker) openGroup(ctx context.Context, im *metadata.Image, mg metadata.WALGroup) error {
	name := groupName(int(mg.ID))
	join := !mg.Bootstraps(b.cfg.NodeID)
	var peers []raftgroup.Peer
	if !join && len(mg.Initial) > 1 {
		peers = peersOf(im, mg.Initial)
	}
	wcfg := wal.DefaultConfig()
	wcfg.Raft = raftgroup.Config{Name: name, Dir: filepath.Join(b.cfg.DataDir, name), NodeID: b.selfID(),
		Mux: b.mux, Peers: peers, Logger: b.cfg.Logger, Join: join, NoSync: !b.cfg.WALFsync}
	if b.cfg.TailCacheBytes > 0 { // the bound is the broker's, shared by its groups
		assigned := 0
		for _, g := range im.WALGroups {
			if g.HasReplica(b.cfg.NodeID) {
				assigned++
			}
		}
		wcfg.TailCacheBytes = max(b.cfg.TailCacheBytes/int64(max(assigned, 1)), 1)
	}
	wcfg.MaxPendingBytes = b.cfg.WALMaxPendingBytes
	if join {
		b.logger.Info("joining wal group; waiting for its leader to add this broker", "group", mg.ID)
	}
	g, err := wal.Open(ctx, wcfg)
	if err != nil {
		if len(im.WALGroups) == 1 {
			return fmt.Errorf("open wal: %w", err)
		}
		return fmt.Errorf("open wal group %d: %w", mg.ID, err)
	}
	ws := newWALState(int(mg.ID), g, max(len(mg.Initial), 1))
	b.startGroupTasks(ws)
	b.local.update(func(m map[uint32]*walState) { m[mg.ID] = ws })
	b.logger.Info("wal group open", "group", mg.ID, "joined", join)
	return nil
}

// closeGroup stops group ws's tasks and closes it; remove also deletes its
// directory (the broker is no longer a replica: its data lives on in the
// other replicas and in object storage).
func (b *Broker) closeGroup(ws *walState, remove bool) error {
	b.local.update(func(m map[uint32]*walState) { delete(m, uint32(ws.id)) })
	ws.stopTasks()
	err := ws.g.Close()
	if remove {
		err = errors.Join(err, os.RemoveAll(filepath.Join(b.cfg.DataDir, groupName(ws.id))))
		b.logger.Info("left wal group", "group", ws.id, "err", err)
	}
	return err
}

// applyLayout opens the groups the layout assigns this broker and closes
// those it no longer does (once another replica leads them).
func (b *Broker) applyLayout(ctx context.Context) error {
	im := b.meta.Image()
	var errs []error
	for _, mg := range im.WALGroups {
		if !mg.HasReplica(b.cfg.NodeID) || b.localGroup(mg.ID) != nil || ctx.Err() != nil {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, groupOpenTimeout)
		err := b.openGroup(octx, im, mg)
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, ws := range b.localWALs() {
		mg, ok := im.WALGroup(uint32(ws.id))
		if ok && mg.HasReplica(b.cfg.NodeID) || ws.g.IsLeader() {
			continue // a leader that is not assigned hands over first (reconcileGroup)
		}
		if err := b.closeGroup(ws, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// startFollower starts followLayout, owned by the broker and stopped by
// stopFollower.
func (b *Broker) startFollower() {
	ctx, cancel := context.WithCancel(context.Background())
	b.followCancel = cancel
	b.follower.Add(1)
	go func() {
		defer b.follower.Done()
		b.followLayout(ctx)
	}()
}

// stopFollower stops followLayout and waits for it.
func (b *Broker) stopFollower() {
	if b.followCancel != nil {
		b.followCancel()
	}
	b.follower.Wait()
}

// followLayout keeps the local groups in line with the layout, and on the
// metadata leader the metadata group's voters in line with the members.
func (b *Broker) followLayout(ctx context.Context) {
	tick := time.NewTicker(layoutInterval)
	defer tick.Stop()
	removed := false
	for {
		ch := b.meta.Changed()
		im := b.meta.Image()
		if _, member := im.Members[b.cfg.NodeID]; !member && !removed {
			removed = true
			b.ready.Store(false)
			b.logger.Error("this broker was removed from the cluster; it leaves its wal groups and serves nothing (stop it)")
		}
		if err := b.applyLayout(ctx); err != nil && ctx.Err() == nil {
			b.logger.Warn("wal groups not in line with the cluster layout yet", "err", err)
		}
		if change, err := b.meta.ReconcileVoters(membershipTimeout); err != nil {
			b.logger.Warn("metadata group membership change failed", "err", err)
		} else if change != "" {
			b.logger.Info("metadata group membership changed", "change", change)
			continue // there may be more to do
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// startGroupTasks starts group ws's watcher (leadership.go) and uploader;
// stopTasks stops them.
func (b *Broker) startGroupTasks(ws *walState) {
	ctx, cancel := context.WithCancel(context.Background())
	ws.cancel = cancel
	ws.obsCh = make(chan raft.Observation, 64)
	ws.obs = raft.NewObserver(ws.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	ws.g.Raft().RegisterObserver(ws.obs)
	u := s3stream.NewUploader(b.objects, ws.g, b.meta, s3stream.UploaderConfig{
		Group:       uint32(ws.id),
		UploadBytes: b.cfg.UploadBytes,
		UploadAge:   b.cfg.UploadAge,
		Logger:      b.logger,
		AfterPut:    testHook("after-put"),
		AfterCommit: testHook("after-commit"),
	})
	ws.tasks.Add(2)
	go func() {
		defer ws.tasks.Done()
		defer ws.g.Raft().DeregisterObserver(ws.obs)
		b.watch(ctx, ws)
	}()
	go func() {
		defer ws.tasks.Done()
		u.Run(ctx)
	}()
}

// stopTasks stops the group's watcher and uploader and waits for them.
func (ws *walState) stopTasks() {
	if ws.cancel != nil {
		ws.cancel()
	}
	ws.tasks.Wait()
}

// reconcileGroup, on the ready leader of ws, makes one change of the
// group's Raft voters toward the layout's replicas.
func (b *Broker) reconcileGroup(ws *walState) {
	if !ws.ready() || b.closing.Load() || time.Since(ws.lastReconcile) < watchInterval {
		return
	}
	ws.lastReconcile = time.Now()
	im := b.meta.Image()
	mg, ok := im.WALGroup(uint32(ws.id))
	if !ok || len(im.Members) == 0 {
		return
	}
	desired := peersOf(im, mg.Replicas)
	if len(desired) == 0 {
		return
	}
	if len(desired) > 1 && len(ws.voters()) <= 1 {
		if err := ws.g.PrepareReplication(); err != nil {
			b.logger.Warn("wal group not ready for more replicas", "group", ws.id, "err", err)
			return
		}
	}
	change, err := raftgroup.Reconcile(ws.g.Raft(), b.selfID(), desired, membershipTimeout)
	switch {
	case err != nil:
		b.logger.Warn("wal group membership change failed", "group", ws.id, "err", err)
	case change != "":
		b.logger.Info("wal group membership changed", "group", ws.id, "change", change)
		ws.lastReconcile = time.Time{}
	}
}

// reportLeader, on the ready leader of ws, records it in the metadata when
// the layout names another leader or an older term.
func (b *Broker) reportLeader(ctx context.Context, ws *walState) {
	if !ws.ready() || b.closing.Load() || time.Since(ws.lastReport) < leaderReportInterval {
		return
	}
	mg, ok := b.meta.Image().WALGroup(uint32(ws.id))
	epoch := ws.g.LeaderEpoch()
	if !ok || (mg.Leader == b.cfg.NodeID && mg.LeaderEpoch == epoch) {
		return
	}
	ws.lastReport = time.Now()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.meta.SetWALLeader(rctx, uint32(ws.id), b.cfg.NodeID, epoch); err != nil && ctx.Err() == nil {
		b.logger.Info("wal group leader not recorded yet", "group", ws.id, "err", err)
	}
}

// preferredLeader is the preferred leader of WAL group id (zero when the
// layout does not name one).
func (b *Broker) preferredLeader(id int) raftgroup.Peer {
	im := b.meta.Image()
	mg, ok := im.WALGroup(uint32(id))
	if !ok || len(mg.Replicas) == 0 {
		return raftgroup.Peer{}
	}
	if p := peersOf(im, mg.Replicas[:1]); len(p) == 1 {
		return p[0]
	}
	return raftgroup.Peer{}
}
