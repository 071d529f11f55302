package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
)

// ListOffsets: v1-11
//
// Behavior:
// * -2 (earliest) and -4 (earliest local): the log start offset
// * -1 (latest): the high watermark (also for READ_COMMITTED: no
//   transactions, so the last stable offset is the high watermark)
// * -3 (max timestamp): offset and timestamp of the record with the largest
//   timestamp (the first on ties); -1/-1 for an empty partition
// * -5 (latest tiered) and -6 (earliest pending upload): -1, as Kafka
//   answers without tiered storage
// * a timestamp >= 0: the first record whose timestamp is at least it, with
//   that record's timestamp; -1/-1 when there is none
// * other negative timestamps: INVALID_REQUEST
// * DESCRIBE on the topic is needed (TOPIC_AUTHORIZATION_FAILED)
// * CurrentLeaderEpoch is checked (FENCED_LEADER_EPOCH /
//   UNKNOWN_LEADER_EPOCH); LeaderEpoch in the response is the epoch of the
//   batch holding the offset, or the current epoch for -1/-2
//
// Version notes:
// * v0 (multiple old-style offsets) is not served; Kafka 4 dropped it too
// * v2: IsolationLevel
// * v4: CurrentLeaderEpoch and LeaderEpoch
// * v6: flexible
// * v7: -3; v8: -4; v9: -5; v11: -6
// * v10: TimeoutMillis (ignored: lookups never wait on remote storage)

// Special ListOffsets timestamps.
const (
	listLatest          = -1
	listEarliest        = -2
	listMaxTimestamp    = -3
	listEarliestLocal   = -4
	listLatestTiered    = -5
	listEarliestPending = -6
)

// maxLookupDecompressed bounds the decompression of one batch in a
// timestamp lookup.
const maxLookupDecompressed = 256 << 20

// offsetAnswer is one partition's ListOffsets result.
type offsetAnswer struct {
	offset, timestamp int64
	epoch             int32
}

var noOffset = offsetAnswer{offset: -1, timestamp: -1, epoch: -1}

func (b *Broker) handleListOffsets(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	im := b.meta.Image()
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		topic := im.Topics[rt.Topic]
		denied := b.topicDenied(r, opDescribe, topic, false, rt.Topic) // authz.go
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rp.Partition
			ans, err := noOffset, denied
			if err == nil {
				ans, err = b.listOffset(ctx, im, topic, rp)
			}
			if err != nil {
				sp.ErrorCode = errCode(err)
				ans = noOffset
			}
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = ans.offset, ans.timestamp, ans.epoch
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// listOffset answers one partition.
func (b *Broker) listOffset(ctx context.Context, im *metadata.Image, topic *metadata.Topic, rp kmsg.ListOffsetsRequestTopicPartition) (offsetAnswer, error) {
	part, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return noOffset, err
	}
	epoch := part.leaderEpoch()
	if err := checkLeaderEpoch(rp.CurrentLeaderEpoch, epoch); err != nil {
		return noOffset, err
	}
	_, hwm := part.group.Offsets(part.stream())
	switch ts := rp.Timestamp; {
	case ts == listEarliest || ts == listEarliestLocal:
		return offsetAnswer{offset: b.logStart(im, part), timestamp: -1, epoch: epoch}, nil
	case ts == listLatest:
		return offsetAnswer{offset: hwm, timestamp: -1, epoch: epoch}, nil
	case ts == listMaxTimestamp:
		return b.maxTimestampOffset(ctx, im, part)
	case ts == listLatestTiered || ts == listEarliestPending:
		return noOffset, nil
	case ts < 0:
		return noOffset, fmt.Errorf("%w: timestamp %d", errInvalidRequest, ts)
	default:
		return b.timestampOffset(ctx, im, part, ts)
	}
}

// maxTimestampOffset finds the record with the largest timestamp, in the
// partition's objects or its WAL (the older one on ties).
func (b *Broker) maxTimestampOffset(ctx context.Context, im *metadata.Image, part partition) (offsetAnswer, error) {
	best := noOffset
	objBatch, ok, err := b.objectMaxTimestampBatch(ctx, im, part.stream())
	if err != nil {
		return noOffset, err
	}
	if ok {
		if best, err = maxInBatch(objBatch); err != nil {
			return noOffset, err
		}
	}
	walBatch, ok, err := part.group.MaxTimestampBatch(part.stream())
	if err != nil || !ok {
		return best, err
	}
	fromWAL, err := maxInBatch(walBatch)
	if err != nil {
		return noOffset, err
	}
	if best == noOffset || fromWAL.timestamp > best.timestamp {
		best = fromWAL
	}
	return best, nil
}

// maxInBatch answers with the batch's record of the largest timestamp.
func maxInBatch(batch []byte) (offsetAnswer, error) {
	off, ts, err := protocol.MaxTimestampOffset(batch)
	if err != nil {
		return noOffset, err
	}
	h, err := protocol.ParseBatchHeader(batch)
	if err != nil {
		return noOffset, err
	}
	return offsetAnswer{offset: off, timestamp: ts, epoch: h.PartitionLeaderEpoch}, nil
}

// timestampOffset finds the first record with a timestamp of at least ts:
// in the partition's objects first (older data), then in its WAL.
func (b *Broker) timestampOffset(ctx context.Context, im *metadata.Image, part partition, ts int64) (offsetAnswer, error) {
	batch, ok, err := b.objectTimestampBatch(ctx, im, part.stream(), ts)
	if err != nil {
		return noOffset, err
	}
	if !ok {
		batch, ok, err = part.group.FindTimestamp(part.stream(), ts)
		if err != nil || !ok {
			return noOffset, err
		}
	}
	h, err := protocol.ParseBatchHeader(batch)
	if err != nil {
		return noOffset, err
	}
	recs, err := protocol.DecodeRecords(batch, maxLookupDecompressed)
	if err != nil {
		return noOffset, err
	}
	for _, rec := range recs {
		rts := h.FirstTimestamp + rec.TimestampDelta
		if h.LogAppendTime() {
			rts = h.MaxTimestamp
		}
		if rts >= ts {
			return offsetAnswer{offset: h.BaseOffset + int64(rec.OffsetDelta), timestamp: rts, epoch: h.PartitionLeaderEpoch}, nil
		}
	}
	return noOffset, nil
}
