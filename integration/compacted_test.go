package integration

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kept is the latest acknowledged record of a key: its position and its
// value (tombstone: a null value).
type kept struct {
	partition int32
	offset    int64
	value     string
	tombstone bool
}

func (k kept) String() string {
	if k.tombstone {
		return fmt.Sprintf("%d/%d:<tombstone>", k.partition, k.offset)
	}
	return fmt.Sprintf("%d/%d:%s", k.partition, k.offset, k.value)
}

// readCompacted reads every partition of topic from offset 0 to end and
// returns, per key, every record read (in fetch order).
func readCompacted(t *testing.T, b *Broker, topic string, end map[int32]int64) (map[string][]kept, error) {
	offsets := map[int32]kgo.Offset{}
	for p := range end {
		offsets[p] = kgo.NewOffset().At(0)
	}
	cl := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := map[string][]kept{}
	next := map[int32]int64{}
	for {
		done := true
		for p, e := range end {
			if next[p] < e {
				done = false
			}
		}
		if done {
			return got, nil
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %s: at %v after 30s, want %v", topic, next, end)
		}
		if err := fs.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)] = append(got[string(r.Key)], kept{r.Partition, r.Offset, string(r.Value), r.Value == nil})
			next[r.Partition] = r.Offset + 1
		})
	}
}

// compare returns nil if got holds exactly want: one record per key, the
// latest acknowledged one at its original offset.
func compareCompacted(got map[string][]kept, want map[string]kept) error {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g := got[k]; len(g) != 1 || g[0] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s: read %v, want %v", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: read %v, want nothing", k, got[k]))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%d keys differ, e.g.\n%s", len(diffs), strings.Join(diffs[:min(5, len(diffs))], "\n"))
	}
	return nil
}

// TestCompactedTopic writes several rounds of values for 200 keys (each
// round uploaded as its own range) into a topic with
// cleanup.policy=compact, deletes 40 keys with tombstones, and checks that
// compaction leaves a full read with exactly the latest record of every
// key at its original offset, tombstones included; then that the
// tombstones disappear once delete.retention.ms (lowered from 1 h to 1 s
// by IncrementalAlterConfigs) has passed.
//
// Kafka never cleans the active segment; in Shoal that part is the data
// still in the WAL, and every uploaded range is cleanable. The test still
// writes one last record per partition of a key of its own ("head-N"), so
// that the final upload supersedes nothing.
func TestCompactedTopic(t *testing.T) {
	const (
		topic      = "compacted"
		partitions = 2
		keys       = 200
		rounds     = 4
	)
	b := StartBroker(t, WithArgs("--upload-age", "200ms", "--compaction-interval", "1s", "--object-grace", "1s"))
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	str := func(s string) *string { return &s }
	cr, err := adm.CreateTopic(ctx, partitions, 1, map[string]*string{
		"cleanup.policy":            str("compact"),
		"delete.retention.ms":       str("3600000"),
		"min.cleanable.dirty.ratio": str("0.01"),
	}, topic)
	if err == nil {
		err = cr.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}

	// Keys hash to partitions, but "head-N" goes to partition N.
	hash := kgo.StickyKeyPartitioner(nil)
	prod := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(10*time.Millisecond),
		kgo.RecordPartitioner(kgo.BasicConsistentPartitioner(func(topic string) func(*kgo.Record, int) int {
			tp := hash.ForTopic(topic)
			return func(r *kgo.Record, n int) int {
				if bytes.HasPrefix(r.Key, []byte("head-")) {
					return int(r.Partition)
				}
				return tp.Partition(r, n)
			}
		})))
	want := map[string]kept{}
	write := func(recs []*kgo.Record) {
		t.Helper()
		res := prod.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		for _, r := range res {
			want[string(r.Record.Key)] = kept{r.Record.Partition, r.Record.Offset, string(r.Record.Value), r.Record.Value == nil}
		}
	}
	for round := range rounds {
		var recs []*kgo.Record
		for k := range keys {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "key-%03d", k), Value: fmt.Appendf(nil, "round %d of key %03d", round, k)})
		}
		write(recs)
		waitUploaded(t, b, 30*time.Second)
	}
	var tombs []*kgo.Record
	for k := 0; k < keys; k += keys / 40 {
		tombs = append(tombs, &kgo.Record{Key: fmt.Appendf(nil, "key-%03d", k)}) // nil Value: a tombstone
	}
	write(tombs)
	waitUploaded(t, b, 30*time.Second)

	// One record of a key of its own per partition, uploaded last.
	var heads []*kgo.Record
	for p := range int32(partitions) {
		heads = append(heads, &kgo.Record{Key: fmt.Appendf(nil, "head-%d", p), Value: []byte("head"), Partition: p})
	}
	write(heads)
	waitUploaded(t, b, 30*time.Second)

	// waitCompacted reads the whole topic until it holds exactly want.
	waitCompacted := func(what string) {
		t.Helper()
		began := time.Now()
		var last error
		for time.Since(began) < 60*time.Second {
			got, err := readCompacted(t, b, topic, endOffsets(t, b, topic))
			if err == nil {
				if err = compareCompacted(got, want); err == nil {
					t.Logf("%s: exactly the latest record of each of %d keys after %v",
						what, len(want), time.Since(began).Round(time.Millisecond))
					return
				}
			}
			last = err
			time.Sleep(500 * time.Millisecond) // compaction runs every second
		}
		t.Fatalf("%s: a full read after %v: %v", what, time.Since(began).Round(time.Millisecond), last)
	}
	waitCompacted("compacted, tombstones kept")

	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "delete.retention.ms", Value: str("1000")}}
	if rs, err := adm.AlterTopicConfigs(ctx, alter, topic); err != nil || rs[0].Err != nil {
		t.Fatalf("set delete.retention.ms=1000: %v %+v", err, rs)
	}
	for _, r := range tombs {
		delete(want, string(r.Key))
	}
	waitCompacted("tombstones past delete.retention.ms")
}
