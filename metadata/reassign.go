package metadata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Partition reassignment: moving a partition from its WAL group to another,
// without copying data (docs/reassignment.md).
//
//  1. ReassignPartition records the move (Partition.Move, not Switched);
//     the source group's leader fences the stream in its WAL, uploads its
//     pending data and commits it here.
//  2. SwitchPartition, once the stream's committed history reaches the end
//     the source fenced it at, moves the partition to the target group and
//     records the hand-off (producer state, epoch history) the target opens
//     the stream with.
//  3. FinishReassignment, once the target opened it, forgets the move.
//
// CancelReassignment (or a ReassignPartition back to the current group)
// forgets a move that has not switched yet; the source then lifts its
// fence. A move is named by the log index of the command that started it.

// Reassignment errors.
var (
	// ErrInvalidReplicaAssignment is returned when no WAL group has the
	// replicas a reassignment asks for.
	ErrInvalidReplicaAssignment = errors.New("metadata: invalid replica assignment")
	// ErrNoReassignment is returned when a partition has no move in
	// progress (to cancel, or the one a switch names).
	ErrNoReassignment = errors.New("metadata: no reassignment in progress")
	// ErrReassignmentInProgress is returned when a move has switched
	// groups and is completing: it can no longer be changed or cancelled.
	ErrReassignmentInProgress = errors.New("metadata: reassignment is completing")
)

// PartitionMove is a partition's move to another WAL group, in progress.
type PartitionMove struct {
	// ID is the log index of the command that started the move.
	ID     uint64 `json:"id"`
	Source uint32 `json:"source"`
	Target uint32 `json:"target"`
	// Switched: the partition is in Target (Partition.WALGroup) since
	// SwitchPartition; Target's leader opens the stream with Handoff.
	Switched bool           `json:"switched,omitempty"`
	Handoff  *StreamHandoff `json:"handoff,omitempty"`
}

// StreamHandoff is what a moving stream carries to its new WAL group.
type StreamHandoff struct {
	// End is the stream's end offset in the source: the target continues there.
	End int64 `json:"end"`
	// MinEpoch is the lowest leader epoch the target may give the stream.
	MinEpoch  int32             `json:"min_epoch"`
	Producers []HandoffProducer `json:"producers,omitempty"`
	Epochs    []HandoffEpoch    `json:"epochs,omitempty"`
}

// HandoffProducer is an idempotent producer's state on the stream.
type HandoffProducer struct {
	ID      int64          `json:"id"`
	Epoch   int16          `json:"epoch"`
	Batches []HandoffBatch `json:"batches,omitempty"` // its last batches, oldest first
}

// HandoffBatch is where one producer batch went.
type HandoffBatch struct {
	FirstSeq int32 `json:"first_seq"`
	LastSeq  int32 `json:"last_seq"`
	Base     int64 `json:"base"`
	Last     int64 `json:"last"`
}

// HandoffEpoch is one entry of the stream's leader-epoch history.
type HandoffEpoch struct {
	Epoch int32 `json:"epoch"`
	Start int64 `json:"start"`
}

// ReassignPartitionCmd starts moving a partition to WAL group Target, or
// changes the target of a move that has not switched yet. A Target equal
// to the partition's group cancels such a move (and changes nothing when
// none is in progress).
type ReassignPartitionCmd struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Target    uint32 `json:"target"`
}

// CancelReassignmentCmd forgets a partition's move that has not switched yet.
type CancelReassignmentCmd struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// SwitchPartitionCmd moves the partition to its move's target group at
// Handoff.End: the stream's committed history must end exactly there.
type SwitchPartitionCmd struct {
	Topic     string        `json:"topic"`
	Partition int32         `json:"partition"`
	Stream    uint64        `json:"stream"`
	Move      uint64        `json:"move"`
	Handoff   StreamHandoff `json:"handoff"`
}

// FinishReassignmentCmd forgets a switched move: the target has opened the stream.
type FinishReassignmentCmd struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Stream    uint64 `json:"stream"`
	Move      uint64 `json:"move"`
}

// Type implements Command.
func (ReassignPartitionCmd) Type() CommandType { return CmdReassignPartition }

// Type implements Command.
func (CancelReassignmentCmd) Type() CommandType { return CmdCancelReassignment }

// Type implements Command.
func (SwitchPartitionCmd) Type() CommandType { return CmdSwitchPartition }

// Type implements Command.
func (FinishReassignmentCmd) Type() CommandType { return CmdFinishReassignment }

func checkPartitionRef(topic string, partition int32) error {
	switch {
	case topic == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopicName)
	case partition < 0:
		return fmt.Errorf("%w: partition %d of %s", ErrUnknownTopic, partition, topic)
	}
	return nil
}

func (c ReassignPartitionCmd) check() error  { return checkPartitionRef(c.Topic, c.Partition) }
func (c CancelReassignmentCmd) check() error { return checkPartitionRef(c.Topic, c.Partition) }

