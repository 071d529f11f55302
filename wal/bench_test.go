package wal

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

// nopFSM applies nothing: BenchmarkRaftCeiling measures Raft and raft-boltdb alone.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) interface{}         { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                          {}

// BenchmarkRaftCeiling is the append ceiling of this machine: one-voter Raft
// on raft-boltdb, entries of the given size with a given number in flight,
// no FSM work.
func BenchmarkRaftCeiling(b *testing.B) {
	for _, c := range []struct{ size, inflight int }{
		{64 << 10, 16}, {256 << 10, 4}, {256 << 10, 16}, {1 << 20, 16},
	} {
		size := c.size
		b.Run(fmt.Sprintf("entry=%dKiB/inflight=%d", size>>10, c.inflight), func(b *testing.B) {
			mux, err := raftgroup.Listen("127.0.0.1:0", quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer mux.Close()
			rg, err := raftgroup.Open(raftgroup.Config{Name: "bench", Dir: b.TempDir(), NodeID: "1", Mux: mux, Logger: quiet, KeepAllLogs: true}, nopFSM{})
			if err != nil {
				b.Fatal(err)
			}
			defer rg.Close()
			if err := rg.WaitLeader(context.Background()); err != nil {
				b.Fatal(err)
			}
			data := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			futures := make(chan raft.ApplyFuture, c.inflight)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range futures {
					if err := f.Error(); err != nil {
						b.Error(err)
					}
				}
			}()
			for i := 0; i < b.N; i++ {
				futures <- rg.Raft.Apply(data, 0)
			}
			close(futures)
			wg.Wait()
		})
	}
}

// BenchmarkGroupAppend drives the WAL as the broker does: many concurrent
// submitters of 16 KiB batches (16 records of 1 KiB), group-committed.
// Compare it with BenchmarkRaftCeiling/entry=256KiB in the same run.
func BenchmarkGroupAppend(b *testing.B) {
	g := openGroup(b, b.TempDir(), 256<<20)
	recs := make([]protocol.Record, 16)
	for i := range recs {
		recs[i] = protocol.Record{Value: make([]byte, 1024)}
	}
	batch := prototest.Batch(recs)
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	var wg sync.WaitGroup
	const submitters = 128 // 2 MiB outstanding, like the ceiling's 8 x 256 KiB
	per := (b.N + submitters - 1) / submitters
	for s := 0; s < submitters; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := g.Append(context.Background(), uint64(s%8), [][]byte{batch}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkReplicatedCommit is the fixed cost of one replicated entry: a
// 3-replica group in this process, one 16 KiB batch appended at a time, so
// every entry is a log store commit on the leader and on each follower.
// ns/op is the commit latency without load; cpu-us/entry is the CPU time of
// all three replicas per entry (what a broker pays per commit, times the
// replication factor), with the log store's fsync on and off.
func BenchmarkReplicatedCommit(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			rs := openReplicasSync(b, fsync)
			leader := leaderOf(b, rs)
			recs := make([]protocol.Record, 16)
			for i := range recs {
				recs[i] = protocol.Record{Value: make([]byte, 1024)}
			}
			batch := prototest.Batch(recs)
			b.SetBytes(int64(len(batch)))
			cpu0 := processCPU(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := leader.g.Append(context.Background(), 1, [][]byte{batch}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/entry")
		})
	}
}

// processCPU is the user plus system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
