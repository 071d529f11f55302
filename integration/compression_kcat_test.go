package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCompressionCodecs produces every codec's batches with franz-go and
// with librdkafka (kcat -z) into a topic per codec, and reads each topic
// back with both: the same records, in order, and every fetched batch
// compressed with the codec it was produced with (stored as sent).
func TestCompressionCodecs(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not on PATH: run `make test` (it installs the Debian package kcat)")
	}
	b := StartBroker(t)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			began := time.Now()
			topic := "codec-" + c.name
			createTopic(t, b, topic, 1)
			var want []keyValue
			prod := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.kgo),
				kgo.ProducerLinger(20*time.Millisecond))
			var recs []*kgo.Record
			for i := range 300 {
				kv := keyValue{key: fmt.Sprintf("kgo-%d", i), value: compressible("franz-go "+c.name, i)}
				want = append(want, kv)
				recs = append(recs, &kgo.Record{Key: []byte(kv.key), Value: []byte(kv.value)})
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("franz-go produce with %s: %v", c.name, err)
			}
			var in strings.Builder
			for i := range 300 {
				kv := keyValue{key: fmt.Sprintf("kcat-%d", i), value: compressible("librdkafka "+c.name, i)}
				want = append(want, kv)
				fmt.Fprintf(&in, "%s|%s\n", kv.key, kv.value)
			}
			kcat(t, in.String(), "-P", "-b", b.Addr, "-t", topic, "-p", "0", "-K", "|", "-z", c.name,
				"-X", "acks=all", "-X", "linger.ms=50")

			hook := &batchCodecs{}
			sameRecords(t, "franz-go", kgoReadAll(t, b, topic, int64(len(want)), hook), want)
			sameRecords(t, "kcat", kcatReadAll(t, b, topic), want)
			if seen := hook.of(topic); len(seen) != 1 || seen[c.attr] == 0 {
				t.Errorf("fetched batches by codec attribute %v, want all %d (%s)", seen, c.attr, c.name)
			}
			t.Logf("%s: %v", c.name, time.Since(began).Round(time.Millisecond))
		})
	}
}
