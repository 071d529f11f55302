package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/protocol/prototest"
)

// replica is one member of an in-process WAL group.
type replica struct {
	id     string
	dir    string
	mux    *raftgroup.Mux
	noSync bool // raftgroup.Config.NoSync
	g      *Group
}

// openReplicas starts a 3-replica WAL group in-process and returns its members.
func openReplicas(t testing.TB) []*replica { return openReplicasSync(t, true) }

// openReplicasSync is openReplicas with the log store's fsync on or off.
func openReplicasSync(t testing.TB, fsync bool) []*replica {
	t.Helper()
	var rs []*replica
	var peers []raftgroup.Peer
	for i := 1; i <= 3; i++ {
		m, err := raftgroup.Listen("127.0.0.1:0", quiet)
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{id: fmt.Sprint(i), dir: t.TempDir(), mux: m, noSync: !fsync}
		rs = append(rs, r)
		peers = append(peers, raftgroup.Peer{ID: r.id, Address: m.Addr().String()})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(rs))
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.g, errs[i] = r.open(peers)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range rs {
			if r.g != nil {
				r.g.Close()
			}
			r.mux.Close()
		}
	})
	return rs
}

func (r *replica) open(peers []raftgroup.Peer) (*Group, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return Open(ctx, Config{Raft: raftgroup.Config{Name: "wal-0", Dir: r.dir, NodeID: r.id, Mux: r.mux, Peers: peers, Logger: quiet, NoSync: r.noSync}})
}

func leaderOf(t testing.TB, rs []*replica) *replica {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range rs {
			if r.g != nil && r.g.IsLeader() {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

// TestLaggingReplicaGetsPendingDataFromSnapshot: a replica that was away
// while the leader trimmed and compacted its log catches up from a
// snapshot; the data not yet uploaded comes with the snapshot, so the
// replica can serve and upload it after becoming leader.
func TestLaggingReplicaGetsPendingDataFromSnapshot(t *testing.T) {
	rs := openReplicas(t)
	leader := leaderOf(t, rs)
	var away *replica
	for _, r := range rs {
		if r != leader {
			away = r
			break
		}
	}
	peers := []raftgroup.Peer{}
	for _, r := range rs {
		peers = append(peers, raftgroup.Peer{ID: r.id, Address: r.mux.Addr().String()})
	}
	if err := away.g.Close(); err != nil {
		t.Fatal(err)
	}
	away.g = nil

	ctx := t.Context()
	put := func(prefix string, n int) {
		for i := 0; i < n; i++ {
			if _, err := leader.g.Append(ctx, 1, [][]byte{prototest.Batch(values(fmt.Sprint(prefix, i), 2))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("uploaded", 5)
	if err := leader.g.Trim(ctx, leader.g.Pending(1<<30)); err != nil { // offsets 0-9 "uploaded"; log compacted
		t.Fatal(err)
	}
	put("pending", 5) // offsets 10-19 stay in the WAL
	if err := leader.g.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := leader.g.compactLog(); err != nil {
		t.Fatal(err)
	}

	g, err := away.open(peers)
	if err != nil {
		t.Fatal(err)
	}
	away.g = g
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, hwm := away.g.Offsets(1); hwm == 20 {
			break
		}
		if time.Now().After(deadline) {
			_, hwm := away.g.Offsets(1)
			t.Fatalf("returning replica at hwm %d, want 20", hwm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Make the returning replica the leader and read the pending data there.
	if err := leader.g.Raft().LeadershipTransferToServer(raft.ServerID(away.id), raft.ServerAddress(away.mux.Addr().String())).Error(); err != nil {
		t.Fatal(err)
	}
	if got := leaderOf(t, rs); got != away {
		t.Fatalf("leader is %s, want %s", got.id, away.id)
	}
	got := readFrom(t, away.g, 1, 10)
	if len(got) != 10 || string(got[0]) != "pending0-v0" || string(got[9]) != "pending4-v1" {
		t.Fatalf("pending data on the new leader: %q", got)
	}
	var pending []byte
	for _, r := range away.g.Pending(1 << 30) {
		if err := away.g.ReadPending(r, func(b []byte) error { pending = append(pending, b...); return nil }); err != nil {
			t.Fatalf("the new leader cannot read its pending data for upload: %v", err)
		}
	}
	if len(pending) == 0 {
		t.Fatal("no pending data on the new leader")
	}
}

// TestFollowersCompactTheirLogAfterTrim: a trim applied on a follower
// makes it snapshot and drop its uploaded log entries too.
func TestFollowersCompactTheirLogAfterTrim(t *testing.T) {
	rs := openReplicas(t)
	leader := leaderOf(t, rs)
	for i := 0; i < 20; i++ {
		if _, err := leader.g.Append(t.Context(), 1, [][]byte{prototest.Batch(values(fmt.Sprint(i), 2))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.g.Trim(t.Context(), leader.g.Pending(1<<30)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range rs {
		for {
			first, _ := r.g.rg.Logs.FirstIndex()
			if first == 0 || first > 20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s still keeps its log from index %d", r.id, first)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if p := r.g.PendingBytes(); p != 0 {
			t.Fatalf("replica %s: %d pending bytes after the trim", r.id, p)
		}
	}
}
