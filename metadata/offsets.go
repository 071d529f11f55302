package metadata

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Committed group offsets: the image keeps, per consumer group, the last
// offset committed for each partition. A commit is one Raft entry and all or
// nothing; deleting a topic drops its offsets from every group.

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// CommittedOffset is the offset a group committed for one partition.
type CommittedOffset struct {
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"` // -1: unknown
	Metadata    string `json:"metadata,omitempty"`
	CommitMs    int64  `json:"commit_ms"`           // Unix ms of the commit
	ExpireMs    int64  `json:"expire_ms,omitempty"` // Unix ms the offset expires at; 0: none
}

// OffsetCommit is one partition's offset in a commit.
type OffsetCommit struct {
	TopicPartition
	CommittedOffset
}

// CommitOffsetsCmd stores offsets for a group, replacing earlier commits of
// the same partitions. Every partition must exist.
type CommitOffsetsCmd struct {
	Group   string         `json:"group"`
	Offsets []OffsetCommit `json:"offsets"`
}

// DeleteGroupOffsetsCmd removes a group's offsets of the given partitions, or
// all of its offsets when All is set.
type DeleteGroupOffsetsCmd struct {
	Group      string           `json:"group"`
	Partitions []TopicPartition `json:"partitions,omitempty"`
	All        bool             `json:"all,omitempty"`
}

// ExpireGroupOffsetsCmd removes a group's offsets that expired at NowMs (Unix
// ms): those with an ExpireMs at or before NowMs, and those without one
// committed RetentionMs or longer before NowMs.
type ExpireGroupOffsetsCmd struct {
	Group       string `json:"group"`
	NowMs       int64  `json:"now_ms"`
	RetentionMs int64  `json:"retention_ms"`
}

// Type implements Command.
func (CommitOffsetsCmd) Type() CommandType { return CmdCommitOffsets }

// Type implements Command.
func (DeleteGroupOffsetsCmd) Type() CommandType { return CmdDeleteGroupOffsets }

// Type implements Command.
func (ExpireGroupOffsetsCmd) Type() CommandType { return CmdExpireGroupOffsets }

func (c CommitOffsetsCmd) check() error {
	if c.Group == "" {
		return fmt.Errorf("%w: empty group id", ErrInvalidRequest)
	}
	if len(c.Offsets) == 0 {
		return fmt.Errorf("%w: commit of no offsets for group %s", ErrInvalidRequest, c.Group)
	}
	seen := make(map[TopicPartition]bool, len(c.Offsets))
	for _, o := range c.Offsets {
		if err := checkTopicPartition(o.TopicPartition); err != nil {
			return err
		}
		if seen[o.TopicPartition] {
			return fmt.Errorf("%w: %s-%d committed twice", ErrInvalidRequest, o.Topic, o.Partition)
		}
		seen[o.TopicPartition] = true
		if o.CommitMs < 0 || o.ExpireMs < 0 {
			return fmt.Errorf("%w: %s-%d: negative commit or expiry time", ErrInvalidRequest, o.Topic, o.Partition)
		}
	}
	return nil
}

func (c DeleteGroupOffsetsCmd) check() error {
	if c.Group == "" {
		return fmt.Errorf("%w: empty group id", ErrInvalidRequest)
	}
	if c.All == (len(c.Partitions) > 0) {
		return fmt.Errorf("%w: delete offsets of group %s needs either partitions or all", ErrInvalidRequest, c.Group)
	}
	for _, tp := range c.Partitions {
		if err := checkTopicPartition(tp); err != nil {
			return err
		}
	}
	return nil
}

func (c ExpireGroupOffsetsCmd) check() error {
	if c.Group == "" {
		return fmt.Errorf("%w: empty group id", ErrInvalidRequest)
	}
	return checkTime(c.NowMs, c.RetentionMs)
}

func checkTopicPartition(tp TopicPartition) error {
	if tp.Topic == "" || tp.Partition < 0 {
		return fmt.Errorf("%w: partition %q-%d", ErrInvalidRequest, tp.Topic, tp.Partition)
	}
	return nil
}

// GroupOffsets returns the offsets group committed, by partition, or nil when
// it has none. The map belongs to the image: read it, never change it.
func (im *Image) GroupOffsets(group string) map[TopicPartition]CommittedOffset {
	return im.Offsets[group]
}

