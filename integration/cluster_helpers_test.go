package integration

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// loadValueSize is the size of a clusterLoad record's value.
const loadValueSize = 256

// clusterLoad is a set of idempotent acks=all producers writing unique
// values ("p<producer>-<n>", padded to loadValueSize bytes) round robin over a topic's partitions at a
// steady pace. Every acknowledgement is recorded: its position, when the
// record was produced and when it was acknowledged, and every error the
// client gave up with (kgo retries retriable errors itself, so any error
// here is one it could not retry).
type clusterLoad struct {
	topic   string
	prefix  string
	clients []*kgo.Client
	ledgers []*ledger // every acknowledgement also goes to each

	mu     sync.Mutex
	acked  map[recordPos]string
	events map[int32][]ackEvent // per partition, in acknowledgement order
	errs   []error
	bytes  int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ackEvent is one acknowledgement: when the record was produced (kgo sets
// Timestamp at Produce) and when its acknowledgement arrived.
type ackEvent struct {
	produced, acked time.Time
}

// loadOpts configures a clusterLoad.
type loadOpts struct {
	producers, burst int       // burst records per producer every 2 ms
	prefix           string    // before every value, to tell loads on one topic apart
	ledgers          []*ledger // every acknowledgement also goes to each
	client           []kgo.Opt // extra producer client options
}

// startClusterLoad starts o.producers clients each producing o.burst
// records every 2 ms into topic, recording acknowledgements in the load
// and in every ledger of o.
func startClusterLoad(t testing.TB, c *Cluster, topic string, o loadOpts) *clusterLoad {
	t.Helper()
	l := &clusterLoad{topic: topic, prefix: o.prefix, ledgers: o.ledgers, acked: map[recordPos]string{}, events: map[int32][]ackEvent{}}
	ctx, cancel := context.WithCancel(t.Context())
	l.cancel = cancel
	burst := o.burst
	for i := range o.producers {
		cl := c.Client(t, append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(time.Millisecond),
			// Uncompressed, so the bytes between brokers compare with the values'.
			kgo.ProducerBatchCompression(kgo.NoCompression())}, o.client...)...)
		l.clients = append(l.clients, cl)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				for range burst {
					v := fmt.Appendf(make([]byte, 0, loadValueSize), "%sp%d-%d ", o.prefix, i, n)
					v = append(v, padding[:loadValueSize-len(v)]...)
					n++
					// Not ctx: stopping the pace must not fail what is buffered.
					cl.Produce(context.Background(), &kgo.Record{Value: v}, l.ack)
				}
			}
		}()
	}
	t.Cleanup(l.stopPacing)
	return l
}

// padding fills load values up to loadValueSize.
var padding = []byte(strings.Repeat(".", loadValueSize))

func (l *clusterLoad) ack(r *kgo.Record, err error) {
	now := time.Now()
	l.mu.Lock()
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("record %q: %w", r.Value, err))
		l.mu.Unlock()
		return
	}
	l.acked[recordPos{r.Partition, r.Offset}] = string(r.Value)
	l.events[r.Partition] = append(l.events[r.Partition], ackEvent{r.Timestamp, now})
	l.bytes += int64(len(r.Value))
	l.mu.Unlock()
	for _, lg := range l.ledgers {
		lg.ack(r, nil)
	}
}

// count returns the number of acknowledged records.
func (l *clusterLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// ackedBytes returns the value bytes acknowledged so far.
func (l *clusterLoad) ackedBytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// errors returns the errors the producers gave up with.
func (l *clusterLoad) errors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// waitAcked waits until at least n records are acknowledged.
func (l *clusterLoad) waitAcked(t testing.TB, n int, d time.Duration) {
	t.Helper()
	Eventually(t, d, func() error {
		if got := l.count(); got < n {
			return fmt.Errorf("%d of %d records acknowledged (errors: %v)", got, n, l.errors())
		}
		return nil
	})
}

// restoreTimes returns, per partition, how long after since the first
// record produced at or after since was acknowledged; partitions without
// such a record are missing.
func (l *clusterLoad) restoreTimes(since time.Time) map[int32]time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]time.Duration{}
	for p, evs := range l.events {
		for _, e := range evs {
			if !e.produced.Before(since) {
				out[p] = e.acked.Sub(since)
				break
			}
		}
	}
	return out
}

