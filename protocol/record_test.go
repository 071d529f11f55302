package protocol_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

func TestDecodeRecords(t *testing.T) {
	in := sampleRecords()
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			recs, err := protocol.DecodeRecords(prototest.Batch(in, prototest.WithCodec(c)), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(in) {
				t.Fatalf("%d records, want %d", len(recs), len(in))
			}
			for i, r := range recs {
				w := in[i]
				if r.OffsetDelta != int32(i) || r.TimestampDelta != w.TimestampDelta || r.Attributes != w.Attributes {
					t.Errorf("record %d = %+v", i, r)
				}
				// nil (null) and empty must stay distinct.
				if (r.Key == nil) != (w.Key == nil) || !bytes.Equal(r.Key, w.Key) ||
					(r.Value == nil) != (w.Value == nil) || !bytes.Equal(r.Value, w.Value) {
					t.Errorf("record %d key/value = %q/%q, want %q/%q", i, r.Key, r.Value, w.Key, w.Value)
				}
				if len(r.Headers) != len(w.Headers) {
					t.Fatalf("record %d has %d headers", i, len(r.Headers))
				}
				for j, h := range r.Headers {
					if h.Key != w.Headers[j].Key || (h.Value == nil) != (w.Headers[j].Value == nil) || !bytes.Equal(h.Value, w.Headers[j].Value) {
						t.Errorf("record %d header %d = %+v", i, j, h)
					}
				}
			}
		})
	}
}

func TestDecodeRecordsErrors(t *testing.T) {
	big := prototest.Batch([]protocol.Record{{Value: bytes.Repeat([]byte{'z'}, 1<<20)}}, prototest.WithCodec(protocol.CodecZstd))
	if _, err := protocol.DecodeRecords(big, 1<<16); !errors.Is(err, protocol.ErrDecompressedTooLarge) {
		t.Errorf("bomb: err = %v", err)
	}
	b := prototest.Batch(prototest.Values("a"))
	b[16] = 1
	if _, err := protocol.DecodeRecords(b, 1<<20); !errors.Is(err, protocol.ErrUnsupportedMagic) {
		t.Errorf("magic 1: err = %v", err)
	}
	// More records claimed than present.
	c := prototest.Batch(prototest.Values("a", "b"), prototest.WithCodec(protocol.CodecGzip))
	c[60] = 3
	if _, err := protocol.DecodeRecords(c, 1<<20); !errors.Is(err, protocol.ErrInvalidBatch) {
		t.Errorf("count 3 of 2: err = %v", err)
	}
	// A header with a null key.
	d := prototest.Batch([]protocol.Record{{Value: []byte("v"), Headers: []protocol.Header{{Key: "k"}}}})
	i := bytes.Index(d[61:], []byte{2, 'k'}) + 61 // zigzag(1), 'k'
	d[i] = 1                                      // zigzag(-1): null key
	if _, err := protocol.DecodeRecords(d, 1<<20); !errors.Is(err, protocol.ErrInvalidBatch) {
		t.Errorf("null header key: err = %v", err)
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	// Timestamps 1000+{0, 20, 10, 30, 30}: not sorted, with a tie at the max.
	recs := []protocol.Record{{TimestampDelta: 0}, {TimestampDelta: 20}, {TimestampDelta: 10}, {TimestampDelta: 30}, {TimestampDelta: 30}}
	for _, c := range allCodecs {
		b := prototest.Batch(recs, prototest.WithCodec(c), prototest.WithBaseOffset(500), prototest.WithFirstTimestamp(1000))
		tests := []struct {
			ts     int64
			want   int64
			wantOK bool
		}{
			{0, 500, true},
			{1000, 500, true},
			{1001, 501, true},
			{1010, 501, true}, // first record with ts >= 1010 is 1020 at offset 501
			{1021, 503, true},
			{1030, 503, true},
			{1031, 0, false},
		}
		for _, tt := range tests {
			off, ok, err := protocol.OffsetForTimestamp(b, tt.ts)
			if err != nil || ok != tt.wantOK || off != tt.want {
				t.Errorf("%v: OffsetForTimestamp(%d) = %d, %v, %v; want %d, %v", c, tt.ts, off, ok, err, tt.want, tt.wantOK)
			}
		}
		off, ts, err := protocol.MaxTimestampOffset(b)
		if err != nil || off != 503 || ts != 1030 {
			t.Errorf("%v: MaxTimestampOffset = %d, %d, %v; want 503, 1030", c, off, ts, err)
		}
	}
}

func TestLogAppendTimeLookups(t *testing.T) {
	b := prototest.Batch(prototest.Values("a", "b", "c"), prototest.WithLogAppendTime(),
		prototest.WithBaseOffset(10), prototest.WithFirstTimestamp(5), prototest.WithMaxTimestamp(9000))
	if off, ok, err := protocol.OffsetForTimestamp(b, 8000); err != nil || !ok || off != 10 {
		t.Errorf("OffsetForTimestamp(8000) = %d, %v, %v; want 10", off, ok, err)
	}
	if _, ok, err := protocol.OffsetForTimestamp(b, 9001); err != nil || ok {
		t.Errorf("OffsetForTimestamp(9001) = %v, %v; want none", ok, err)
	}
	if off, ts, err := protocol.MaxTimestampOffset(b); err != nil || off != 10 || ts != 9000 {
		t.Errorf("MaxTimestampOffset = %d, %d, %v; want 10, 9000", off, ts, err)
	}
}
