package integration

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaVersion is the Kafka version sarama is told it talks to; it picks
// each request's version from it. 2.8 is sarama's default, and the oldest
// whose group requests (JoinGroup v7: KIP-394 member ids, KIP-345 static
// membership fields) are what a current Java client sends too.
var saramaVersion = sarama.V2_8_0_0

// TestGroupSarama runs the group scenario with sarama consumers
// (github.com/IBM/sarama ConsumerGroup, round-robin assignor).
func TestGroupSarama(t *testing.T) {
	testGroup(t, groupKind{
		start:    startSaramaMember,
		describe: describeClassic,
		expiry:   groupSessionTimeout + 20*time.Second,
	})
}

// saramaMember is a sarama group member: ConsumeClaim processes what the
// claim has ready and commits it synchronously before reading on, and
// sarama rejoins only after every ConsumeClaim has returned.
type saramaMember struct {
	name   string
	group  sarama.ConsumerGroup
	dialer *cutDialer
	l      *ledger
	t      testing.TB
	mu     sync.Mutex // held while a batch is processed and committed
	dead   atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

func startSaramaMember(t testing.TB, b *Broker, group, topic, name string, l *ledger) groupMember {
	m := &saramaMember{name: name, dialer: &cutDialer{}, l: l, t: t, done: make(chan struct{})}
	cfg := sarama.NewConfig()
	cfg.Version = saramaVersion
	cfg.ClientID = name
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = m.dialer
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = groupSessionTimeout
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	g, err := sarama.NewConsumerGroup([]string{b.Addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama member %s: %v", name, err)
	}
	m.group = g
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		for err := range g.Errors() {
			if !m.dead.Load() {
				t.Logf("sarama member %s: %v", name, err)
			}
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil && !m.dead.Load() {
			if err := g.Consume(ctx, []string{topic}, m); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				if ctx.Err() == nil && !m.dead.Load() {
					t.Logf("sarama member %s: consume: %v", name, err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}()
	t.Cleanup(func() {
		m.cancel()
		m.close()
	})
	return m
}

// Setup is part of sarama.ConsumerGroupHandler.
func (m *saramaMember) Setup(sarama.ConsumerGroupSession) error { return nil }

// Cleanup is part of sarama.ConsumerGroupHandler.
func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim processes the claim's messages in batches (what is ready,
// up to 500), each committed synchronously.
func (m *saramaMember) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case <-sess.Context().Done():
			return nil
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, msg)
		}
	drain:
		for len(batch) < 500 {
			select {
			case msg, ok := <-claim.Messages():
				if !ok {
					break drain
				}
				batch = append(batch, msg)
			default:
				break drain
			}
		}
		m.mu.Lock()
		if m.dead.Load() {
			m.mu.Unlock()
			return nil
		}
		for _, msg := range batch {
			m.l.process(m.name, msg.Partition, msg.Offset, msg.Value)
			sess.MarkMessage(msg, "")
		}
		sess.Commit()
		m.mu.Unlock()
	}
}

// close closes the group (leaving it if the broker is reachable), bounded
// so that a crashed member does not hold up the test.
func (m *saramaMember) close() {
	m.closed.Do(func() {
		done := make(chan struct{})
		go func() {
			if err := m.group.Close(); err != nil && !m.dead.Load() {
				m.t.Logf("sarama member %s: close: %v", m.name, err)
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			m.t.Logf("sarama member %s: close still running after 20s", m.name)
		}
		<-m.done
	})
}

func (m *saramaMember) leave(t testing.TB) {
	t.Helper()
	began := time.Now()
	m.cancel()
	m.close()
	t.Logf("member %s left in %v", m.name, time.Since(began).Round(time.Millisecond))
}

func (m *saramaMember) crash(t testing.TB) {
	m.mu.Lock()
	m.dead.Store(true)
	m.dialer.cutAll()
	m.mu.Unlock()
}
