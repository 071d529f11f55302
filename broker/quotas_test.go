package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// fakeClock is a settable time for the quota arithmetic.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func near(got, want, tolerance float64) bool { return math.Abs(got-want) <= tolerance }
func imageWithQuotas(q map[metadata.QuotaEntity]map[string]float64) *metadata.Image {
	return &metadata.Image{Quotas: q}
}

func TestQuotaRateWindow(t *testing.T) {
	clk := newFakeClock()
	var r quotaRate
	// A fresh rate is measured over at least 10 whole samples.
	r.record(clk.now(), 1000)
	if w := r.window(clk.now()); w != 10*time.Second {
		t.Fatalf("fresh window %v, want 10s", w)
	}
	if v := r.measure(clk.now()); v != 100 {
		t.Fatalf("fresh rate %v, want 100/s", v)
	}
	clk.advance(2500 * time.Millisecond)
	if w := r.window(clk.now()); w != 10500*time.Millisecond {
		t.Fatalf("window after 2.5s %v, want 10.5s (2 whole samples + 8 assumed + the part)", w)
	}
	// A steady 100/s for 30 s measures 100/s, give or take the open sample.
	r = quotaRate{}
	for range 300 {
		r.record(clk.now(), 10)
		clk.advance(100 * time.Millisecond)
	}
	if v := r.measure(clk.now()); !near(v, 100, 10) {
		t.Fatalf("steady rate measured %v, want ~100/s", v)
	}
	// After a whole window of silence every sample has expired.
	clk.advance(quotaWindow)
	if v := r.measure(clk.now()); v != 0 {
		t.Fatalf("rate after a silent window %v, want 0", v)
	}
}

