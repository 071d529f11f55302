package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a set of shoald processes started together with the same
// --peers: broker i (0-based) has node id i+1. Every broker keeps its ports
// and data directory across restarts, so that the peers list stays true.
// By default the brokers share one local-directory object store (a
// file:// directory of the test); WithMinIO given to StartCluster puts
// them on a bucket of a real MinIO instead.
type Cluster struct {
	t       testing.TB
	Brokers []*Broker // Brokers[i] has node id i+1
	// ObjectDir is the shared file:// object store (empty when an option
	// chose another store).
	ObjectDir string

	adminOnce sync.Once
	admin     *kadm.Client

	tmp  string   // the test's directory of broker directories
	opts []Option // StartCluster's options, for brokers that join later
	args []string // the object-store flags every broker gets
}

// clusterProbeTopic is the topic StartCluster writes to once per partition
// to know that every WAL group has a leader that serves writes.
const clusterProbeTopic = "cluster-probe"

// StartCluster starts n shoald processes on free loopback ports, each with its own temporary
// data directory and the same --peers, and waits until every broker is
// ready and every partition of a probe topic (one partition per WAL group)
// accepts an acks=all write. opts apply to every broker; WithArgs flags
// come after the cluster's own (--node-id, --peers, --object-store) and
// may override them.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if shoaldPath == "" {
		t.Fatal("integration: shoald not built (TestMain must call BuildShoald)")
	}
	if n < 1 {
		t.Fatalf("StartCluster: %d brokers", n)
	}
	tmp := t.TempDir()
	c := &Cluster{t: t, ObjectDir: filepath.Join(tmp, "objects"), tmp: tmp, opts: opts}
	c.args = []string{"--object-store", "file://" + c.ObjectDir}
	// Every port first: --peers names every broker's cluster address.
	addrs := FreeAddrs(t, 3*n)
	peers := make([]string, n)
	for i := range n {
		peers[i] = fmt.Sprintf("%d@%s", i+1, addrs[3*i+1])
	}
	for i := range n {
		c.Brokers = append(c.Brokers, c.newBroker(i+1, addrs[3*i:3*i+3], "--peers", strings.Join(peers, ",")))
	}
	stores := 0
	for _, a := range c.Brokers[0].args {
		if a == "--object-store" {
			stores++
		}
	}
	if stores > 1 { // an option chose another store
		c.ObjectDir = ""
	}
	t.Cleanup(func() {
		if c.admin != nil {
			c.admin.Close()
		}
	})
	c.StartAll()
	c.WaitWritable(t, clusterProbeTopic, int32(n), startTimeout)
	return c
}

// newBroker prepares broker id on addrs (Kafka, cluster, metrics) with
// the cluster's store and options, and stops it when the test ends.
func (c *Cluster) newBroker(id int, addrs []string, args ...string) *Broker {
	t := c.t
	dir := filepath.Join(c.tmp, "broker-"+strconv.Itoa(id))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &Broker{
		t:           t,
		Addr:        addrs[0],
		ClusterAddr: addrs[1],
		MetricsAddr: addrs[2],
		DataDir:     filepath.Join(dir, "data"),
		logPath:     filepath.Join(dir, "shoald.log"),
		args:        append(append([]string{"--node-id", strconv.Itoa(id)}, args...), c.args...),
	}
	for _, o := range c.opts {
		o(b)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		running := b.cmd != nil && !isDone(b.done)
		b.mu.Unlock()
		if running {
			b.Kill() // also ends a paused (SIGSTOP) process
		}
		if t.Failed() {
			t.Logf("shoald %s log (%s), last lines:\n%s", b.NodeID(), b.Addr, b.LogTail(60))
		}
	})
	return b
}

// Join starts a new broker, node id len(Brokers)+1, with --join (it
// bootstraps nothing and waits to be admitted: shoalctl cluster
// add-broker) and the cluster's store and options, and appends it to
// Brokers. The channel reports the start: nil once the broker is ready
// (after its admission), or why it did not become ready.
func (c *Cluster) Join() (*Broker, <-chan error) {
	c.t.Helper()
	b := c.newBroker(len(c.Brokers)+1, FreeAddrs(c.t, 3), "--join")
	c.Brokers = append(c.Brokers, b)
	ready := make(chan error, 1)
	go func() { ready <- b.start() }()
	return b, ready
}