// waitRestored waits until every one of partitions partitions has an
// acknowledgement of a record produced at or after since, and returns the
// slowest partition's time.
func (l *clusterLoad) waitRestored(t testing.TB, partitions int32, since time.Time, d time.Duration) (time.Duration, map[int32]time.Duration) {
	t.Helper()
	var times map[int32]time.Duration
	Eventually(t, d, func() error {
		times = l.restoreTimes(since)
		if int32(len(times)) < partitions {
			return fmt.Errorf("writes restored on %d of %d partitions: %v", len(times), partitions, times)
		}
		return nil
	})
	var worst time.Duration
	for _, d := range times {
		worst = max(worst, d)
	}
	return worst, times
}

// stopPacing stops producing new records.
func (l *clusterLoad) stopPacing() {
	l.cancel()
	l.wg.Wait()
}

// stop stops producing and waits for every buffered record's outcome.
func (l *clusterLoad) stop(t testing.TB) {
	t.Helper()
	l.stopPacing()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, cl := range l.clients {
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

// checkNoErrors fails the test if a producer gave up on a record.
func (l *clusterLoad) checkNoErrors(t testing.TB) {
	t.Helper()
	if errs := l.errors(); len(errs) > 0 {
		t.Errorf("%d records failed at the producer (non-retriable errors), e.g. %v", len(errs), errs[:min(5, len(errs))])
	}
}

// verifyLog reads topic from the start through the cluster and checks the
// log: offsets dense from 0 to the high watermark on every partition, every
// acknowledged record stored exactly at the offset it was acknowledged with
// and with its value, and no value stored twice (an idempotent producer's
// retry is never stored again). It returns the records read.
func (l *clusterLoad) verifyLog(t testing.TB, c *Cluster, timeout time.Duration) map[int32][]*kgo.Record {
	t.Helper()
	end := clusterEndOffsets(t, c, l.topic)
	recs := clusterConsume(t, c, l.topic, end, timeout)
	total := checkDense(t, recs, end)
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := make(map[string]recordPos, total)
	for p, rs := range recs {
		for _, r := range rs {
			v := string(r.Value)
			if !strings.HasPrefix(v, l.prefix+"p") {
				continue // another load's, or a probe
			}
			if prev, dup := seen[v]; dup {
				t.Errorf("value %q stored twice: at %v and %d/%d", v, prev, p, r.Offset)
			}
			seen[v] = recordPos{p, r.Offset}
		}
	}
	missing := 0
	for pos, v := range l.acked {
		rs := recs[pos.partition]
		if pos.offset >= int64(len(rs)) || string(rs[pos.offset].Value) != v {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged record %q at %d/%d is missing or different", v, pos.partition, pos.offset)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged records missing", missing, len(l.acked))
	}
	t.Logf("log check: %d records stored, %d acknowledged, offsets dense", total, len(l.acked))
	return recs
}

// clusterEndOffsets returns the high watermark of every partition of topic.
func clusterEndOffsets(t testing.TB, c *Cluster, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		lo, err := c.Admin().ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		var ferr error
		lo.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				ferr = fmt.Errorf("partition %d: %w", o.Partition, o.Err)
			}
			out[o.Partition] = o.Offset
		})
		return ferr
	})
	return out
}

