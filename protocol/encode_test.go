package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

// kmsgRecords decodes a batch with kmsg and an independent decompressor:
// header, records and whether kmsg's view of the CRC matches.
func kmsgRecords(t *testing.T, b []byte) (kmsg.RecordBatch, []kmsg.Record) {
	t.Helper()
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)); uint32(kb.CRC) != crc {
		t.Fatalf("crc %08x, computed %08x", uint32(kb.CRC), crc)
	}
	if int(kb.Length)+12 != len(b) {
		t.Fatalf("batch length %d for %d bytes", kb.Length, len(b))
	}
	raw := oracleDecompress(t, protocol.Codec(kb.Attributes&7), kb.Records)
	var out []kmsg.Record
	for len(raw) > 0 {
		n, l := binary.Varint(raw)
		if l <= 0 {
			t.Fatal("record length")
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(raw[:l+int(n)]); err != nil {
			t.Fatal(err)
		}
		out = append(out, kr)
		raw = raw[l+int(n):]
	}
	return kb, out
}

// TestAppendBatchCompactedShape encodes a batch whose records have offset
// gaps (as compaction leaves them) with every codec and reads it with kmsg.
func TestAppendBatchCompactedShape(t *testing.T) {
	recs := []protocol.Record{
		{OffsetDelta: 2, TimestampDelta: 7, Key: []byte("a"), Value: []byte("va")},
		{OffsetDelta: 5, TimestampDelta: -1, Key: []byte("b"), Value: nil}, // tombstone
		{OffsetDelta: 6, TimestampDelta: 1 << 33, Key: []byte{}, Value: bytes.Repeat([]byte("x"), 4000),
			Headers: []protocol.Header{{Key: "h", Value: nil}, {Key: "", Value: []byte{}}}},
	}
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			h := protocol.BatchHeader{
				BaseOffset: 40, PartitionLeaderEpoch: 3, Attributes: 0x08, LastOffsetDelta: 9,
				FirstTimestamp: 1000, MaxTimestamp: 2000, ProducerID: 5, ProducerEpoch: 1, BaseSequence: 11,
			}.WithCodec(c)
			prefix := []byte("keep")
			b, err := protocol.AppendBatch(bytes.Clone(prefix), h, recs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b[:4], prefix) {
				t.Fatal("dst prefix overwritten")
			}
			b = b[4:]
			kb, krs := kmsgRecords(t, b)
			if kb.FirstOffset != 40 || kb.PartitionLeaderEpoch != 3 || kb.Magic != 2 || kb.Attributes != 0x08|int16(c) ||
				kb.LastOffsetDelta != 9 || kb.FirstTimestamp != 1000 || kb.MaxTimestamp != 2000 || kb.ProducerID != 5 ||
				kb.ProducerEpoch != 1 || kb.FirstSequence != 11 || kb.NumRecords != 3 {
				t.Fatalf("kmsg header %+v", kb)
			}
			if len(krs) != len(recs) {
				t.Fatalf("kmsg decoded %d records", len(krs))
			}
			for i, kr := range krs {
				r := recs[i]
				if kr.OffsetDelta != r.OffsetDelta || kr.TimestampDelta64 != r.TimestampDelta ||
					!bytes.Equal(kr.Key, r.Key) || (kr.Key == nil) != (r.Key == nil) ||
					!bytes.Equal(kr.Value, r.Value) || (kr.Value == nil) != (r.Value == nil) ||
					len(kr.Headers) != len(r.Headers) {
					t.Fatalf("record %d: kmsg %+v, sent %+v", i, kr, r)
				}
			}
			// Our decoder reads it back too (the CRC is right, the offset
			// gaps are kept).
			got, err := protocol.DecodeRecords(b, 1<<20)
			if err != nil || len(got) != 3 || got[1].OffsetDelta != 5 || got[1].Value != nil || got[2].Key == nil {
				t.Fatalf("DecodeRecords: %+v, %v", got, err)
			}
			// A produced batch must be dense: ValidateBatch refuses the gaps.
			if _, err := protocol.ValidateBatch(b); !errors.Is(err, protocol.ErrInvalidBatch) {
				t.Fatalf("ValidateBatch of a gapped batch: %v", err)
			}
		})
	}
}