// GroupNames returns the groups that have committed offsets, sorted.
func (im *Image) GroupNames() []string {
	return slices.Sorted(maps.Keys(im.Offsets))
}

// expired reports whether o has expired at nowMs under retentionMs.
func (o CommittedOffset) expired(nowMs, retentionMs int64) bool {
	if o.ExpireMs > 0 {
		return o.ExpireMs <= nowMs
	}
	return deleteAfter(o.CommitMs, retentionMs) <= nowMs
}

// withOffsets gives the image its own shallow copy of the group map; the
// groups' offset maps stay shared.
func (im *Image) withOffsets() {
	im.Offsets = maps.Clone(im.Offsets)
}

// putGroupOffsets stores a group's offsets (owned by the new image), removing
// the group when none are left; the group map must be owned (withOffsets).
func (im *Image) putGroupOffsets(group string, offsets map[TopicPartition]CommittedOffset) {
	if len(offsets) == 0 {
		delete(im.Offsets, group)
		return
	}
	im.Offsets[group] = offsets
}

// hasPartition reports whether tp names an existing partition.
func (im *Image) hasPartition(tp TopicPartition) bool {
	t, ok := im.Topics[tp.Topic]
	return ok && tp.Partition >= 0 && int(tp.Partition) < len(t.Partitions)
}

func (im *Image) applyCommitOffsets(c CommitOffsetsCmd, index uint64) (*Image, any) {
	for _, o := range c.Offsets {
		if !im.hasPartition(o.TopicPartition) {
			return nil, fmt.Errorf("%w: %s-%d", ErrUnknownTopic, o.Topic, o.Partition)
		}
	}
	offsets := maps.Clone(im.Offsets[c.Group])
	if offsets == nil {
		offsets = make(map[TopicPartition]CommittedOffset, len(c.Offsets))
	}
	for _, o := range c.Offsets {
		offsets[o.TopicPartition] = o.CommittedOffset
	}
	n := im.next(index)
	n.withOffsets()
	n.putGroupOffsets(c.Group, offsets)
	return n, nil
}

func (im *Image) applyDeleteGroupOffsets(c DeleteGroupOffsetsCmd, index uint64) (*Image, any) {
	drop := make(map[TopicPartition]bool, len(c.Partitions))
	for _, tp := range c.Partitions {
		drop[tp] = true
	}
	keep := func(tp TopicPartition, _ CommittedOffset) bool { return !c.All && !drop[tp] }
	return im.filterGroupOffsets(c.Group, im.Offsets[c.Group], keep, index)
}

func (im *Image) applyExpireGroupOffsets(c ExpireGroupOffsetsCmd, index uint64) (*Image, any) {
	keep := func(_ TopicPartition, o CommittedOffset) bool { return !o.expired(c.NowMs, c.RetentionMs) }
	return im.filterGroupOffsets(c.Group, im.Offsets[c.Group], keep, index)
}

// filterGroupOffsets keeps the group's offsets keep accepts; the result is
// the number of offsets removed (an int). Nothing removed: no new image.
func (im *Image) filterGroupOffsets(group string, old map[TopicPartition]CommittedOffset,
	keep func(TopicPartition, CommittedOffset) bool, index uint64) (*Image, any) {
	offsets := make(map[TopicPartition]CommittedOffset, len(old))
	for tp, o := range old {
		if keep(tp, o) {
			offsets[tp] = o
		}
	}
	removed := len(old) - len(offsets)
	if removed == 0 {
		return nil, 0
	}
	n := im.next(index)
	n.withOffsets()
	n.putGroupOffsets(group, offsets)
	return n, removed
}

// dropTopicOffsets removes topic's offsets from every group, copying only
// the groups that had some; the image must be a fresh next image.
func (im *Image) dropTopicOffsets(topic string) {
	owned := false
	for group, offsets := range im.Offsets {
		var kept map[TopicPartition]CommittedOffset
		for tp := range offsets {
			if tp.Topic != topic {
				continue
			}
			if kept == nil {
				kept = maps.Clone(offsets)
			}
			delete(kept, tp)
		}
		if kept == nil {
			continue
		}
		if !owned {
			im.withOffsets()
			owned = true
		}
		im.putGroupOffsets(group, kept)
	}
}

// groupOffsetsSnapshot is one group's offsets in a snapshot, sorted by topic
// and partition.
type groupOffsetsSnapshot struct {
	Group   string         `json:"group"`
	Offsets []OffsetCommit `json:"offsets"`
}

