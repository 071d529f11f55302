// Package prototest builds valid Kafka wire data for tests: magic-2 record
// batches (optionally compressed, idempotent or transactional), record sets
// and request frames. It is test support only; production code never imports
// it.
//
//	b := prototest.Batch(prototest.Values("a", "b"),
//		prototest.WithCodec(protocol.CodecZstd),
//		prototest.WithProducer(7, 0, 0))
//	hdr, err := protocol.ValidateBatch(b) // ok, hdr.NumRecords == 2
package prototest

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/shoal-io/shoal/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Option configures Batch.
type Option func(*options)

type options struct {
	baseOffset     int64
	leaderEpoch    int32
	codec          protocol.Codec
	firstTimestamp int64
	maxTimestamp   *int64
	producerID     int64
	producerEpoch  int16
	baseSequence   int32
	attributes     int16
}

// WithBaseOffset sets the batch's base offset (default 0).
func WithBaseOffset(off int64) Option { return func(o *options) { o.baseOffset = off } }

// WithPartitionLeaderEpoch sets the partition leader epoch (default -1, as
// producers send it).
func WithPartitionLeaderEpoch(e int32) Option { return func(o *options) { o.leaderEpoch = e } }

// WithCodec compresses the records with c (default CodecNone).
func WithCodec(c protocol.Codec) Option { return func(o *options) { o.codec = c } }

// WithFirstTimestamp sets the batch's first timestamp (default 0); record
// timestamps are it plus each record's TimestampDelta.
func WithFirstTimestamp(ts int64) Option { return func(o *options) { o.firstTimestamp = ts } }

// WithMaxTimestamp overrides the max timestamp, which otherwise is the
// largest record timestamp. Useful for LogAppendTime batches.
func WithMaxTimestamp(ts int64) Option { return func(o *options) { o.maxTimestamp = &ts } }

// WithProducer makes the batch idempotent: producer id, epoch and the
// sequence of its first record (default -1, -1, -1: no producer).
func WithProducer(id int64, epoch int16, baseSequence int32) Option {
	return func(o *options) { o.producerID, o.producerEpoch, o.baseSequence = id, epoch, baseSequence }
}

// WithTransactional sets the transactional attribute bit.
func WithTransactional() Option { return func(o *options) { o.attributes |= 0x10 } }

// WithControl sets the control attribute bit (a transaction marker batch).
func WithControl() Option { return func(o *options) { o.attributes |= 0x20 } }

// WithLogAppendTime sets the log-append-time attribute bit.
func WithLogAppendTime() Option { return func(o *options) { o.attributes |= 0x08 } }

// Batch builds one valid magic-2 record batch holding records, with a
// correct CRC-32C. Each record's OffsetDelta is ignored: records get offset
// deltas 0, 1, 2, ... in order. With no records the batch has NumRecords 0
// and LastOffsetDelta -1 (which ValidateBatch rejects). Batch panics only if
// compression fails, which for the five Kafka codecs it does not.
func Batch(records []protocol.Record, opts ...Option) []byte {
	o := options{leaderEpoch: -1, producerID: -1, producerEpoch: -1, baseSequence: -1}
	for _, opt := range opts {
		opt(&o)
	}
	maxTS := o.firstTimestamp
	recs := make([]protocol.Record, len(records))
	for i, r := range records {
		r.OffsetDelta = int32(i)
		recs[i] = r
		if ts := o.firstTimestamp + r.TimestampDelta; i == 0 || ts > maxTS {
			maxTS = ts
		}
	}
	if o.maxTimestamp != nil {
		maxTS = *o.maxTimestamp
	}
	// The production encoder builds the batch: one encoder for tests and
	// the broker (kmsg decodes its output in protocol's tests).
	b, err := protocol.AppendBatch(nil, protocol.BatchHeader{
		BaseOffset:           o.baseOffset,
		PartitionLeaderEpoch: o.leaderEpoch,
		Attributes:           o.attributes | int16(o.codec),
		LastOffsetDelta:      int32(len(records)) - 1,
		FirstTimestamp:       o.firstTimestamp,
		MaxTimestamp:         maxTS,
		ProducerID:           o.producerID,
		ProducerEpoch:        o.producerEpoch,
		BaseSequence:         o.baseSequence,
	}, recs)
	if err != nil {
		panic(fmt.Sprintf("prototest: encode batch: %v", err))
	}
	return b
}

// FixCRC recomputes the CRC-32C of a batch in place, for tests that edit a
// batch's fields and want it valid again.
func FixCRC(b []byte) {
	crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(b[17:], crc)
}

// AppendRecord appends one encoded record (length-prefixed, as inside an
// uncompressed batch) to dst, using r's OffsetDelta as is. It is
// protocol.AppendRecord.
func AppendRecord(dst []byte, r protocol.Record) []byte { return protocol.AppendRecord(dst, r) }

// Values returns one record per value, with nil keys, no headers and
// timestamp deltas 0, 1, 2, ...
func Values(values ...string) []protocol.Record {
	recs := make([]protocol.Record, len(values))
	for i, v := range values {
		recs[i] = protocol.Record{TimestampDelta: int64(i), Value: []byte(v)}
	}
	return recs
}

// RecordSet concatenates batches into one produce record set.
func RecordSet(batches ...[]byte) []byte {
	var out []byte
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

// Frame returns the complete size-prefixed request frame a client would send
// for req (at req.GetVersion()), formatted by kmsg.RequestFormatter.
func Frame(req kmsg.Request, correlationID int32, clientID string) []byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
	return f.AppendRequest(nil, req, correlationID)
}