func TestAppendBatchRecompressRoundTrip(t *testing.T) {
	for _, from := range allCodecs {
		orig := prototest.Batch(sampleRecords(), prototest.WithCodec(from), prototest.WithProducer(9, 2, 100),
			prototest.WithFirstTimestamp(1_700_000_000_000), prototest.WithBaseOffset(77))
		h, recs, err := protocol.ValidateRecords(orig, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range allCodecs {
			b, err := protocol.AppendBatch(nil, h.WithCodec(to), recs)
			if err != nil {
				t.Fatal(err)
			}
			nh, err := protocol.ValidateBatch(b)
			if err != nil {
				t.Fatalf("%v -> %v: %v", from, to, err)
			}
			if nh.Codec() != to || nh.WithCodec(from) != withLenCRC(h, nh) {
				t.Fatalf("%v -> %v: header %+v from %+v", from, to, nh, h)
			}
			_, got, err := protocol.ValidateRecords(b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				if !sameRecord(got[i], recs[i]) {
					t.Fatalf("%v -> %v: record %d %+v, want %+v", from, to, i, got[i], recs[i])
				}
			}
			if to == from && !bytes.Equal(b, orig) {
				t.Fatalf("%v re-encoded differs from the original", to)
			}
		}
	}
}

// withLenCRC returns h with the length and CRC of n (they change with the
// codec) so the other fields can be compared.
func withLenCRC(h, n protocol.BatchHeader) protocol.BatchHeader {
	h.BatchLength, h.CRC = n.BatchLength, n.CRC
	return h
}

func sameRecord(a, b protocol.Record) bool {
	if a.Attributes != b.Attributes || a.TimestampDelta != b.TimestampDelta || a.OffsetDelta != b.OffsetDelta ||
		!bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) ||
		!bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) ||
			(a.Headers[i].Value == nil) != (b.Headers[i].Value == nil) {
			return false
		}
	}
	return true
}

func TestAppendBatchUnknownCodec(t *testing.T) {
	dst := []byte("x")
	out, err := protocol.AppendBatch(dst, protocol.BatchHeader{Attributes: 6}, nil)
	if !errors.Is(err, protocol.ErrUnsupportedCodec) || !bytes.Equal(out, dst) {
		t.Fatalf("codec 6: %q, %v", out, err)
	}
}

func TestWithCodecKeepsOtherBits(t *testing.T) {
	h := protocol.BatchHeader{Attributes: 0x38 | 2}
	if g := h.WithCodec(protocol.CodecZstd); g.Attributes != 0x38|4 || !g.IsControl() || !g.IsTransactional() || !g.LogAppendTime() {
		t.Fatalf("attributes %#x", g.Attributes)
	}
}

func TestValidateRecordsErrors(t *testing.T) {
	// Compressed records with offset deltas 0, 2: framing and CRC are
	// fine, the records are not.
	gapped, err := protocol.AppendBatch(nil, protocol.BatchHeader{Attributes: int16(protocol.CodecGzip), LastOffsetDelta: 1},
		[]protocol.Record{{OffsetDelta: 0, Value: []byte("a")}, {OffsetDelta: 2, Value: []byte("b")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.ValidateBatch(gapped); err != nil {
		t.Fatalf("ValidateBatch does not decompress: %v", err)
	}
	// Compressed garbage with a valid CRC.
	garbage := prototest.Batch(prototest.Values("a", "b"), prototest.WithCodec(protocol.CodecZstd))
	for i := protocol.BatchHeaderSize; i < len(garbage); i++ {
		garbage[i] ^= 0x5a
	}
	prototest.FixCRC(garbage)
	// Fewer records than NumRecords says.
	short := prototest.Batch(prototest.Values("a", "b"), prototest.WithCodec(protocol.CodecSnappy))
	binary.BigEndian.PutUint32(short[57:], 3)
	binary.BigEndian.PutUint32(short[23:], 2)
	prototest.FixCRC(short)
	// A bomb: 1 MB of zeros in a few hundred bytes.
	bomb := prototest.Batch([]protocol.Record{{Value: make([]byte, 1<<20)}}, prototest.WithCodec(protocol.CodecLZ4))

	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"offset gap": {gapped, protocol.ErrInvalidBatch},
		"garbage":    {garbage, protocol.ErrCorruptBatch},
		"short":      {short, protocol.ErrInvalidBatch},
		"bomb":       {bomb, protocol.ErrDecompressedTooLarge},
	} {
		if _, _, err := protocol.ValidateRecords(tc.b, 64<<10); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, recs, err := protocol.ValidateRecords(bomb, 2<<20); err != nil || len(recs) != 1 || len(recs[0].Value) != 1<<20 {
		t.Fatalf("bomb within the bound: %d records, %v", len(recs), err)
	}
}

func TestRecordTimestamp(t *testing.T) {
	h := protocol.BatchHeader{FirstTimestamp: 100, MaxTimestamp: 500}
	r := protocol.Record{TimestampDelta: 7}
	if got := protocol.RecordTimestamp(h, &r); got != 107 {
		t.Fatalf("CreateTime: %d", got)
	}
	h.Attributes = 0x08
	if got := protocol.RecordTimestamp(h, &r); got != 500 {
		t.Fatalf("LogAppendTime: %d", got)
	}
}

func FuzzValidateRecords(f *testing.F) {
	for _, c := range allCodecs {
		f.Add(prototest.Batch(sampleRecords(), prototest.WithCodec(c)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, recs, err := protocol.ValidateRecords(b, 1<<20)
		if err != nil {
			return
		}
		// What validates re-encodes to a batch that validates the same.
		out, err := protocol.AppendBatch(nil, h, recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, again, err := protocol.ValidateRecords(out, 1<<20); err != nil || len(again) != len(recs) {
			t.Fatalf("re-encoded: %d records, %v", len(again), err)
		}
	})
}
