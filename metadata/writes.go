package metadata

import (
	"context"
	"fmt"
	"maps"
	"time"
)

// The writes below validate their arguments, fail fast on what the current
// image already rules out, and propose one command. The FSM decides: two
// concurrent CreateTopic calls for one name both pass the fast check, and
// exactly one of them gets ErrTopicExists from the FSM. Every write works on
// every member (see propose: followers forward to the leader) and needs an
// open store (ErrClosed).

// RegisterBroker adds or replaces the registration of b.ID.
func (s *Store) RegisterBroker(ctx context.Context, b Broker) error {
	if err := checkBroker(b); err != nil {
		return err
	}
	_, err := s.propose(ctx, RegisterBrokerCmd{Broker: b})
	return err
}

// CreateTopic creates a topic with a fresh random id and fresh stream ids,
// and returns it. Partitions and replication factor of -1 take the Config
// defaults. Configs are validated against TopicConfigs and stored as given.
func (s *Store) CreateTopic(ctx context.Context, spec TopicSpec) (*Topic, error) {
	if err := ValidateTopicName(spec.Name); err != nil {
		return nil, err
	}
	if spec.Partitions == -1 {
		spec.Partitions = s.cfg.DefaultPartitions
	}
	if spec.Partitions < 1 || spec.Partitions > MaxPartitions {
		return nil, fmt.Errorf("%w: %d, must be in [1, %d]", ErrInvalidPartitions, spec.Partitions, MaxPartitions)
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = s.cfg.DefaultReplicationFactor
	}
	if spec.ReplicationFactor < 1 {
		return nil, fmt.Errorf("%w: %d", ErrInvalidReplicationFactor, spec.ReplicationFactor)
	}
	if err := ValidateTopicConfigs(spec.Configs); err != nil {
		return nil, err
	}
	im := s.Image()
	if _, ok := im.Topics[spec.Name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrTopicExists, spec.Name)
	}
	resp, err := s.propose(ctx, CreateTopicCmd{
		Name:              spec.Name,
		ID:                newTopicID(im),
		Partitions:        spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor,
		Configs:           maps.Clone(spec.Configs),
		WALGroups:         cloneGroups(spec.WALGroups),
	})
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	return topicResult(resp)
}

// DeleteTopic deletes a topic and returns it as it was, so that the caller
// can release its streams. Its stream ids are never handed out again. The
// streams' object ranges are released; objects left with no live range may
// leave storage DefaultObjectGrace from now.
func (s *Store) DeleteTopic(ctx context.Context, name string) (*Topic, error) {
	return s.DeleteTopicAt(ctx, name, time.Now().UnixMilli(), DefaultObjectGrace.Milliseconds())
}

// DeleteTopicAt is DeleteTopic with the clock (Unix ms) and the grace period
// of the released objects given by the caller.
func (s *Store) DeleteTopicAt(ctx context.Context, name string, nowMs, graceMs int64) (*Topic, error) {
	if _, ok := s.Image().Topics[name]; !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	c := DeleteTopicCmd{Name: name, NowMs: nowMs, GraceMs: graceMs}
	if err := c.check(); err != nil {
		return nil, err
	}
	resp, err := s.propose(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("delete topic %s: %w", name, err)
	}
	return topicResult(resp)
}

// CreatePartitions grows a topic to total partitions, each with a fresh
// stream id, and returns the topic. A total not above the current count is
// ErrInvalidPartitions. The new partitions are spread round robin (by
// partition index) over walGroups, or when none are given over the WAL
// groups the topic's partitions already use.
func (s *Store) CreatePartitions(ctx context.Context, name string, total int32, walGroups ...uint32) (*Topic, error) {
	t, ok := s.Image().Topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if total <= int32(len(t.Partitions)) || total > MaxPartitions {
		return nil, fmt.Errorf("%w: topic %s has %d partitions, cannot change to %d (at most %d)",
			ErrInvalidPartitions, name, len(t.Partitions), total, MaxPartitions)
	}
	resp, err := s.propose(ctx, CreatePartitionsCmd{Name: name, Total: total, WALGroups: walGroups})
	if err != nil {
		return nil, fmt.Errorf("create partitions %s: %w", name, err)
	}
	return topicResult(resp)
}

// AlterTopicConfigs sets the explicit configs in set and removes those in
// deleteKeys (they return to their defaults). Every key must be a known topic
// config, every value valid, and the resulting configs consistent.
func (s *Store) AlterTopicConfigs(ctx context.Context, name string, set map[string]string, deleteKeys []string) error {
	t, ok := s.Image().Topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if err := ValidateTopicConfigs(set); err != nil {
		return err
	}
	merged := maps.Clone(t.Configs)
	for _, k := range deleteKeys {
		if _, ok := TopicConfigDef(k); !ok {
			return fmt.Errorf("%w: %s: unknown topic config", ErrInvalidConfig, k)
		}
		delete(merged, k)
	}
	maps.Copy(merged, set)
	if err := validateConfigCombination(merged); err != nil {
		return err
	}
	_, err := s.propose(ctx, AlterTopicConfigsCmd{Name: name, Set: maps.Clone(set), Delete: deleteKeys})
	if err != nil {
		return fmt.Errorf("alter configs of %s: %w", name, err)
	}
	return nil
}

// AllocateProducerIDs durably reserves n consecutive producer ids and returns
// the first. Blocks never overlap and are never handed out again, also across
// restarts and leader changes.
func (s *Store) AllocateProducerIDs(ctx context.Context, n int64) (first int64, err error) {
	c := AllocateProducerIDsCmd{N: n}
	if err := c.check(); err != nil {
		return 0, err
	}
	resp, err := s.propose(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("allocate producer ids: %w", err)
	}
	first, ok := resp.(int64)
	if !ok {
		return 0, fmt.Errorf("%w: allocate producer ids: unexpected result %T", ErrInvalidCommand, resp)
	}
	return first, nil
}

// topicResult is the *Topic an FSM result must hold.
func topicResult(resp any) (*Topic, error) {
	t, ok := resp.(*Topic)
	if !ok || t == nil {
		return nil, fmt.Errorf("%w: unexpected result %T", ErrInvalidCommand, resp)
	}
	return t, nil
}
