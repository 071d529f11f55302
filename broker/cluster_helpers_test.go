package broker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/internal/raftgroup"
)

// The in-process cluster harness of the cluster tests: real brokers on
// loopback ports, a crash that stops a broker like kill -9, a producer
// that records what was acknowledged, and a reader that checks every
// acknowledged record is there once, at dense offsets.

// testCluster is an in-process cluster of real brokers on loopback ports.
type testCluster struct {
	t       *testing.T
	brokers []*Broker // by position in peers; nil once stopped
}

// startCluster starts n brokers (node ids 1..n) that know each other as
// peers, concurrently (each waits for its groups' leaders), and stops them
// when the test ends.
func startCluster(t *testing.T, n int, edit ...func(*Config)) *testCluster {
	t.Helper()
	addrs := freeAddrs(t, n)
	var peers []raftgroup.Peer
	for i, a := range addrs {
		peers = append(peers, raftgroup.Peer{ID: strconv.Itoa(i + 1), Address: a})
	}
	c := &testCluster{t: t, brokers: make([]*Broker, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfg := testConfig(t)
		cfg.NodeID, cfg.ClusterListen, cfg.Peers = int32(i+1), addrs[i], peers
		cfg.LeaderBalanceDelay = 300 * time.Millisecond
		cfg.Groups.InitialRebalanceDelay = -1
		for _, e := range edit {
			e(&cfg)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c.brokers[i], errs[i] = Start(ctx, cfg)
		}()
	}
	wg.Wait()
	t.Cleanup(c.stopAll)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start broker %d: %v", i+1, err)
		}
	}
	return c
}

// freeAddrs reserves n loopback addresses for cluster listeners.
func freeAddrs(t *testing.T, n int) []string {
	var lns []net.Listener
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// stopAll crashes every broker still running (fast: no hand-overs).
func (c *testCluster) stopAll() {
	var wg sync.WaitGroup
	for i, b := range c.brokers {
		if b == nil {
			continue
		}
		c.brokers[i] = nil
		wg.Add(1)
		go func() { defer wg.Done(); crash(b) }()
	}
	wg.Wait()
}

// crash stops b the way a killed process stops: its cluster traffic ends
// first, connections are cut, nothing is handed over.
func crash(b *Broker) {
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		b.ready.Store(false)
		b.mux.Close()
		b.mu.Lock()
		b.mu.closed = true
		conns := make([]*conn, 0, len(b.mu.conns))
		for c := range b.mu.conns {
			conns = append(conns, c)
		}
		b.mu.Unlock()
		b.ln.Close()
		for _, c := range conns {
			c.abort()
		}
		b.wg.Wait()
		b.closeErr = b.closeParts()
	})
}

// running lists the brokers not stopped.
func (c *testCluster) running() []*Broker {
	var out []*Broker
	for _, b := range c.brokers {
		if b != nil {
			out = append(out, b)
		}
	}
	return out
}

// seeds lists the Kafka addresses of the running brokers.
func (c *testCluster) seeds() []string {
	var out []string
	for _, b := range c.running() {
		out = append(out, b.Addr().String())
	}
	return out
}

// waitBalanced waits until every running broker leads exactly one WAL group.
func (c *testCluster) waitBalanced(within time.Duration) {
	c.t.Helper()
	eventually(c.t, within, func() error {
		led := map[string]int{}
		for _, b := range c.running() {
			for _, ws := range b.localWALs() {
				if ws.g.IsLeader() && ws.ready() {
					led[strconv.Itoa(int(b.cfg.NodeID))]++
				}
			}
		}
		for _, b := range c.running() {
			if n := led[strconv.Itoa(int(b.cfg.NodeID))]; n != 1 {
				return fmt.Errorf("groups led per broker: %v", led)
			}
		}
		return nil
	})
}

// partitionView is one broker's Metadata answer for a partition.
type partitionView struct {
	partition     int32
	leader, epoch int32
	replicas, isr string
}

