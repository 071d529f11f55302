package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// AlterPartitionReassignments: v0-1
//
// Behavior:
// * a partition's replicas are its WAL group's, so a reassignment moves the
//   partition to the WAL group whose replicas match the target list: the
//   exact list (order included: the first is the preferred leader), else a
//   group with the same set and the same first replica, else one with the
//   same set; on a tie the partition's current group, then the group with
//   the fewest partitions. No data is copied: the old group's leader fences
//   the partition, uploads its pending data, the metadata switches it to
//   the new group at the same end offset, and the new group's leader opens
//   it there (reassign.go, docs/reassignment.md). The response comes once
//   the move is recorded; ListPartitionReassignments shows it until done
// * a target that matches the partition's current group: nothing to move
//   (success), and an ongoing move that has not switched groups yet is
//   cancelled
// * Replicas null cancels the partition's move: NO_REASSIGNMENT_IN_PROGRESS
//   when there is none; REASSIGNMENT_IN_PROGRESS once it has switched
//   groups (it completes within moments)
// * no group with those replicas: INVALID_REPLICA_ASSIGNMENT, the message
//   naming the groups there are; unknown topic or partition:
//   UNKNOWN_TOPIC_OR_PARTITION
// * only the controller (the metadata leader) serves it: other brokers
//   answer NOT_CONTROLLER (top-level), and clients retry there
// * TimeoutMillis bounds the metadata writes (at least 1 s, at most 60 s)
// * ALTER on the cluster is needed (top-level CLUSTER_AUTHORIZATION_FAILED)
//
// Version notes:
// * v0 is flexible
// * v1: AllowReplicationFactorChange (KIP-860): when false, a target list
//   whose length differs from the partition's replica count gets
//   INVALID_REPLICATION_FACTOR

func (b *Broker) handleAlterPartitionReassignments(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	if err := b.clusterDenied(r, opAlter); err != nil { // authz.go
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	if !b.meta.IsLeader() {
		err := fmt.Errorf("%w: reassignments go to the controller (the metadata leader)", metadata.ErrNotLeader)
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	timeout := min(max(time.Duration(req.TimeoutMillis)*time.Millisecond, time.Second), time.Minute)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			if err := b.reassignPartition(ctx, rt.Topic, rp.Partition, rp.Replicas, allowRF); err != nil {
				sp.ErrorCode, sp.ErrorMessage = reassignErrCode(err), errMessage(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// reassignPartition records the move of one partition to the WAL group of
// replicas, or cancels its move (replicas nil).
func (b *Broker) reassignPartition(ctx context.Context, topic string, idx int32, replicas []int32, allowRF bool) error {
	im := b.meta.Image()
	t := im.Topics[topic]
	if t == nil || idx < 0 || int(idx) >= len(t.Partitions) {
		return errUnknownTopicOrPartition
	}
	p := t.Partitions[idx]
	if replicas == nil {
		if err := b.meta.CancelReassignment(ctx, topic, idx); err != nil {
			return err
		}
		b.logger.Info("partition move cancelled", "topic", topic, "partition", idx)
		return nil
	}
	target, err := im.WALGroupFor(replicas, p.WALGroup)
	if err != nil {
		return err
	}
	if cur, ok := im.WALGroup(p.WALGroup); ok && !allowRF && len(cur.Replicas) != len(replicas) {
		return fmt.Errorf("%w: %s-%d has %d replicas, the target %d, and the request does not allow a change",
			metadata.ErrInvalidReplicationFactor, topic, idx, len(cur.Replicas), len(replicas))
	}
	if err := b.meta.ReassignPartition(ctx, topic, idx, target); err != nil {
		return err
	}
	if target != p.WALGroup {
		b.logger.Info("partition move requested", "topic", topic, "partition", idx, "from", p.WALGroup, "to", target)
	}
	return nil
}
