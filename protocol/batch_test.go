package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var allCodecs = []protocol.Codec{protocol.CodecNone, protocol.CodecGzip, protocol.CodecSnappy, protocol.CodecLZ4, protocol.CodecZstd}

func sampleRecords() []protocol.Record {
	return []protocol.Record{
		{TimestampDelta: 0, Key: []byte("k0"), Value: []byte("v0")},
		{TimestampDelta: 5, Key: nil, Value: []byte{}, Headers: []protocol.Header{{Key: "h", Value: []byte("x")}, {Key: "", Value: nil}}},
		{TimestampDelta: -3, Key: []byte{}, Value: nil},
		{TimestampDelta: 1 << 40, Key: bytes.Repeat([]byte("K"), 300), Value: bytes.Repeat([]byte("value "), 500)},
	}
}

// TestBatchAgainstKmsg checks prototest batches and our header parsing
// against kmsg's independent RecordBatch decoder.
func TestBatchAgainstKmsg(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := prototest.Batch(sampleRecords(), prototest.WithCodec(c), prototest.WithBaseOffset(100),
				prototest.WithFirstTimestamp(1_700_000_000_000), prototest.WithProducer(42, 3, 17),
				prototest.WithTransactional(), prototest.WithPartitionLeaderEpoch(9))
			h, err := protocol.ValidateBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(b); err != nil {
				t.Fatal(err)
			}
			want := protocol.BatchHeader{
				BaseOffset: kb.FirstOffset, BatchLength: kb.Length, PartitionLeaderEpoch: kb.PartitionLeaderEpoch,
				Magic: kb.Magic, CRC: uint32(kb.CRC), Attributes: kb.Attributes, LastOffsetDelta: kb.LastOffsetDelta,
				FirstTimestamp: kb.FirstTimestamp, MaxTimestamp: kb.MaxTimestamp, ProducerID: kb.ProducerID,
				ProducerEpoch: kb.ProducerEpoch, BaseSequence: kb.FirstSequence, NumRecords: kb.NumRecords,
			}
			if h != want {
				t.Errorf("header = %+v\nkmsg   = %+v", h, want)
			}
			if h.BaseOffset != 100 || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != 17 ||
				h.PartitionLeaderEpoch != 9 || h.NumRecords != 4 || h.LastOffsetDelta != 3 || h.Codec() != c ||
				!h.IsTransactional() || h.IsControl() || h.LogAppendTime() || h.LastSequence() != 20 {
				t.Errorf("header fields = %+v", h)
			}
			if h.MaxTimestamp != 1_700_000_000_000+1<<40 {
				t.Errorf("max timestamp = %d", h.MaxTimestamp)
			}
			// Records: ours versus kmsg.Record over the decompressed bytes
			// (decompressed by an independent reader, see oracleDecompress).
			recs, err := protocol.DecodeRecords(b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			raw := oracleDecompress(t, c, kb.Records)
			for i, r := range recs {
				var kr kmsg.Record
				n, rest := binary.Varint(raw)
				if rest <= 0 {
					t.Fatalf("record %d length", i)
				}
				end := rest + int(n)
				if err := kr.ReadFrom(raw[:end]); err != nil {
					t.Fatalf("kmsg record %d: %v", i, err)
				}
				raw = raw[end:]
				if kr.OffsetDelta != int32(i) || r.OffsetDelta != int32(i) || kr.TimestampDelta64 != r.TimestampDelta ||
					!bytes.Equal(kr.Key, r.Key) || !bytes.Equal(kr.Value, r.Value) || len(kr.Headers) != len(r.Headers) {
					t.Errorf("record %d: ours %+v, kmsg %+v", i, r, kr)
				}
				for j := range r.Headers {
					if kr.Headers[j].Key != r.Headers[j].Key || !bytes.Equal(kr.Headers[j].Value, r.Headers[j].Value) {
						t.Errorf("record %d header %d differs", i, j)
					}
				}
			}
			if len(raw) != 0 {
				t.Errorf("%d bytes left after records", len(raw))
			}
		})
	}
}

