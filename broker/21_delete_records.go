package broker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/wal"
)

// DeleteRecords: v0-2
//
// Behavior:
// * moves the partition's log start offset to the requested offset through
//   the metadata Raft group (metadata.Store.TrimStream, as retention does):
//   ListOffsets earliest and the LogStartOffset of fetches answer it from
//   then on; object ranges wholly below it are released (deleted after
//   the object grace period). Then the WAL group trims the partition's
//   batches below it (wal.Group.Trim, replicated), so that fetches below
//   the new start get OFFSET_OUT_OF_RANGE and the WAL space is freed; a
//   batch straddling the new start stays whole (clients skip its lower
//   records). Metadata goes first: a failure between the two steps leaves
//   data readable that a retry of the request removes
// * -1 means the high watermark (delete everything); an offset above the
//   high watermark or another negative one: OFFSET_OUT_OF_RANGE; an offset
//   at or below the current log start changes nothing
// * LowWatermark is the log start after the request (-1 on error)
// * a topic whose cleanup.policy lacks "delete" (compact only):
//   POLICY_VIOLATION, as Kafka answers
// * unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; a partition
//   this broker does not lead: NOT_LEADER_OR_FOLLOWER
// * TimeoutMillis bounds the commit wait (at least 1 s, at most 60 s)
// * DELETE on the topic is needed (TOPIC_AUTHORIZATION_FAILED, checked
//   before existence)
//
// Version notes:
// * v1: ThrottleMillis after the response; v2: flexible

func (b *Broker) handleDeleteRecords(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ctx, cancel := adminTimeout(ctx, req.TimeoutMillis)
	defer cancel()
	im := b.meta.Image()
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		topic := im.Topics[rt.Topic]
		denied := b.topicDenied(r, opDelete, topic, false, rt.Topic) // authz.go
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			low, err := int64(-1), denied
			if err == nil {
				low, err = b.deleteRecords(ctx, topic, rp)
			}
			if err != nil {
				sp.ErrorCode, low = errCode(err), -1
			}
			sp.LowWatermark = low
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// deleteRecords moves one partition's log start and returns the new one.
func (b *Broker) deleteRecords(ctx context.Context, topic *metadata.Topic, rp kmsg.DeleteRecordsRequestTopicPartition) (int64, error) {
	part, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return -1, err
	}
	if policy, _ := topic.EffectiveConfig("cleanup.policy"); !slices.Contains(splitList(policy), "delete") {
		return -1, fmt.Errorf("%w: records of %s/%d cannot be deleted: cleanup.policy is %s",
			errPolicyViolation, topic.Name, rp.Partition, policy)
	}
	_, hwm := part.group.Offsets(part.stream())
	target := rp.Offset
	if target == -1 {
		target = hwm
	}
	if target < 0 || target > hwm {
		return -1, fmt.Errorf("%w: cannot delete up to %d, the high watermark is %d", wal.ErrOffsetOutOfRange, rp.Offset, hwm)
	}
	if target > b.logStart(b.meta.Image(), part) {
		grace := b.cfg.ObjectGrace
		if grace <= 0 {
			grace = metadata.DefaultObjectGrace
		}
		if err := b.meta.TrimStream(ctx, part.stream(), target, time.Now().UnixMilli(), grace.Milliseconds()); err != nil {
			return -1, err
		}
		b.logger.Info("records deleted", "topic", topic.Name, "partition", rp.Partition, "log_start", target)
	}
	// Metadata accepts the next upload anywhere up to the new start, so
	// the WAL may drop what lies below it, uploaded or not.
	if walStart, _ := part.group.Offsets(part.stream()); target > walStart {
		trim := []wal.PendingRange{{Stream: part.stream(), StartOffset: walStart, EndOffset: target}}
		if err := part.group.Trim(ctx, trim); err != nil {
			return -1, err
		}
	}
	return b.logStart(b.meta.Image(), part), nil
}