func TestQuotaRateThrottle(t *testing.T) {
	for _, tc := range []struct {
		name     string
		recorded float64 // at once, on a fresh rate (window 10 s)
		bound    float64
		limit    time.Duration
		want     time.Duration
	}{
		{"below", 500, 100, quotaWindow, 0},
		{"at the bound", 1000, 100, quotaWindow, 0},
		{"twice the bound", 2000, 100, quotaWindow, 10 * time.Second}, // (200-100)/100 * 10 s
		{"a fifth above", 1200, 100, quotaWindow, 2 * time.Second},
		{"capped", 100_000, 100, quotaWindow, quotaWindow},
		{"request cap", 2000, 100, quotaSampleWindow, time.Second},
		{"rounded to ms", 1000.5, 100, quotaWindow, 5 * time.Millisecond},
	} {
		var r quotaRate
		now := newFakeClock().now()
		r.record(now, tc.recorded)
		if got := r.throttle(now, tc.bound, tc.limit); got != tc.want {
			t.Errorf("%s: throttle %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestQuotaRateConverges drives a client that waits out every throttle,
// as KIP-219 makes it: over 60 s its rate settles at the quota.
func TestQuotaRateConverges(t *testing.T) {
	clk := newFakeClock()
	start := clk.now()
	var r quotaRate
	const bound, chunk = 1000.0, 300.0
	sent := 0.0
	for clk.now().Sub(start) < time.Minute {
		r.record(clk.now(), chunk)
		sent += chunk
		clk.advance(10*time.Millisecond + r.throttle(clk.now(), bound, quotaWindow))
	}
	// The first 10 s admit 10 windows' worth at once; then the quota holds.
	rate := sent / clk.now().Sub(start).Seconds()
	if !near(rate, bound, 0.2*bound) {
		t.Fatalf("achieved %v/s over a minute, want within 20%% of %v", rate, bound)
	}
}

func produceReq(n int) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	tp := kmsg.NewProduceRequestTopic()
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = make([]byte, n)
	tp.Partitions = append(tp.Partitions, p)
	req.Topics = append(req.Topics, tp)
	return req
}

func fetchResp(n int) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	rt := kmsg.NewFetchResponseTopic()
	p := kmsg.NewFetchResponseTopicPartition()
	p.RecordBatches = make([]byte, n)
	p.HighWatermark = 42
	rt.Partitions = append(rt.Partitions, p)
	resp.Topics = append(resp.Topics, rt)
	return resp
}

func TestQuotaManagerProduceAndFetch(t *testing.T) {
	clk := newFakeClock()
	im := imageWithQuotas(map[metadata.QuotaEntity]map[string]float64{
		{ClientID: metadata.QuotaNamed("app")}:   {metadata.QuotaProducerByteRate: 1000, metadata.QuotaConsumerByteRate: 1000},
		{ClientID: metadata.QuotaDefault}:        {metadata.QuotaConsumerByteRate: 500},
		{User: metadata.QuotaNamed("ANONYMOUS")}: {metadata.QuotaRequestPercentage: 10},
	})
	q := newQuotaManager(func() *metadata.Image { return im }, clk.now)

	// 5,000 bytes over the fresh 10 s window: 500/s, under 1,000/s.
	if d := q.onRequest("ANONYMOUS", "app", produceReq(5000)); d != 0 {
		t.Fatalf("first produce throttled %v", d)
	}
	// 15,000 bytes: 1,500/s, throttle (1500-1000)/1000 * 10 s.
	if d := q.onRequest("ANONYMOUS", "app", produceReq(10000)); d != 5*time.Second {
		t.Fatalf("second produce: throttle %v, want 5s", d)
	}
	// Another client id has no producer quota.
	if d := q.onRequest("ANONYMOUS", "other", produceReq(1<<20)); d != 0 {
		t.Fatalf("unlimited client throttled %v", d)
	}
	// The produce's response is not throttled again (its bytes counted).
	if d := q.onResponse("ANONYMOUS", "app", produceReq(1000), kmsg.NewPtrProduceResponse()); d != 0 {
		t.Fatalf("produce response throttled %v", d)
	}

	// Fetch: 20,000 bytes is 2,000/s over 1,000/s: the response loses its
	// records and they are not counted.
	fr := fetchResp(20000)
	if d := q.onResponse("ANONYMOUS", "app", kmsg.NewPtrFetchRequest(), fr); d != 10*time.Second {
		t.Fatalf("fetch: throttle %v, want 10s", d)
	}
	if p := fr.Topics[0].Partitions[0]; p.RecordBatches != nil || p.HighWatermark != 42 {
		t.Fatalf("throttled fetch kept %d record bytes (high watermark %d)", len(p.RecordBatches), p.HighWatermark)
	}
	fr = fetchResp(9000) // 900/s: the 20,000 were taken back
	if d := q.onResponse("ANONYMOUS", "app", kmsg.NewPtrFetchRequest(), fr); d != 0 || len(fr.Topics[0].Partitions[0].RecordBatches) != 9000 {
		t.Fatalf("fetch after a throttled one: throttle %v", d)
	}
	// /clients/<default>: each client id has its own rate.
	for _, c := range []string{"c1", "c2"} {
		if d := q.onResponse("ANONYMOUS", c, kmsg.NewPtrFetchRequest(), fetchResp(4000)); d != 0 {
			t.Fatalf("client %s throttled %v at 400/s of 500/s", c, d)
		}
	}
}

func TestQuotaManagerRequestTime(t *testing.T) {
	clk := newFakeClock()
	im := imageWithQuotas(map[metadata.QuotaEntity]map[string]float64{
		{User: metadata.QuotaDefault}: {metadata.QuotaRequestPercentage: 10},
	})
	q := newQuotaManager(func() *metadata.Image { return im }, clk.now)
	// 500 ms of handling in a 10 s window: 5%.
	q.recordRequestTime("ANONYMOUS", "a", 500*time.Millisecond)
	if d := q.onResponse("ANONYMOUS", "b", kmsg.NewPtrMetadataRequest(), kmsg.NewPtrMetadataResponse()); d != 0 {
		t.Fatalf("throttled %v at 5%%", d)
	}
	// 2 s more: 25%, throttle (25-10)/10 * 10 s, capped at one sample (1 s).
	// /users/<default> gives the user one rate over its client ids.
	q.recordRequestTime("ANONYMOUS", "b", 2*time.Second)
	if d := q.onResponse("ANONYMOUS", "c", kmsg.NewPtrMetadataRequest(), kmsg.NewPtrMetadataResponse()); d != time.Second {
		t.Fatalf("throttle %v, want 1s", d)
	}
	// Another user has its own rate.
	if d := q.onResponse("bob", "c", kmsg.NewPtrMetadataRequest(), kmsg.NewPtrMetadataResponse()); d != 0 {
		t.Fatalf("bob throttled %v", d)
	}
	// Responses without a throttle field are exempt.
	if d := q.onResponse("ANONYMOUS", "c", kmsg.NewPtrSASLHandshakeRequest(), kmsg.NewPtrSASLHandshakeResponse()); d != 0 {
		t.Fatalf("SASL handshake throttled %v", d)
	}
}

func TestQuotaManagerSweepsIdleSensors(t *testing.T) {
	clk := newFakeClock()
	im := imageWithQuotas(map[metadata.QuotaEntity]map[string]float64{
		{ClientID: metadata.QuotaDefault}: {metadata.QuotaProducerByteRate: 1000},
	})
	q := newQuotaManager(func() *metadata.Image { return im }, clk.now)
	sensors := func() int {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.mu.sensors)
	}
	for _, c := range []string{"a", "b", "c"} {
		q.onRequest("u", c, produceReq(10))
	}
	if n := sensors(); n != 3 {
		t.Fatalf("%d sensors, want 3", n)
	}
	clk.advance(quotaSweepInterval + time.Second)
	q.onRequest("u", "d", produceReq(10))
	if n := sensors(); n != 1 {
		t.Fatalf("%d sensors after the idle ones' sweep, want 1", n)
	}
	// No quotas at all: nothing is tracked.
	im = imageWithQuotas(nil)
	q.onRequest("u", "e", produceReq(10))
	if n := sensors(); n != 1 {
		t.Fatalf("%d sensors, want 1", n)
	}
}

// quotaBroker is a broker of its own: the quotas set here must not slow
// the tests that share a broker.
func quotaBroker(t *testing.T) (*Broker, *kadm.Client, context.Context) {
	t.Helper()
	b := startBroker(t)
	adm, ctx := admClient(t, b)
	return b, adm, ctx
}

// quotaEntity builds an entity of a user (nil: <default>) and, when
// given, a client id.
func quotaEntity(user *string, client ...*string) kadm.ClientQuotaEntity {
	e := kadm.ClientQuotaEntity{{Type: quotaEntityUser, Name: user}}
	for _, c := range client {
		e = append(e, kadm.ClientQuotaEntityComponent{Type: quotaEntityClientID, Name: c})
	}
	return e
}

func str(s string) *string { return &s }

func alterQuotas(t *testing.T, adm *kadm.Client, ctx context.Context, validate bool, entries ...kadm.AlterClientQuotaEntry) []error {
	t.Helper()
	alter := adm.AlterClientQuotas
	if validate {
		alter = adm.ValidateAlterClientQuotas
	}
	res, err := alter(ctx, entries)
	if err != nil || len(res) != len(entries) {
		t.Fatalf("alter client quotas: %v (%d results for %d entries)", err, len(res), len(entries))
	}
	errs := make([]error, len(res))
	for i, r := range res {
		errs[i] = r.Err
	}
	return errs
}

func describeQuotas(t *testing.T, adm *kadm.Client, ctx context.Context, strict bool, comps ...kadm.DescribeClientQuotaComponent) []string {
	t.Helper()
	got, err := adm.DescribeClientQuotas(ctx, strict, comps)
	if err != nil {
		t.Fatalf("describe client quotas %v: %v", comps, err)
	}
	var out []string
	for _, q := range got {
		s := q.Entity.String()
		for _, v := range q.Values {
			s += " " + v.String()
		}
		out = append(out, s)
	}
	return out
}

func TestClientQuotasAdmin(t *testing.T) {
	_, adm, ctx := quotaBroker(t)
	set := func(key string, v float64) kadm.AlterClientQuotaOp {
		return kadm.AlterClientQuotaOp{Key: key, Value: v}
	}
	errs := alterQuotas(t, adm, ctx, false,
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(str("alice"), str("app")), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1048576)}},
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(str("alice")), Ops: []kadm.AlterClientQuotaOp{set("request_percentage", 25.5)}},
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(nil), Ops: []kadm.AlterClientQuotaOp{set("consumer_byte_rate", 2048)}},
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: nil}}, Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 4096)}},
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: str("app")}}, Ops: []kadm.AlterClientQuotaOp{set("bogus_rate", 1)}},
	)
	if !slices.Equal(errs[:4], []error{nil, nil, nil, nil}) || !errors.Is(errs[4], kerr.InvalidRequest) {
		t.Fatalf("alter errors %v, want 4 successes and INVALID_REQUEST for the unknown key", errs)
	}

	all := []string{
		"{user=<default>} consumer_byte_rate=2048.000000",
		"{user=alice} request_percentage=25.500000",
		"{user=alice, client-id=app} producer_byte_rate=1048576.000000",
		"{client-id=<default>} producer_byte_rate=4096.000000",
	}
	exact := func(typ, name string) kadm.DescribeClientQuotaComponent {
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchName: &name, MatchType: kmsg.QuotasMatchTypeExact}
	}
	def := func(typ string) kadm.DescribeClientQuotaComponent {
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: kmsg.QuotasMatchTypeDefault}
	}
	anyOf := func(typ string) kadm.DescribeClientQuotaComponent {
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: kmsg.QuotasMatchTypeAny}
	}
	for _, tc := range []struct {
		name   string
		strict bool
		comps  []kadm.DescribeClientQuotaComponent
		want   []string
	}{
		{"everything", false, nil, all},
		{"strict nothing", true, nil, nil},
		{"exact user", false, []kadm.DescribeClientQuotaComponent{exact("user", "alice")}, all[1:3]},
		{"exact user strict", true, []kadm.DescribeClientQuotaComponent{exact("user", "alice")}, all[1:2]},
		{"exact both", true, []kadm.DescribeClientQuotaComponent{exact("user", "alice"), exact("client-id", "app")}, all[2:3]},
		{"default user", false, []kadm.DescribeClientQuotaComponent{def("user")}, all[:1]},
		{"default client", false, []kadm.DescribeClientQuotaComponent{def("client-id")}, all[3:]},
		{"any user", false, []kadm.DescribeClientQuotaComponent{anyOf("user")}, all[:3]},
		{"any user strict", true, []kadm.DescribeClientQuotaComponent{anyOf("user")}, all[:2]},
		{"any client", false, []kadm.DescribeClientQuotaComponent{anyOf("client-id")}, all[2:]},
		{"any user, exact client", false, []kadm.DescribeClientQuotaComponent{anyOf("user"), exact("client-id", "app")}, all[2:3]},
		{"no such user", false, []kadm.DescribeClientQuotaComponent{exact("user", "bob")}, nil},
		{"ip", false, []kadm.DescribeClientQuotaComponent{anyOf("ip")}, nil},
	} {
		if got := describeQuotas(t, adm, ctx, tc.strict, tc.comps...); !slices.Equal(got, tc.want) {
			t.Errorf("%s: described\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}

	for _, tc := range []struct {
		name  string
		comps []kadm.DescribeClientQuotaComponent
		want  error
	}{
		{"exact without name", []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: kmsg.QuotasMatchTypeExact}}, kerr.InvalidRequest},
		{"default with name", []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: str("x"), MatchType: kmsg.QuotasMatchTypeDefault}}, kerr.InvalidRequest},
		{"type twice", []kadm.DescribeClientQuotaComponent{def("user"), anyOf("user")}, kerr.InvalidRequest},
		{"ip with user", []kadm.DescribeClientQuotaComponent{anyOf("ip"), anyOf("user")}, kerr.InvalidRequest},
		{"unknown type", []kadm.DescribeClientQuotaComponent{anyOf("group")}, kerr.UnsupportedVersion},
		{"unknown match", []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 7}}, kerr.UnsupportedVersion},
	} {
		if _, err := adm.DescribeClientQuotas(ctx, false, tc.comps); !errors.Is(err, tc.want) {
			t.Errorf("describe %s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// validate_only checks and changes nothing.
	errs = alterQuotas(t, adm, ctx, true,
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(str("bob")), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 10)}},
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(str("bob")), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 20)}},
	)
	if !errors.Is(errs[0], kerr.InvalidRequest) || !errors.Is(errs[1], kerr.InvalidRequest) {
		t.Fatalf("validate of an entity given twice: %v, want INVALID_REQUEST for both", errs)
	}
	errs = alterQuotas(t, adm, ctx, true,
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(str("bob")), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 10)}},
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(str("carol")), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1.5)}},
	)
	if errs[0] != nil || !errors.Is(errs[1], kerr.InvalidRequest) {
		t.Fatalf("validate: %v, want ok and INVALID_REQUEST for a fractional byte rate", errs)
	}
	if got := describeQuotas(t, adm, ctx, false); !slices.Equal(got, all) {
		t.Fatalf("validate_only changed the quotas: %q", got)
	}

	// Refused entities, per entry.
	for name, e := range map[string]kadm.AlterClientQuotaEntry{
		"empty entity": {Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
		"empty name":   {Entity: quotaEntity(str("")), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
		"ip":           {Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: str("127.0.0.1")}}, Ops: []kadm.AlterClientQuotaOp{set("connection_creation_rate", 1)}},
		"unknown type": {Entity: kadm.ClientQuotaEntity{{Type: "group", Name: str("g")}}, Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
		"type twice":   {Entity: kadm.ClientQuotaEntity{{Type: "user", Name: str("a")}, {Type: "user", Name: str("b")}}, Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1)}},
		"key twice":    {Entity: quotaEntity(str("a")), Ops: []kadm.AlterClientQuotaOp{set("producer_byte_rate", 1), {Key: "producer_byte_rate", Remove: true}}},
		"negative":     {Entity: quotaEntity(str("a")), Ops: []kadm.AlterClientQuotaOp{set("request_percentage", -1)}},
	} {
		if errs := alterQuotas(t, adm, ctx, false, e); !errors.Is(errs[0], kerr.InvalidRequest) {
			t.Errorf("%s: %v, want INVALID_REQUEST", name, errs[0])
		}
	}

	// Removing keys (also one not set); the last one removes the entity.
	errs = alterQuotas(t, adm, ctx, false,
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(str("alice")), Ops: []kadm.AlterClientQuotaOp{
			{Key: "request_percentage", Remove: true}, {Key: "producer_byte_rate", Remove: true}}},
		kadm.AlterClientQuotaEntry{Entity: quotaEntity(str("alice"), str("app")), Ops: []kadm.AlterClientQuotaOp{set("consumer_byte_rate", 300)}},
	)
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("remove: %v", errs)
	}
	want := []string{all[0], "{user=alice, client-id=app} consumer_byte_rate=300.000000 producer_byte_rate=1048576.000000", all[3]}
	if got := describeQuotas(t, adm, ctx, false); !slices.Equal(got, want) {
		t.Fatalf("after the removal:\n%q\nwant\n%q", got, want)
	}
}

