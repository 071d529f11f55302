package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
)

// maxLookupDecompressed bounds decompression in OffsetForTimestamp and
// MaxTimestampOffset, which take no bound of their own.
const maxLookupDecompressed = 256 << 20

// minRecordSize is the smallest encoded record: a length varint and six
// one-byte fields (attributes, timestamp delta, offset delta, key length,
// value length, header count).
const minRecordSize = 7

// Header is a record header. Value nil means a null value.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record of a magic-2 batch, as on the wire. Key and Value nil
// mean null; a non-nil empty slice is an empty (non-null) key or value.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key, Value     []byte
	Headers        []Header
}

// DecodeRecords decodes every record of one magic-2 batch, decompressing the
// records first when the batch is compressed (at most maxDecompressed bytes,
// else ErrDecompressedTooLarge). The batch's length fields must match len(batch)
// and the number of records must match NumRecords. The CRC is not checked:
// call ValidateBatch first for untrusted input. Keys, values and header values
// alias batch (uncompressed) or the decompressed buffer.
func DecodeRecords(batch []byte, maxDecompressed int) ([]Record, error) {
	h, data, err := batchRecords(batch, maxDecompressed)
	if err != nil {
		return nil, err
	}
	recs := make([]Record, 0, min(int(h.NumRecords), len(data)/minRecordSize))
	err = forEachRecord(data, h.NumRecords, func(_ int, r *Record) error {
		recs = append(recs, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// OffsetForTimestamp returns the offset of the first record in the batch
// whose timestamp is at least ts; ok is false if there is none. Records of a
// LogAppendTime batch all have the batch's MaxTimestamp. Compressed batches
// are decompressed (bounded at 256 MiB).
func OffsetForTimestamp(batch []byte, ts int64) (offset int64, ok bool, err error) {
	if err := checkMagic(batch); err != nil {
		return 0, false, err
	}
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return 0, false, err
	}
	if h.MaxTimestamp < ts {
		return 0, false, nil // no record can qualify; skip decoding
	}
	h, data, err := batchRecords(batch, maxLookupDecompressed)
	if err != nil {
		return 0, false, err
	}
	err = forEachRecord(data, h.NumRecords, func(_ int, r *Record) error {
		if !ok && recordTimestamp(h, r) >= ts {
			offset, ok = h.BaseOffset+int64(r.OffsetDelta), true
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return offset, ok, nil
}

// MaxTimestampOffset returns the offset and timestamp of the record with the
// largest timestamp in the batch (the first one on ties). Records of a
// LogAppendTime batch all have the batch's MaxTimestamp. A batch without
// records is ErrInvalidBatch.
func MaxTimestampOffset(batch []byte) (offset, ts int64, err error) {
	h, data, err := batchRecords(batch, maxLookupDecompressed)
	if err != nil {
		return 0, 0, err
	}
	found := false
	err = forEachRecord(data, h.NumRecords, func(_ int, r *Record) error {
		if t := recordTimestamp(h, r); !found || t > ts {
			offset, ts, found = h.BaseOffset+int64(r.OffsetDelta), t, true
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("batch has no records: %w", ErrInvalidBatch)
	}
	return offset, ts, nil
}

// recordTimestamp returns a record's timestamp as Kafka defines it.
func recordTimestamp(h BatchHeader, r *Record) int64 {
	if h.LogAppendTime() {
		return h.MaxTimestamp
	}
	return h.FirstTimestamp + r.TimestampDelta
}

// batchRecords checks the framing of one batch and returns its header and
// its (decompressed) record bytes.
func batchRecords(batch []byte, maxDecompressed int) (BatchHeader, []byte, error) {
	if err := checkMagic(batch); err != nil {
		return BatchHeader{}, nil, err
	}
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return h, nil, err
	}
	if int64(h.BatchLength)+batchLengthOverhead != int64(len(batch)) {
		return h, nil, fmt.Errorf("batch length %d for %d bytes: %w", h.BatchLength, len(batch), ErrCorruptBatch)
	}
	if h.NumRecords < 0 {
		return h, nil, fmt.Errorf("record count %d: %w", h.NumRecords, ErrInvalidBatch)
	}
	data, err := Decompress(h.Codec(), batch[BatchHeaderSize:], maxDecompressed)
	if err != nil {
		return h, nil, fmt.Errorf("batch records: %w", err)
	}
	return h, data, nil
}

// forEachRecord parses exactly n records from data, calling fn for each with
// its index. The record passed to fn is fresh each time and may be kept. Too
// few records, trailing bytes or a bad encoding are ErrInvalidBatch.
func forEachRecord(data []byte, n int32, fn func(i int, r *Record) error) error {
	for i := 0; i < int(n); i++ {
		if len(data) == 0 {
			return fmt.Errorf("batch ends after %d of %d records: %w", i, n, ErrInvalidBatch)
		}
		var r Record
		var err error
		if data, err = parseRecord(data, &r); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if err := fn(i, &r); err != nil {
			return err
		}
	}
	if len(data) != 0 {
		return fmt.Errorf("%d bytes after the last of %d records: %w", len(data), n, ErrInvalidBatch)
	}
	return nil
}

// parseRecord parses one length-prefixed record from the front of b into r
// and returns the bytes after it.
func parseRecord(b []byte, r *Record) ([]byte, error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || length > int64(len(b)-n) {
		return nil, fmt.Errorf("record length: %w", ErrInvalidBatch)
	}
	d := recordDecoder{b: b[n : int64(n)+length]}
	rest := b[int64(n)+length:]
	r.Attributes = int8(d.byte())
	r.TimestampDelta = d.varlong()
	r.OffsetDelta = d.varint()
	r.Key = d.nullableBytes()
	r.Value = d.nullableBytes()
	count := d.varint()
	if d.err == nil && (count < 0 || int(count) > len(d.b)/2) {
		return nil, fmt.Errorf("header count %d with %d bytes left: %w", count, len(d.b), ErrInvalidBatch)
	}
	if count > 0 && d.err == nil {
		r.Headers = make([]Header, count)
		for i := range r.Headers {
			key := d.nullableBytes()
			if key == nil && d.err == nil {
				return nil, fmt.Errorf("header %d has a null key: %w", i, ErrInvalidBatch)
			}
			r.Headers[i] = Header{Key: string(key), Value: d.nullableBytes()}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("record length %d leaves %d bytes unread: %w", length, len(d.b), ErrInvalidBatch)
	}
	return rest, nil
}

// recordDecoder reads record fields; the first error sticks and later reads
// return zero values.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("record %s: %w", what, ErrInvalidBatch)
	}
	d.b = nil
}

func (d *recordDecoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("attributes")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *recordDecoder) varlong() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varlong")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint() int32 {
	v := d.varlong()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("varint out of int32 range")
		return 0
	}
	return int32(v)
}

// nullableBytes reads a varint length (-1 = null) and that many bytes,
// returning a sub-slice (nil for null, non-nil for empty).
func (d *recordDecoder) nullableBytes() []byte {
	n := d.varint()
	if d.err != nil {
		return nil
	}
	if n < -1 || int64(n) > int64(len(d.b)) {
		d.fail(fmt.Sprintf("field length %d with %d bytes left", n, len(d.b)))
		return nil
	}
	if n == -1 {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