func (c SwitchPartitionCmd) check() error {
	if err := checkPartitionRef(c.Topic, c.Partition); err != nil {
		return err
	}
	if c.Stream == 0 || c.Move == 0 || c.Handoff.End < 0 {
		return fmt.Errorf("%w: switch of stream %d, move %d at offset %d", ErrInvalidCommand, c.Stream, c.Move, c.Handoff.End)
	}
	return nil
}

func (c FinishReassignmentCmd) check() error {
	if err := checkPartitionRef(c.Topic, c.Partition); err != nil {
		return err
	}
	if c.Stream == 0 || c.Move == 0 {
		return fmt.Errorf("%w: finish of stream %d, move %d", ErrInvalidCommand, c.Stream, c.Move)
	}
	return nil
}

// partitionAt returns the topic and partition a command names.
func (im *Image) partitionAt(topic string, idx int32) (*Topic, Partition, error) {
	t := im.Topics[topic]
	if t == nil || idx < 0 || int(idx) >= len(t.Partitions) {
		return nil, Partition{}, fmt.Errorf("%w: %s partition %d", ErrUnknownTopic, topic, idx)
	}
	return t, t.Partitions[idx], nil
}

// withPartition returns the image that follows im with partition p of t
// replaced.
func (im *Image) withPartition(t *Topic, p Partition, index uint64) *Image {
	nt := t.clone()
	nt.Partitions[p.Index] = p
	n := im.next(index)
	n.withTopics()
	n.putTopic(nt)
	return n
}

func (im *Image) applyReassignPartition(c ReassignPartitionCmd, index uint64) (*Image, any) {
	t, p, err := im.partitionAt(c.Topic, c.Partition)
	if err != nil {
		return nil, err
	}
	if _, ok := im.WALGroup(c.Target); !ok {
		return nil, fmt.Errorf("%w: wal group %d does not exist", ErrInvalidReplicaAssignment, c.Target)
	}
	switch m := p.Move; {
	case m != nil && m.Switched:
		if c.Target == p.WALGroup {
			return nil, nil // the move completes there anyway
		}
		return nil, fmt.Errorf("%w: %s-%d is moving to wal group %d", ErrReassignmentInProgress, c.Topic, c.Partition, m.Target)
	case c.Target == p.WALGroup:
		if m == nil {
			return nil, nil // nothing to move
		}
		p.Move = nil // back where it is: a cancel
	case m != nil && m.Target == c.Target:
		return nil, nil // a repeated request
	default:
		p.Move = &PartitionMove{ID: index, Source: p.WALGroup, Target: c.Target}
	}
	return im.withPartition(t, p, index), nil
}

func (im *Image) applyCancelReassignment(c CancelReassignmentCmd, index uint64) (*Image, any) {
	t, p, err := im.partitionAt(c.Topic, c.Partition)
	if err != nil {
		return nil, err
	}
	switch {
	case p.Move == nil:
		return nil, fmt.Errorf("%w: %s-%d", ErrNoReassignment, c.Topic, c.Partition)
	case p.Move.Switched:
		return nil, fmt.Errorf("%w: %s-%d has switched to wal group %d", ErrReassignmentInProgress, c.Topic, c.Partition, p.Move.Target)
	}
	p.Move = nil
	return im.withPartition(t, p, index), nil
}

func (im *Image) applySwitchPartition(c SwitchPartitionCmd, index uint64) (*Image, any) {
	t, p, err := im.partitionAt(c.Topic, c.Partition)
	if err != nil {
		return nil, err
	}
	m := p.Move
	switch {
	case p.Stream != c.Stream || m == nil || m.ID != c.Move:
		return nil, fmt.Errorf("%w: %s-%d: move %d", ErrNoReassignment, c.Topic, c.Partition, c.Move)
	case m.Switched:
		return nil, nil // a retried switch
	}
	if so := im.Streams[p.Stream]; so != nil {
		committed := max(so.EndOffset, so.StartOffset)
		if so.EndOffset > c.Handoff.End || committed < c.Handoff.End {
			return nil, fmt.Errorf("%w: %s-%d: the stream's committed history ends at %d (log start %d), the move at %d",
				ErrRangeConflict, c.Topic, c.Partition, so.EndOffset, so.StartOffset, c.Handoff.End)
		}
	}
	h := cloneHandoff(c.Handoff)
	p.WALGroup = m.Target
	p.Move = &PartitionMove{ID: m.ID, Source: m.Source, Target: m.Target, Switched: true, Handoff: &h}
	return im.withPartition(t, p, index), nil
}

func (im *Image) applyFinishReassignment(c FinishReassignmentCmd, index uint64) (*Image, any) {
	t, p, err := im.partitionAt(c.Topic, c.Partition)
	if err != nil {
		return nil, err
	}
	m := p.Move
	switch {
	case p.Stream != c.Stream || (m != nil && m.ID != c.Move):
		return nil, fmt.Errorf("%w: %s-%d: move %d", ErrNoReassignment, c.Topic, c.Partition, c.Move)
	case m == nil:
		return nil, nil // finished already
	case !m.Switched:
		return nil, fmt.Errorf("%w: %s-%d: move %d has not switched", ErrInvalidRequest, c.Topic, c.Partition, c.Move)
	}
	p.Move = nil
	return im.withPartition(t, p, index), nil
}

