package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

// initProducerID asks for an idempotent producer id.
func initProducerID(t *testing.T, c *rawConn) int64 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	resp := c.do(req).(*kmsg.InitProducerIDResponse)
	wantCode(t, "init producer id", resp.ErrorCode, nil)
	if resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
		t.Fatalf("producer id %d epoch %d", resp.ProducerID, resp.ProducerEpoch)
	}
	return resp.ProducerID
}

func TestProduceIdempotentDuplicateAndGap(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("idem"), 1)
	c := dialRaw(t, b)
	pid := initProducerID(t, c)
	if other := initProducerID(t, c); other == pid {
		t.Fatalf("two InitProducerID calls returned the same id %d", pid)
	}

	first := prototest.Batch(prototest.Values("a", "b"), prototest.WithProducer(pid, 0, 0))
	p := produceRaw(t, c, n("idem"), 0, first)
	wantCode(t, "first batch", p.ErrorCode, nil)
	if p.BaseOffset != 0 {
		t.Fatalf("first batch at %d, want 0", p.BaseOffset)
	}
	second := prototest.Batch(prototest.Values("c"), prototest.WithProducer(pid, 0, 2))
	if p := produceRaw(t, c, n("idem"), 0, second); p.ErrorCode != 0 || p.BaseOffset != 2 {
		t.Fatalf("second batch: offset %d, %v", p.BaseOffset, kerr.ErrorForCode(p.ErrorCode))
	}

	// A retry of the first batch, as a producer would send it after a lost
	// response: the original offset, no error, nothing stored.
	p = produceRaw(t, c, n("idem"), 0, first)
	wantCode(t, "retried batch", p.ErrorCode, nil)
	if p.BaseOffset != 0 {
		t.Fatalf("retried batch got offset %d, want the original 0", p.BaseOffset)
	}
	if hwm := highWatermark(t, c, n("idem"), 0); hwm != 3 {
		t.Fatalf("high watermark %d after a duplicate, want 3", hwm)
	}

	// A gap in the sequence.
	gap := prototest.Batch(prototest.Values("x"), prototest.WithProducer(pid, 0, 7))
	p = produceRaw(t, c, n("idem"), 0, gap)
	wantCode(t, "sequence gap", p.ErrorCode, kerr.OutOfOrderSequenceNumber)
	if hwm := highWatermark(t, c, n("idem"), 0); hwm != 3 {
		t.Fatalf("high watermark %d after a refused batch, want 3", hwm)
	}

	// Everything stored once, in order.
	resp := c.do(fetchRequest(n("idem"), 0, 0, 0, 0)).(*kmsg.FetchResponse)
	bases, counts := batchOffsets(t, resp.Topics[0].Partitions[0].RecordBatches)
	if len(bases) != 2 || bases[0] != 0 || bases[1] != 2 || counts[0] != 2 || counts[1] != 1 {
		t.Fatalf("stored batches at %v with %v records, want [0 2] with [2 1]", bases, counts)
	}
}

func TestProduceBadInput(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("bad"), 1)
	c := dialRaw(t, b)

	corrupt := values("a", "b")
	corrupt[len(corrupt)-1] ^= 0xff // the CRC no longer matches
	magic1 := values("a")
	magic1[16] = 1
	transactional := prototest.Batch(prototest.Values("t"), prototest.WithProducer(1, 0, 0), prototest.WithTransactional())
	control := prototest.Batch(prototest.Values("t"), prototest.WithControl())

	for _, tc := range []struct {
		name      string
		topic     string
		partition int32
		records   []byte
		want      *kerr.Error
	}{
		{"unknown topic", n("nope"), 0, values("a"), kerr.UnknownTopicOrPartition},
		{"unknown partition", n("bad"), 5, values("a"), kerr.UnknownTopicOrPartition},
		{"bad crc", n("bad"), 0, corrupt, kerr.CorruptMessage},
		{"truncated batch", n("bad"), 0, values("a")[:40], kerr.CorruptMessage},
		{"magic 1", n("bad"), 0, magic1, kerr.UnsupportedForMessageFormat},
		{"two batches", n("bad"), 0, prototest.RecordSet(values("a"), values("b")), kerr.InvalidRecord},
		{"no batch", n("bad"), 0, nil, kerr.InvalidRecord},
		{"transactional", n("bad"), 0, transactional, kerr.TransactionalIDAuthorizationFailed},
		{"control", n("bad"), 0, control, kerr.InvalidRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := produceRaw(t, c, tc.topic, tc.partition, tc.records)
			wantCode(t, tc.name, p.ErrorCode, tc.want)
			if p.BaseOffset != -1 {
				t.Errorf("failed partition has base offset %d, want -1", p.BaseOffset)
			}
		})
	}
	if hwm := highWatermark(t, c, n("bad"), 0); hwm != 0 {
		t.Fatalf("refused batches were stored: high watermark %d", hwm)
	}

	// acks other than -1, 0, 1.
	req := produceRequest(n("bad"), 0, 2, values("a"))
	resp := c.do(req).(*kmsg.ProduceResponse)
	wantCode(t, "acks=2", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequiredAcks)
}

