package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

// createTopicWith creates a one-partition topic with configs (name, value
// pairs) and fails the test on error.
func createTopicWith(t *testing.T, b *Broker, name string, configs ...string) {
	t.Helper()
	c := dialRaw(t, b)
	resp := c.do(createTopicsRequest(false, topicSpecReq(name, 1, 1, configs...))).(*kmsg.CreateTopicsResponse)
	wantCode(t, "create "+name, resp.Topics[0].ErrorCode, nil)
}

// storedBatches fetches partition 0 of topic from offset 0 (fetch v11)
// and returns the headers of its batches.
func storedBatches(t *testing.T, c *rawConn, topic string) []protocol.BatchHeader {
	t.Helper()
	resp := c.do(fetchRequest(topic, 0, 0, 0, 0)).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	wantCode(t, "fetch "+topic, p.ErrorCode, nil)
	_, hdrs, err := protocol.SplitBatches(p.RecordBatches)
	if err != nil {
		t.Fatalf("stored batches of %s: %v", topic, err)
	}
	return hdrs
}

// testRecords is n records with keys, values, headers and distinct
// timestamps.
func testRecords(prefix string, n int) []*kgo.Record {
	base := time.UnixMilli(1_700_000_000_000)
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{
			Key:       []byte(fmt.Sprintf("%s-k%d", prefix, i)),
			Value:     bytes.Repeat([]byte(fmt.Sprintf("%s-value-%d ", prefix, i)), 1+i%5),
			Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}},
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

// produceAll produces records synchronously with a client made with opts.
func produceAll(t *testing.T, b *Broker, topic string, recs []*kgo.Record, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cl := newClient(t, b, append(opts, kgo.DefaultProduceTopic(topic))...)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consumeN reads n records of topic from the start with kgo.
func consumeN(t *testing.T, b *Broker, topic string, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cl := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", len(out), n, topic)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s: %v", topic, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// sameRecords fails unless got are the sent records, in order, with
// offsets 0, 1, 2, ...
func sameRecords(t *testing.T, got, sent []*kgo.Record) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("%d records read, %d sent", len(got), len(sent))
	}
	for i, g := range got {
		s := sent[i]
		if g.Offset != int64(i) || !bytes.Equal(g.Key, s.Key) || !bytes.Equal(g.Value, s.Value) ||
			!g.Timestamp.Equal(s.Timestamp) || len(g.Headers) != 1 ||
			g.Headers[0].Key != s.Headers[0].Key || !bytes.Equal(g.Headers[0].Value, s.Headers[0].Value) {
			t.Fatalf("record %d: read %+v, sent %+v", i, g, s)
		}
	}
}

var kgoCodecs = map[protocol.Codec]kgo.CompressionCodec{
	protocol.CodecNone:   kgo.NoCompression(),
	protocol.CodecGzip:   kgo.GzipCompression(),
	protocol.CodecSnappy: kgo.SnappyCompression(),
	protocol.CodecLZ4:    kgo.Lz4Compression(),
	protocol.CodecZstd:   kgo.ZstdCompression(),
}

// TestCompressionCodecsStoredAsSent: franz-go produces each codec; the
// batches are stored with the producer's codec (compression.type=producer)
// and read back identically by franz-go.
func TestCompressionCodecsStoredAsSent(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	c := dialRaw(t, b)
	for codec, kc := range kgoCodecs {
		topic := n("codec-" + codec.String())
		createTopic(t, b, topic, 1)
		sent := testRecords(codec.String(), 50)
		produceAll(t, b, topic, sent, kgo.ProducerBatchCompression(kc), kgo.ProducerLinger(50*time.Millisecond))
		sameRecords(t, consumeN(t, b, topic, len(sent)), sent)
		for _, h := range storedBatches(t, c, topic) {
			if h.Codec() != codec {
				t.Fatalf("%s: stored batch with codec %v", topic, h.Codec())
			}
		}
	}
}

// TestCompressionTypeRecompresses: a zstd topic receives gzip and
// uncompressed batches and serves zstd batches with the same records.
func TestCompressionTypeRecompresses(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	c := dialRaw(t, b)
	for _, target := range []string{"zstd", "uncompressed"} {
		topic := n("ctype-" + target)
		createTopicWith(t, b, topic, "compression.type", target)
		gz, plain := testRecords("gz", 40), testRecords("plain", 40)
		produceAll(t, b, topic, gz, kgo.ProducerBatchCompression(kgo.GzipCompression()))
		produceAll(t, b, topic, plain, kgo.ProducerBatchCompression(kgo.NoCompression()))
		want := protocol.CodecZstd
		if target == "uncompressed" {
			want = protocol.CodecNone
		}
		hdrs := storedBatches(t, c, topic)
		for _, h := range hdrs {
			if h.Codec() != want {
				t.Fatalf("%s: stored batch with codec %v", topic, h.Codec())
			}
		}
		if hdrs[0].ProducerID < 0 || hdrs[0].BaseSequence != 0 {
			t.Fatalf("%s: producer fields lost: %+v", topic, hdrs[0])
		}
		sameRecords(t, consumeN(t, b, topic, 80), append(gz, plain...))
	}
}