func cloneHandoff(h StreamHandoff) StreamHandoff {
	h.Epochs = slices.Clone(h.Epochs)
	h.Producers = slices.Clone(h.Producers)
	for i := range h.Producers {
		h.Producers[i].Batches = slices.Clone(h.Producers[i].Batches)
	}
	return h
}

// MoveRef names a partition with a move in progress.
type MoveRef struct {
	Topic     string
	Partition Partition // Partition.Move is set
}

// Moves returns the partitions with a move in progress, by topic and
// partition.
func (im *Image) Moves() []MoveRef {
	var out []MoveRef
	for _, name := range im.SortedTopicNames() {
		for _, p := range im.Topics[name].Partitions {
			if p.Move != nil {
				out = append(out, MoveRef{Topic: name, Partition: p})
			}
		}
	}
	return out
}

// WALGroupFor returns the WAL group a partition in group current moves to
// for a Kafka replica list: a group with exactly those replicas in that
// order (the first is the preferred leader), else one with the same set
// and the same preferred leader, else one with the same set. On a tie the
// current group wins (nothing to move), then the group with the fewest
// partitions, then the lowest id. No match is ErrInvalidReplicaAssignment,
// naming the groups there are.
func (im *Image) WALGroupFor(replicas []int32, current uint32) (uint32, error) {
	if len(replicas) == 0 {
		return 0, fmt.Errorf("%w: empty replica list", ErrInvalidReplicaAssignment)
	}
	for i, id := range replicas {
		if id < 0 || slices.Contains(replicas[:i], id) {
			return 0, fmt.Errorf("%w: replica list %v has a negative or repeated broker", ErrInvalidReplicaAssignment, replicas)
		}
	}
	set := slices.Sorted(slices.Values(replicas))
	best, bestLevel := []uint32(nil), 0
	for _, g := range im.WALGroups {
		level := 0
		switch {
		case slices.Equal(g.Replicas, replicas):
			level = 3
		case !slices.Equal(slices.Sorted(slices.Values(g.Replicas)), set):
			continue
		case g.Replicas[0] == replicas[0]:
			level = 2
		default:
			level = 1
		}
		if level > bestLevel {
			best, bestLevel = nil, level
		}
		if level == bestLevel {
			best = append(best, g.ID)
		}
	}
	if len(best) == 0 {
		return 0, fmt.Errorf("%w: no wal group has replicas %v; the groups are %s", ErrInvalidReplicaAssignment, replicas, im.describeGroups())
	}
	if slices.Contains(best, current) {
		return current, nil
	}
	counts := im.PartitionsPerGroup()
	return slices.MinFunc(best, func(a, b uint32) int { return cmp.Or(cmp.Compare(counts[a], counts[b]), cmp.Compare(a, b)) }), nil
}

// PartitionsPerGroup counts the partitions of every WAL group.
func (im *Image) PartitionsPerGroup() map[uint32]int {
	counts := map[uint32]int{}
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			counts[p.WALGroup]++
		}
	}
	return counts
}

// describeGroups lists the WAL groups' replicas: "0=[1 2 3] 1=[2 3 1]".
func (im *Image) describeGroups() string {
	if len(im.WALGroups) == 0 {
		return "none"
	}
	parts := make([]string, len(im.WALGroups))
	for i, g := range im.WALGroups {
		parts[i] = fmt.Sprintf("%d=%v", g.ID, g.Replicas)
	}
	return strings.Join(parts, " ")
}

// ReassignPartition starts moving partition idx of topic to WAL group
// target (see ReassignPartitionCmd).
func (s *Store) ReassignPartition(ctx context.Context, topic string, idx int32, target uint32) error {
	c := ReassignPartitionCmd{Topic: topic, Partition: idx, Target: target}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("reassign %s-%d: %w", topic, idx, err)
	}
	return nil
}

// CancelReassignment forgets the move of partition idx of topic, if it has
// not switched groups yet (ErrNoReassignment, ErrReassignmentInProgress).
func (s *Store) CancelReassignment(ctx context.Context, topic string, idx int32) error {
	c := CancelReassignmentCmd{Topic: topic, Partition: idx}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("cancel reassignment of %s-%d: %w", topic, idx, err)
	}
	return nil
}

// SwitchPartition moves the partition to its move's target group at h.End
// (see SwitchPartitionCmd).
func (s *Store) SwitchPartition(ctx context.Context, topic string, idx int32, stream, move uint64, h StreamHandoff) error {
	c := SwitchPartitionCmd{Topic: topic, Partition: idx, Stream: stream, Move: move, Handoff: h}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("switch %s-%d: %w", topic, idx, err)
	}
	return nil
}

// FinishReassignment forgets the switched move of a partition whose target
// opened its stream.
func (s *Store) FinishReassignment(ctx context.Context, topic string, idx int32, stream, move uint64) error {
	c := FinishReassignmentCmd{Topic: topic, Partition: idx, Stream: stream, Move: move}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := s.propose(ctx, c); err != nil {
		return fmt.Errorf("finish reassignment of %s-%d: %w", topic, idx, err)
	}
	return nil
}