func TestProduceMessageTooLarge(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	c := dialRaw(t, b)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 5000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n("small"), 1, 1
	cfg := kmsg.NewCreateTopicsRequestTopicConfig()
	cfg.Name, cfg.Value = "max.message.bytes", kmsg.StringPtr("200")
	rt.Configs = append(rt.Configs, cfg)
	req.Topics = append(req.Topics, rt)
	cresp := c.do(req).(*kmsg.CreateTopicsResponse)
	wantCode(t, "create", cresp.Topics[0].ErrorCode, nil)

	big := prototest.Batch([]protocol.Record{{Value: make([]byte, 300)}})
	wantCode(t, "big batch", produceRaw(t, c, n("small"), 0, big).ErrorCode, kerr.MessageTooLarge)
	wantCode(t, "small batch", produceRaw(t, c, n("small"), 0, values("ok")).ErrorCode, nil)
}

func TestProduceAcksZero(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("fire"), 1)
	c := dialRaw(t, b)
	for range 5 {
		c.send(produceRequest(n("fire"), 0, 0, values("a", "b")))
	}
	// The next response on the connection is the metadata request's: acks=0
	// produces have none.
	if resp := c.do(metadataRequest(12, n("fire"))).(*kmsg.MetadataResponse); len(resp.Topics) != 1 {
		t.Fatalf("metadata lists %d topics", len(resp.Topics))
	}
	eventually(t, 5*time.Second, func() error {
		if hwm := highWatermark(t, c, n("fire"), 0); hwm != 10 {
			return fmt.Errorf("high watermark %d, want 10", hwm)
		}
		return nil
	})

	// An acks=0 produce that fails closes the connection, so the client
	// refreshes its metadata.
	c.send(produceRequest(n("unknown-topic"), 0, 0, values("a")))
	c.expectClosed()
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	t.Parallel()
	n := uniqueNames()
	b := sharedBroker(t)
	createTopic(t, b, n("pipe"), 1)
	c := dialRaw(t, b)
	type sent struct {
		req  kmsg.Request
		corr int32
	}
	var all []sent
	for i := range 40 {
		var req kmsg.Request
		switch i % 4 {
		case 0, 1:
			req = produceRequest(n("pipe"), 0, -1, values(fmt.Sprint(i)))
		case 2:
			md := kmsg.NewPtrMetadataRequest()
			md.Version = 12
			req = md
		case 3:
			req = fetchRequest(n("pipe"), 0, 0, 1, 50)
		}
		all = append(all, sent{req, c.send(req)})
	}
	var next int64
	for _, s := range all {
		resp := c.recv(s.req, s.corr) // fails on an out-of-order correlation id
		if p, ok := resp.(*kmsg.ProduceResponse); ok {
			rp := p.Topics[0].Partitions[0]
			wantCode(t, "pipelined produce", rp.ErrorCode, nil)
			if rp.BaseOffset != next {
				t.Fatalf("pipelined produce %d at offset %d, want %d", s.corr, rp.BaseOffset, next)
			}
			next++
		}
	}
}

// TestProduceLegacyVersionsListedButRefused: Produce v0-2 are in
// ApiVersions (librdkafka compresses only then, KAFKA-18659) but every
// partition gets UNSUPPORTED_VERSION, nothing is stored and the connection
// stays usable.
func TestProduceLegacyVersionsListedButRefused(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	n := uniqueNames()
	createTopic(t, b, n("legacy"), 1)
	c := dialRaw(t, b)
	for v := int16(0); v <= 2; v++ {
		req := produceRequest(n("legacy"), 0, -1, values("old"))
		req.Version = v
		resp := c.do(req).(*kmsg.ProduceResponse)
		wantCode(t, fmt.Sprintf("produce v%d", v), resp.Topics[0].Partitions[0].ErrorCode, kerr.UnsupportedVersion)
	}
	if _, hwm := b.localGroup(0).g.Offsets(b.meta.Image().Topics[n("legacy")].Partitions[0].Stream); hwm != 0 {
		t.Fatalf("refused legacy produces stored %d records", hwm)
	}
	wantCode(t, "produce v9 on the same connection", produceRaw(t, c, n("legacy"), 0, values("new")).ErrorCode, nil)
}
