package wal

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// commitBounds are the upper bounds, in seconds, of the commit latency
// histogram's buckets. The package counts into fixed buckets so that it
// needs no metrics library; the broker exposes them as a Prometheus
// histogram.
var commitBounds = [...]float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Stats are a group's counters since it was opened on this node, and the
// tail cache's size now.
type Stats struct {
	// Commits counts the appends whose entry Raft committed (whatever the
	// FSM then decided about them: a sequence error is still a commit) and
	// CommittedBytes their encoded size.
	Commits, CommittedBytes uint64
	// CommitSeconds is the sum of those appends' commit latencies: from
	// Submit to the commit of their entry, queueing for an entry included.
	CommitSeconds float64
	// CommitBuckets[i] counts the appends that committed within
	// CommitBounds[i] seconds (cumulative, as Prometheus wants); the
	// bounds are the same for every group and call.
	CommitBounds  []float64
	CommitBuckets []uint64
	// TailCacheHits and TailCacheMisses count the batches Read returned
	// from the tail cache and those it read back from the Raft log.
	TailCacheHits, TailCacheMisses uint64
	// TailCacheBytes is the size of the batches in the tail cache now.
	TailCacheBytes int64
}

// groupStats are the counters behind Stats, updated without locks.
type groupStats struct {
	commits, committedBytes atomic.Uint64
	commitNanos             atomic.Uint64
	// buckets[i] counts latencies in (commitBounds[i-1], commitBounds[i]],
	// the last one those above every bound.
	buckets      [len(commitBounds) + 1]atomic.Uint64
	hits, misses atomic.Uint64
}

// committed records the commit of an entry's appends.
func (s *groupStats) committed(appends []*Append) {
	now := time.Now()
	var bytes, nanos uint64
	for _, a := range appends {
		d := now.Sub(a.submitted)
		nanos += uint64(max(d, 0))
		bytes += uint64(a.size)
		s.buckets[commitBucket(d)].Add(1)
	}
	s.commits.Add(uint64(len(appends)))
	s.committedBytes.Add(bytes)
	s.commitNanos.Add(nanos)
}

// commitBucket is the index in groupStats.buckets of a latency.
func commitBucket(d time.Duration) int {
	sec := d.Seconds()
	for i, b := range commitBounds {
		if sec <= b {
			return i
		}
	}
	return len(commitBounds)
}

// read records the batches one Read found in the tail cache and in the log.
func (s *groupStats) read(hits, misses int) {
	if hits > 0 {
		s.hits.Add(uint64(hits))
	}
	if misses > 0 {
		s.misses.Add(uint64(misses))
	}
}

// Stats returns the group's counters. They are read one by one, not as one
// snapshot, but Commits is the sum of the buckets, so the histogram is
// consistent in itself.
func (g *Group) Stats() Stats {
	s := &g.stats
	out := Stats{
		CommittedBytes:  s.committedBytes.Load(),
		CommitSeconds:   float64(s.commitNanos.Load()) / float64(time.Second),
		CommitBounds:    slices.Clone(commitBounds[:]),
		CommitBuckets:   make([]uint64, len(commitBounds)),
		TailCacheHits:   s.hits.Load(),
		TailCacheMisses: s.misses.Load(),
	}
	var total uint64
	for i := range commitBounds {
		total += s.buckets[i].Load()
		out.CommitBuckets[i] = total
	}
	out.Commits = total + s.buckets[len(commitBounds)].Load()
	g.fsm.mu.RLock()
	out.TailCacheBytes = g.fsm.mu.cacheBytes
	g.fsm.mu.RUnlock()
	return out
}

// OldestPending returns when the oldest data not yet uploaded was
// committed: the time the leader appended its Raft entry, or, when the log
// no longer holds the entry (the batch came with a snapshot), the batch's
// max timestamp as the producer set it. ok is false when nothing is
// pending or neither time is known.
func (g *Group) OldestPending() (t time.Time, ok bool) {
	g.fsm.mu.RLock()
	var oldest *batchRef
	for _, s := range g.fsm.mu.streams {
		if len(s.Batches) > 0 && (oldest == nil || s.Batches[0].LogIndex < oldest.LogIndex) {
			oldest = &s.Batches[0]
		}
	}
	var ref batchRef
	if oldest != nil {
		ref = *oldest // copied under the lock: the slice may change after it
	}
	g.fsm.mu.RUnlock()
	if oldest == nil {
		return time.Time{}, false
	}
	var l raft.Log
	if err := g.rg.Logs.GetLog(ref.LogIndex, &l); err == nil && !l.AppendedAt.IsZero() {
		return l.AppendedAt, true
	}
	if ref.MaxTS > 0 {
		return time.UnixMilli(ref.MaxTS), true
	}
	return time.Time{}, false
}