// TestRecompressedIdempotentRetry: a retried idempotent batch is still a
// duplicate after recompression (same offset, nothing stored twice), and
// produce v5 (before zstd) into a zstd topic is accepted, as in Kafka.
func TestRecompressedIdempotentRetry(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	topic := n("ctype-idem")
	createTopicWith(t, b, topic, "compression.type", "zstd")
	c := dialRaw(t, b)
	pid := initProducerID(t, c)
	first := prototest.Batch(prototest.Values("a", "b", "c"), prototest.WithProducer(pid, 0, 0),
		prototest.WithCodec(protocol.CodecGzip))
	for i := range 2 {
		p := produceRaw(t, c, topic, 0, first)
		wantCode(t, fmt.Sprint("attempt ", i), p.ErrorCode, nil)
		if p.BaseOffset != 0 {
			t.Fatalf("attempt %d at offset %d, want 0", i, p.BaseOffset)
		}
	}
	old := produceRequest(topic, 0, -1, prototest.Batch(prototest.Values("d"), prototest.WithProducer(pid, 0, 3)))
	old.Version = 5
	p := c.do(old).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	wantCode(t, "produce v5 into a zstd topic", p.ErrorCode, nil)
	if p.BaseOffset != 3 {
		t.Fatalf("v5 batch at %d, want 3", p.BaseOffset)
	}
	if hwm := highWatermark(t, c, topic, 0); hwm != 4 {
		t.Fatalf("high watermark %d, want 4", hwm)
	}
	hdrs := storedBatches(t, c, topic)
	if len(hdrs) != 2 || hdrs[0].Codec() != protocol.CodecZstd || hdrs[1].Codec() != protocol.CodecZstd ||
		hdrs[0].ProducerID != pid || hdrs[1].BaseSequence != 3 || hdrs[0].NumRecords != 3 {
		t.Fatalf("stored batches %+v", hdrs)
	}
}

// TestCompactedTopicNeedsKeys: records without a key are INVALID_RECORD
// in a compacted topic, for plain and compressed batches; keyed records and
// tombstones are accepted.
func TestCompactedTopicNeedsKeys(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	for _, policy := range []string{"compact", "compact,delete"} {
		topic := n("keys-" + policy[len(policy)-6:])
		createTopicWith(t, b, topic, "cleanup.policy", policy)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		for codec, kc := range kgoCodecs {
			cl := newClient(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kc),
				kgo.RecordRetries(1))
			err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
			if !errors.Is(err, kerr.InvalidRecord) {
				t.Fatalf("%s %v: keyless record: %v, want INVALID_RECORD", policy, codec, err)
			}
			err = cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}, &kgo.Record{Key: []byte("k")}).FirstErr()
			if err != nil {
				t.Fatalf("%s %v: keyed records: %v", policy, codec, err)
			}
		}
	}
}

// TestProduceBadCompressedRecords: compressed batches whose framing and
// CRC are fine but whose records are not.
func TestProduceBadCompressedRecords(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("badcomp"), 1)
	c := dialRaw(t, b)
	gapped, err := protocol.AppendBatch(nil, protocol.BatchHeader{
		Attributes: int16(protocol.CodecLZ4), LastOffsetDelta: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		PartitionLeaderEpoch: -1,
	}, []protocol.Record{{OffsetDelta: 0, Value: []byte("a")}, {OffsetDelta: 3, Value: []byte("b")}})
	if err != nil {
		t.Fatal(err)
	}
	garbage := prototest.Batch(prototest.Values("a", "b"), prototest.WithCodec(protocol.CodecGzip))
	for i := protocol.BatchHeaderSize; i < len(garbage); i++ {
		garbage[i] ^= 0xa5
	}
	prototest.FixCRC(garbage)
	wantCode(t, "offset gap", produceRaw(t, c, n("badcomp"), 0, gapped).ErrorCode, kerr.InvalidRecord)
	wantCode(t, "undecodable", produceRaw(t, c, n("badcomp"), 0, garbage).ErrorCode, kerr.CorruptMessage)
	if hwm := highWatermark(t, c, n("badcomp"), 0); hwm != 0 {
		t.Fatalf("high watermark %d after refused batches", hwm)
	}
}

func TestPrepareProduceBatchTooLargeAfterRecompression(t *testing.T) {
	// Random values do not compress: gzip makes the batch larger.
	v := make([]byte, 900)
	rand.Read(v)
	batch := prototest.Batch([]protocol.Record{{Key: []byte("k"), Value: v}})
	topic := &metadata.Topic{Configs: map[string]string{
		"compression.type": "gzip", "max.message.bytes": fmt.Sprint(len(batch)),
	}}
	if _, err := prepareProduceBatch(topic, batch); !errors.Is(err, errMessageTooLarge) {
		t.Fatalf("batch growing past max.message.bytes: %v", err)
	}
	topic.Configs["max.message.bytes"] = fmt.Sprint(len(batch) + 100)
	out, err := prepareProduceBatch(topic, batch)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := protocol.ValidateBatch(out); err != nil || h.Codec() != protocol.CodecGzip {
		t.Fatalf("recompressed batch: %+v, %v", h, err)
	}
}

