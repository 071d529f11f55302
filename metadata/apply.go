package metadata

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// apply computes the image that follows im after c, committed at the given
// log index. It is pure and deterministic: the same image and command give
// the same result on every replica. next is nil when the image does not
// change; resp is an error or the command's result.
func (im *Image) apply(c Command, index uint64) (next *Image, resp any) {
	switch c := c.(type) {
	case InitClusterCmd:
		return im.applyInitCluster(c, index)
	case RegisterBrokerCmd:
		return im.applyRegisterBroker(c, index)
	case CreateTopicCmd:
		return im.applyCreateTopic(c, index)
	case DeleteTopicCmd:
		return im.applyDeleteTopic(c, index)
	case CreatePartitionsCmd:
		return im.applyCreatePartitions(c, index)
	case AlterTopicConfigsCmd:
		return im.applyAlterTopicConfigs(c, index)
	case AllocateProducerIDsCmd:
		return im.applyAllocateProducerIDs(c, index)
	case CommitObjectCmd:
		return im.applyCommitObject(c, index)
	case CompactObjectsCmd:
		return im.applyCompactObjects(c, index)
	case TrimStreamCmd:
		return im.applyTrimStream(c, index)
	case ObjectsDeletedCmd:
		return im.applyObjectsDeleted(c, index)
	case CommitOffsetsCmd:
		return im.applyCommitOffsets(c, index)
	case DeleteGroupOffsetsCmd:
		return im.applyDeleteGroupOffsets(c, index)
	case ExpireGroupOffsetsCmd:
		return im.applyExpireGroupOffsets(c, index)
	case InitLayoutCmd:
		return im.applyInitLayout(c, index)
	case AddMemberCmd:
		return im.applyAddMember(c, index)
	case RemoveMemberCmd:
		return im.applyRemoveMember(c, index)
	case SetWALLeaderCmd:
		return im.applySetWALLeader(c, index)
	case ReassignPartitionCmd:
		return im.applyReassignPartition(c, index)
	case CancelReassignmentCmd:
		return im.applyCancelReassignment(c, index)
	case SwitchPartitionCmd:
		return im.applySwitchPartition(c, index)
	case FinishReassignmentCmd:
		return im.applyFinishReassignment(c, index)
	case AlterUserScramCmd:
		return im.applyAlterUserScram(c, index)
	case AlterClientQuotasCmd:
		return im.applyAlterClientQuotas(c, index)
	case CreateACLsCmd:
		return im.applyCreateACLs(c, index)
	case DeleteACLsCmd:
		return im.applyDeleteACLs(c, index)
	case RequestCmd:
		// The FSM answers repeated request ids from its request table; the
		// image itself only applies the command.
		return im.apply(c.Cmd, index)
	}
	return nil, fmt.Errorf("%w: unknown command %T", ErrInvalidCommand, c)
}

func (im *Image) next(index uint64) *Image {
	n := im.clone()
	n.Index = index
	return n
}

func (im *Image) applyInitCluster(c InitClusterCmd, index uint64) (*Image, any) {
	if im.ClusterID != "" {
		return nil, nil // initialised already: a second leader's attempt changes nothing
	}
	n := im.next(index)
	n.ClusterID = c.ClusterID
	return n, nil
}

func (im *Image) applyRegisterBroker(c RegisterBrokerCmd, index uint64) (*Image, any) {
	if slices.Contains(im.RemovedMembers, c.Broker.ID) {
		return nil, fmt.Errorf("%w: broker %d", ErrMemberRemoved, c.Broker.ID)
	}
	if old, ok := im.Brokers[c.Broker.ID]; ok && old.equal(c.Broker) {
		return nil, nil
	}
	n := im.next(index)
	n.withBrokers()
	n.Brokers[c.Broker.ID] = c.Broker
	return n, nil
}

