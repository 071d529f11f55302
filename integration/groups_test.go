package integration

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupSessionTimeout is the session timeout of the classic group tests'
// members: Kafka's default group.min.session.timeout.ms, the shortest a
// standard broker accepts, and what a crashed member costs the test.
const groupSessionTimeout = 6 * time.Second

// groupKind is a consumer-group client under test: how to start a member
// and how to describe its group.
type groupKind struct {
	start    func(t testing.TB, b *Broker, group, topic, name string, l *ledger) groupMember
	describe func(ctx context.Context, adm *kadm.Client, group, topic string) (groupView, error)
	// expiry bounds how long the coordinator takes to notice a crashed
	// member (its session timeout) and to rebalance.
	expiry time.Duration
	// args are extra shoald flags.
	args []string
}

// shoaldHelp is shoald --help, read once.
var shoaldHelp = sync.OnceValue(func() string {
	out, _ := exec.Command(ShoaldPath(), "--help").CombinedOutput()
	return string(out)
})

// shoaldHasFlag reports whether shoald --help lists flag.
func shoaldHasFlag(flag string) bool {
	return strings.Contains(shoaldHelp(), flag+" ")
}

// testGroup runs the group scenario of issue [C] on a 12-partition topic
// while a producer writes keyed records: three members consume; one
// leaves cleanly, one joins, one crashes (its session must expire); the
// producer stops and the group drains the topic. Then every member
// closes, more records are written, the broker is killed (kill -9) and
// restarted, and a new member must resume exactly from the committed
// offsets.
//
// What is asserted is exactly-once processing, which these clients give
// when the broker is right: each member processes a poll's records and
// commits them synchronously before it lets a rebalance proceed (kgo's
// BlockRebalanceOnPoll; sarama's session waits for ConsumeClaim to
// return), and a crash is injected only between a commit and the next
// poll. So a record processed twice means the broker lost or rewound a
// commit, or gave one partition to two members; a record never processed
// means it lost a partition or a record.
func testGroup(t *testing.T, kind groupKind) {
	const partitions = 12
	topic, group := "orders", "billing"
	b := StartBroker(t, WithArgs(kind.args...))
	createTopic(t, b, topic, partitions)
	adm := kadm.NewClient(b.Client(t))
	l := newLedger()
	stable := func(n int, what string) {
		t.Helper()
		began := time.Now()
		Eventually(t, 60*time.Second, func() error {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			v, err := kind.describe(ctx, adm, group, topic)
			if err != nil {
				return err
			}
			return v.balanced(n, partitions)
		})
		t.Logf("%s: group stable with %d members after %v", what, n, time.Since(began).Round(time.Millisecond))
	}
	progress := func(name string, what string) {
		t.Helper()
		n := l.count(name)
		Eventually(t, 30*time.Second, func() error {
			if c := l.count(name); c <= n {
				return fmt.Errorf("%s: member %s has processed nothing new (%d records)", what, name, c)
			}
			return nil
		})
	}

	p := newKeyedProducer(t, b, topic, l)
	p.start(t, 2*time.Millisecond)
	ms := map[string]groupMember{}
	for _, name := range []string{"a", "b", "c"} {
		ms[name] = kind.start(t, b, group, topic, name, l)
	}
	stable(3, "three members")
	l.waitCaughtUp(t, 30*time.Second, "three members")
	for _, name := range []string{"a", "b", "c"} {
		progress(name, "three members")
	}

	ms["a"].leave(t)
	delete(ms, "a")
	stable(2, "after a left")
	l.waitCaughtUp(t, 30*time.Second, "after a left")

	ms["d"] = kind.start(t, b, group, topic, "d", l)
	stable(3, "after d joined")
	progress("d", "after d joined")
	l.waitCaughtUp(t, 30*time.Second, "after d joined")

	crashed := time.Now()
	ms["b"].crash(t)
	delete(ms, "b")
	stable(2, "after b crashed")
	t.Logf("b's session expired and the group rebalanced %v after the crash", time.Since(crashed).Round(time.Millisecond))
	if d := time.Since(crashed); d > kind.expiry {
		t.Errorf("b's crash took %v to be noticed, want at most %v", d, kind.expiry)
	}
	progress("c", "after b crashed")
	progress("d", "after b crashed")

	p.stop(t)
	l.waitCaughtUp(t, 60*time.Second, "after the producer stopped")
	l.check(t)
	for name, m := range ms {
		m.leave(t)
		delete(ms, name)
	}
	end := endOffsets(t, b, topic)
	if got := committed(t, adm, group, topic); !maps.Equal(got, end) {
		t.Fatalf("committed offsets %v, want the end offsets %v", got, end)
	}

	// Records nobody has consumed yet, then a broker crash: the commits
	// must survive it, and a new member must start exactly there.
	for range 1200 {
		p.produce(t.Context())
	}
	p.flush(t)
	b.Kill()
	b.Restart()
	if got := committed(t, adm, group, topic); !maps.Equal(got, end) {
		t.Fatalf("after kill -9 and restart: committed offsets %v, want %v", got, end)
	}
	ms["e"] = kind.start(t, b, group, topic, "e", l)
	stable(1, "new member after the restart")
	l.waitCaughtUp(t, 60*time.Second, "new member after the restart")
	ms["e"].leave(t)
	l.check(t)
	if got, want := l.count("e"), 1200; got != want {
		t.Errorf("the member after the restart processed %d records, want %d (those written after the last commit)", got, want)
	}
	if got, end := committed(t, adm, group, topic), endOffsets(t, b, topic); !maps.Equal(got, end) {
		t.Errorf("committed offsets %v, want the end offsets %v", got, end)
	}
}

