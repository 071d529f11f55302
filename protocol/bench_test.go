package protocol_test

import (
	"testing"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func benchRecords() []protocol.Record {
	recs := make([]protocol.Record, 16)
	for i := range recs {
		recs[i] = protocol.Record{TimestampDelta: int64(i), Value: make([]byte, 1024)}
	}
	return recs
}

// BenchmarkValidateBatch validates an uncompressed 16 x 1 KiB batch (CRC and
// record walk), the per-batch cost on the produce path.
func BenchmarkValidateBatch(b *testing.B) {
	batch := prototest.Batch(benchRecords())
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := protocol.ValidateBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseProduceRequest parses a produce request carrying one such
// batch.
func BenchmarkParseProduceRequest(b *testing.B) {
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(9)
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "bench"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = prototest.Batch(benchRecords())
	t.Partitions = append(t.Partitions, pp)
	p.Topics = append(p.Topics, t)
	frame := prototest.Frame(p, 1, "bench")[4:]
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, err := protocol.ParseRequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRecordsZstd decompresses and decodes a zstd 16 x 1 KiB batch.
func BenchmarkDecodeRecordsZstd(b *testing.B) {
	batch := prototest.Batch(benchRecords(), prototest.WithCodec(protocol.CodecZstd))
	for b.Loop() {
		if _, err := protocol.DecodeRecords(batch, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
