package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// codec is one Kafka compression codec: its record-batch attribute value,
// its kgo producer setting and its name for kcat -z and compression.type.
type codec struct {
	name string
	attr uint8
	kgo  kgo.CompressionCodec
}

var codecs = []codec{
	{"gzip", 1, kgo.GzipCompression()},
	{"snappy", 2, kgo.SnappyCompression()},
	{"lz4", 3, kgo.Lz4Compression()},
	{"zstd", 4, kgo.ZstdCompression()},
}

// batchCodecs is a kgo hook that records the compression attribute of
// every fetched batch, per topic.
type batchCodecs struct {
	mu   sync.Mutex
	seen map[string]map[uint8]int // topic -> codec -> batches
}

// OnFetchBatchRead implements kgo.HookFetchBatchRead.
func (h *batchCodecs) OnFetchBatchRead(_ kgo.BrokerMetadata, topic string, _ int32, m kgo.FetchBatchMetrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]map[uint8]int{}
	}
	if h.seen[topic] == nil {
		h.seen[topic] = map[uint8]int{}
	}
	h.seen[topic][m.CompressionType]++
}

func (h *batchCodecs) of(topic string) map[uint8]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[topic]
}

// keyValue is a record as both clients can print it.
type keyValue struct {
	offset     int64
	key, value string
}

// compressible returns a value that compresses well (so that librdkafka
// does not fall back to sending the batch uncompressed) but differs per i.
func compressible(who string, i int) string {
	return fmt.Sprintf("%s record %05d %s", who, i, strings.Repeat("shoal compresses ", 8))
}

// kgoReadAll reads partition 0 of topic from offset 0 to its end offset
// with kgo and returns the records in offset order.
func kgoReadAll(t *testing.T, b *Broker, topic string, end int64, hook *batchCodecs) []keyValue {
	t.Helper()
	cl := b.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.WithHooks(hook))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out []keyValue
	for int64(len(out)) < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records after 30s", topic, len(out), end)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("read %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, keyValue{r.Offset, string(r.Key), string(r.Value)}) })
	}
	return out
}

// kcatReadAll reads partition 0 of topic from the beginning to its end
// with kcat (librdkafka).
func kcatReadAll(t *testing.T, b *Broker, topic string) []keyValue {
	t.Helper()
	out := kcat(t, "", "-C", "-b", b.Addr, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
		"-f", "%o|%k|%s\n")
	var kvs []keyValue
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			t.Fatalf("kcat -C %s: unexpected line %q", topic, line)
		}
		var off int64
		if _, err := fmt.Sscan(parts[0], &off); err != nil {
			t.Fatalf("kcat -C %s: offset in %q: %v", topic, line, err)
		}
		kvs = append(kvs, keyValue{off, parts[1], parts[2]})
	}
	return kvs
}

// sameRecords fails the test unless got is want (offsets dense from 0).
func sameRecords(t *testing.T, who string, got, want []keyValue) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s read %d records, want %d", who, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		w := want[i]
		w.offset = int64(i)
		if got[i] != w {
			t.Errorf("%s: record %d is %+v, want %+v", who, i, got[i], w)
			return
		}
	}
}

// TestCompressionRecompress checks the topic config compression.type: a
// topic set to a codec stores (and serves) every batch in that codec,
// whatever the producer sent; "uncompressed" stores batches uncompressed;
// the values read back are those produced, by kgo and by kcat alike.
func TestCompressionRecompress(t *testing.T) {
	b := StartBroker(t)
	adm := kadm.NewClient(b.Client(t))
	cases := []struct {
		config string
		attr   uint8
		sent   []codec
	}{
		{"zstd", 4, []codec{{"none", 0, kgo.NoCompression()}, codecs[0], codecs[2]}},
		{"gzip", 1, []codec{{"none", 0, kgo.NoCompression()}, codecs[3]}},
		{"uncompressed", 0, []codec{codecs[1], codecs[2]}},
	}
	for _, tc := range cases {
		t.Run(tc.config, func(t *testing.T) {
			topic := "recompress-" + tc.config
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			v := tc.config
			resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": &v}, topic)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				t.Fatalf("create %s with compression.type=%s: %v", topic, tc.config, err)
			}
			var want []keyValue
			for _, c := range tc.sent {
				prod := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.kgo),
					kgo.ProducerLinger(20*time.Millisecond))
				var recs []*kgo.Record
				for i := range 200 {
					kv := keyValue{key: fmt.Sprintf("%s-%d", c.name, i), value: compressible(c.name, i)}
					want = append(want, kv)
					recs = append(recs, &kgo.Record{Key: []byte(kv.key), Value: []byte(kv.value)})
				}
				if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatalf("produce %s batches: %v", c.name, err)
				}
			}
			hook := &batchCodecs{}
			sameRecords(t, "franz-go", kgoReadAll(t, b, topic, int64(len(want)), hook), want)
			sameRecords(t, "kcat", kcatReadAll(t, b, topic), want)
			seen := hook.of(topic)
			if len(seen) != 1 || seen[tc.attr] == 0 {
				t.Errorf("fetched batches by codec attribute %v, want all %d (compression.type=%s)", seen, tc.attr, tc.config)
			}
		})
	}
}
