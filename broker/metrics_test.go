package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/protocol/prototest"
)

// produceCounter counts the Produce requests a kgo client wrote.
type produceCounter struct{ n atomic.Int64 }

func (c *produceCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Produce.Int16() && err == nil {
		c.n.Add(1)
	}
}

// TestMetrics runs a produce/consume with a committing consumer group
// against a broker and checks every metric family on its /metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(c *Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.Groups.InitialRebalanceDelay = -1
		c.UploadAge = time.Hour // keep the data in the WAL: pending bytes and upload lag
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const topic, grp, perPartition = "metered", "metered-group", 10
	createTopic(t, b, topic, 2)

	// 10 records per partition, one Produce request each at least.
	var writes produceCounter
	prod := newClient(t, b, kgo.WithHooks(&writes), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(partition int32, n int) {
		t.Helper()
		for i := range n {
			r := &kgo.Record{Partition: partition, Value: fmt.Appendf(nil, "value-%d", i)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	produce(0, perPartition)
	produce(1, perPartition)

	// A group consumes everything and commits; then 3 more records on
	// partition 0 make its lag 3.
	cons := newClient(t, b, kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for read := 0; read < 2*perPartition; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records: %v", read, err)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		read += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	produce(0, 3)

	// A produce to a topic that does not exist: one partition error.
	c := dialRaw(t, b)
	req := produceRequest("no-such-topic", 0, -1, prototest.Batch(prototest.Values("x")))
	if p := c.do(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode == 0 {
		t.Fatal("produce to a missing topic succeeded")
	}

	m := scrapeMetrics(t, b.metrics.addr().String())

	// Broker and build.
	m.want(t, "shoal_broker_ready", eq(1))
	m.want(t, "shoal_build_info", eq(1), "goversion", runtime.Version())

	// Requests.
	m.want(t, "shoal_requests_total", atLeast(float64(writes.n.Load())), "api", "Produce")
	m.want(t, "shoal_request_duration_seconds", atLeast(float64(writes.n.Load())), "api", "Produce")
	m.want(t, "shoal_request_errors_total", eq(0), "api", "Produce")
	m.want(t, "shoal_request_errors_total", eq(0), "api", "DeleteTopics") // every API, before its first request
	for _, api := range []string{"Fetch", "JoinGroup", "SyncGroup", "OffsetCommit", "Metadata"} {
		m.want(t, "shoal_requests_total", atLeast(1), "api", api)
	}
	m.want(t, "shoal_produce_bytes_total", atLeast(2*perPartition*len("value-0")), "topic", topic)
	m.want(t, "shoal_fetch_bytes_total", atLeast(2*perPartition*len("value-0")), "topic", topic)
	m.want(t, "shoal_partition_errors_total", eq(1), "api", "Produce", "error", "UNKNOWN_TOPIC_OR_PARTITION")

	// WAL and uploads.
	m.want(t, "shoal_wal_commit_duration_seconds", atLeast(2*perPartition+3), "group", "0")
	m.want(t, "shoal_wal_committed_bytes_total", atLeast(2*perPartition*len("value-0")), "group", "0")
	m.want(t, "shoal_wal_pending_bytes", atLeast(1), "group", "0")
	m.want(t, "shoal_wal_disk_bytes", atLeast(1), "group", "0")
	m.want(t, "shoal_wal_tail_cache_hits_total", atLeast(1), "group", "0")
	m.want(t, "shoal_wal_tail_cache_misses_total", eq(0), "group", "0")
	m.want(t, "shoal_wal_tail_cache_bytes", atLeast(1), "group", "0")
	m.want(t, "shoal_upload_lag_seconds", between(0.001, 60), "group", "0")
	m.want(t, "shoal_uploads_total", eq(0))
	m.want(t, "shoal_upload_bytes_total", eq(0))

	// Raft: a single node leads both groups.
	m.want(t, "shoal_raft_state", eq(2), "group", "metadata")
	m.want(t, "shoal_raft_state", eq(2), "group", "wal-0")
	m.want(t, "shoal_raft_term", atLeast(1), "group", "wal-0")
	m.want(t, "shoal_raft_applied_index", atLeast(1), "group", "metadata")
	m.want(t, "shoal_raft_term", atLeast(1), "group", "metadata")
	m.want(t, "shoal_raft_last_index", atLeast(1), "group", "metadata")
	applied := m.want(t, "shoal_raft_applied_index", atLeast(2*perPartition+3), "group", "wal-0")
	m.want(t, "shoal_raft_last_index", atLeast(applied), "group", "wal-0")

	// Object store and block cache: present, nothing uploaded yet.
	m.want(t, "shoal_object_requests_total", eq(0), "reason", "upload", "op", "put")
	m.want(t, "shoal_object_bytes_total", eq(0), "reason", "fetch", "direction", "get")
	m.want(t, "shoal_object_request_errors_total", eq(0), "reason", "gc")
	for _, name := range []string{"shoal_block_cache_hits_total", "shoal_block_cache_misses_total",
		"shoal_block_cache_evictions_total", "shoal_block_cache_bytes", "shoal_block_cache_blocks"} {
		m.want(t, name, eq(0))
	}

	// Groups: one stable group with one member; its lag is the end offset
	// minus the committed offset, per partition.
	m.want(t, "shoal_consumer_groups", eq(1), "state", "Stable")
	m.want(t, "shoal_consumer_groups", eq(0), "state", "Empty")
	m.want(t, "shoal_consumer_group_members", eq(1), "group", grp)
	adm := kadm.NewClient(newClient(t, b))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	committed, err := adm.FetchOffsets(ctx, grp)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	for p, wantLag := range []int64{3, 0} {
		end, _ := ends.Lookup(topic, int32(p))
		off, _ := committed.Lookup(topic, int32(p))
		if got := end.Offset - off.At; got != wantLag {
			t.Fatalf("partition %d: end %d - committed %d = %d, want %d", p, end.Offset, off.At, got, wantLag)
		}
		m.want(t, "shoal_consumer_group_lag", eq(float64(wantLag)), "group", grp, "topic", topic, "partition", fmt.Sprint(p))
	}

	// The Go and process collectors.
	m.want(t, "go_goroutines", atLeast(1))
	m.want(t, "process_open_fds", atLeast(1))
}

// metricFamilies is a parsed /metrics page.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics GETs /metrics from addr and parses it with the Prometheus
// text parser.
func scrapeMetrics(t *testing.T, addr string) metricFamilies {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("get /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get /metrics: %s, %v", resp.Status, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// want finds the sample of family name with the given labels (name, value
// pairs; other labels may be present), checks its value and returns it.
// The value of a histogram is its sample count.
func (m metricFamilies) want(t *testing.T, name string, check func(float64) error, labels ...string) float64 {
	t.Helper()
	fam := m[name]
	if fam == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	for _, s := range fam.Metric {
		if !hasLabels(s, labels) {
			continue
		}
		var v float64
		switch {
		case s.Counter != nil:
			v = s.Counter.GetValue()
		case s.Gauge != nil:
			v = s.Gauge.GetValue()
		case s.Histogram != nil:
			v = float64(s.Histogram.GetSampleCount())
			if v > 0 && s.Histogram.GetSampleSum() <= 0 {
				t.Errorf("%s%v: %v samples summing to %v", name, labels, v, s.Histogram.GetSampleSum())
			}
		default:
			t.Fatalf("%s has type %v", name, fam.GetType())
		}
		if err := check(v); err != nil {
			t.Errorf("%s%v = %v: %v", name, labels, v, err)
		}
		return v
	}
	t.Fatalf("/metrics has no %s with labels %v", name, labels)
	return 0
}

func hasLabels(s *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range s.Label {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func eq(want float64) func(float64) error {
	return func(v float64) error {
		if v != want {
			return fmt.Errorf("want %v", want)
		}
		return nil
	}
}

func atLeast[N int | float64](min N) func(float64) error {
	return func(v float64) error {
		if v < float64(min) {
			return fmt.Errorf("want at least %v", min)
		}
		return nil
	}
}

func between(lo, hi float64) func(float64) error {
	return func(v float64) error {
		if v < lo || v > hi {
			return fmt.Errorf("want between %v and %v", lo, hi)
		}
		return nil
	}
}