func (im *Image) applyCreateTopic(c CreateTopicCmd, index uint64) (*Image, any) {
	if _, ok := im.Topics[c.Name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrTopicExists, c.Name)
	}
	if other := im.collidingTopic(c.Name); other != "" {
		return nil, fmt.Errorf("%w: %s collides with existing topic %s", ErrInvalidTopicName, c.Name, other)
	}
	if _, ok := im.TopicsByID[c.ID]; ok {
		return nil, fmt.Errorf("%w: topic id %s is in use", ErrInvalidRequest, c.ID)
	}
	if im.NextStreamID > math.MaxUint64-uint64(c.Partitions) {
		return nil, fmt.Errorf("%w: stream ids exhausted", ErrInvalidPartitions)
	}
	t := &Topic{
		Name:              c.Name,
		ID:                c.ID,
		Partitions:        make([]Partition, 0, c.Partitions),
		Configs:           maps.Clone(c.Configs),
		ReplicationFactor: c.ReplicationFactor,
	}
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	n := im.next(index)
	n.withStreams()
	n.addPartitions(t, c.Partitions, c.WALGroups)
	n.withTopics()
	n.putTopic(t)
	return n, t
}

// addPartitions appends partitions to t until it has total, with fresh
// stream ids (and empty histories: im.Streams must be owned), spread round
// robin over groups by partition index.
func (im *Image) addPartitions(t *Topic, total int32, groups []uint32) {
	for i := int32(len(t.Partitions)); i < total; i++ {
		t.Partitions = append(t.Partitions, Partition{
			Index:    i,
			Stream:   im.NextStreamID,
			WALGroup: groups[int(i)%len(groups)],
		})
		im.Streams[im.NextStreamID] = &StreamObjects{Stream: im.NextStreamID}
		im.NextStreamID++
	}
}

// collidingTopic returns the name of an existing topic that collides with
// name (see topicNamesCollide), or "".
func (im *Image) collidingTopic(name string) string {
	for other := range im.Topics {
		if topicNamesCollide(name, other) {
			return other
		}
	}
	return ""
}

func (im *Image) applyDeleteTopic(c DeleteTopicCmd, index uint64) (*Image, any) {
	t, ok := im.Topics[c.Name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, c.Name)
	}
	n := im.next(index)
	n.withTopics()
	delete(n.Topics, t.Name)
	delete(n.TopicsByID, t.ID)
	n.dropStreams(t, deleteAfter(c.NowMs, c.GraceMs))
	n.dropTopicOffsets(t.Name)
	return n, t
}

func (im *Image) applyCreatePartitions(c CreatePartitionsCmd, index uint64) (*Image, any) {
	old, ok := im.Topics[c.Name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, c.Name)
	}
	have := int32(len(old.Partitions))
	if c.Total <= have {
		return nil, fmt.Errorf("%w: topic %s has %d partitions, cannot change to %d", ErrInvalidPartitions, c.Name, have, c.Total)
	}
	if im.NextStreamID > math.MaxUint64-uint64(c.Total-have) {
		return nil, fmt.Errorf("%w: stream ids exhausted", ErrInvalidPartitions)
	}
	groups := c.WALGroups
	if len(groups) == 0 {
		groups = old.walGroups()
	}
	t := old.clone()
	n := im.next(index)
	n.withStreams()
	n.addPartitions(t, c.Total, groups)
	n.withTopics()
	n.putTopic(t)
	return n, t
}

// walGroups lists the WAL groups of t's partitions in order of first use
// ({0} for a topic without partitions).
func (t *Topic) walGroups() []uint32 {
	var groups []uint32
	for _, p := range t.Partitions {
		if !slices.Contains(groups, p.WALGroup) {
			groups = append(groups, p.WALGroup)
		}
	}
	if len(groups) == 0 {
		groups = []uint32{0}
	}
	return groups
}

func (im *Image) applyAlterTopicConfigs(c AlterTopicConfigsCmd, index uint64) (*Image, any) {
	old, ok := im.Topics[c.Name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, c.Name)
	}
	t := old.clone()
	for _, k := range c.Delete {
		delete(t.Configs, k)
	}
	maps.Copy(t.Configs, c.Set)
	if maps.Equal(t.Configs, old.Configs) {
		return nil, nil
	}
	n := im.next(index)
	n.withTopics()
	n.putTopic(t)
	return n, nil
}

func (im *Image) applyAllocateProducerIDs(c AllocateProducerIDsCmd, index uint64) (*Image, any) {
	first := im.NextProducerID
	if first > math.MaxInt64-c.N {
		return nil, fmt.Errorf("%w: producer ids exhausted", ErrInvalidRequest)
	}
	n := im.next(index)
	n.NextProducerID = first + c.N
	return n, first
}
