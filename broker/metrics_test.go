package broker

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/internal/promtest"
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

	m := promtest.Scrape(t, b.metrics.addr().String())

	// Broker and build.
	m.Want(t, "shoal_broker_ready", promtest.Eq(1))
	m.Want(t, "shoal_build_info", promtest.Eq(1), "goversion", runtime.Version())

	// Requests.
	m.Want(t, "shoal_requests_total", promtest.AtLeast(float64(writes.n.Load())), "api", "Produce")
	m.Want(t, "shoal_request_duration_seconds", promtest.AtLeast(float64(writes.n.Load())), "api", "Produce")
	m.Want(t, "shoal_request_errors_total", promtest.Eq(0), "api", "Produce")
	m.Want(t, "shoal_request_errors_total", promtest.Eq(0), "api", "DeleteTopics") // every API, before its first request
	for _, api := range []string{"Fetch", "JoinGroup", "SyncGroup", "OffsetCommit", "Metadata"} {
		m.Want(t, "shoal_requests_total", promtest.AtLeast(1), "api", api)
	}
	m.Want(t, "shoal_produce_bytes_total", promtest.AtLeast(2*perPartition*len("value-0")), "topic", topic)
	m.Want(t, "shoal_fetch_bytes_total", promtest.AtLeast(2*perPartition*len("value-0")), "topic", topic)
	m.Want(t, "shoal_partition_errors_total", promtest.Eq(1), "api", "Produce", "error", "UNKNOWN_TOPIC_OR_PARTITION")

	// WAL and uploads.
	m.Want(t, "shoal_wal_commit_duration_seconds", promtest.AtLeast(2*perPartition+3), "group", "0")
	m.Want(t, "shoal_wal_committed_bytes_total", promtest.AtLeast(2*perPartition*len("value-0")), "group", "0")
	m.Want(t, "shoal_wal_pending_bytes", promtest.AtLeast(1), "group", "0")
	m.Want(t, "shoal_wal_disk_bytes", promtest.AtLeast(1), "group", "0")
	m.Want(t, "shoal_wal_tail_cache_hits_total", promtest.AtLeast(1), "group", "0")
	m.Want(t, "shoal_wal_tail_cache_misses_total", promtest.Eq(0), "group", "0")
	m.Want(t, "shoal_wal_tail_cache_bytes", promtest.AtLeast(1), "group", "0")
	m.Want(t, "shoal_upload_lag_seconds", promtest.Between(0.001, 60), "group", "0")
	m.Want(t, "shoal_uploads_total", promtest.Eq(0))
	m.Want(t, "shoal_upload_bytes_total", promtest.Eq(0))

	// Raft: a single node leads both groups.
	m.Want(t, "shoal_raft_state", promtest.Eq(2), "group", "metadata")
	m.Want(t, "shoal_raft_state", promtest.Eq(2), "group", "wal-0")
	m.Want(t, "shoal_raft_term", promtest.AtLeast(1), "group", "wal-0")
	m.Want(t, "shoal_raft_applied_index", promtest.AtLeast(1), "group", "metadata")
	m.Want(t, "shoal_raft_term", promtest.AtLeast(1), "group", "metadata")
	m.Want(t, "shoal_raft_last_index", promtest.AtLeast(1), "group", "metadata")
	applied := m.Want(t, "shoal_raft_applied_index", promtest.AtLeast(2*perPartition+3), "group", "wal-0")
	m.Want(t, "shoal_raft_last_index", promtest.AtLeast(applied), "group", "wal-0")

	// Object store and block cache: present, nothing uploaded yet.
	m.Want(t, "shoal_object_requests_total", promtest.Eq(0), "reason", "upload", "op", "put")
	m.Want(t, "shoal_object_bytes_total", promtest.Eq(0), "reason", "fetch", "direction", "get")
	m.Want(t, "shoal_object_request_errors_total", promtest.Eq(0), "reason", "gc")
	for _, name := range []string{"shoal_block_cache_hits_total", "shoal_block_cache_misses_total",
		"shoal_block_cache_evictions_total", "shoal_block_cache_bytes", "shoal_block_cache_blocks"} {
		m.Want(t, name, promtest.Eq(0))
	}

	// Groups: one stable group with one member; its lag is the end offset
	// minus the committed offset, per partition.
	m.Want(t, "shoal_consumer_groups", promtest.Eq(1), "state", "Stable")
	m.Want(t, "shoal_consumer_groups", promtest.Eq(0), "state", "Empty")
	m.Want(t, "shoal_consumer_group_members", promtest.Eq(1), "group", grp)
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
		m.Want(t, "shoal_consumer_group_lag", promtest.Eq(float64(wantLag)), "group", grp, "topic", topic, "partition", fmt.Sprint(p))
	}

	// The Go and process collectors.
	m.Want(t, "go_goroutines", promtest.AtLeast(1))
	m.Want(t, "process_open_fds", promtest.AtLeast(1))
}
