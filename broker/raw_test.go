package broker

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/protocol/prototest"
)

// produceRequest builds a produce request (v9) of one partition.
func produceRequest(topic string, partition int32, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// produceRaw produces records to one partition and returns its result.
func produceRaw(t *testing.T, c *rawConn, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := c.do(produceRequest(topic, partition, -1, records)).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response has %d topics", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// listOffset asks for one partition's offset at timestamp ts (v9).
func listOffset(t *testing.T, c *rawConn, topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 9
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.do(req).(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("list offsets response has %d topics", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// highWatermark returns the partition's latest offset.
func highWatermark(t *testing.T, c *rawConn, topic string, partition int32) int64 {
	t.Helper()
	p := listOffset(t, c, topic, partition, -1)
	if p.ErrorCode != 0 {
		t.Fatalf("list offsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

// fetchRequest builds a fetch (v11, by name) of one partition.
func fetchRequest(topic string, partition int32, offset int64, minBytes, maxWaitMs int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MinBytes = minBytes
	req.MaxWaitMillis = maxWaitMs
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// batchOffsets returns the base offset and record count of every batch of
// a record set.
func batchOffsets(t *testing.T, recs []byte) (bases []int64, counts []int32) {
	t.Helper()
	for pos := 0; pos < len(recs); {
		if len(recs)-pos < 61 {
			t.Fatalf("partial batch of %d bytes", len(recs)-pos)
		}
		bases = append(bases, int64(binary.BigEndian.Uint64(recs[pos:])))
		counts = append(counts, int32(binary.BigEndian.Uint32(recs[pos+57:])))
		pos += int(binary.BigEndian.Uint32(recs[pos+8:])) + 12
	}
	return bases, counts
}

// values is a batch of plain values.
func values(vs ...string) []byte { return prototest.Batch(prototest.Values(vs...)) }

// wantCode fails the test unless code is want.
func wantCode(t *testing.T, what string, code int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if code != wantCode {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(code), want)
	}
}
