package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers: v0
//
// Behavior:
// * per partition, the idempotent producers the partition's WAL group
//   remembers (its FSM's sequence-check state, kept across uploads and
//   restarts): producer id, epoch and last sequence; LastTimestamp is the
//   max timestamp of the producer's last batch while that batch is still
//   in the WAL, -1 once it was uploaded. Producer states do not expire
//   (Kafka drops them after producer.id.expiration.ms)
// * there are no transactions: CoordinatorEpoch and CurrentTxnStartOffset
//   are -1
// * unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; a partition
//   this broker does not lead: NOT_LEADER_OR_FOLLOWER
// * READ on the topic is needed (TOPIC_AUTHORIZATION_FAILED, checked
//   before existence)

func (b *Broker) handleDescribeProducers(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	im := b.meta.Image()
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		topic := im.Topics[rt.Topic]
		denied := b.topicDenied(r, opRead, topic, false, rt.Topic) // authz.go
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			part, err := b.partitionOf(topic, idx)
			if denied != nil {
				err = denied
			}
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = errCode(err), errMessage(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, ps := range part.group.Producers(part.stream()) {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = ps.ProducerID, int32(ps.Epoch)
				ap.LastSequence, ap.LastTimestamp = ps.LastSequence, ps.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
