package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ledger is what a consumer-group test knows: every record the producer
// had acknowledged, and every time a group member processed a record.
// Processing counts are the assertion: each acknowledged record must be
// processed exactly once by the group.
type ledger struct {
	mu        sync.Mutex
	produced  map[recordPos]string   // acknowledged (partition, offset) -> value
	processed map[recordPos][]string // (partition, offset) -> "member=value", one per processing
	byMember  map[string]int
	prodErr   error
}

func newLedger() *ledger {
	return &ledger{produced: map[recordPos]string{}, processed: map[recordPos][]string{}, byMember: map[string]int{}}
}

// ack records an acknowledgement of the producer.
func (l *ledger) ack(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if l.prodErr == nil {
			l.prodErr = err
		}
		return
	}
	l.produced[recordPos{r.Partition, r.Offset}] = string(r.Value)
}

// process records that member processed the record at (p, off).
func (l *ledger) process(member string, p int32, off int64, value []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pos := recordPos{p, off}
	l.processed[pos] = append(l.processed[pos], member+"="+string(value))
	l.byMember[member]++
}

// count returns how many records member has processed.
func (l *ledger) count(member string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byMember[member]
}

// producedCount returns the number of acknowledged records.
func (l *ledger) producedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.produced)
}

// waitCaughtUp waits until every record acknowledged so far has been
// processed at least once (duplicates are check's business).
func (l *ledger) waitCaughtUp(t testing.TB, d time.Duration, what string) {
	t.Helper()
	l.mu.Lock()
	want := make([]recordPos, 0, len(l.produced))
	for pos := range l.produced {
		want = append(want, pos)
	}
	l.mu.Unlock()
	began := time.Now()
	Eventually(t, d, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		missing := 0
		var first recordPos
		for _, pos := range want {
			if len(l.processed[pos]) == 0 {
				if missing == 0 || pos.partition < first.partition ||
					(pos.partition == first.partition && pos.offset < first.offset) {
					first = pos
				}
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%s: %d of %d acknowledged records not processed yet (e.g. partition %d offset %d)",
				what, missing, len(want), first.partition, first.offset)
		}
		return nil
	})
	t.Logf("%s: %d records processed after %v", what, len(want), time.Since(began).Round(time.Millisecond))
}

// check asserts exactly-once processing: every acknowledged record was
// processed exactly once, with the value that was acknowledged, and
// nothing else was processed.
func (l *ledger) check(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.prodErr != nil {
		t.Fatalf("producer: %v", l.prodErr)
	}
	var dups, missing, wrong, unknown []string
	for pos, v := range l.produced {
		got := l.processed[pos]
		switch {
		case len(got) == 0:
			missing = append(missing, fmt.Sprintf("%d/%d", pos.partition, pos.offset))
		case len(got) > 1:
			dups = append(dups, fmt.Sprintf("%d/%d by %v", pos.partition, pos.offset, got))
		}
		for _, g := range got {
			if _, val, _ := strings.Cut(g, "="); val != v {
				wrong = append(wrong, fmt.Sprintf("%d/%d: %q, acknowledged %q", pos.partition, pos.offset, g, v))
			}
		}
	}
	for pos, got := range l.processed {
		if _, ok := l.produced[pos]; !ok {
			unknown = append(unknown, fmt.Sprintf("%d/%d %v", pos.partition, pos.offset, got))
		}
	}
	report := func(what string, s []string) {
		if len(s) > 0 {
			sort.Strings(s)
			t.Errorf("%d records %s, e.g. %v", len(s), what, s[:min(5, len(s))])
		}
	}
	report("processed more than once", dups)
	report("never processed", missing)
	report("processed with a different value", wrong)
	report("processed but never acknowledged", unknown)
	t.Logf("exactly-once check over %d records; per member: %v", len(l.produced), l.byMember)
}

// keyedProducer writes keyed records (997 keys, hash-partitioned by kgo's
// default partitioner) at a steady pace until stopped, recording every
// acknowledgement in a ledger.
type keyedProducer struct {
	cl     *kgo.Client
	topic  string
	l      *ledger
	seq    atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newKeyedProducer(t testing.TB, b *Broker, topic string, l *ledger) *keyedProducer {
	cl := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	return &keyedProducer{cl: cl, topic: topic, l: l}
}

func (p *keyedProducer) produce(ctx context.Context) {
	seq := p.seq.Add(1) - 1
	r := &kgo.Record{Key: fmt.Appendf(nil, "key-%03d", seq%997), Value: fmt.Appendf(nil, "value-%07d", seq)}
	p.cl.Produce(ctx, r, p.l.ack)
}

// start produces one record every interval until stop.
func (p *keyedProducer) start(t testing.TB, every time.Duration) {
	ctx, cancel := context.WithCancel(t.Context())
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				// Not ctx: stopping the pace must not fail what is buffered.
				p.produce(t.Context())
			}
		}
	}()
	t.Cleanup(p.stopPacing)
}

