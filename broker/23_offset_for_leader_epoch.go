package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// OffsetForLeaderEpoch: v0-4
//
// Behavior:
// * answers as Kafka's leader-epoch cache does, from the WAL's per-stream
//   epoch history (kept across uploads; a leader epoch is the WAL group's
//   Raft term): for the current epoch, the high watermark; for an older
//   epoch, the largest epoch with data at or below it and the start of the
//   next epoch with data (or the high watermark when no later epoch has
//   data: the current epoch starts there); for an epoch before every known
//   one, that epoch and the first epoch's start; for an epoch above the
//   current one, -1/-1
// * CurrentLeaderEpoch is checked as in Fetch (FENCED_LEADER_EPOCH /
//   UNKNOWN_LEADER_EPOCH); unknown topic or partition:
//   UNKNOWN_TOPIC_OR_PARTITION; not the leader: NOT_LEADER_OR_FOLLOWER
// * ReplicaID (v3+) is ignored: followers and consumers get the same answer
// * DESCRIBE on the topic is needed (TOPIC_AUTHORIZATION_FAILED)
//
// Version notes:
// * v1: LeaderEpoch in the response
// * v2: CurrentLeaderEpoch (KIP-320); v3: ReplicaID; v4: flexible

func (b *Broker) handleOffsetForLeaderEpoch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	im := b.meta.Image()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		topic := im.Topics[rt.Topic]
		denied := b.topicDenied(r, opDescribe, topic, false, rt.Topic) // authz.go
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			epoch, end, err := int32(-1), int64(-1), denied
			if err == nil {
				epoch, end, err = b.epochEndOffset(topic, rp)
			}
			if err != nil {
				sp.ErrorCode, epoch, end = errCode(err), -1, -1
			}
			sp.LeaderEpoch, sp.EndOffset = epoch, end
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// epochEndOffset answers one partition.
func (b *Broker) epochEndOffset(topic *metadata.Topic, rp kmsg.OffsetForLeaderEpochRequestTopicPartition) (int32, int64, error) {
	part, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return -1, -1, err
	}
	current := part.leaderEpoch()
	if err := checkLeaderEpoch(rp.CurrentLeaderEpoch, current); err != nil {
		return -1, -1, err
	}
	_, hwm := part.group.Offsets(part.stream())
	switch asked := rp.LeaderEpoch; {
	case asked == current:
		return current, hwm, nil
	case asked > current || asked < 0:
		return -1, -1, nil
	}
	if epoch, end := part.group.EpochEndOffset(part.stream(), rp.LeaderEpoch); epoch >= 0 {
		return epoch, end, nil
	}
	// Above every epoch with data, below the current one: Kafka's cache
	// holds the current epoch starting at the log end, so the answer is
	// the largest epoch with data (or the asked one when there is none)
	// ending at the high watermark.
	if latest := part.group.LatestEpoch(part.stream()); latest >= 0 {
		return latest, hwm, nil
	}
	return rp.LeaderEpoch, hwm, nil
}
