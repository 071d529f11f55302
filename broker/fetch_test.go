package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

func TestFetchLongPollWakesOnProduce(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("poll"), 1)
	consumer, producer := dialRaw(t, b), dialRaw(t, b)

	start := time.Now()
	req := fetchRequest(n("poll"), 0, 0, 1, 10_000)
	corr := consumer.send(req)
	time.Sleep(200 * time.Millisecond) // let the fetch start waiting
	wantCode(t, "produce", produceRaw(t, producer, n("poll"), 0, values("wake")).ErrorCode, nil)

	resp := consumer.recv(req, corr).(*kmsg.FetchResponse)
	elapsed := time.Since(start)
	p := resp.Topics[0].Partitions[0]
	wantCode(t, "fetch", p.ErrorCode, nil)
	if bases, _ := batchOffsets(t, p.RecordBatches); len(bases) != 1 || p.HighWatermark != 1 {
		t.Fatalf("woken fetch returned %d batches, high watermark %d", len(bases), p.HighWatermark)
	}
	if elapsed > 5*time.Second {
		t.Fatalf("long poll answered after %v: it was not woken by the produce", elapsed)
	}
	if resp.SessionID != 0 {
		t.Fatalf("session id %d, want 0 (sessionless)", resp.SessionID)
	}
}

func TestFetchHonoursMaxWait(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("wait"), 1)
	c := dialRaw(t, b)
	start := time.Now()
	resp := c.do(fetchRequest(n("wait"), 0, 0, 1, 300)).(*kmsg.FetchResponse)
	elapsed := time.Since(start)
	p := resp.Topics[0].Partitions[0]
	wantCode(t, "fetch", p.ErrorCode, nil)
	if len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Fatalf("empty partition returned %d bytes, high watermark %d", len(p.RecordBatches), p.HighWatermark)
	}
	if elapsed < 250*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("fetch with MaxWait 300 ms answered after %v", elapsed)
	}

	// MinBytes 0 answers at once.
	start = time.Now()
	c.do(fetchRequest(n("wait"), 0, 0, 0, 5000))
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Fatalf("fetch with MinBytes 0 answered after %v", elapsed)
	}
}

func TestFetchErrorsAndLimits(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("limits"), 2)
	c := dialRaw(t, b)
	for range 3 {
		wantCode(t, "produce p0", produceRaw(t, c, n("limits"), 0, values("0123456789", "abcdefghij")).ErrorCode, nil)
		wantCode(t, "produce p1", produceRaw(t, c, n("limits"), 1, values("0123456789")).ErrorCode, nil)
	}
	one := len(values("0123456789", "abcdefghij"))

	// Offset out of range, unknown topic and partition, fenced epoch: an
	// error answers at once even with MinBytes.
	start := time.Now()
	resp := c.do(fetchRequest(n("limits"), 0, 99, 1, 5000)).(*kmsg.FetchResponse)
	wantCode(t, "offset 99", resp.Topics[0].Partitions[0].ErrorCode, kerr.OffsetOutOfRange)
	if hwm := resp.Topics[0].Partitions[0].HighWatermark; hwm != 6 {
		t.Fatalf("out of range fetch reports high watermark %d", hwm)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("a partition error did not answer at once")
	}
	resp = c.do(fetchRequest(n("nope"), 0, 0, 0, 0)).(*kmsg.FetchResponse)
	wantCode(t, "unknown topic", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	resp = c.do(fetchRequest(n("limits"), 7, 0, 0, 0)).(*kmsg.FetchResponse)
	wantCode(t, "unknown partition", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	req := fetchRequest(n("limits"), 0, 0, 0, 0)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 0 // older than any Raft term
	resp = c.do(req).(*kmsg.FetchResponse)
	wantCode(t, "old leader epoch", resp.Topics[0].Partitions[0].ErrorCode, kerr.FencedLeaderEpoch)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 1 << 30
	resp = c.do(req).(*kmsg.FetchResponse)
	wantCode(t, "future leader epoch", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownLeaderEpoch)

	// PartitionMaxBytes below one batch still returns that one batch.
	req = fetchRequest(n("limits"), 0, 0, 0, 0)
	req.Topics[0].Partitions[0].PartitionMaxBytes = 1
	resp = c.do(req).(*kmsg.FetchResponse)
	if bases, _ := batchOffsets(t, resp.Topics[0].Partitions[0].RecordBatches); len(bases) != 1 {
		t.Fatalf("tiny partition max bytes returned %d batches, want 1", len(bases))
	}

	// MaxBytes: the first partition may exceed it by one batch, later
	// partitions that do not fit return nothing (KIP-74).
	req = fetchRequest(n("limits"), 0, 0, 0, 0)
	req.MaxBytes = int32(one + 10)
	p1 := kmsg.NewFetchRequestTopicPartition()
	p1.Partition, p1.PartitionMaxBytes = 1, 1<<20
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, p1)
	resp = c.do(req).(*kmsg.FetchResponse)
	parts := resp.Topics[0].Partitions
	if b0, _ := batchOffsets(t, parts[0].RecordBatches); len(b0) != 1 {
		t.Fatalf("first partition: %d batches, want 1", len(b0))
	}
	if len(parts[1].RecordBatches) != 0 || parts[1].HighWatermark != 3 {
		t.Fatalf("second partition: %d bytes (high watermark %d), want none over MaxBytes",
			len(parts[1].RecordBatches), parts[1].HighWatermark)
	}
	req.MaxBytes = 1 << 20
	resp = c.do(req).(*kmsg.FetchResponse)
	if b0, _ := batchOffsets(t, resp.Topics[0].Partitions[0].RecordBatches); len(b0) != 3 {
		t.Fatalf("with room, partition 0 returned %d batches, want 3", len(b0))
	}

	// A session id we never handed out.
	req.SessionID = 42
	wantCode(t, "session", c.do(req).(*kmsg.FetchResponse).ErrorCode, kerr.FetchSessionIDNotFound)
}

