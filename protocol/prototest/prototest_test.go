package prototest_test

import (
	"encoding/binary"
	"testing"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBatchIsValid(t *testing.T) {
	for _, c := range []protocol.Codec{protocol.CodecNone, protocol.CodecGzip, protocol.CodecSnappy, protocol.CodecLZ4, protocol.CodecZstd} {
		b := prototest.Batch(prototest.Values("a", "b", "c"), prototest.WithCodec(c),
			prototest.WithProducer(5, 2, 100), prototest.WithBaseOffset(7), prototest.WithFirstTimestamp(1000))
		h, err := protocol.ValidateBatch(b)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if h.NumRecords != 3 || h.BaseOffset != 7 || h.ProducerID != 5 || h.ProducerEpoch != 2 ||
			h.BaseSequence != 100 || h.FirstTimestamp != 1000 || h.MaxTimestamp != 1002 || h.Codec() != c {
			t.Errorf("%v: header %+v", c, h)
		}
		recs, err := protocol.DecodeRecords(b, 1<<20)
		if err != nil || len(recs) != 3 || string(recs[2].Value) != "c" || recs[2].OffsetDelta != 2 {
			t.Errorf("%v: records %+v, %v", c, recs, err)
		}
	}
}

func TestFrame(t *testing.T) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	frame := prototest.Frame(req, 9, "me")
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("size %d for %d bytes", n, len(frame)-4)
	}
	h, got, err := protocol.ParseRequest(frame[4:])
	if err != nil || h.CorrelationID != 9 || *h.ClientID != "me" || got.Key() != 3 {
		t.Fatalf("parsed %+v, %v", h, err)
	}
}
