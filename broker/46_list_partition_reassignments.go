package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// ListPartitionReassignments: v0
//
// Behavior:
// * lists the partitions whose move to another WAL group is under way
//   (AlterPartitionReassignments): Replicas are the target group's replicas
//   followed by those of the source group that the target lacks (Kafka's
//   full replica set during a reassignment), AddingReplicas the target's
//   replicas the source lacks, RemovingReplicas the source's the target
//   lacks (both empty for a move between groups of the same brokers)
// * Topics null: every move; otherwise the requested partitions that are
//   moving (others, and unknown topics or partitions, are left out, as
//   Kafka does)
// * only the controller (the metadata leader) serves it: other brokers
//   answer NOT_CONTROLLER (top-level)
// * DESCRIBE on the cluster is needed (top-level
//   CLUSTER_AUTHORIZATION_FAILED)
//
// Version notes:
// * v0 is flexible

func (b *Broker) handleListPartitionReassignments(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if err := b.clusterDenied(r, opDescribe); err != nil { // authz.go
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	if !b.meta.IsLeader() {
		err := fmt.Errorf("%w: reassignments are listed by the controller (the metadata leader)", metadata.ErrNotLeader)
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	im := b.meta.Image()
	var wanted map[string][]int32 // nil: every partition
	if req.Topics != nil {
		wanted = map[string][]int32{}
		for _, rt := range req.Topics {
			wanted[rt.Topic] = append(wanted[rt.Topic], rt.Partitions...)
		}
	}
	var topic *kmsg.ListPartitionReassignmentsResponseTopic
	for _, mv := range im.Moves() {
		if wanted != nil && !slices.Contains(wanted[mv.Topic], mv.Partition.Index) {
			continue
		}
		if topic == nil || topic.Topic != mv.Topic {
			resp.Topics = append(resp.Topics, kmsg.NewListPartitionReassignmentsResponseTopic())
			topic = &resp.Topics[len(resp.Topics)-1]
			topic.Topic = mv.Topic
		}
		topic.Partitions = append(topic.Partitions, moveReplicas(im, mv))
	}
	return resp, nil
}

// moveReplicas describes a move in Kafka's terms of replicas.
func moveReplicas(im *metadata.Image, mv metadata.MoveRef) kmsg.ListPartitionReassignmentsResponseTopicPartition {
	m := mv.Partition.Move
	src, _ := im.WALGroup(m.Source)
	dst, _ := im.WALGroup(m.Target)
	sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
	sp.Partition = mv.Partition.Index
	sp.Replicas = slices.Clone(dst.Replicas)
	sp.AddingReplicas, sp.RemovingReplicas = []int32{}, []int32{}
	for _, id := range src.Replicas {
		if !slices.Contains(dst.Replicas, id) {
			sp.Replicas = append(sp.Replicas, id)
			sp.RemovingReplicas = append(sp.RemovingReplicas, id)
		}
	}
	for _, id := range dst.Replicas {
		if !slices.Contains(src.Replicas, id) {
			sp.AddingReplicas = append(sp.AddingReplicas, id)
		}
	}
	return sp
}
