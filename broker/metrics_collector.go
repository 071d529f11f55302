package broker

import (
	"io/fs"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-io/shoal/broker/group"
	"github.com/shoal-io/shoal/s3stream"
)

// brokerCollector reads the broker's state when /metrics is scraped: the
// object-store counters, the block cache, every local WAL group, the Raft
// state of the metadata group and of each local WAL group, the consumer
// groups and their lag. Groups open and close at run time, so nothing is
// registered per group: each scrape walks what is there.
type brokerCollector struct {
	b *Broker
	// started latches once the broker was ready: the metrics server starts
	// before the parts it reports on are open, and their fields may only
	// be read after Start stored ready (which orders their writes first).
	// They are never reset, and the server stops before they close.
	started atomic.Bool
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descReady     = desc("shoal_broker_ready", "1 while the broker serves Kafka requests (as /readyz answers 200), else 0.")
	descBuildInfo = desc("shoal_build_info", "Always 1; the labels describe the running build.", "version", "revision", "goversion")

	descObjectRequests = desc("shoal_object_requests_total", "Object-store requests by reason and operation.", "reason", "op")
	descObjectBytes    = desc("shoal_object_bytes_total", "Object-store bytes by reason and direction.", "reason", "direction")
	descObjectErrors   = desc("shoal_object_request_errors_total", "Object-store requests that failed, by reason.", "reason")
	descUploads        = desc("shoal_uploads_total", "Objects PUT by the WAL uploaders, failed attempts included (shoal_object_request_errors_total{reason=\"upload\"}).")
	descUploadBytes    = desc("shoal_upload_bytes_total", "Bytes PUT by the WAL uploaders.")

	descBlockHits      = desc("shoal_block_cache_hits_total", "Object block lookups served from the block cache.")
	descBlockMisses    = desc("shoal_block_cache_misses_total", "Object block lookups that fetched the block or waited for its fetch.")
	descBlockEvictions = desc("shoal_block_cache_evictions_total", "Blocks evicted from the block cache.")
	descBlockBytes     = desc("shoal_block_cache_bytes", "Decoded bytes in the block cache.")
	descBlockBlocks    = desc("shoal_block_cache_blocks", "Blocks in the block cache.")

	descWALPending    = desc("shoal_wal_pending_bytes", "Committed WAL data waiting for upload, per WAL group.", "group")
	descWALCommit     = desc("shoal_wal_commit_duration_seconds", "Time from an append's submission to the Raft commit of its entry, per WAL group this broker leads or led.", "group")
	descWALCommitted  = desc("shoal_wal_committed_bytes_total", "Bytes of appends committed through this broker, per WAL group.", "group")
	descWALDisk       = desc("shoal_wal_disk_bytes", "Size of the WAL group's directory (Raft log and snapshots), per WAL group.", "group")
	descTailHits      = desc("shoal_wal_tail_cache_hits_total", "Batches WAL reads returned from the tail cache, per WAL group.", "group")
	descTailMisses    = desc("shoal_wal_tail_cache_misses_total", "Batches WAL reads read back from the Raft log, per WAL group.", "group")
	descTailBytes     = desc("shoal_wal_tail_cache_bytes", "Bytes in the WAL tail cache, per WAL group.", "group")
	descUploadLag     = desc("shoal_upload_lag_seconds", "Age of the oldest committed WAL data not yet uploaded (0 when none), per WAL group.", "group")
	descRaftState     = desc("shoal_raft_state", "Raft state of this replica: 0 follower, 1 candidate, 2 leader, 3 shut down.", "group")
	descRaftTerm      = desc("shoal_raft_term", "Current Raft term of this replica.", "group")
	descRaftLastIndex = desc("shoal_raft_last_index", "Last Raft log index of this replica.", "group")
	descRaftApplied   = desc("shoal_raft_applied_index", "Last Raft log index applied to this replica's state machine.", "group")

	descGroups       = desc("shoal_consumer_groups", "Consumer groups this broker coordinates, by state.", "state")
	descGroupMembers = desc("shoal_consumer_group_members", "Members of each consumer group this broker coordinates.", "group")
	descGroupLag     = desc("shoal_consumer_group_lag", "High watermark minus committed offset, for the partitions this broker leads.", "group", "topic", "partition")
)