// metadataView asks b for topic's partitions over a raw connection, and
// fails until b lists 3 brokers.
func metadataView(t *testing.T, b *Broker, topic string) ([]partitionView, error) {
	return metadataViewOf(t, b, topic, 3)
}

// metadataViewOf is metadataView in a cluster of brokers brokers.
func metadataViewOf(t *testing.T, b *Broker, topic string, brokers int) ([]partitionView, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp := dialRaw(t, b).do(req).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		return nil, fmt.Errorf("broker %d: topic %s not ready: %+v", b.cfg.NodeID, topic, resp.Topics)
	}
	if len(resp.Brokers) != brokers {
		return nil, fmt.Errorf("broker %d lists %d brokers", b.cfg.NodeID, len(resp.Brokers))
	}
	var out []partitionView
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			return nil, fmt.Errorf("broker %d: partition %d: %v", b.cfg.NodeID, p.Partition, kerr.ErrorForCode(p.ErrorCode))
		}
		r, isr := slices.Clone(p.Replicas), slices.Clone(p.ISR)
		slices.Sort(r)
		slices.Sort(isr)
		out = append(out, partitionView{p.Partition, p.Leader, p.LeaderEpoch, fmt.Sprint(r), fmt.Sprint(isr)})
	}
	return out, nil
}

// leaderCounts counts the partitions of topic each broker leads, as b sees it.
func leaderCounts(t *testing.T, b *Broker, topic string) map[int32]int {
	t.Helper()
	view, err := metadataView(t, b, topic)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int32]int{}
	for _, p := range view {
		counts[p.leader]++
	}
	return counts
}

// clusterClient is a kgo client seeded with addrs that refreshes metadata
// quickly (kgo's default minimum age is 5 s).
func clusterClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.RetryTimeout(30 * time.Second)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// ackLog records what a producer had acknowledged.
type ackLog struct {
	mu      sync.Mutex
	acked   map[string]ackedAt // value -> where it went
	errs    []error
	since   time.Time             // a moment of interest (a kill)
	firstAt map[int32]time.Time   // per partition, the first ack after since
	lastAt  map[int32][]time.Time // per partition, the ack times (for gaps)
}

type ackedAt struct {
	partition int32
	offset    int64
	epoch     int32 // the leader epoch of the acknowledgement
}

func newAckLog() *ackLog {
	return &ackLog{acked: map[string]ackedAt{}, firstAt: map[int32]time.Time{}, lastAt: map[int32][]time.Time{}}
}

func (l *ackLog) record(r *kgo.Record, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %w", r.Value, err))
		return
	}
	l.acked[string(r.Value)] = ackedAt{r.Partition, r.Offset, r.LeaderEpoch}
	if !l.since.IsZero() && now.After(l.since) {
		if _, ok := l.firstAt[r.Partition]; !ok {
			l.firstAt[r.Partition] = now
		}
	}
	l.lastAt[r.Partition] = append(l.lastAt[r.Partition], now)
}

func (l *ackLog) mark() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = time.Now()
	clear(l.firstAt)
	return l.since
}

func (l *ackLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// maxGap is the longest time between two acks of one partition.
func (l *ackLog) maxGap() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gap time.Duration
	for _, ts := range l.lastAt {
		for i := 1; i < len(ts); i++ {
			gap = max(gap, ts[i].Sub(ts[i-1]))
		}
	}
	return gap
}

// produceLoop writes records round robin over partitions, about 1,000 a
// second, until ctx ends, then flushes.
func produceLoop(ctx context.Context, cl *kgo.Client, topic string, partitions int32, log *ackLog) {
	for i := 0; ctx.Err() == nil; i++ {
		r := &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte("v-" + strconv.Itoa(i))}
		cl.Produce(context.Background(), r, log.record)
		if i%10 == 9 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl.Flush(fctx)
}

