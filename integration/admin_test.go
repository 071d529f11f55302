package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicConfig returns the described value and source of config key of
// topic, failing the test if the describe fails or lacks the key.
func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) (string, kmsg.ConfigSource) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("describe configs of %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		t.Fatalf("describe configs of %s: %v", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue(), c.Source
		}
	}
	t.Fatalf("describe configs of %s: no %s among %d configs", topic, key, len(rc.Configs))
	return "", 0
}

// partitionCount returns the partition count of topic in the metadata.
func partitionCount(t *testing.T, adm *kadm.Client, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("list topic %s: %v", topic, err)
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		t.Fatalf("list topic %s: present %v, error %v", topic, ok, td.Err)
	}
	return len(td.Partitions)
}

// TestAdmin drives the admin surface through kadm as an operator tool
// would: create topics with configs, describe them, add partitions (by
// count and by total), alter configs incrementally and as a whole, delete
// records, ask for epochs, log dirs, elections and producers, and delete
// a topic.
func TestAdmin(t *testing.T) {
	b := StartBroker(t)
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	str := func(s string) *string { return &s }

	// Create, with a dynamic config, and describe.
	cr, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": str("3600000")}, "adm-a", "adm-b")
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	for _, r := range cr.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}
	if v, src := topicConfig(t, adm, "adm-a", "retention.ms"); v != "3600000" || src != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms = %q from source %v, want 3600000 from DYNAMIC_TOPIC_CONFIG", v, src)
	}
	if v, src := topicConfig(t, adm, "adm-a", "cleanup.policy"); v != "delete" || src != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("cleanup.policy = %q from source %v, want the default delete", v, src)
	}

	// Partitions: to a total of 6, then 2 more.
	if rs, err := adm.UpdatePartitions(ctx, 6, "adm-a"); err != nil || rs["adm-a"].Err != nil {
		t.Fatalf("update partitions of adm-a to 6: %v %v", err, rs["adm-a"].Err)
	}
	if rs, err := adm.CreatePartitions(ctx, 2, "adm-b"); err != nil || rs["adm-b"].Err != nil {
		t.Fatalf("add 2 partitions to adm-b: %v %v", err, rs["adm-b"].Err)
	}
	if n := partitionCount(t, adm, "adm-a"); n != 6 {
		t.Errorf("adm-a has %d partitions, want 6", n)
	}
	if n := partitionCount(t, adm, "adm-b"); n != 5 {
		t.Errorf("adm-b has %d partitions, want 5", n)
	}
	// A new partition takes writes and reads.
	prod := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 100 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "adm-a", Partition: 5, Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce to new partition adm-a/5: %v", err)
		}
	}
	if end := endOffsets(t, b, "adm-a"); end[5] != 100 {
		t.Errorf("adm-a/5 ends at %d, want 100", end[5])
	}

	// Incremental alter: set one, delete another back to its default.
	alters := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: str("7200000")},
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: str("2000000")},
	}
	if rs, err := adm.AlterTopicConfigs(ctx, alters, "adm-a"); err != nil || rs[0].Err != nil {
		t.Fatalf("incremental alter of adm-a: %v %+v", err, rs)
	}
	if v, _ := topicConfig(t, adm, "adm-a", "retention.ms"); v != "7200000" {
		t.Errorf("retention.ms = %q after the incremental alter, want 7200000", v)
	}
	del := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}
	if rs, err := adm.AlterTopicConfigs(ctx, del, "adm-a"); err != nil || rs[0].Err != nil {
		t.Fatalf("incremental delete of retention.ms: %v %+v", err, rs)
	}
	if v, src := topicConfig(t, adm, "adm-a", "retention.ms"); v != "604800000" || src != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("retention.ms = %q from %v after its delete, want the default 604800000", v, src)
	}
	if v, _ := topicConfig(t, adm, "adm-a", "max.message.bytes"); v != "2000000" {
		t.Errorf("max.message.bytes = %q, want 2000000 (kept by the incremental delete of another key)", v)
	}
	// Whole-state alter (AlterConfigs): what is not named goes back to its default.
	state := []kadm.AlterConfig{{Name: "cleanup.policy", Value: str("compact")}}
	if rs, err := adm.AlterTopicConfigsState(ctx, state, "adm-a"); err != nil || rs[0].Err != nil {
		t.Fatalf("alter configs (state) of adm-a: %v %+v", err, rs)
	}
	if v, _ := topicConfig(t, adm, "adm-a", "cleanup.policy"); v != "compact" {
		t.Errorf("cleanup.policy = %q after AlterConfigs, want compact", v)
	}
	if v, src := topicConfig(t, adm, "adm-a", "max.message.bytes"); src != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("max.message.bytes = %q from %v after an AlterConfigs that did not name it, want the default", v, src)
	}
	// Broker configs describe.
	bcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(bcs) != 1 || bcs[0].Err != nil || len(bcs[0].Configs) == 0 {
		t.Errorf("describe broker 1 configs: %v %+v", err, bcs)
	}

	// DeleteRecords moves the earliest offset; a consumer from the start
	// begins there.
	for i := range 100 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "adm-b", Partition: 0, Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce to adm-b/0: %v", err)
		}
	}
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"adm-b": {0: kadm.Offset{Topic: "adm-b", Partition: 0, At: 40}}})
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	if r, ok := dr.Lookup("adm-b", 0); !ok || r.Err != nil || r.LowWatermark != 40 {
		t.Errorf("delete records below 40: %+v (present %v), want low watermark 40", r, ok)
	}
	starts, err := adm.ListStartOffsets(ctx, "adm-b")
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	if o, _ := starts.Lookup("adm-b", 0); o.Offset != 40 {
		t.Errorf("adm-b/0 starts at %d after DeleteRecords, want 40", o.Offset)
	}
	cons := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"adm-b": {0: kgo.NewOffset().AtStart()}}))
	fs := cons.PollRecords(ctx, 1)
	if recs := fs.Records(); len(recs) != 1 || recs[0].Offset != 40 || string(recs[0].Value) != "r40" {
		t.Errorf("first record from the start after DeleteRecords: %+v, want offset 40 (r40); errors %v", recs, fs.Errors())
	}

	// OffsetForLeaderEpoch with the current epoch: the end offset.
	md, err := adm.Metadata(ctx, "adm-b")
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	epoch := md.Topics["adm-b"].Partitions[0].LeaderEpoch
	var ofl kadm.OffsetForLeaderEpochRequest
	ofl.Add("adm-b", 0, epoch)
	ofls, err := adm.OffsetForLeaderEpoch(ctx, ofl)
	if err != nil {
		t.Fatalf("offset for leader epoch: %v", err)
	}
	if o := ofls["adm-b"][0]; o.Err != nil || o.EndOffset != 100 || o.LeaderEpoch != epoch {
		t.Errorf("offset for leader epoch %d of adm-b/0: %+v, want end offset 100 at epoch %d", epoch, o, epoch)
	}

	// DescribeLogDirs reports the partitions with bytes.
	dirs, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"adm-b": {0: {}}})
	if err != nil {
		t.Fatalf("describe log dirs: %v", err)
	}
	var found bool
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Errorf("log dir %s of broker %d: %v", d.Dir, d.Broker, d.Err)
		}
		if p, ok := d.Topics["adm-b"][0]; ok && p.Size > 0 {
			found = true
		}
	})
	if !found {
		t.Errorf("describe log dirs: adm-b/0 not reported with a size > 0: %+v", dirs)
	}

	// ElectLeaders: leaders are healthy, nothing to do, no failure.
	els, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"adm-b": {0: {}, 1: {}}})
	if err != nil {
		t.Fatalf("elect leaders: %v", err)
	}
	for p, r := range els["adm-b"] {
		if r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
			t.Errorf("elect preferred leader of adm-b/%d: %v", p, r.Err)
		}
	}

	// DescribeProducers: kgo produces idempotently; its producer id and
	// last sequence (100 records, 0..99) show.
	dps, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"adm-b": {0: {}}})
	if err != nil {
		t.Fatalf("describe producers: %v", err)
	}
	var producers []kadm.DescribedProducer
	dps.EachPartition(func(p kadm.DescribedProducersPartition) {
		if p.Err != nil {
			t.Errorf("describe producers of %s/%d: %v", p.Topic, p.Partition, p.Err)
		}
	})
	dps.EachProducer(func(p kadm.DescribedProducer) { producers = append(producers, p) })
	if len(producers) != 1 || producers[0].LastSequence != 99 || producers[0].ProducerID < 0 {
		t.Errorf("describe producers of adm-b/0: %+v, want one producer with last sequence 99", producers)
	}

	// Delete a topic.
	if rs, err := adm.DeleteTopics(ctx, "adm-a"); err != nil || rs["adm-a"].Err != nil {
		t.Fatalf("delete adm-a: %v %v", err, rs["adm-a"].Err)
	}
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if tds.Has("adm-a") || !tds.Has("adm-b") {
		t.Errorf("topics after deleting adm-a: %v", tds.Names())
	}
}
