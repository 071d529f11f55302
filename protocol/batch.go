package protocol

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// BatchHeaderSize is the size of a magic-2 record batch header; the records
// follow it.
const BatchHeaderSize = 61

// Byte offsets of the batch header fields (magic 2). The magic byte is at the
// same offset in the legacy formats, so it can be checked before anything
// else.
const (
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21 // the CRC covers from here to the end
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// batchLengthOverhead is the part of the header not counted by
	// BatchLength (base offset and the length itself).
	batchLengthOverhead = 12
)

// Attribute bits of a magic-2 batch.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the header of a magic-2 record batch, field by field as on
// the wire (https://kafka.apache.org/documentation/#recordbatch).
type BatchHeader struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Codec returns the batch's compression codec (attributes bits 0-2).
func (h BatchHeader) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// IsTransactional reports whether the batch is part of a transaction
// (attributes bit 4).
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds a control record such as a
// transaction marker (attributes bit 5).
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// LogAppendTime reports whether the batch's timestamps are log-append times
// (attributes bit 3): every record then has MaxTimestamp as its timestamp.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// LastOffset returns the offset of the last record in the batch.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// LastSequence returns the sequence number of the last record in the batch:
// BaseSequence + LastOffsetDelta, wrapping past MaxInt32 to 0 like Kafka.
// A batch without a sequence (BaseSequence -1) returns -1.
func (h BatchHeader) LastSequence() int32 {
	if h.BaseSequence == -1 {
		return -1
	}
	if h.BaseSequence > math.MaxInt32-h.LastOffsetDelta {
		return h.LastOffsetDelta - (math.MaxInt32 - h.BaseSequence) - 1
	}
	return h.BaseSequence + h.LastOffsetDelta
}

// ParseBatchHeader parses the first BatchHeaderSize bytes of b. It checks only
// that they are present, not the magic, lengths or CRC (see ValidateBatch).
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("batch header needs %d bytes, have %d: %w", BatchHeaderSize, len(b), ErrCorruptBatch)
	}
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b)),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}, nil
}

// checkMagic checks the magic byte, which sits at the same offset in every
// message format, so that legacy data gets ErrUnsupportedMagic rather than a
// confusing length or CRC error.
func checkMagic(b []byte) error {
	if len(b) <= offMagic {
		return fmt.Errorf("batch of %d bytes has no magic byte: %w", len(b), ErrCorruptBatch)
	}
	switch m := int8(b[offMagic]); m {
	case 2:
		return nil
	case 0, 1:
		return fmt.Errorf("magic %d: %w", m, ErrUnsupportedMagic)
	default:
		return fmt.Errorf("unknown magic %d: %w", m, ErrCorruptBatch)
	}
}

// ValidateBatch checks that b is exactly one well-formed magic-2 batch and
// returns its header. It checks, in order: magic 2 (magic 0/1 return
// ErrUnsupportedMagic, other values ErrCorruptBatch); BatchLength equals
// len(b)-12 and covers the header (ErrCorruptBatch); the CRC-32C over
// b[21:] (ErrCorruptBatch); a known codec (ErrUnsupportedCodec);
// NumRecords > 0 and NumRecords == LastOffsetDelta+1 (ErrInvalidBatch). For
// uncompressed batches it also parses every record (varints and lengths in
// bounds, headers well formed, offset deltas 0, 1, 2, ... and no trailing
// bytes; ErrInvalidBatch); compressed records are not decompressed here (use
// DecodeRecords for that).
func ValidateBatch(b []byte) (BatchHeader, error) {
	if err := checkMagic(b); err != nil {
		return BatchHeader{}, err
	}
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if int64(h.BatchLength)+batchLengthOverhead != int64(len(b)) {
		return h, fmt.Errorf("batch length %d for %d bytes: %w", h.BatchLength, len(b), ErrCorruptBatch)
	}
	if crc := crc32.Checksum(b[offAttributes:], castagnoli); crc != h.CRC {
		return h, fmt.Errorf("crc %08x, computed %08x: %w", h.CRC, crc, ErrCorruptBatch)
	}
	if h.Codec() > CodecZstd {
		return h, fmt.Errorf("codec %d: %w", h.Codec(), ErrUnsupportedCodec)
	}
	if h.NumRecords <= 0 || int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%d records with last offset delta %d: %w", h.NumRecords, h.LastOffsetDelta, ErrInvalidBatch)
	}
	if h.Codec() == CodecNone {
		if err := checkRecords(h, b[BatchHeaderSize:]); err != nil {
			return h, err
		}
	}
	return h, nil
}

// checkRecords parses the uncompressed records of a batch without keeping
// them.
func checkRecords(h BatchHeader, data []byte) error {
	return forEachRecord(data, h.NumRecords, func(i int, r *Record) error {
		if int64(r.OffsetDelta) != int64(i) {
			return fmt.Errorf("record %d has offset delta %d: %w", i, r.OffsetDelta, ErrInvalidBatch)
		}
		return nil
	})
}

// SplitBatches splits a produce record set (concatenated batches) into its
// batches, validating each with ValidateBatch. The batches are sub-slices of
// recordSet (no copy). A trailing partial batch is ErrCorruptBatch. An empty
// record set returns no batches and no error; the caller decides whether that
// is acceptable.
func SplitBatches(recordSet []byte) ([][]byte, []BatchHeader, error) {
	var (
		batches [][]byte
		headers []BatchHeader
	)
	for pos := 0; pos < len(recordSet); {
		rest := recordSet[pos:]
		if err := checkMagic(rest); err != nil {
			return nil, nil, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		length := int64(int32(binary.BigEndian.Uint32(rest[offBatchLength:])))
		size := length + batchLengthOverhead
		if length < BatchHeaderSize-batchLengthOverhead || size > int64(len(rest)) {
			return nil, nil, fmt.Errorf("batch at byte %d: length %d with %d bytes left: %w",
				pos, length, len(rest), ErrCorruptBatch)
		}
		b := rest[:size:size]
		h, err := ValidateBatch(b)
		if err != nil {
			return nil, nil, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		batches = append(batches, b)
		headers = append(headers, h)
		pos += int(size)
	}
	return batches, headers, nil
}

// SetBaseOffset patches the batch's base offset in place. The CRC does not
// cover it, so the batch stays valid. b must hold at least a batch header.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[0:], uint64(off))
}

// SetPartitionLeaderEpoch patches the batch's partition leader epoch in
// place. The CRC does not cover it, so the batch stays valid. b must hold at
// least a batch header.
func SetPartitionLeaderEpoch(b []byte, e int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e))
}