// verifyTopic reads every partition of topic from the start through
// addrs and checks: offsets dense from 0 to the end, no value twice, every
// acknowledged value at its acknowledged offset.
func verifyTopic(t *testing.T, addrs []string, topic string, partitions int32, log *ackLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(clusterClient(t, addrs))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		total += o.Offset
	})
	offs := map[int32]kgo.Offset{}
	for p := range partitions {
		offs[p] = kgo.NewOffset().At(0)
	}
	cl := clusterClient(t, addrs, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	seen := map[string]ackedAt{}
	next := map[int32]int64{}
	for int64(len(seen)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records: %v", len(seen), total, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch partition %d: %v", p, err) })
		for _, r := range fs.Records() {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d: not dense", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition]++
			if prev, dup := seen[string(r.Value)]; dup {
				t.Fatalf("%s stored twice: %v and %d/%d", r.Value, prev, r.Partition, r.Offset)
			}
			seen[string(r.Value)] = ackedAt{r.Partition, r.Offset, r.LeaderEpoch}
		}
	}
	for p, end := range want {
		if next[p] != end {
			t.Errorf("partition %d: read to %d, end offset %d", p, next[p], end)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for v, at := range log.acked {
		if got, ok := seen[v]; !ok || got.partition != at.partition || got.offset != at.offset {
			t.Errorf("acknowledged %s at %v, read at %v (found %v)", v, at, got, ok)
		}
	}
	epochs := checkLeaderEpochs(t, cl, topic, seen, want)
	t.Logf("verified %d records (%d acknowledged) in %d partitions, %d leader epochs", len(seen), len(log.acked), partitions, epochs)
}

// checkLeaderEpochs asks OffsetForLeaderEpoch about every leader epoch the
// stored batches carry (KIP-101/279: how a client detects truncation) and
// checks each answer: the same epoch, and an end offset past the epoch's
// last record and not past the next epoch's first record (or the end). It
// returns the number of (partition, epoch) pairs checked.
func checkLeaderEpochs(t *testing.T, cl *kgo.Client, topic string, seen map[string]ackedAt, ends map[int32]int64) int {
	t.Helper()
	type span struct{ first, last int64 }
	epochs := map[int32]map[int32]*span{} // partition -> epoch -> offsets
	for _, at := range seen {
		if epochs[at.partition] == nil {
			epochs[at.partition] = map[int32]*span{}
		}
		s := epochs[at.partition][at.epoch]
		if s == nil {
			s = &span{at.offset, at.offset}
			epochs[at.partition][at.epoch] = s
		}
		s.first, s.last = min(s.first, at.offset), max(s.last, at.offset)
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	for p, es := range epochs {
		for e := range es {
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = p, e, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	shards := cl.RequestSharded(ctx, req)
	answered := 0
	for _, sh := range shards {
		if sh.Err != nil {
			t.Fatalf("OffsetForLeaderEpoch: %v", sh.Err)
		}
		for _, rt := range sh.Resp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
			for _, rp := range rt.Partitions {
				answered++
				// Every epoch asked for has records, so the answer names it.
				asked := rp.LeaderEpoch
				s := epochs[rp.Partition][asked]
				if rp.ErrorCode != 0 || s == nil {
					t.Errorf("partition %d: OffsetForLeaderEpoch answered epoch %d, error %v", rp.Partition, rp.LeaderEpoch, kerr.ErrorForCode(rp.ErrorCode))
					continue
				}
				next := ends[rp.Partition]
				for e, o := range epochs[rp.Partition] {
					if e > asked {
						next = min(next, o.first)
					}
				}
				if rp.EndOffset <= s.last || rp.EndOffset > next {
					t.Errorf("partition %d epoch %d: end offset %d, want in (%d, %d]: truncation or a wrong answer",
						rp.Partition, asked, rp.EndOffset, s.last, next)
				}
			}
		}
	}
	n := 0
	for _, es := range epochs {
		n += len(es)
	}
	if answered != n {
		t.Errorf("OffsetForLeaderEpoch answered %d of %d epochs", answered, n)
	}
	return n
}