// throttleHook records the throttles a kgo client sees.
type throttleHook struct{ max atomic.Int64 }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	for {
		old := h.max.Load()
		if int64(d) <= old || h.max.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// TestProduceThrottled checks the response side end to end: a produce
// above its client's quota answers with throttle_time_ms, and the client
// without a quota is not throttled.
func TestProduceThrottled(t *testing.T) {
	b, adm, ctx := quotaBroker(t)
	createTopic(t, b, "quota-t", 1)
	errs := alterQuotas(t, adm, ctx, false, kadm.AlterClientQuotaEntry{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: str("slow")}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10_000}},
	})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	value := make([]byte, 150_000) // incompressible: kgo compresses batches
	rand.Read(value)
	for _, tc := range []struct {
		client    string
		throttled bool
	}{{"fast", false}, {"slow", true}} {
		var hook throttleHook
		cl := newClient(t, b, kgo.ClientID(tc.client), kgo.WithHooks(&hook), kgo.DefaultProduceTopic("quota-t"))
		// 150 KB at once over a fresh 10 s window: 15 KB/s, throttle 5 s.
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", tc.client, err)
		}
		got := time.Duration(hook.max.Load())
		if tc.throttled && !near(got.Seconds(), 5, 0.5) || !tc.throttled && got != 0 {
			t.Errorf("client %s: throttle %v", tc.client, got)
		}
		cl.Close()
	}
}