func TestValidateBatchErrors(t *testing.T) {
	good := prototest.Batch(prototest.Values("a", "b", "c"))
	edit := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	refix := func(f func(b []byte)) []byte {
		return edit(func(b []byte) []byte { f(b); prototest.FixCRC(b); return b })
	}
	be := binary.BigEndian
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, protocol.ErrCorruptBatch},
		{"magic 0", refix(func(b []byte) { b[16] = 0 }), protocol.ErrUnsupportedMagic},
		{"magic 1", refix(func(b []byte) { b[16] = 1 }), protocol.ErrUnsupportedMagic},
		{"magic 1 short legacy message", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 14, 1, 2, 3, 4, 1, 0}, protocol.ErrUnsupportedMagic},
		{"magic 3", refix(func(b []byte) { b[16] = 3 }), protocol.ErrCorruptBatch},
		{"bad crc", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), protocol.ErrCorruptBatch},
		{"crc field flipped", edit(func(b []byte) []byte { b[18] ^= 0x80; return b }), protocol.ErrCorruptBatch},
		{"truncated", good[:len(good)-1], protocol.ErrCorruptBatch},
		{"header only", good[:protocol.BatchHeaderSize], protocol.ErrCorruptBatch},
		{"short header", good[:40], protocol.ErrCorruptBatch},
		{"trailing byte", edit(func(b []byte) []byte { return append(b, 0) }), protocol.ErrCorruptBatch},
		{"negative length", edit(func(b []byte) []byte { be.PutUint32(b[8:], 0xffffffff); return b }), protocol.ErrCorruptBatch},
		{"codec 6", refix(func(b []byte) { b[22] |= 6 }), protocol.ErrUnsupportedCodec},
		{"count mismatch", refix(func(b []byte) { be.PutUint32(b[57:], 2) }), protocol.ErrInvalidBatch},
		{"count and delta agree but wrong", refix(func(b []byte) { be.PutUint32(b[57:], 4); be.PutUint32(b[23:], 3) }), protocol.ErrInvalidBatch},
		{"zero records", prototest.Batch(nil), protocol.ErrInvalidBatch},
		{"bad record length", refix(func(b []byte) { b[61] = 0x7f }), protocol.ErrInvalidBatch},
		{"bad offset delta", refix(func(b []byte) { b[61+3] = 4 /* zigzag 2 */ }), protocol.ErrInvalidBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := protocol.ValidateBatch(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := protocol.ValidateBatch(good); err != nil {
		t.Fatalf("good batch: %v", err)
	}
}

func TestPatchKeepsCRC(t *testing.T) {
	for _, c := range allCodecs {
		b := prototest.Batch(prototest.Values("x", "y"), prototest.WithCodec(c))
		protocol.SetBaseOffset(b, 1<<40+5)
		protocol.SetPartitionLeaderEpoch(b, 77)
		h, err := protocol.ValidateBatch(b)
		if err != nil {
			t.Fatalf("%v: after patching: %v", c, err)
		}
		if h.BaseOffset != 1<<40+5 || h.PartitionLeaderEpoch != 77 || h.LastOffset() != 1<<40+6 {
			t.Errorf("%v: patched header = %+v", c, h)
		}
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(b); err != nil || kb.FirstOffset != 1<<40+5 || kb.PartitionLeaderEpoch != 77 {
			t.Errorf("%v: kmsg sees %+v, %v", c, kb, err)
		}
	}
}

func TestSplitBatches(t *testing.T) {
	b1 := prototest.Batch(prototest.Values("a"))
	b2 := prototest.Batch(prototest.Values("b", "c"), prototest.WithCodec(protocol.CodecZstd))
	b3 := prototest.Batch(prototest.Values("d", "e", "f"), prototest.WithProducer(1, 0, 5))
	set := prototest.RecordSet(b1, b2, b3)

	batches, headers, err := protocol.SplitBatches(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 3 || len(headers) != 3 {
		t.Fatalf("got %d batches", len(batches))
	}
	for i, want := range [][]byte{b1, b2, b3} {
		if !bytes.Equal(batches[i], want) {
			t.Errorf("batch %d differs", i)
		}
		if headers[i].NumRecords != int32(i+1) {
			t.Errorf("batch %d has %d records", i, headers[i].NumRecords)
		}
	}
	// Sub-slices, not copies: patching a batch patches the record set.
	protocol.SetBaseOffset(batches[1], 99)
	if h, _ := protocol.ParseBatchHeader(set[len(b1):]); h.BaseOffset != 99 {
		t.Error("SplitBatches copied the batch")
	}
	protocol.SetBaseOffset(batches[1], 0)

	if b, h, err := protocol.SplitBatches(nil); err != nil || len(b) != 0 || len(h) != 0 {
		t.Errorf("empty record set: %d batches, %v", len(b), err)
	}
	bad := append([]byte(nil), set...)
	bad[len(b1)+len(b2)-1] ^= 0xff
	for name, tt := range map[string]struct {
		in   []byte
		want error
	}{
		"partial trailing batch":  {set[:len(set)-1], protocol.ErrCorruptBatch},
		"trailing 10 bytes":       {append(append([]byte(nil), set...), make([]byte, 10)...), protocol.ErrCorruptBatch},
		"bad crc in middle batch": {bad, protocol.ErrCorruptBatch},
		"legacy magic":            {append(append([]byte(nil), b1...), make([]byte, 30)...), protocol.ErrUnsupportedMagic},
	} {
		if tt.want == protocol.ErrUnsupportedMagic {
			tt.in[len(b1)+16] = 1
		}
		if _, _, err := protocol.SplitBatches(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tt.want)
		}
	}
}

func TestBatchHeaderFlags(t *testing.T) {
	b := prototest.Batch(prototest.Values("m"), prototest.WithControl(), prototest.WithTransactional(),
		prototest.WithLogAppendTime(), prototest.WithCodec(protocol.CodecLZ4))
	h, err := protocol.ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !h.IsControl() || !h.IsTransactional() || !h.LogAppendTime() || h.Codec() != protocol.CodecLZ4 {
		t.Errorf("flags of %+v", h)
	}
	plain := prototest.Batch(prototest.Values("m"))
	if h, _ := protocol.ValidateBatch(plain); h.IsControl() || h.IsTransactional() || h.LogAppendTime() ||
		h.Codec() != protocol.CodecNone || h.ProducerID != -1 || h.BaseSequence != -1 || h.LastSequence() != -1 {
		t.Errorf("plain batch header %+v", h)
	}
}

func TestLastSequence(t *testing.T) {
	tests := []struct {
		base, delta, want int32
	}{
		{0, 0, 0},
		{5, 9, 14},
		{-1, 4, -1}, // no sequence
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32 - 2, 2, math.MaxInt32},
		{math.MaxInt32 - 2, 3, 0},
		{math.MaxInt32, 5, 4},
	}
	for _, tt := range tests {
		h := protocol.BatchHeader{BaseSequence: tt.base, LastOffsetDelta: tt.delta}
		if got := h.LastSequence(); got != tt.want {
			t.Errorf("LastSequence(%d + %d) = %d, want %d", tt.base, tt.delta, got, tt.want)
		}
	}
}