// StartAll starts every broker that is not running, all at once (a
// broker's start-up waits for its Raft groups' leaders, which needs a
// majority running), and waits until each is ready.
func (c *Cluster) StartAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(c.Brokers))
	for i, b := range c.Brokers {
		if b.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.start()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatalf("start cluster: %v", err)
	}
}

// NodeID returns the broker's --node-id ("1" when the flag is absent).
func (b *Broker) NodeID() string {
	id := "1"
	for i, a := range b.args {
		if a == "--node-id" && i+1 < len(b.args) {
			id = b.args[i+1]
		}
	}
	return id
}

// Running reports whether the broker's process has started and not exited
// (a paused process runs).
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil && !isDone(b.done)
}

// Pause stops the process with SIGSTOP: it keeps its sockets but answers
// nothing, as a broker cut off by a network partition would.
func (b *Broker) Pause() { b.sendSignal(syscall.SIGSTOP) }

// Resume continues a paused process with SIGCONT.
func (b *Broker) Resume() { b.sendSignal(syscall.SIGCONT) }

func (b *Broker) sendSignal(sig os.Signal) {
	b.t.Helper()
	b.mu.Lock()
	cmd := b.cmd
	b.mu.Unlock()
	if cmd == nil {
		b.t.Fatalf("signal %v: shoald not started", sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("signal %v to shoald %s: %v", sig, b.NodeID(), err)
	}
}

// Broker returns the broker with node id id.
func (c *Cluster) Broker(id int32) *Broker {
	c.t.Helper()
	if id < 1 || int(id) > len(c.Brokers) {
		c.t.Fatalf("no broker with node id %d", id)
	}
	return c.Brokers[id-1]
}

// Seeds returns every broker's Kafka address.
func (c *Cluster) Seeds() []string {
	s := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		s[i] = b.Addr
	}
	return s
}

// ClientOpts are the options of Client: every broker as a seed, metadata
// refreshed at most every 100 ms (so that a failover is seen quickly), and
// a long retry budget, so that a leader change is a retry and not an error.
func (c *Cluster) ClientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.Seeds()...),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryTimeout(60 * time.Second),
	}
}

// Client returns a kgo client seeded with every broker, closed at the end
// of the test. opts come after ClientOpts and may override them.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(c.ClientOpts(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns the cluster's shared kadm client.
func (c *Cluster) Admin() *kadm.Client {
	c.adminOnce.Do(func() {
		cl, err := kgo.NewClient(c.ClientOpts()...)
		if err != nil {
			c.t.Fatal(err)
		}
		c.admin = kadm.NewClient(cl)
	})
	return c.admin
}

// CreateTopic creates topic with the given partition count, replicated on
// every WAL group replica (replication factor -1).
func (c *Cluster) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := c.Admin().CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// Leaders returns the leader's node id of every partition of topic, as
// Metadata reports it now (-1 for none).
func (c *Cluster) Leaders(ctx context.Context, topic string) (map[int32]int32, error) {
	md, err := c.Admin().Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("topic %s not in metadata", topic)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	out := map[int32]int32{}
	for p, pd := range td.Partitions {
		out[p] = pd.Leader
		if pd.Err != nil {
			out[p] = -1
		}
	}
	return out, nil
}

// BusiestLeader returns the broker that leads the most partitions of topic
// (the lowest node id on a tie) and how many it leads.
func (c *Cluster) BusiestLeader(t testing.TB, topic string) (*Broker, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	leaders, err := c.Leaders(ctx, topic)
	if err != nil {
		t.Fatalf("leaders of %s: %v", topic, err)
	}
	counts := map[int32]int{}
	for _, l := range leaders {
		if l >= 1 {
			counts[l]++
		}
	}
	best, most := int32(-1), 0
	for id := int32(1); int(id) <= len(c.Brokers); id++ {
		if counts[id] > most {
			best, most = id, counts[id]
		}
	}
	if best < 0 {
		t.Fatalf("no partition of %s has a leader: %v", topic, leaders)
	}
	return c.Broker(best), most
}

