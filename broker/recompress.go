package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
)

// Record-level checks and recompression of a produced batch, after
// validateProduceBatch checked its framing (00_produce.go calls
// prepareProduceBatch):
//
//   - a compressed batch is decompressed (at most maxProduceDecompressed
//     bytes: RECORD_LIST_TOO_LARGE beyond) and its records are checked as
//     Kafka's LogValidator checks them: exactly NumRecords well-formed
//     records with offset deltas 0, 1, 2, ... (INVALID_RECORD), data that
//     does not decompress CORRUPT_MESSAGE;
//   - in a topic whose cleanup.policy includes compact, a record without a
//     key is INVALID_RECORD ("Compacted topic cannot accept message without
//     key"), as in Kafka;
//   - a topic whose compression.type names a codec (gzip, snappy, lz4,
//     zstd, uncompressed) stores every batch with that codec: a batch with
//     another codec is re-encoded (protocol.AppendBatch) with the same base
//     offset, leader epoch, attributes other than the codec, timestamps,
//     producer id, epoch and base sequence and the same records; the CRC is
//     new. "producer" (the default) keeps the batch as sent. The WAL still
//     assigns the offsets and checks the sequence, so an idempotent retry
//     of a recompressed batch is detected as a duplicate like any other.
//     The compression.<codec>.level configs are not applied: the codecs'
//     default levels are used.
//   - produce v3-v6 into a zstd topic is accepted and recompressed, as
//     Kafka does; such old clients get UNSUPPORTED_COMPRESSION_TYPE when
//     they fetch the zstd batches with fetch below v10 (01_fetch.go).

// maxProduceDecompressed bounds the decompressed records of one produced
// batch: a "zip bomb" gets RECORD_LIST_TOO_LARGE instead of the memory.
const maxProduceDecompressed = 64 << 20

// prepareProduceBatch checks the records of batch (already validated by
// protocol.SplitBatches) against the topic's configs and returns the batch
// to append: batch itself, or its recompression when the topic's
// compression.type asks for another codec.
func prepareProduceBatch(t *metadata.Topic, batch []byte) ([]byte, error) {
	h, err := protocol.ParseBatchHeader(batch)
	if err != nil {
		return nil, err
	}
	target, recompress := targetCodec(t, h.Codec())
	compacted := isCompacted(t)
	if h.Codec() == protocol.CodecNone && !recompress && !compacted {
		return batch, nil // ValidateBatch checked every record already
	}
	h, recs, err := protocol.ValidateRecords(batch, maxProduceDecompressed)
	if err != nil {
		return nil, err
	}
	if compacted {
		for i := range recs {
			if recs[i].Key == nil {
				return nil, fmt.Errorf("%w: record %d", errCompactedNoKey, i)
			}
		}
	}
	if !recompress {
		return batch, nil
	}
	out, err := recompressBatch(h, recs, target)
	if err != nil {
		return nil, err
	}
	if max := intConfig(t, "max.message.bytes", defaultMaxMessageBytes); int64(len(out)) > max {
		return nil, fmt.Errorf("%w: %d bytes after recompression with %v, max.message.bytes is %d",
			errMessageTooLarge, len(out), target, max)
	}
	return out, nil
}

// recompressBatch encodes the records of a batch with header h again with
// codec to. Only the codec bits of the attributes, the length and the CRC
// change.
func recompressBatch(h protocol.BatchHeader, recs []protocol.Record, to protocol.Codec) ([]byte, error) {
	out, err := protocol.AppendBatch(make([]byte, 0, h.BatchLength+12), h.WithCodec(to), recs)
	if err != nil {
		return nil, fmt.Errorf("recompress with %v: %w", to, err)
	}
	return out, nil
}

// targetCodec returns the codec the topic's compression.type asks for and
// whether a batch compressed with from must be recompressed.
func targetCodec(t *metadata.Topic, from protocol.Codec) (protocol.Codec, bool) {
	v, _ := t.EffectiveConfig("compression.type")
	var c protocol.Codec
	switch strings.TrimSpace(v) {
	case "uncompressed":
		c = protocol.CodecNone
	case "gzip":
		c = protocol.CodecGzip
	case "snappy":
		c = protocol.CodecSnappy
	case "lz4":
		c = protocol.CodecLZ4
	case "zstd":
		c = protocol.CodecZstd
	default: // "producer"
		return from, false
	}
	return c, c != from
}

// isCompacted reports whether the topic's cleanup.policy includes compact.
func isCompacted(t *metadata.Topic) bool {
	v, _ := t.EffectiveConfig("cleanup.policy")
	return slices.ContainsFunc(strings.Split(v, ","), func(p string) bool { return strings.TrimSpace(p) == "compact" })
}
