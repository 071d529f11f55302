package protocol

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// AppendRecord appends one record to dst, length-prefixed as inside a
// batch's (uncompressed) records section. r.OffsetDelta and
// r.TimestampDelta are written as they are; nil Key, Value and header
// values are written as null.
func AppendRecord(dst []byte, r Record) []byte {
	size := recordBodySize(&r)
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendNullable(dst, r.Key)
	dst = appendNullable(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

// recordBodySize is the size of a record after its length prefix.
func recordBodySize(r *Record) int {
	n := 1 + varintLen(r.TimestampDelta) + varintLen(int64(r.OffsetDelta)) +
		nullableLen(r.Key) + nullableLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key) + nullableLen(h.Value)
	}
	return n
}

func varintLen(v int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], v)
}

func nullableLen(v []byte) int {
	if v == nil {
		return 1
	}
	return varintLen(int64(len(v))) + len(v)
}

func appendNullable(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

// AppendBatch appends one magic-2 record batch holding records to dst. The
// records are encoded with their own OffsetDelta and TimestampDelta and
// compressed with h.Codec(). From h it takes BaseOffset,
// PartitionLeaderEpoch, Attributes (codec included), LastOffsetDelta,
// FirstTimestamp, MaxTimestamp, ProducerID, ProducerEpoch and BaseSequence
// as given; it computes BatchLength, Magic (2), NumRecords (len(records))
// and the CRC-32C. A produced batch must have LastOffsetDelta ==
// len(records)-1 and offset deltas 0, 1, 2, ... (ValidateBatch); a batch of
// a compacted log may have fewer records than its offset range. An unknown
// codec returns ErrUnsupportedCodec and dst unchanged.
func AppendBatch(dst []byte, h BatchHeader, records []Record) ([]byte, error) {
	codec := h.Codec()
	if codec > CodecZstd {
		return dst, fmt.Errorf("encode batch with %v: %w", codec, ErrUnsupportedCodec)
	}
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(h.BaseOffset))
	dst = be.AppendUint32(dst, 0) // batch length, set below
	dst = be.AppendUint32(dst, uint32(h.PartitionLeaderEpoch))
	dst = append(dst, 2)          // magic
	dst = append(dst, 0, 0, 0, 0) // crc, set below
	dst = be.AppendUint16(dst, uint16(h.Attributes))
	dst = be.AppendUint32(dst, uint32(h.LastOffsetDelta))
	dst = be.AppendUint64(dst, uint64(h.FirstTimestamp))
	dst = be.AppendUint64(dst, uint64(h.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(h.ProducerID))
	dst = be.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(h.BaseSequence))
	dst = be.AppendUint32(dst, uint32(len(records)))
	if codec == CodecNone {
		for _, r := range records {
			dst = AppendRecord(dst, r)
		}
	} else {
		var raw []byte
		for _, r := range records {
			raw = AppendRecord(raw, r)
		}
		comp, err := Compress(codec, raw)
		if err != nil {
			return dst[:start], fmt.Errorf("encode batch: %w", err)
		}
		dst = append(dst, comp...)
	}
	b := dst[start:]
	be.PutUint32(b[offBatchLength:], uint32(len(b)-batchLengthOverhead))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst, nil
}

// WithCodec returns h with its attributes' codec bits set to c; the other
// attribute bits are kept.
func (h BatchHeader) WithCodec(c Codec) BatchHeader {
	h.Attributes = h.Attributes&^attrCodecMask | int16(c)&attrCodecMask
	return h
}

// ValidateRecords decodes and checks the records of one batch that
// ValidateBatch accepted, as Kafka validates a produced batch: compressed
// records are decompressed (at most maxDecompressed bytes, else
// ErrDecompressedTooLarge; undecodable data is ErrCorruptBatch), there must
// be exactly NumRecords well-formed records with offset deltas 0, 1, 2, ...
// and no trailing bytes (ErrInvalidBatch). Keys, values and header values
// alias batch or the decompressed buffer.
func ValidateRecords(batch []byte, maxDecompressed int) (BatchHeader, []Record, error) {
	h, data, err := batchRecords(batch, maxDecompressed)
	if err != nil {
		return h, nil, err
	}
	recs := make([]Record, 0, min(int(h.NumRecords), len(data)/minRecordSize))
	err = forEachRecord(data, h.NumRecords, func(i int, r *Record) error {
		if int64(r.OffsetDelta) != int64(i) {
			return fmt.Errorf("record %d has offset delta %d: %w", i, r.OffsetDelta, ErrInvalidBatch)
		}
		recs = append(recs, *r)
		return nil
	})
	if err != nil {
		return h, nil, err
	}
	return h, recs, nil
}

// RecordTimestamp returns the timestamp of record r of a batch with header
// h: MaxTimestamp for a LogAppendTime batch, else FirstTimestamp +
// r.TimestampDelta.
func RecordTimestamp(h BatchHeader, r *Record) int64 { return recordTimestamp(h, r) }
