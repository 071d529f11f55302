package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// CreatePartitions: v0-3
//
// Behavior:
// * grows a topic to Count partitions through the metadata Raft group; the
//   response comes after the commit, so the new partitions can be produced
//   to and fetched from at once. New partitions go to the WAL groups the
//   topic already uses, round robin
// * Count not above the current count: INVALID_PARTITIONS (partitions
//   cannot be removed); above metadata.MaxPartitions: INVALID_PARTITIONS
// * a manual Assignment is checked as Kafka checks it and then not applied
//   (a partition's replicas are its WAL group's): one entry per new
//   partition, each with as many distinct, registered brokers as the
//   topic's replication factor, else INVALID_REPLICA_ASSIGNMENT
// * unknown topic: UNKNOWN_TOPIC_OR_PARTITION; a topic named twice:
//   INVALID_REQUEST for each occurrence; NOT_CONTROLLER when the metadata
//   group has no leader here
// * ALTER on the topic is needed (TOPIC_AUTHORIZATION_FAILED, checked
//   before existence)
// * ValidateOnly checks everything and creates nothing
// * TimeoutMillis bounds the commit wait (at least 1 s, at most 60 s)
//
// Version notes:
// * v1: ThrottleMillis after the response; v2: flexible; v3: same as v2

func (b *Broker) handleCreatePartitions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := adminTimeout(ctx, req.TimeoutMillis)
	defer cancel()
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if seen[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %s appears more than once", errInvalidRequest, rt.Topic)
		} else if err = b.topicDenied(r, opAlter, nil, false, rt.Topic); err == nil { // authz.go
			err = b.createPartitions(ctx, rt, req.ValidateOnly)
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = errCode(err), errMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// createPartitions validates and (unless validateOnly) grows one topic.
func (b *Broker) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	im := b.meta.Image()
	t := im.Topics[rt.Topic]
	if t == nil {
		return fmt.Errorf("%w: %s", errUnknownTopicOrPartition, rt.Topic)
	}
	cur := int32(len(t.Partitions))
	switch {
	case rt.Count < cur:
		return fmt.Errorf("%w: topic %s currently has %d partitions, %d would not be an increase",
			metadata.ErrInvalidPartitions, t.Name, cur, rt.Count)
	case rt.Count == cur:
		return fmt.Errorf("%w: topic %s already has %d partitions", metadata.ErrInvalidPartitions, t.Name, cur)
	case rt.Count > metadata.MaxPartitions:
		return fmt.Errorf("%w: %d partitions, at most %d", metadata.ErrInvalidPartitions, rt.Count, metadata.MaxPartitions)
	}
	if rt.Assignment != nil {
		if err := checkAssignment(im, t, rt.Count-cur, rt.Assignment); err != nil {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	if _, err := b.meta.CreatePartitions(ctx, t.Name, rt.Count, b.topicGroups(t)...); err != nil {
		return err
	}
	b.logger.Info("partitions created", "topic", t.Name, "from", cur, "to", rt.Count)
	return nil
}

// checkAssignment checks a manual assignment of the added partitions.
func checkAssignment(im *metadata.Image, t *metadata.Topic, added int32, as []kmsg.CreatePartitionsRequestTopicAssignment) error {
	if int32(len(as)) != added {
		return fmt.Errorf("%w: attempted to add %d partitions, but %d assignments were given",
			errInvalidReplicaAssignment, added, len(as))
	}
	for _, a := range as {
		if len(a.Replicas) != int(t.ReplicationFactor) {
			return fmt.Errorf("%w: an assignment has %d replicas, the topic's replication factor is %d",
				errInvalidReplicaAssignment, len(a.Replicas), t.ReplicationFactor)
		}
		seen := map[int32]bool{}
		for _, id := range a.Replicas {
			if _, ok := im.Brokers[id]; !ok {
				return fmt.Errorf("%w: broker %d is not registered", errInvalidReplicaAssignment, id)
			}
			if seen[id] {
				return fmt.Errorf("%w: broker %d appears twice in one assignment", errInvalidReplicaAssignment, id)
			}
			seen[id] = true
		}
	}
	return nil
}
