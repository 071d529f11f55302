package integration

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-io/shoal/internal/promtest"
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

	m := promtest.Scrape(t, b.MetricsAddr)

	m.Want(t, "shoal_broker_ready", promtest.Eq(1))
	m.Want(t, "shoal_build_info", promtest.Eq(1))
	m.Want(t, "shoal_requests_total", promtest.AtLeast(1), "api", "Produce")
	m.Want(t, "shoal_requests_total", promtest.AtLeast(1), "api", "Fetch")
	m.Want(t, "shoal_requests_total", promtest.AtLeast(1), "api", "OffsetCommit")
	m.Want(t, "shoal_request_errors_total", promtest.Eq(0), "api", "Produce")
	m.Want(t, "shoal_request_duration_seconds", promtest.AtLeast(1), "api", "Produce")
	m.Want(t, "shoal_produce_bytes_total", promtest.AtLeast(records*len("value-0")), "topic", topic)
	m.Want(t, "shoal_fetch_bytes_total", promtest.AtLeast(records*len("value-0")), "topic", topic)

	m.Want(t, "shoal_wal_commit_duration_seconds", promtest.AtLeast(1), "group", "0")
	m.Want(t, "shoal_wal_committed_bytes_total", promtest.AtLeast(records*len("value-0")), "group", "0")
	m.Want(t, "shoal_wal_pending_bytes", promtest.AtLeast(records*len("value-0")), "group", "0")
	m.Want(t, "shoal_wal_disk_bytes", promtest.AtLeast(1), "group", "0")
	m.Want(t, "shoal_wal_tail_cache_hits_total", promtest.AtLeast(1), "group", "0")
	m.Want(t, "shoal_wal_tail_cache_misses_total", promtest.AtLeast(0), "group", "0")
	m.Want(t, "shoal_wal_tail_cache_bytes", promtest.AtLeast(1), "group", "0")
	m.Want(t, "shoal_upload_lag_seconds", promtest.AtLeast(0.001), "group", "0")
	m.Want(t, "shoal_uploads_total", promtest.AtLeast(0))
	m.Want(t, "shoal_upload_bytes_total", promtest.AtLeast(0))

	m.Want(t, "shoal_raft_state", promtest.Eq(2), "group", "metadata")
	m.Want(t, "shoal_raft_applied_index", promtest.AtLeast(1), "group", "metadata")
	m.Want(t, "shoal_raft_state", promtest.Eq(2), "group", "wal-0")
	m.Want(t, "shoal_raft_term", promtest.AtLeast(1), "group", "wal-0")
	m.Want(t, "shoal_raft_last_index", promtest.AtLeast(1), "group", "wal-0")
	m.Want(t, "shoal_raft_applied_index", promtest.AtLeast(1), "group", "wal-0")

	m.Want(t, "shoal_object_requests_total", promtest.AtLeast(0), "reason", "upload", "op", "put")
	m.Want(t, "shoal_object_bytes_total", promtest.AtLeast(0), "reason", "upload", "direction", "put")
	m.Want(t, "shoal_object_request_errors_total", promtest.Eq(0), "reason", "upload")
	m.Want(t, "shoal_block_cache_hits_total", promtest.AtLeast(0))
	m.Want(t, "shoal_block_cache_misses_total", promtest.AtLeast(0))
	m.Want(t, "shoal_block_cache_bytes", promtest.AtLeast(0))

	m.Want(t, "shoal_consumer_groups", promtest.Eq(1), "state", "Stable")
	m.Want(t, "shoal_consumer_group_members", promtest.Eq(1), "group", group)
	// The lag of each partition is its end offset minus the group's commit.
	ends := endOffsets(t, b, topic)
	done := committed(t, kadm.NewClient(b.Client(t)), group, topic)
	total := 0.0
	for p := range int32(partitions) {
		lag := m.Want(t, "shoal_consumer_group_lag", promtest.Eq(float64(ends[p]-done[p])),
			"group", group, "topic", topic, "partition", strconv.Itoa(int(p)))
		total += lag
	}
	if total != 7 {
		t.Errorf("consumer lag sums to %v, want the 7 records produced after the commits", total)
	}

	m.Want(t, "go_goroutines", promtest.AtLeast(1))
	m.Want(t, "process_resident_memory_bytes", promtest.AtLeast(1))
}
