package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMetricsAfterProduceConsume runs a produce/consume with a consumer
// group that commits against a shoald process, then checks that /metrics
// parses with the Prometheus text parser and holds every metric family of
// docs/metrics.md, with values that match the run.
func TestMetricsAfterProduceConsume(t *testing.T) {
	t.Parallel()
	const topic, group, partitions, records = "metered", "metered-group", 3, 300
	// Uploads wait: the data stays in the WAL (pending bytes, upload lag).
	b := StartBroker(t, WithArgs("--group-initial-rebalance-delay", "0", "--upload-age", "1h"))
	createTopic(t, b, topic, partitions)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	prod := b.Client(t, kgo.DefaultProduceTopic(topic))
	for i := range records {
		prod.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "value-%d", i)}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}

	cons := b.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for read := 0; read < records; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", read, records, err)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		read += fs.NumRecords()
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	// Records the group has not read: a lag to find in the metrics.
	for i := range 7 {
		r := &kgo.Record{Value: fmt.Appendf(nil, "late-%d", i)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	m := scrapeMetrics(t, b.MetricsAddr)

	m.want(t, "shoal_broker_ready", eq(1))
	m.want(t, "shoal_build_info", eq(1))
	m.want(t, "shoal_requests_total", atLeast(1), "api", "Produce")
	m.want(t, "shoal_requests_total", atLeast(1), "api", "Fetch")
	m.want(t, "shoal_requests_total", atLeast(1), "api", "OffsetCommit")
	m.want(t, "shoal_request_errors_total", eq(0), "api", "Produce")
	m.want(t, "shoal_request_duration_seconds", atLeast(1), "api", "Produce")
	m.want(t, "shoal_produce_bytes_total", atLeast(records*len("value-0")), "topic", topic)
	m.want(t, "shoal_fetch_bytes_total", atLeast(records*len("value-0")), "topic", topic)

	m.want(t, "shoal_wal_commit_duration_seconds", atLeast(1), "group", "0")
	m.want(t, "shoal_wal_committed_bytes_total", atLeast(records*len("value-0")), "group", "0")
	m.want(t, "shoal_wal_pending_bytes", atLeast(records*len("value-0")), "group", "0")
	m.want(t, "shoal_wal_disk_bytes", atLeast(1), "group", "0")
	m.want(t, "shoal_wal_tail_cache_hits_total", atLeast(1), "group", "0")
	m.want(t, "shoal_wal_tail_cache_misses_total", atLeast(0), "group", "0")
	m.want(t, "shoal_wal_tail_cache_bytes", atLeast(1), "group", "0")
	m.want(t, "shoal_upload_lag_seconds", atLeast(0.001), "group", "0")
	m.want(t, "shoal_uploads_total", atLeast(0))
	m.want(t, "shoal_upload_bytes_total", atLeast(0))

	m.want(t, "shoal_raft_state", eq(2), "group", "metadata")
	m.want(t, "shoal_raft_applied_index", atLeast(1), "group", "metadata")
	m.want(t, "shoal_raft_state", eq(2), "group", "wal-0")
	m.want(t, "shoal_raft_term", atLeast(1), "group", "wal-0")
	m.want(t, "shoal_raft_last_index", atLeast(1), "group", "wal-0")
	m.want(t, "shoal_raft_applied_index", atLeast(1), "group", "wal-0")

	m.want(t, "shoal_object_requests_total", atLeast(0), "reason", "upload", "op", "put")
	m.want(t, "shoal_object_bytes_total", atLeast(0), "reason", "upload", "direction", "put")
	m.want(t, "shoal_object_request_errors_total", eq(0), "reason", "upload")
	m.want(t, "shoal_block_cache_hits_total", atLeast(0))
	m.want(t, "shoal_block_cache_misses_total", atLeast(0))
	m.want(t, "shoal_block_cache_bytes", atLeast(0))

	m.want(t, "shoal_consumer_groups", eq(1), "state", "Stable")
	m.want(t, "shoal_consumer_group_members", eq(1), "group", group)
	// The lag of each partition is its end offset minus the group's commit.
	ends := endOffsets(t, b, topic)
	done := committed(t, kadm.NewClient(b.Client(t)), group, topic)
	total := 0.0
	for p := range int32(partitions) {
		lag := m.want(t, "shoal_consumer_group_lag", eq(float64(ends[p]-done[p])),
			"group", group, "topic", topic, "partition", strconv.Itoa(int(p)))
		total += lag
	}
	if total != 7 {
		t.Errorf("consumer lag sums to %v, want the 7 records produced after the commits", total)
	}

	m.want(t, "go_goroutines", atLeast(1))
	m.want(t, "process_resident_memory_bytes", atLeast(1))
}

// metricFamilies is a parsed /metrics page.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics GETs /metrics from addr and parses it with the Prometheus
// text parser.
func scrapeMetrics(t *testing.T, addr string) metricFamilies {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
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