// groupStates are the states shoal_consumer_groups always reports, so that
// a state with no group shows 0 rather than no series.
var groupStates = []string{
	group.StateEmpty, group.StatePreparingRebalance, group.StateCompletingRebalance,
	group.StateStable, group.StateDead, group.StateAssigning, group.StateReconciling,
}

// Describe implements prometheus.Collector.
func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descReady, descBuildInfo,
		descObjectRequests, descObjectBytes, descObjectErrors, descUploads, descUploadBytes,
		descBlockHits, descBlockMisses, descBlockEvictions, descBlockBytes, descBlockBlocks,
		descWALPending, descWALCommit, descWALCommitted, descWALDisk, descTailHits, descTailMisses, descTailBytes, descUploadLag,
		descRaftState, descRaftTerm, descRaftLastIndex, descRaftApplied,
		descGroups, descGroupMembers, descGroupLag,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	ready := b.ready.Load()
	ch <- gauge(descReady, boolValue(ready))
	bi := buildInfo()
	ch <- gauge(descBuildInfo, 1, bi.version, bi.revision, bi.goVersion)
	if ready {
		c.started.Store(true)
	}
	if !c.started.Load() {
		return
	}
	collectObjects(ch, b.objects.Counts())
	collectBlockCache(ch, b.reader.Stats())
	for _, ws := range b.localWALs() {
		b.collectWAL(ch, ws)
	}
	c.collectMetadataRaft(ch)
	b.collectGroups(ch)
	b.collectLag(ch)
}

// objectReasons are the reasons the object-store families always report,
// so that their series exist (at 0) before the first request.
var objectReasons = []s3stream.Reason{
	s3stream.ReasonUpload, s3stream.ReasonCompaction, s3stream.ReasonFetch, s3stream.ReasonGC, s3stream.ReasonOther,
}

// collectObjects reports the object-store counters per reason, and the
// uploaders' share of them.
func collectObjects(ch chan<- prometheus.Metric, counts map[s3stream.Reason]s3stream.OpCounts) {
	reasons := make([]string, 0, len(counts)+len(objectReasons))
	for _, r := range objectReasons {
		reasons = append(reasons, string(r))
	}
	for r := range counts {
		reasons = append(reasons, string(r))
	}
	slices.Sort(reasons)
	reasons = slices.Compact(reasons)
	for _, r := range reasons {
		c := counts[s3stream.Reason(r)]
		for _, op := range []struct {
			name string
			n    int64
		}{{"put", c.Put}, {"get", c.Get}, {"head", c.Head}, {"delete", c.Delete}, {"list", c.List}} {
			ch <- counter(descObjectRequests, float64(op.n), r, op.name)
		}
		ch <- counter(descObjectBytes, float64(c.PutBytes), r, "put")
		ch <- counter(descObjectBytes, float64(c.GetBytes), r, "get")
		ch <- counter(descObjectErrors, float64(c.Errors), r)
	}
	up := counts[s3stream.ReasonUpload]
	ch <- counter(descUploads, float64(up.Put))
	ch <- counter(descUploadBytes, float64(up.PutBytes))
}

func collectBlockCache(ch chan<- prometheus.Metric, s s3stream.ReaderStats) {
	ch <- counter(descBlockHits, float64(s.Hits))
	ch <- counter(descBlockMisses, float64(s.Misses))
	ch <- counter(descBlockEvictions, float64(s.Evictions))
	ch <- gauge(descBlockBytes, float64(s.BytesCached))
	ch <- gauge(descBlockBlocks, float64(s.BlocksCached))
}