func (p *keyedProducer) stopPacing() {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
}

// stop ends pacing and waits for every acknowledgement.
func (p *keyedProducer) stop(t testing.TB) {
	t.Helper()
	p.stopPacing()
	p.flush(t)
}

func (p *keyedProducer) flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// cutDialer dials TCP and can cut every connection it made and refuse new
// ones: a client behind it goes silent without saying goodbye, as if its
// process had died (no LeaveGroup, no more heartbeats).
type cutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

var errCut = errors.New("integration: connection cut by the test")

// DialContext is the kgo.Dialer function.
func (d *cutDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errCut
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.conns = append(d.conns, c)
	return c, nil
}

// Dial is the golang.org/x/net/proxy.Dialer method (sarama's Net.Proxy.Dialer).
func (d *cutDialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.DialContext(ctx, network, addr)
}

// cutAll closes every connection and refuses new ones.
func (d *cutDialer) cutAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// groupMember is one consumer of a group test, whatever its client.
type groupMember interface {
	// leave closes the member cleanly: it stops consuming and leaves the
	// group.
	leave(t testing.TB)
	// crash stops the member between two processed polls (after the
	// commit of the last one) and cuts its connections, so that it never
	// leaves the group: the coordinator must expire its session.
	crash(t testing.TB)
}

// groupView is what a describe of the group showed: its state, members
// and how many members own each partition of the topic.
type groupView struct {
	state   string
	members int
	owners  map[int32]int
}

// balanced reports whether the group is stable with n members that own
// every one of the topic's partitions exactly once.
func (v groupView) balanced(n int, partitions int32) error {
	if v.state != "Stable" || v.members != n {
		return fmt.Errorf("group %s with %d members, want Stable with %d", v.state, v.members, n)
	}
	for p := range partitions {
		if v.owners[p] != 1 {
			return fmt.Errorf("partition %d has %d owners (%v)", p, v.owners[p], v.owners)
		}
	}
	return nil
}

// describeClassic describes a classic group through DescribeGroups.
func describeClassic(ctx context.Context, adm *kadm.Client, group, topic string) (groupView, error) {
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return groupView{}, err
	}
	g, ok := gs[group]
	if !ok {
		return groupView{}, fmt.Errorf("group %s not in the DescribeGroups answer", group)
	}
	if g.Err != nil {
		return groupView{}, g.Err
	}
	v := groupView{state: g.State, members: len(g.Members), owners: map[int32]int{}}
	for _, m := range g.Members {
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, ta := range c.Topics {
			if ta.Topic == topic {
				for _, p := range ta.Partitions {
					v.owners[p]++
				}
			}
		}
	}
	return v, nil
}

// describeNextGen describes a KIP-848 group through ConsumerGroupDescribe.
func describeNextGen(ctx context.Context, adm *kadm.Client, group, topic string) (groupView, error) {
	gs, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		return groupView{}, err
	}
	g, ok := gs[group]
	if !ok {
		return groupView{}, fmt.Errorf("group %s not in the ConsumerGroupDescribe answer", group)
	}
	if g.Err != nil {
		return groupView{}, g.Err
	}
	v := groupView{state: g.State, members: len(g.Members), owners: map[int32]int{}}
	for _, m := range g.Members {
		for p := range m.Assignment[topic] {
			v.owners[p]++
		}
	}
	return v, nil
}

// committed returns the group's committed offset of every partition of
// topic that has one.
func committed(t testing.TB, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	// Right after a broker restart the admin client's old connections fail
	// (EOF) and the coordinator may still be moving: retry until a deadline.
	var out map[int32]int64
	Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		os, err := adm.FetchOffsetsForTopics(ctx, group, topic)
		if err != nil {
			return fmt.Errorf("fetch offsets of %s: %w", group, err)
		}
		got := map[int32]int64{}
		var ferr error
		os.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil && ferr == nil {
				ferr = fmt.Errorf("fetch offsets of %s: partition %d: %w", group, o.Partition, o.Err)
			}
			if o.Topic == topic && o.At >= 0 {
				got[o.Partition] = o.At
			}
		})
		if ferr != nil {
			return ferr
		}
		out = got
		return nil
	})
	return out
}
