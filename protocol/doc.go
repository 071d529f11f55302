// Package protocol turns bytes into Kafka requests and responses
// (github.com/twmb/franz-go/pkg/kmsg) and inspects magic-2 record batches.
// It imports none of Shoal's packages and knows nothing about partitions,
// Raft or storage.
//
// # Framing
//
// A Kafka frame is an int32 size followed by that many bytes. ReadFrame reads
// one, refusing sizes outside 0..maxSize before allocating anything.
// ParseRequest parses the request header (v0, v1, or v2 with tagged fields)
// and decodes the body with kmsg; AppendResponse writes a size-prefixed
// response with a v0 or v1 header (ApiVersions always v0, per KIP-511).
//
// # Record batches
//
// Only the magic-2 batch format is accepted
// (https://kafka.apache.org/documentation/#recordbatch):
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 |
//	crc uint32 (CRC-32C of everything after it) | attributes int16 | lastOffsetDelta int32 |
//	firstTimestamp int64 | maxTimestamp int64 | producerId int64 | producerEpoch int16 |
//	baseSequence int32 | recordCount int32 | records...
//
// ValidateBatch and SplitBatches check a produced record set (magic, lengths,
// CRC, record count, and for uncompressed batches every record); the base
// offset and partition leader epoch are outside the CRC, so SetBaseOffset and
// SetPartitionLeaderEpoch patch them in place without re-checksumming.
// DecodeRecords, OffsetForTimestamp and MaxTimestampOffset read records,
// decompressing when needed.
//
// # Guarantees
//
//   - No input makes a function of this package panic (except SetBaseOffset
//     and SetPartitionLeaderEpoch on slices shorter than a batch header); fuzz
//     targets cover every decoder.
//   - Allocation is bounded by the input: length fields are checked against
//     the bytes present before anything is allocated, and decompression stops
//     at the caller's bound (ErrDecompressedTooLarge).
//   - Every error wraps one of the sentinels in errors.go.
//
// # Usage
//
//	frame, err := protocol.ReadFrame(conn, protocol.DefaultMaxRequestSize)
//	hdr, req, err := protocol.ParseRequest(frame)
//	resp := req.ResponseKind() // fill in, SetVersion as needed
//	out = protocol.AppendResponse(out[:0], hdr.CorrelationID, resp)
//
// The prototest sub-package builds valid batches for other packages' tests.
package protocol
