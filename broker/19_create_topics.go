package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// CreateTopics: v2-7
//
// Behavior:
// * each topic is created through the metadata Raft group; the response
//   comes after the creation committed, so the topic is usable at once
// * NumPartitions -1 takes the broker default; ReplicationFactor -1 the
//   replica count of a WAL group (min(3, brokers)), the replication every
//   partition gets
// * a replication factor above a WAL group's replica count (min(3,
//   brokers)) is INVALID_REPLICATION_FACTOR; the WAL group's Raft
//   replication provides the durability, whatever the factor asked
// * partitions are spread round robin over every WAL group, each topic
//   starting on the next group
// * a manual ReplicaAssignment gives the partition count (NumPartitions and
//   ReplicationFactor must then be -1, else INVALID_REQUEST); replica
//   placement itself is not applied
// * errors: TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
//   INVALID_REPLICATION_FACTOR, INVALID_CONFIG (unknown key or bad value,
//   null value), INVALID_REQUEST (a topic named twice in one request: every
//   occurrence fails), NOT_CONTROLLER, REQUEST_TIMED_OUT
// * CREATE on the cluster or on the topic is needed
//   (TOPIC_AUTHORIZATION_FAILED); without DESCRIBE_CONFIGS on the topic a
//   created topic's configs are left out (TopicConfigErrorCode
//   TOPIC_AUTHORIZATION_FAILED)
// * ValidateOnly checks everything, including existence, and creates nothing
// * TimeoutMillis bounds the commit wait (at least 1 s, at most 60 s)
//
// Version notes:
// * v2 is the oldest served (Kafka 4 dropped v0-1); ErrorMessage is set
// * v4: -1 for the defaults (KIP-464)
// * v5: flexible; NumPartitions, ReplicationFactor and the full config list
//   (explicit values as DYNAMIC_TOPIC_CONFIG, others DEFAULT_CONFIG) in the
//   response (KIP-525)
// * v7: TopicID

// Kafka's config sources, as DescribeConfigs and CreateTopics report them.
const (
	configSourceDynamicTopic int8 = 1
	configSourceDefault      int8 = 5
)

func (b *Broker) handleCreateTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	timeout := min(max(time.Duration(req.TimeoutMillis)*time.Millisecond, time.Second), time.Minute)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if seen[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %s appears more than once", errInvalidRequest, rt.Topic)
		} else if err = b.createDenied(r, rt.Topic); err == nil { // authz.go
			err = b.createTopic(ctx, req, rt, &st)
		}
		if err != nil {
			st.ErrorCode = errCode(err)
			st.ErrorMessage = errMessage(err)
			st.NumPartitions, st.ReplicationFactor = -1, -1
		}
		if err == nil && req.Version >= 5 && !b.authorized(r, opDescribeConfigs, resTopic, rt.Topic) {
			st.Configs, st.ConfigErrorCode = nil, errCode(errTopicAuthorization)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// createTopic validates and (unless ValidateOnly) creates one topic,
// filling st on success.
func (b *Broker) createTopic(ctx context.Context, req *kmsg.CreateTopicsRequest,
	rt kmsg.CreateTopicsRequestTopic, st *kmsg.CreateTopicsResponseTopic) error {
	spec, err := b.topicSpec(rt)
	if err != nil {
		return err
	}
	if req.ValidateOnly {
		if err := metadata.ValidateTopicName(spec.Name); err != nil {
			return err
		}
		if err := metadata.ValidateTopicConfigs(spec.Configs); err != nil {
			return err
		}
		if _, ok := b.meta.Image().Topics[spec.Name]; ok {
			return fmt.Errorf("%w: %s", metadata.ErrTopicExists, spec.Name)
		}
		if spec.Partitions < 1 || spec.Partitions > metadata.MaxPartitions {
			return fmt.Errorf("%w: %d", metadata.ErrInvalidPartitions, spec.Partitions)
		}
		fillCreated(st, &metadata.Topic{Name: spec.Name, Configs: spec.Configs,
			Partitions: make([]metadata.Partition, spec.Partitions), ReplicationFactor: spec.ReplicationFactor})
		return nil
	}
	t, err := b.meta.CreateTopic(ctx, spec)
	if err != nil {
		return err
	}
	b.logger.Info("topic created", "topic", t.Name, "partitions", len(t.Partitions))
	fillCreated(st, t)
	return nil
}

// topicSpec turns a request topic into a TopicSpec with the defaults
// applied, checking what the metadata store cannot: assignments, null
// config values and the replication factor against the brokers.
func (b *Broker) topicSpec(rt kmsg.CreateTopicsRequestTopic) (metadata.TopicSpec, error) {
	spec := metadata.TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, fmt.Errorf("%w: with a replica assignment, partitions and replication factor must be -1", errInvalidRequest)
		}
		spec.Partitions = int32(len(rt.ReplicaAssignment))
		spec.ReplicationFactor = int16(len(rt.ReplicaAssignment[0].Replicas))
	}
	if spec.Partitions == -1 {
		spec.Partitions = b.cfg.DefaultPartitions
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = int16(maxReplicationFactor(b.meta.Image()))
	}
	if spec.Partitions < 1 {
		return spec, fmt.Errorf("%w: %d, must be at least 1", metadata.ErrInvalidPartitions, spec.Partitions)
	}
	if spec.ReplicationFactor < 1 {
		return spec, fmt.Errorf("%w: %d, must be at least 1", metadata.ErrInvalidReplicationFactor, spec.ReplicationFactor)
	}
	if n := maxReplicationFactor(b.meta.Image()); int(spec.ReplicationFactor) > n {
		return spec, fmt.Errorf("%w: %d is larger than the %d replicas of a WAL group",
			metadata.ErrInvalidReplicationFactor, spec.ReplicationFactor, n)
	}
	spec.WALGroups = b.newTopicGroups()
	if len(rt.Configs) > 0 {
		spec.Configs = make(map[string]string, len(rt.Configs))
		for _, c := range rt.Configs {
			if c.Value == nil {
				return spec, fmt.Errorf("%w: %s: null value", metadata.ErrInvalidConfig, c.Name)
			}
			spec.Configs[c.Name] = *c.Value
		}
	}
	return spec, nil
}

// fillCreated fills the v5+ details of a created topic.
func fillCreated(st *kmsg.CreateTopicsResponseTopic, t *metadata.Topic) {
	st.TopicID = t.ID
	st.NumPartitions = int32(len(t.Partitions))
	st.ReplicationFactor = t.ReplicationFactor
	for _, def := range sortedConfigDefs() {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = def.Name
		v, explicit := t.Configs[def.Name]
		c.Source = configSourceDynamicTopic
		if !explicit {
			v, c.Source = def.Default, configSourceDefault
		}
		c.Value = &v
		st.Configs = append(st.Configs, c)
	}
}

// sortedConfigDefs returns the topic config definitions by name.
func sortedConfigDefs() []metadata.ConfigDef {
	defs := slices.Clone(metadata.TopicConfigs)
	slices.SortFunc(defs, func(a, b metadata.ConfigDef) int { return strings.Compare(a.Name, b.Name) })
	return defs
}
