package integration

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Quota enforcement against a real shoald. Shoal measures rates like Kafka
// (11 samples of 1 s, measured over at least 10 whole samples), so a
// client that starts idle may use 10 s worth of its quota at once and is
// then held to the quota: over its first T seconds it gets about
// quota * max(T, 10 s).

const (
	quotaRate     = 1 << 20 // bytes per second
	quotaAllowed  = 10 * quotaRate
	quotaValueLen = 1 << 10
)

// throttleSeen records the largest throttle_time_ms a kgo client saw.
type throttleSeen struct{ max atomic.Int64 }

// OnBrokerThrottle implements kgo.HookBrokerThrottle.
func (h *throttleSeen) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	for {
		old := h.max.Load()
		if int64(d) <= old || h.max.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

func (h *throttleSeen) get() time.Duration { return time.Duration(h.max.Load()) }

// setClientQuota sets key for a client id through kadm.
func setClientQuota(t *testing.T, b *Broker, clientID, key string, v float64) {
	t.Helper()
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &clientID}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: key, Value: v}},
	}})
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("set %s of client %s: %v %+v", key, clientID, err, res)
	}
}

// produceFor produces incompressible records as fast as the client goes
// for d and returns the bytes acknowledged within d and the largest
// throttle seen.
func produceFor(t *testing.T, b *Broker, topic, clientID string, d time.Duration) (int64, time.Duration) {
	t.Helper()
	var hook throttleSeen
	cl := b.Client(t, kgo.ClientID(clientID), kgo.DefaultProduceTopic(topic), kgo.WithHooks(&hook),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10),
		kgo.MaxBufferedBytes(4<<20))
	defer cl.Close()
	value := make([]byte, quotaValueLen)
	rand.Read(value)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var acked atomic.Int64
	for ctx.Err() == nil {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(r *kgo.Record, err error) {
			if err == nil && time.Now().Before(deadline) {
				acked.Add(int64(len(r.Value)))
			}
		})
	}
	return acked.Load(), hook.get()
}

// loadTopic produces n bytes of incompressible records into topic.
func loadTopic(t *testing.T, b *Broker, topic string, n int64) {
	t.Helper()
	cl := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	value := make([]byte, quotaValueLen)
	rand.Read(value)
	var failed atomic.Value
	for range n / quotaValueLen {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("load %s: %v", topic, err)
	}
	if err := failed.Load(); err != nil {
		t.Fatalf("load %s: %v", topic, err)
	}
}

// consumeFor consumes topic from the start for at most d or until it has
// want bytes, and returns the record bytes and the largest throttle seen.
func consumeFor(t *testing.T, b *Broker, topic, clientID string, d time.Duration, want int64) (int64, time.Duration) {
	t.Helper()
	var hook throttleSeen
	cl := b.Client(t, kgo.ClientID(clientID), kgo.ConsumeTopics(topic), kgo.WithHooks(&hook),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(256<<10), kgo.FetchMaxPartitionBytes(256<<10))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var got int64
	for got < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got += int64(len(r.Value)) })
	}
	return got, hook.get()
}

func within(got, want int64, tolerance float64) bool {
	return float64(got) >= (1-tolerance)*float64(want) && float64(got) <= (1+tolerance)*float64(want)
}

func TestQuotas(t *testing.T) {
	b := StartBroker(t)

	t.Run("produce", func(t *testing.T) {
		createTopic(t, b, "quota-produce", 1)
		setClientQuota(t, b, "quota-producer", "producer_byte_rate", quotaRate)
		const d = 10 * time.Second
		acked, throttle := produceFor(t, b, "quota-produce", "quota-producer", d)
		rate := float64(acked) / d.Seconds()
		t.Logf("quota %d B/s: produced %.0f B/s over %v, largest throttle %v", quotaRate, rate, d, throttle)
		if !within(acked, quotaRate*int64(d/time.Second), 0.2) {
			t.Errorf("produced %.0f B/s, want within 20%% of %d", rate, quotaRate)
		}
		if throttle <= 0 {
			t.Errorf("the throttled producer saw no throttle_time_ms")
		}
		acked, throttle = produceFor(t, b, "quota-produce", "quota-free", 3*time.Second)
		t.Logf("no quota: produced %.0f B/s, largest throttle %v", float64(acked)/3, throttle)
		if throttle != 0 || acked < 3*quotaRate*3/2 {
			t.Errorf("a producer without a quota: %d bytes in 3 s, throttle %v", acked, throttle)
		}
	})

	t.Run("fetch", func(t *testing.T) {
		createTopic(t, b, "quota-fetch", 1)
		const total = 2 * quotaAllowed
		loadTopic(t, b, "quota-fetch", total)
		setClientQuota(t, b, "quota-consumer", "consumer_byte_rate", quotaRate)
		const d = 5 * time.Second
		got, throttle := consumeFor(t, b, "quota-fetch", "quota-consumer", d, total)
		t.Logf("quota %d B/s: consumed %d B in %v (the quota admits %d at once), largest throttle %v",
			quotaRate, got, d, quotaAllowed, throttle)
		if !within(got, quotaAllowed, 0.2) {
			t.Errorf("consumed %d bytes in %v, want within 20%% of %d", got, d, quotaAllowed)
		}
		if throttle <= 0 {
			t.Errorf("the throttled consumer saw no throttle_time_ms")
		}
		got, throttle = consumeFor(t, b, "quota-fetch", "quota-free-consumer", d, total)
		if throttle != 0 || got < quotaAllowed*3/2 {
			t.Errorf("a consumer without a quota: %d bytes, throttle %v", got, throttle)
		}
	})

	t.Run("shoalctl", func(t *testing.T) {
		c := &ctl{t: t, bootstrap: b.Addr, admin: "http://" + b.MetricsAddr, home: t.TempDir()}
		for _, args := range [][]string{
			{"quotas", "alter", "--user", "alice", "--client-id", "<default>", "--set", "producer_byte_rate=2048", "--set", "request_percentage=12.5"},
			{"quotas", "alter", "--user", "alice", "--client-id", "<default>", "--delete", "request_percentage"},
		} {
			if r := c.run(args...); r.Code != 0 {
				t.Fatalf("shoalctl %v: exit %d: %s", args, r.Code, r.Stderr)
			}
		}
		if r := c.run("quotas", "alter", "--client-id", "x", "--set", "bogus=1"); r.Code != 1 || !strings.Contains(r.Stderr, "INVALID_REQUEST") {
			t.Errorf("unknown key: exit %d, stderr %q", r.Code, r.Stderr)
		}
		r := c.run("quotas", "describe", "--user", "alice", "--output", "json")
		var got []struct {
			Entity []struct {
				Type string  `json:"type"`
				Name *string `json:"name"`
			} `json:"entity"`
			Values map[string]float64 `json:"values"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || r.Code != 0 {
			t.Fatalf("describe --output json: exit %d, %v: %s %s", r.Code, err, r.Stdout, r.Stderr)
		}
		if len(got) != 1 || len(got[0].Entity) != 2 || got[0].Entity[1].Name != nil ||
			len(got[0].Values) != 1 || got[0].Values["producer_byte_rate"] != 2048 {
			t.Fatalf("described %s", r.Stdout)
		}
		r = c.run("quotas", "describe", "--client-id", "*")
		if r.Code != 0 || !strings.Contains(r.Stdout, "USER") ||
			!regexp.MustCompile(`alice\s+<default>\s+producer_byte_rate\s+2048\n`).MatchString(r.Stdout) ||
			!strings.Contains(r.Stdout, "quota-producer") {
			t.Errorf("describe table: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
}