// collectWAL reports one local WAL group: its backlog, commit latency, tail
// cache, directory size, upload lag and Raft state. WAL metrics name the
// group by id ("0"), as shoal_wal_pending_bytes always did; Raft metrics
// by Raft group name ("wal-0"), next to "metadata".
func (b *Broker) collectWAL(ch chan<- prometheus.Metric, ws *walState) {
	id := strconv.Itoa(ws.id)
	g := ws.g
	ch <- gauge(descWALPending, float64(g.PendingBytes()), id)
	s := g.Stats()
	buckets := make(map[float64]uint64, len(s.CommitBounds))
	for i, le := range s.CommitBounds {
		buckets[le] = s.CommitBuckets[i]
	}
	ch <- prometheus.MustNewConstHistogram(descWALCommit, s.Commits, s.CommitSeconds, buckets, id)
	ch <- counter(descWALCommitted, float64(s.CommittedBytes), id)
	ch <- counter(descTailHits, float64(s.TailCacheHits), id)
	ch <- counter(descTailMisses, float64(s.TailCacheMisses), id)
	ch <- gauge(descTailBytes, float64(s.TailCacheBytes), id)
	if n, ok := dirSize(filepath.Join(b.cfg.DataDir, groupName(ws.id))); ok {
		ch <- gauge(descWALDisk, float64(n), id)
	}
	lag := 0.0
	if t, ok := g.OldestPending(); ok {
		lag = max(time.Since(t).Seconds(), 0)
	}
	ch <- gauge(descUploadLag, lag, id)
	r := g.Raft()
	name := groupName(ws.id)
	ch <- gauge(descRaftState, raftState(r.State()), name)
	ch <- gauge(descRaftTerm, float64(r.CurrentTerm()), name)
	ch <- gauge(descRaftLastIndex, float64(r.LastIndex()), name)
	ch <- gauge(descRaftApplied, float64(r.AppliedIndex()), name)
}

// collectMetadataRaft reports the metadata group's Raft state.
func (c *brokerCollector) collectMetadataRaft(ch chan<- prometheus.Metric) {
	r := c.b.meta.Raft()
	ch <- gauge(descRaftState, raftState(r.State()), "metadata")
	ch <- gauge(descRaftTerm, float64(r.CurrentTerm()), "metadata")
	ch <- gauge(descRaftLastIndex, float64(r.LastIndex()), "metadata")
	ch <- gauge(descRaftApplied, float64(r.AppliedIndex()), "metadata")
}

// raftState is the metric value of a Raft state: hashicorp/raft's own
// numbering (follower 0, candidate 1, leader 2, shutdown 3).
func raftState(s raft.RaftState) float64 { return float64(s) }

// collectGroups reports the groups this broker coordinates (the metadata
// leader; other brokers coordinate none): how many per state, and the
// members of each.
func (b *Broker) collectGroups(ch chan<- prometheus.Metric) {
	byState := make(map[string]int, len(groupStates))
	for _, s := range groupStates {
		byState[s] = 0
	}
	for _, l := range b.groups.List() {
		byState[l.State]++
		members := 0
		if l.Type == group.TypeConsumer {
			if d, err := b.groups.DescribeConsumer(l.Group); err == nil {
				members = len(d.Members)
			}
		} else if d, _, err := b.groups.DescribeClassic(l.Group); err == nil {
			members = len(d.Members)
		}
		ch <- gauge(descGroupMembers, float64(members), l.Group)
	}
	for s, n := range byState {
		ch <- gauge(descGroups, float64(n), s)
	}
}

// collectLag reports, for every committed offset of a partition this broker
// leads, the partition's high watermark minus the offset. The offsets are
// in every broker's metadata image, so the brokers together report every
// partition once, each its own.
func (b *Broker) collectLag(ch chan<- prometheus.Metric) {
	im := b.meta.Image()
	for groupID, offsets := range im.Offsets {
		for tp, co := range offsets {
			if co.Offset < 0 {
				continue
			}
			p, err := b.partitionOf(im.Topics[tp.Topic], tp.Partition)
			if err != nil {
				continue // not led here, or unknown since
			}
			_, hwm := p.group.Offsets(p.stream())
			ch <- gauge(descGroupLag, float64(max(hwm-co.Offset, 0)), groupID, tp.Topic, strconv.Itoa(int(tp.Partition)))
		}
	}
}

// dirSize sums the sizes of the regular files under dir; ok is false when
// dir cannot be read (a group being removed).
func dirSize(dir string) (n int64, ok bool) {
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err == nil
}

// build describes the running binary for shoal_build_info.
type build struct{ version, revision, goVersion string }

// buildInfo reads the module version and VCS revision the binary was built
// with ("(devel)" and "" when unknown, as in `go test`).
var buildInfo = sync.OnceValue(func() build {
	out := build{version: "(devel)", goVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			out.version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				out.revision = s.Value
			}
		}
	}
	return out
})

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func boolValue(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