// TestGroupFranzGo runs the group scenario with franz-go consumers on the
// classic protocol (cooperative-sticky, kgo's default balancer).
func TestGroupFranzGo(t *testing.T) {
	testGroup(t, groupKind{
		start: func(t testing.TB, b *Broker, group, topic, name string, l *ledger) groupMember {
			return startKgoMember(t, b, group, topic, name, l,
				kgo.SessionTimeout(groupSessionTimeout), kgo.HeartbeatInterval(500*time.Millisecond))
		},
		describe: describeClassic,
		expiry:   groupSessionTimeout + 20*time.Second,
	})
}

// TestGroupNextGen runs the group scenario with franz-go's KIP-848
// consumers (kgo.ServerSideBalancer with the range assignor): the broker
// assigns the partitions through ConsumerGroupHeartbeat. The describe goes
// through ConsumerGroupDescribe, so a client that fell back to the
// classic protocol fails the test.
//
// The session timeout of a KIP-848 member is the broker's
// (group.consumer.session.timeout.ms, 45 s in Kafka, as the heartbeat
// interval's 5 s); when shoald has flags for them the test sets 6 s and
// 500 ms, else a crash costs it 45 s.
func TestGroupNextGen(t *testing.T) {
	kind := groupKind{
		start: func(t testing.TB, b *Broker, group, topic, name string, l *ledger) groupMember {
			return startKgoMember(t, b, group, topic, name, l,
				kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
		},
		describe: describeNextGen,
		expiry:   45*time.Second + 20*time.Second,
	}
	if shoaldHasFlag("--group-consumer-session-timeout") && shoaldHasFlag("--group-consumer-heartbeat-interval") {
		kind.args = []string{"--group-consumer-session-timeout", groupSessionTimeout.String(),
			"--group-consumer-heartbeat-interval", "500ms"}
		kind.expiry = groupSessionTimeout + 20*time.Second
	} else {
		t.Log("shoald has no --group-consumer-session-timeout: members' sessions last 45 s")
	}
	testGroup(t, kind)
}

// kgoMember is a franz-go group member that processes each poll and
// commits it synchronously before allowing a rebalance.
type kgoMember struct {
	name   string
	cl     *kgo.Client
	dialer *cutDialer
	mu     sync.Mutex // held from a poll's return until its commit is done
	dead   atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
}

func startKgoMember(t testing.TB, b *Broker, group, topic, name string, l *ledger, opts ...kgo.Opt) *kgoMember {
	m := &kgoMember{name: name, dialer: &cutDialer{}, done: make(chan struct{})}
	all := append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr),
		kgo.ClientID(name),
		kgo.Dialer(m.dialer.DialContext),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.RetryTimeout(5 * time.Second),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.run(t, ctx, l)
	t.Cleanup(func() {
		m.cancel()
		<-m.done
		m.close()
	})
	return m
}

func (m *kgoMember) run(t testing.TB, ctx context.Context, l *ledger) {
	defer close(m.done)
	for {
		fs := m.cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil || fs.IsClientClosed() {
			m.cl.AllowRebalance()
			return
		}
		m.mu.Lock()
		if m.dead.Load() {
			m.mu.Unlock()
			m.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("member %s: fetch %s/%d: %v", m.name, topic, p, err)
		})
		recs := fs.Records()
		for _, r := range recs {
			l.process(m.name, r.Partition, r.Offset, r.Value)
		}
		if len(recs) > 0 {
			// Not ctx: a leave cancels it, and must not abort the commit
			// of records already processed.
			cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			if err := m.cl.CommitRecords(cctx, recs...); err != nil {
				t.Logf("member %s: commit of %d records: %v", m.name, len(recs), err)
			}
			cancel()
		}
		m.mu.Unlock()
		m.cl.AllowRebalance()
	}
}

// close closes the client, bounded: a crashed member cannot reach the
// broker to leave, and must not hold up the test.
func (m *kgoMember) close() {
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.cl.LeaveGroupContext(ctx)
		m.cl.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
	}
}

func (m *kgoMember) leave(t testing.TB) {
	t.Helper()
	m.cancel()
	<-m.done
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := m.cl.LeaveGroupContext(ctx); err != nil {
		t.Errorf("member %s: leave group: %v", m.name, err)
	}
	m.cl.Close()
	t.Logf("member %s left in %v", m.name, time.Since(began).Round(time.Millisecond))
}

func (m *kgoMember) crash(t testing.TB) {
	m.mu.Lock()
	m.dead.Store(true)
	m.dialer.cutAll()
	m.mu.Unlock()
	m.cancel()
	<-m.done
}
