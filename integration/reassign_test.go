package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/s3stream/s3test"
)

// TestReassignBigPartition is issue [E]'s reassignment scenario on real
// processes: 3 brokers on a real MinIO; one partition is filled with 500 MB
// (large batches, uploaded as they come: --upload-bytes 8 MiB), then
// moved to another WAL group with shoalctl reassign execute while an
// idempotent acks=all producer writes to it and a consumer tails it;
// shoalctl reassign verify confirms it. Then: every acknowledged record is
// stored once at its acknowledged offset (the whole 500 MB is read back
// through the new group: below the move's offset from object storage),
// offsets are dense, the tailing consumer saw every record once.
//
// Reported: the move's duration, from shoalctl reassign execute to the
// partition served by its new group (no reassignment listed any more), the
// longest pause between two acknowledgements of the producer around the
// move, and how much of the partition was still in the WAL when it moved.
func TestReassignBigPartition(t *testing.T) {
	const (
		topic      = "bigmove"
		fill       = 500 << 20
		recordSize = 64 << 10
	)
	m := s3test.StartMinIO(t)
	c := StartCluster(t, 3, WithMinIO(m, "reassign"),
		WithArgs("--upload-age", "1s", "--upload-bytes", "8MiB", "--compaction-interval", "10m"))
	c.CreateTopic(t, topic, 1)
	ctl := &ctl{t: t, bootstrap: strings.Join(c.Seeds(), ","), admin: "http://" + c.Brokers[0].MetricsAddr, home: t.TempDir()}
	shoalctlPath(t) // built now, not while the move is timed

	// Fill the partition quickly with large batches.
	bulk := newProducer(t, c.Brokers[0], topic, 1, recordSize, kgo.SeedBrokers(c.Seeds()...))
	began := time.Now()
	bulk.produceBytes(t, fill)
	records, bytes, _ := bulk.ds.counts()
	t.Logf("filled partition 0 with %d records, %.1f MB in %v (%.1f MB/s)", records, float64(bytes)/1e6,
		time.Since(began).Round(time.Millisecond), float64(bytes)/1e6/time.Since(began).Seconds())
	bulkEnd := records

	// A producer and a tailing consumer run through the move.
	steady := newProducer(t, c.Brokers[0], topic, 1, 1<<10, kgo.SeedBrokers(c.Seeds()...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ProducerLinger(time.Millisecond))
	steady.ds = bulk.ds           // one record of everything acknowledged
	steady.seq.Store(bulkEnd + 1) // values differ from the bulk's
	acks := &ackTimes{}
	pctx, stopProducing := context.WithCancel(t.Context())
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for pctx.Err() == nil {
			<-tick.C
			rec := &kgo.Record{Topic: topic, Value: recordValue(0, steady.seq.Add(1), 1<<10)}
			steady.cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
				steady.ds.ack(r, err)
				if err == nil {
					acks.add(time.Now())
				}
			})
		}
	}()
	defer func() { stopProducing(); <-produced }()
	tail := startTail(t, c, topic, bulkEnd)
	Eventually(t, 30*time.Second, func() error {
		if n := acks.count(); n < 1000 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})

	// Move the partition to another group, with Kafka's reassignment JSON.
	groups := getClusterView(t, c.Brokers[0]).WALGroups
	src := partitionGroup(t, c, topic, 0)
	dst := (src + 1) % uint32(len(groups))
	target := groups[dst].Replicas
	pending := walPendingOf(t, c, src)
	file := filepath.Join(t.TempDir(), "reassign.json")
	content := fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"replicas":%s,"log_dirs":["any","any","any"]}]}`,
		topic, jsonInts(target))
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	watch := watchMove(t, c, topic)
	start := time.Now()
	out := ctl.ok("reassign", "execute", "--reassignment-json-file", file)
	contains(t, "reassign execute", out, "Current partition replica assignment", `"topic":"bigmove"`, "started")
	done := watch.wait(t, 30*time.Second)
	moved := done.Sub(start)
	Eventually(t, 30*time.Second, func() error {
		if res := ctl.run("reassign", "verify", "--reassignment-json-file", file); res.Code != 0 {
			return fmt.Errorf("verify: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
		}
		return nil
	})
	confirmed := time.Since(start)
	if got := partitionGroup(t, c, topic, 0); got != dst {
		t.Fatalf("partition 0 is in wal group %d after the move, want %d", got, dst)
	}
	var states []struct {
		State   string  `json:"state"`
		Current []int32 `json:"current_replicas"`
	}
	ctl.json(&states, "reassign", "verify", "--reassignment-json-file", file)
	if len(states) != 1 || states[0].State != "complete" {
		t.Fatalf("verify: %+v", states)
	}

	// Writes go on in the new group.
	afterMove := acks.count()
	Eventually(t, 30*time.Second, func() error {
		if n := acks.count(); n < afterMove+1000 {
			return fmt.Errorf("%d acknowledged since the move", n-afterMove)
		}
		return nil
	})
	stopProducing()
	<-produced
	steady.flush(t)
	pause := acks.maxGap(start.Add(-time.Second), done.Add(time.Second))
	status := "met"
	if moved > 2*time.Second {
		status = "NOT met"
	}
	t.Logf("moved partition 0 (%.1f MB, %.1f MiB of it still in the WAL) from wal group %d to %d (replicas %v) in %v "+
		"(target 2 s: %s; shoalctl reassign verify confirmed after %v); longest pause between acknowledgements: %v",
		float64(bytes)/1e6, float64(pending)/(1<<20), src, dst, target, moved.Round(time.Millisecond), status,
		confirmed.Round(time.Millisecond), pause.Round(time.Millisecond))
	for _, b := range c.Brokers { // the move's steps, as the brokers logged them
		for _, line := range strings.Split(b.Log(), "\n") {
			if strings.Contains(line, "partition move") {
				t.Logf("broker %s: %s", b.NodeID(), line)
			}
		}
	}
	if moved > 2*time.Second {
		t.Errorf("the move took %v, more than 2 s", moved)
	}

	// The tailing consumer saw every record once, in offset order.
	_, end := bulk.ds.snapshot()
	tail.check(t, bulk.ds, end[0], 30*time.Second)
	// Every acknowledged record is there once: the whole partition, read
	// through its new group.
	res := verifyTopic(t, c.Brokers[0], topic, bulk.ds, 60*time.Second, kgo.SeedBrokers(c.Seeds()...))
	t.Logf("read back %d records, %.1f MB in %v after the move", res.records, float64(res.bytes)/1e6, res.elapsed.Round(time.Millisecond))

	t.Run("shoalctl", func(t *testing.T) { reassignCommands(t, c, ctl) })
}

// reassignCommands runs shoalctl reassign generate, cancel and balance:
// a topic whose partitions all went to one group is spread again, under
// a light load.
func reassignCommands(t *testing.T, c *Cluster, ctl *ctl) {
	ctl.t = t
	const topic = "lopsided"
	c.CreateTopic(t, topic, 3)
	load := startClusterLoad(t, c, topic, loadOpts{producers: 1, burst: 1})
	defer func() {
		load.stop(t)
		load.checkNoErrors(t)
		load.verifyLog(t, c, 30*time.Second)
	}()
	groups := getClusterView(t, c.Brokers[0]).WALGroups
	dir := t.TempDir()
	topicsFile := filepath.Join(dir, "topics.json")
	if err := os.WriteFile(topicsFile, []byte(`{"version":1,"topics":[{"topic":"lopsided"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var gen struct {
		Current, Proposed reassignmentJSON
	}
	// The topic reaches every broker's metadata a little after its creation.
	ctl.eventually(&gen, func() error {
		if len(gen.Current.Partitions) != 3 || len(gen.Proposed.Partitions) != 3 {
			return fmt.Errorf("generate: %+v", gen)
		}
		return nil
	}, "reassign", "generate", "--topics-to-move-json-file", topicsFile, "--broker-list", "1,2,3")
	// In table form the proposal alone is on stdout: a file for execute.
	res := ctl.run("reassign", "generate", "--topics-to-move-json-file", topicsFile, "--broker-list", "1,2,3")
	var plan0 reassignmentJSON
	if err := json.Unmarshal([]byte(res.Stdout), &plan0); res.Code != 0 || err != nil || len(plan0.Partitions) != 3 ||
		!strings.Contains(res.Stderr, "Current partition replica assignment") {
		t.Fatalf("generate: exit %d, %v\n%s\n%s", res.Code, err, res.Stdout, res.Stderr)
	}
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, []byte(res.Stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl.ok("reassign", "execute", "--reassignment-json-file", planFile, "--wait")
	ctl.ok("reassign", "verify", "--reassignment-json-file", planFile)
	// Everything into group 0, with a file like generate's.
	all := reassignmentJSON{Version: 1}
	for p := range int32(3) {
		all.Partitions = append(all.Partitions, partitionJSON{Topic: topic, Partition: p, Replicas: groups[0].Replicas})
	}
	file := filepath.Join(dir, "all.json")
	data, _ := json.Marshal(all)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := ctl.ok("reassign", "execute", "--reassignment-json-file", file, "--wait")
	contains(t, "execute --wait", out, "started")
	ctl.ok("reassign", "verify", "--reassignment-json-file", file)
	for p := range int32(3) {
		if g := partitionGroup(t, c, topic, p); g != 0 {
			t.Fatalf("%s-%d in group %d after the move to group 0", topic, p, g)
		}
	}
	// Nothing is moving: a cancel finds nothing to cancel.
	out = ctl.ok("reassign", "cancel", "--reassignment-json-file", file)
	contains(t, "cancel", out, "none in progress")

	var plan struct {
		Before map[string]int `json:"partitions_per_group_before"`
		After  map[string]int `json:"partitions_per_group_after"`
		Moves  []struct {
			From uint32 `json:"from_group"`
		} `json:"moves"`
	}
	ctl.json(&plan, "reassign", "balance", "--dry-run")
	if len(plan.Moves) == 0 || spread(plan.After) > 1 || spread(plan.Before) < 2 {
		t.Fatalf("balance plan: %+v", plan)
	}
	for _, m := range plan.Moves {
		if m.From != 0 {
			t.Errorf("balance moves a partition out of group %d, not the full group 0", m.From)
		}
	}
	res = ctl.run("reassign", "balance")
	if res.Code != 0 || !strings.Contains(res.Stdout, "Moved") || !strings.Contains(res.Stderr, "reassignments done") {
		t.Fatalf("balance: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	ctl.json(&plan, "reassign", "balance", "--dry-run")
	if len(plan.Moves) != 0 || spread(plan.Before) > 1 {
		t.Fatalf("after balance: %+v", plan)
	}
	ctl.fails(2, "usage: shoalctl reassign", "reassign", "execute")
}

// reassignmentJSON is Kafka's reassignment file.
type reassignmentJSON struct {
	Version    int             `json:"version"`
	Partitions []partitionJSON `json:"partitions"`
}

type partitionJSON struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// spread is the difference between the largest and the smallest count.
func spread(counts map[string]int) int {
	lo, hi := -1, 0
	for _, n := range counts {
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return hi - max(lo, 0)
}

// ackTimes are the times of acknowledgements, in order.
type ackTimes struct {
	mu    sync.Mutex
	times []time.Time
}

func (a *ackTimes) add(at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.times = append(a.times, at)
}

func (a *ackTimes) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times)
}

// maxGap is the longest time between two acknowledgements in [from, to].
func (a *ackTimes) maxGap(from, to time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(a.times); i++ {
		if a.times[i].After(from) && a.times[i-1].Before(to) {
			gap = max(gap, a.times[i].Sub(a.times[i-1]))
		}
	}
	return gap
}

// tailReader consumes one partition from an offset and records what it
// saw, in order.
type tailReader struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	from    int64
	offsets []int64
	sums    []uint32
	errs    []string
}

// startTail starts reading partition 0 of topic from offset from.
func startTail(t *testing.T, c *Cluster, topic string, from int64) *tailReader {
	t.Helper()
	cl := c.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	tr := &tailReader{cancel: cancel, done: make(chan struct{}), from: from}
	go func() {
		defer close(tr.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			tr.mu.Lock()
			fs.EachError(func(_ string, _ int32, err error) {
				if ctx.Err() == nil {
					tr.errs = append(tr.errs, err.Error())
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				tr.offsets = append(tr.offsets, r.Offset)
				tr.sums = append(tr.sums, crc32.Checksum(r.Value, crcTable))
			})
			tr.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-tr.done })
	return tr
}

// check waits until the reader reached end, stops it and checks that it
// saw every offset from its start once, in order, each with the
// acknowledged record.
func (tr *tailReader) check(t *testing.T, ds *dataset, end int64, d time.Duration) {
	t.Helper()
	Eventually(t, d, func() error {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if n := int64(len(tr.offsets)); tr.from+n < end {
			return fmt.Errorf("tailing consumer at %d of %d", tr.from+n, end)
		}
		return nil
	})
	tr.cancel()
	<-tr.done
	ds.mu.Lock()
	defer ds.mu.Unlock()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, off := range tr.offsets {
		if want := tr.from + int64(i); off != want {
			t.Fatalf("tailing consumer: record %d at offset %d, want %d (a gap or a record seen twice)", i, off, want)
		}
		if sum, ok := ds.sums[0][off]; !ok || sum != tr.sums[i] {
			t.Fatalf("tailing consumer: offset %d is not the acknowledged record", off)
		}
	}
	t.Logf("tailing consumer saw offsets %d to %d once each (fetch errors, all retried: %d %v)",
		tr.from, tr.from+int64(len(tr.offsets))-1, len(tr.errs), firstN(tr.errs, 3))
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }

// moveWatch polls ListPartitionReassignments (on the controller, every
// 10 ms) and notes when the topic's move is over: not listed after it was,
// or not listed in a poll that began after the reassignment was recorded
// (a move faster than the polls).
type moveWatch struct {
	recorded atomic.Int64 // Unix ns when execute returned (0: not yet)
	done     chan time.Time
}

// watchMove starts watching topic's reassignment.
func watchMove(t *testing.T, c *Cluster, topic string) *moveWatch {
	t.Helper()
	cl := c.Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	w := &moveWatch{done: make(chan time.Time, 1)}
	go func() {
		seen := false
		for ctx.Err() == nil {
			polled := time.Now()
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(rctx, cl)
			rcancel()
			if err == nil && resp.ErrorCode == 0 {
				moving := false
				for _, rt := range resp.Topics {
					moving = moving || rt.Topic == topic && len(rt.Partitions) > 0
				}
				rec := w.recorded.Load()
				switch {
				case moving:
					seen = true
				case seen || rec != 0 && polled.UnixNano() > rec:
					w.done <- time.Now()
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return w
}

// wait notes that the reassignment is recorded and returns when the move
// is over.
func (w *moveWatch) wait(t *testing.T, d time.Duration) time.Time {
	t.Helper()
	w.recorded.Store(time.Now().UnixNano())
	select {
	case at := <-w.done:
		return at
	case <-time.After(d):
		t.Fatalf("the reassignment did not end within %v", d)
		return time.Time{}
	}
}

// partitionGroup is the WAL group of a partition: the wal-N log directory
// DescribeLogDirs lists it under.
func partitionGroup(t *testing.T, c *Cluster, topic string, partition int32) uint32 {
	t.Helper()
	var gid uint32
	Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		dirs, err := c.Admin().DescribeAllLogDirs(ctx, nil)
		if err != nil {
			return err
		}
		found := map[uint32]bool{}
		for _, ds := range dirs {
			for _, d := range ds {
				n, ok := strings.CutPrefix(filepath.Base(d.Dir), "wal-")
				g, err := strconv.ParseUint(n, 10, 32)
				if !ok || err != nil {
					continue
				}
				if _, ok := d.Topics[topic][partition]; ok {
					found[uint32(g)] = true
					gid = uint32(g)
				}
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%s-%d listed in wal groups %v", topic, partition, found)
		}
		return nil
	})
	return gid
}

// walPendingOf is the WAL data not yet uploaded of group gid, on its leader.
func walPendingOf(t *testing.T, c *Cluster, gid uint32) int64 {
	t.Helper()
	for _, b := range c.Brokers {
		for _, g := range getClusterView(t, b).WALGroups {
			if g.ID == gid && g.Local != nil && g.Local.State == "Leader" {
				return g.Local.PendingBytes
			}
		}
	}
	return -1
}

// jsonInts formats ids as a JSON array.
func jsonInts(ids []int32) string {
	b, _ := json.Marshal(ids)
	return string(b)
}