// WaitLeaders waits until every partition of topic has a leader that is
// not one of the excluded node ids, and returns the leaders.
func (c *Cluster) WaitLeaders(t testing.TB, topic string, d time.Duration, exclude ...int32) map[int32]int32 {
	t.Helper()
	var leaders map[int32]int32
	Eventually(t, d, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		var err error
		if leaders, err = c.Leaders(ctx, topic); err != nil {
			return err
		}
		for p, l := range leaders {
			if l < 1 || slices.Contains(exclude, l) {
				return fmt.Errorf("partition %d: leader %d", p, l)
			}
		}
		return nil
	})
	return leaders
}

// WaitInSync waits until every partition of topic has a leader and every
// replica in its in-sync set, as Metadata reports them.
func (c *Cluster) WaitInSync(t testing.TB, topic string, d time.Duration) {
	t.Helper()
	Eventually(t, d, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		md, err := c.Admin().Metadata(ctx, topic)
		if err != nil {
			return err
		}
		td, ok := md.Topics[topic]
		if !ok || td.Err != nil {
			return fmt.Errorf("topic %s: %v", topic, td.Err)
		}
		for p, pd := range td.Partitions {
			if pd.Err != nil || pd.Leader < 1 || len(pd.ISR) < len(pd.Replicas) {
				return fmt.Errorf("partition %d: leader %d, replicas %v, in sync %v, err %v",
					p, pd.Leader, pd.Replicas, pd.ISR, pd.Err)
			}
		}
		return nil
	})
}

// WaitWritable writes one record (acks=all, idempotent) to each of the
// first partitions partitions of topic, creating the topic if it does not
// exist, and returns how long each partition took to acknowledge, retrying
// until d has passed. It fails the test if a partition is not writable
// by then.
func (c *Cluster) WaitWritable(t testing.TB, topic string, partitions int32, d time.Duration) map[int32]time.Duration {
	t.Helper()
	start := time.Now()
	cl, err := kgo.NewClient(append(c.ClientOpts(),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(d))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	if topic == clusterProbeTopic {
		c.ensureTopic(t, ctx, topic, partitions)
	}
	took := make(map[int32]time.Duration, partitions)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for p := range partitions {
		wg.Add(1)
		rec := &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "probe %d %s", p, start.Format(time.RFC3339Nano))}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("partition %d: %w", r.Partition, err)
			}
			took[r.Partition] = time.Since(start)
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("%s not writable within %v: %v", topic, d, firstErr)
	}
	return took
}

// ensureTopic creates topic unless it exists.
func (c *Cluster) ensureTopic(t testing.TB, ctx context.Context, topic string, partitions int32) {
	t.Helper()
	Eventually(t, time.Until(deadlineOf(ctx)), func() error {
		resp, err := c.Admin().CreateTopic(ctx, partitions, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return err
		}
		return nil
	})
}

func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(startTimeout)
}

// StopAll sends SIGTERM to every running broker at once and fails the
// test unless each exits with status 0.
func (c *Cluster) StopAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	codes := make([]int, len(c.Brokers))
	errs := make([]error, len(c.Brokers))
	for i, b := range c.Brokers {
		if !b.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], errs[i] = b.signalWait(syscall.SIGTERM, stopTimeout)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
	for i, code := range codes {
		if code != 0 {
			c.t.Errorf("shoald %d exited with status %d after SIGTERM, want 0", i+1, code)
		}
	}
}

// signalWait sends sig and waits up to d for the process to exit,
// returning its exit status; after d it kills the process and returns an
// error. Unlike Signal it never fails the test, so it may run on any
// goroutine.
func (b *Broker) signalWait(sig os.Signal, d time.Duration) (int, error) {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return cmd.ProcessState.ExitCode(), nil
	case <-time.After(d):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return -1, fmt.Errorf("shoald %s did not exit within %v of %v", b.NodeID(), d, sig)
	}
}