// snapshotOffsets lists every group's offsets, sorted by group.
func (im *Image) snapshotOffsets() []groupOffsetsSnapshot {
	var out []groupOffsetsSnapshot
	for _, group := range im.GroupNames() {
		g := groupOffsetsSnapshot{Group: group}
		for tp, o := range im.Offsets[group] {
			g.Offsets = append(g.Offsets, OffsetCommit{TopicPartition: tp, CommittedOffset: o})
		}
		slices.SortFunc(g.Offsets, func(a, b OffsetCommit) int {
			return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
		out = append(out, g)
	}
	return out
}

// restoreOffsets fills the offsets of a fresh image (its topics restored)
// from a snapshot and checks them like a commit.
func (im *Image) restoreOffsets(groups []groupOffsetsSnapshot) error {
	for _, g := range groups {
		c := CommitOffsetsCmd{Group: g.Group, Offsets: g.Offsets}
		if err := c.check(); err != nil {
			return fmt.Errorf("%w: snapshot: %w", ErrInvalidCommand, err)
		}
		if _, dup := im.Offsets[g.Group]; dup {
			return fmt.Errorf("%w: snapshot holds group %s twice", ErrInvalidCommand, g.Group)
		}
		offsets := make(map[TopicPartition]CommittedOffset, len(g.Offsets))
		for _, o := range g.Offsets {
			if !im.hasPartition(o.TopicPartition) {
				return fmt.Errorf("%w: snapshot: group %s has an offset of unknown partition %s-%d",
					ErrInvalidCommand, g.Group, o.Topic, o.Partition)
			}
			offsets[o.TopicPartition] = o.CommittedOffset
		}
		im.Offsets[g.Group] = offsets
	}
	return nil
}

// CommitOffsets stores the offsets of a group in one Raft entry: all of them
// or, on error, none. A later commit of a partition replaces the earlier one.
// Every partition must exist, else ErrUnknownTopic (also when the topic is
// deleted while the commit is in flight); a partition given twice, an empty
// group id or no offsets is ErrInvalidRequest.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []OffsetCommit) error {
	c := CommitOffsetsCmd{Group: group, Offsets: slices.Clone(offsets)}
	if err := c.check(); err != nil {
		return err
	}
	im := s.Image()
	for _, o := range c.Offsets {
		if !im.hasPartition(o.TopicPartition) {
			return fmt.Errorf("%w: %s-%d", ErrUnknownTopic, o.Topic, o.Partition)
		}
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
}

// DeleteGroupOffsets removes a group's committed offsets of parts, or all of
// them when parts is nil. Partitions without an offset are ignored; when
// nothing would change, nothing is proposed.
func (s *Store) DeleteGroupOffsets(ctx context.Context, group string, parts []TopicPartition) error {
	c := DeleteGroupOffsetsCmd{Group: group, Partitions: slices.Clone(parts), All: parts == nil}
	if c.All || len(c.Partitions) > 0 {
		if err := c.check(); err != nil {
			return err
		}
	}
	old := s.Image().Offsets[group]
	if len(old) == 0 || !c.All && !slices.ContainsFunc(c.Partitions, func(tp TopicPartition) bool {
		_, ok := old[tp]
		return ok
	}) {
		return nil
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("delete offsets of group %s: %w", group, err)
	}
	return nil
}

// ExpireGroupOffsets removes the group's offsets that expired at nowMs (Unix
// ms): those whose ExpireMs passed, and those without ExpireMs committed
// retentionMs or longer ago. It returns how many it removed; when none
// expired, nothing is proposed. The caller decides that the group may lose
// offsets (Kafka expires only offsets of groups without members).
func (s *Store) ExpireGroupOffsets(ctx context.Context, group string, nowMs, retentionMs int64) (int, error) {
	c := ExpireGroupOffsetsCmd{Group: group, NowMs: nowMs, RetentionMs: retentionMs}
	if err := c.check(); err != nil {
		return 0, err
	}
	due := false
	for _, o := range s.Image().Offsets[group] {
		if o.expired(nowMs, retentionMs) {
			due = true
			break
		}
	}
	if !due {
		return 0, nil
	}
	resp, err := s.propose(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("expire offsets of group %s: %w", group, err)
	}
	n, _ := resp.(int)
	return n, nil
}