// BenchmarkRecompress measures prepareProduceBatch recompressing a batch
// of 100 records of 1 KB (semi-compressible text) into each codec; bytes
// are the uncompressed record bytes.
func BenchmarkRecompress(b *testing.B) {
	recs := make([]protocol.Record, 100)
	raw := 0
	for i := range recs {
		recs[i] = protocol.Record{Key: []byte(fmt.Sprintf("key-%d", i)),
			Value: []byte(fmt.Sprintf("%0900d user=%d action=click page=/p/%d", i*7919, i%13, i%97))}
		raw += len(recs[i].Key) + len(recs[i].Value)
	}
	for _, to := range []string{"uncompressed", "gzip", "snappy", "lz4", "zstd"} {
		from := protocol.CodecNone
		if to == "uncompressed" {
			from = protocol.CodecLZ4
		}
		batch := prototest.Batch(recs, prototest.WithCodec(from))
		topic := &metadata.Topic{Configs: map[string]string{"compression.type": to, "max.message.bytes": "100000000"}}
		b.Run(from.String()+"-to-"+to, func(b *testing.B) {
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := prepareProduceBatch(topic, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCompactedTopicServedAfterKeyCompaction: franz-go produces updates of
// a few keys and a tombstone to a compacted topic; after upload and key
// compaction a franz-go consumer reads exactly the latest record per key at
// its original offset (the batches now have offset gaps), the tombstone
// gone after delete.retention.ms=0, the head untouched.
func TestCompactedTopicServedAfterKeyCompaction(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(c *Config) {
		c.UploadAge, c.CompactionInterval = 50*time.Millisecond, 50*time.Millisecond
	})
	const topic = "compacted"
	createTopicWith(t, b, topic, "cleanup.policy", "compact", "delete.retention.ms", "0",
		"min.cleanable.dirty.ratio", "0.01")
	stream := b.meta.Image().Topics[topic].Partitions[0].Stream
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	prod := newClient(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	latest := map[string]*kgo.Record{}
	produce := func(recs ...*kgo.Record) {
		t.Helper()
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			latest[string(r.Key)] = r
		}
	}
	// inObjects waits until every record is in stream objects of its own.
	inObjects := func(end int64) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			im := b.meta.Image()
			s := im.StreamObjectsOf(stream)
			if s.EndOffset < end {
				return fmt.Errorf("objects end at %d, want %d", s.EndOffset, end)
			}
			for _, r := range s.Ranges {
				if im.Objects[r.Key].Kind != metadata.KindStream {
					return fmt.Errorf("range %+v still in a stream set object", r)
				}
			}
			return nil
		})
	}
	for round := range 4 {
		var recs []*kgo.Record
		for k := range 5 {
			for i := range 3 {
				recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint("k", k)), Value: []byte(fmt.Sprintf("r%d-%d", round, i))})
			}
		}
		switch round {
		case 0:
			recs = append(recs, &kgo.Record{Key: []byte("gone"), Value: []byte("soon")})
		case 2:
			recs = append(recs, &kgo.Record{Key: []byte("gone")}) // tombstone
		}
		produce(recs...)
		inObjects(recs[len(recs)-1].Offset + 1)
	}
	head := &kgo.Record{Key: []byte("head"), Value: []byte("h")}
	produce(head)
	delete(latest, "gone")
	eventually(t, 10*time.Second, func() error {
		im := b.meta.Image()
		rg := im.StreamObjectsOf(stream).Ranges
		// Every committed range is key-compacted, the head's too (the WAL
		// is the dirty head).
		if len(rg) != 1 || !strings.Contains(rg[0].Key, "-k") || rg[0].EndOffset != head.Offset+1 {
			return fmt.Errorf("ranges %+v", rg)
		}
		return nil
	})

	cons := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]*kgo.Record{}
	for len(got) < len(latest) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d keys", len(got), len(latest))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if got[string(r.Key)] != nil {
				t.Fatalf("key %s read twice: offsets %d and %d", r.Key, got[string(r.Key)].Offset, r.Offset)
			}
			got[string(r.Key)] = r
		})
	}
	for k, want := range latest {
		g := got[k]
		if g == nil || g.Offset != want.Offset || !bytes.Equal(g.Value, want.Value) {
			t.Fatalf("key %s: read %+v, want value %q at offset %d", k, g, want.Value, want.Offset)
		}
	}
	// Offset lookups by time walk the compacted batches (fewer records than
	// offsets) too: the first record at or after k0's latest timestamp.
	byTime, err := kadm.NewClient(cons).ListOffsetsAfterMilli(ctx, latest["k0"].Timestamp.UnixMilli(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := byTime.Lookup(topic, 0); o.Err != nil || o.Offset > latest["k0"].Offset {
		t.Fatalf("offset by time on a compacted topic: %+v, want at most %d", o, latest["k0"].Offset)
	}
}