// clusterConsume reads topic from the start of every partition until each
// partition p reached end[p], and returns the records per partition. Fetch
// errors are logged, not failures: they are expected across failovers.
func clusterConsume(t testing.TB, c *Cluster, topic string, end map[int32]int64, timeout time.Duration) map[int32][]*kgo.Record {
	t.Helper()
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	return consumeFrom(t, cl, topic, end, timeout, t.Logf)
}

// startClusterMember starts a franz-go group member (see startKgoMember)
// seeded with every broker of the cluster.
func startClusterMember(t testing.TB, c *Cluster, group, topic, name string, l *ledger) *kgoMember {
	t.Helper()
	return startKgoMember(t, c.Brokers[0], group, topic, name, l, c.ClientOpts()...)
}

// timeCaughtUp waits until the ledger's group processed every record
// acknowledged so far and returns how long that took from since.
func timeCaughtUp(t testing.TB, l *ledger, since time.Time, d time.Duration, what string) time.Duration {
	t.Helper()
	l.waitCaughtUp(t, d, what)
	return time.Since(since)
}

// atLeastOnce checks that a group processed every acknowledged record at
// least once, with its acknowledged value, and nothing that was never
// acknowledged; it returns how many records were processed more than once
// (a commit lost to a coordinator failover makes a group reprocess what
// followed it, as Kafka's groups do).
func (l *ledger) atLeastOnce(t testing.TB) (dups int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	missing, wrong := 0, 0
	for pos, v := range l.produced {
		got := l.processed[pos]
		if len(got) == 0 {
			if missing++; missing <= 5 {
				t.Errorf("record %d/%d never processed", pos.partition, pos.offset)
			}
		}
		if len(got) > 1 {
			dups++
		}
		for _, g := range got {
			if _, val, _ := strings.Cut(g, "="); val != v {
				if wrong++; wrong <= 5 {
					t.Errorf("record %d/%d processed as %q, acknowledged %q", pos.partition, pos.offset, g, v)
				}
			}
		}
	}
	for pos := range l.processed {
		if _, ok := l.produced[pos]; !ok {
			t.Errorf("record %d/%d processed but never acknowledged", pos.partition, pos.offset)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d records never processed", missing, len(l.produced))
	}
	return dups
}

// brokerTraffic is a sample of the TCP connections between brokers' cluster
// listeners: bytes sent plus bytes received per connection, keyed by its
// addresses, as ss(8) reports them from the connecting side.
type brokerTraffic map[string]int64

// sampleBrokerTraffic samples the established connections to the cluster
// listeners of brokers (Raft replication and internal RPCs among them;
// connections from a dead broker are gone). It returns nil if ss is not
// installed or fails.
func sampleBrokerTraffic(t testing.TB, brokers ...*Broker) brokerTraffic {
	t.Helper()
	var filter []string
	for _, b := range brokers {
		_, port, err := net.SplitHostPort(b.ClusterAddr)
		if err != nil {
			t.Fatal(err)
		}
		filter = append(filter, "dport = :"+port)
	}
	out, err := exec.Command("ss", "-tinH", "state", "established", "( "+strings.Join(filter, " or ")+" )").Output()
	if err != nil {
		t.Logf("no traffic sample (ss: %v)", err)
		return nil
	}
	s := brokerTraffic{}
	var conn string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && strings.Contains(f[2], ":") && strings.Contains(f[3], ":") { // Recv-Q Send-Q local peer
			conn = f[2] + " " + f[3]
			continue
		}
		var n int64
		for _, kv := range f {
			k, v, ok := strings.Cut(kv, ":")
			if ok && (k == "bytes_sent" || k == "bytes_received") {
				x, _ := strconv.ParseInt(v, 10, 64)
				n += x
			}
		}
		if conn != "" {
			s[conn] += n
		}
	}
	return s
}

// since returns the bytes carried between the two samples: each
// connection's growth (a connection opened meanwhile counts whole).
func (s brokerTraffic) since(before brokerTraffic) int64 {
	var n int64
	for conn, b := range s {
		n += b - before[conn]
	}
	return n
}