func TestFetchAndProduceByTopicID(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("byid"), 1)
	id := b.meta.Image().Topics[n("byid")].ID
	c := dialRaw(t, b)

	preq := produceRequest("", 0, -1, values("x", "y"))
	preq.Version = 13
	preq.Topics[0].TopicID = id
	presp := c.do(preq).(*kmsg.ProduceResponse)
	wantCode(t, "produce v13", presp.Topics[0].Partitions[0].ErrorCode, nil)
	if presp.Topics[0].TopicID != id {
		t.Fatalf("produce v13 response topic id %v", presp.Topics[0].TopicID)
	}

	freq := fetchRequest("", 0, 0, 0, 0)
	freq.Version = 18
	freq.Topics[0].TopicID = id
	unknown := kmsg.NewFetchRequestTopic()
	unknown.TopicID = [16]byte{7}
	unknown.Partitions = freq.Topics[0].Partitions
	freq.Topics = append(freq.Topics, unknown)
	fresp := c.do(freq).(*kmsg.FetchResponse)
	p := fresp.Topics[0].Partitions[0]
	wantCode(t, "fetch v18", p.ErrorCode, nil)
	recs, err := protocol.DecodeRecords(p.RecordBatches, 1<<20)
	if err != nil || len(recs) != 2 || string(recs[1].Value) != "y" {
		t.Fatalf("fetch v18 records %v, %v", recs, err)
	}
	wantCode(t, "fetch unknown id", fresp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicID)
}

func TestFetchZstdNeedsV10(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("zstd"), 1)
	c := dialRaw(t, b)
	batch := prototest.Batch(prototest.Values("z"), prototest.WithCodec(protocol.CodecZstd))
	preq := produceRequest(n("zstd"), 0, -1, batch)
	preq.Version = 6
	wantCode(t, "zstd at produce v6", c.do(preq).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode,
		kerr.UnsupportedCompressionType)
	wantCode(t, "zstd at produce v9", produceRaw(t, c, n("zstd"), 0, batch).ErrorCode, nil)
	freq := fetchRequest(n("zstd"), 0, 0, 0, 0)
	freq.Version = 9
	wantCode(t, "zstd at fetch v9", c.do(freq).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode,
		kerr.UnsupportedCompressionType)
	freq.Version = 10
	wantCode(t, "zstd at fetch v10", c.do(freq).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode, nil)
}

func TestListOffsets(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("lo"), 1)
	c := dialRaw(t, b)
	// Offsets 0-2 at 1000-1002, 3-4 at 5000-5001, 5 at 2000.
	for _, batch := range [][]byte{
		prototest.Batch(prototest.Values("a", "b", "c"), prototest.WithFirstTimestamp(1000)),
		prototest.Batch(prototest.Values("d", "e"), prototest.WithFirstTimestamp(5000)),
		prototest.Batch(prototest.Values("f"), prototest.WithFirstTimestamp(2000)),
	} {
		wantCode(t, "produce", produceRaw(t, c, n("lo"), 0, batch).ErrorCode, nil)
	}
	for _, tc := range []struct {
		name          string
		ts            int64
		offset, rects int64
	}{
		{"earliest", -2, 0, -1},
		{"latest", -1, 6, -1},
		{"max timestamp", -3, 4, 5001},
		{"earliest local", -4, 0, -1},
		{"exact timestamp", 1001, 1, 1001},
		{"between batches", 1003, 3, 5000},
		{"before all", 0, 0, 1000},
		{"after all", 6000, -1, -1},
	} {
		p := listOffset(t, c, n("lo"), 0, tc.ts)
		wantCode(t, tc.name, p.ErrorCode, nil)
		if p.Offset != tc.offset || p.Timestamp != tc.rects {
			t.Errorf("%s: offset %d timestamp %d, want %d %d", tc.name, p.Offset, p.Timestamp, tc.offset, tc.rects)
		}
	}
	wantCode(t, "unknown topic", listOffset(t, c, n("nope"), 0, -1).ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "bad timestamp", listOffset(t, c, n("lo"), 0, -42).ErrorCode, kerr.InvalidRequest)

	// An empty partition.
	createTopic(t, b, n("lo-empty"), 1)
	if p := listOffset(t, c, n("lo-empty"), 0, -3); p.ErrorCode != 0 || p.Offset != -1 {
		t.Errorf("max timestamp of an empty partition: offset %d, %v", p.Offset, kerr.ErrorForCode(p.ErrorCode))
	}
}
