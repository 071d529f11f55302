package metadata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// CommandType tags a command in the Raft log.
type CommandType uint8

// Command types. The values are part of the log format: never renumber them.
const (
	CmdInitCluster         CommandType = 1
	CmdRegisterBroker      CommandType = 2
	CmdCreateTopic         CommandType = 3
	CmdDeleteTopic         CommandType = 4
	CmdCreatePartitions    CommandType = 5
	CmdAlterTopicConfigs   CommandType = 6
	CmdAllocateProducerIDs CommandType = 7
	CmdCommitObject        CommandType = 8
	CmdCompactObjects      CommandType = 9
	CmdTrimStream          CommandType = 10
	CmdObjectsDeleted      CommandType = 11
	CmdCommitOffsets       CommandType = 12
	CmdDeleteGroupOffsets  CommandType = 13
	CmdExpireGroupOffsets  CommandType = 14
	CmdRequest             CommandType = 15 // a RequestCmd: a command with its proposer's request id
	CmdInitLayout          CommandType = 16
	CmdAddMember           CommandType = 17
	CmdRemoveMember        CommandType = 18
	CmdSetWALLeader        CommandType = 19
	CmdReassignPartition   CommandType = 20
	CmdCancelReassignment  CommandType = 21
	CmdSwitchPartition     CommandType = 22
	CmdFinishReassignment  CommandType = 23
	CmdAlterUserScram      CommandType = 24
	CmdAlterClientQuotas   CommandType = 25
	CmdCreateACLs          CommandType = 26
	CmdDeleteACLs          CommandType = 27
)

// String names the command type.
func (t CommandType) String() string {
	switch t {
	case CmdInitCluster:
		return "InitCluster"
	case CmdRegisterBroker:
		return "RegisterBroker"
	case CmdCreateTopic:
		return "CreateTopic"
	case CmdDeleteTopic:
		return "DeleteTopic"
	case CmdCreatePartitions:
		return "CreatePartitions"
	case CmdAlterTopicConfigs:
		return "AlterTopicConfigs"
	case CmdAllocateProducerIDs:
		return "AllocateProducerIDs"
	case CmdCommitObject:
		return "CommitObject"
	case CmdCompactObjects:
		return "CompactObjects"
	case CmdTrimStream:
		return "TrimStream"
	case CmdObjectsDeleted:
		return "ObjectsDeleted"
	case CmdCommitOffsets:
		return "CommitOffsets"
	case CmdDeleteGroupOffsets:
		return "DeleteGroupOffsets"
	case CmdExpireGroupOffsets:
		return "ExpireGroupOffsets"
	case CmdRequest:
		return "Request"
	case CmdInitLayout:
		return "InitLayout"
	case CmdAddMember:
		return "AddMember"
	case CmdRemoveMember:
		return "RemoveMember"
	case CmdSetWALLeader:
		return "SetWALLeader"
	case CmdReassignPartition:
		return "ReassignPartition"
	case CmdCancelReassignment:
		return "CancelReassignment"
	case CmdSwitchPartition:
		return "SwitchPartition"
	case CmdFinishReassignment:
		return "FinishReassignment"
	case CmdAlterUserScram:
		return "AlterUserScram"
	case CmdAlterClientQuotas:
		return "AlterClientQuotas"
	case CmdCreateACLs:
		return "CreateACLs"
	case CmdDeleteACLs:
		return "DeleteACLs"
	}
	return fmt.Sprintf("CommandType(%d)", uint8(t))
}

// MaxPartitions is the largest partition count a topic may have.
const MaxPartitions = 100_000

// maxProducerIDBlock is the largest producer id block one command allocates.
const maxProducerIDBlock = 1 << 24

// Command is one typed change to the metadata image. Its encoding is the type
// byte followed by the JSON form of the struct.
type Command interface {
	// Type is the command's log tag.
	Type() CommandType
	// check verifies the command's own fields, before any image is consulted.
	check() error
}

// InitClusterCmd sets the cluster id of a fresh cluster; on an initialised
// cluster it changes nothing.
type InitClusterCmd struct {
	ClusterID string `json:"cluster_id"`
}

// RegisterBrokerCmd adds or replaces a broker registration.
type RegisterBrokerCmd struct {
	Broker Broker `json:"broker"`
}

// CreateTopicCmd creates a topic; the proposer chose its id.
type CreateTopicCmd struct {
	Name              string            `json:"name"`
	ID                TopicID           `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
	WALGroups         []uint32          `json:"wal_groups"`
}

// DeleteTopicCmd deletes a topic and its partitions' streams. Objects left
// with no live range wait for deletion until NowMs + GraceMs (Unix ms; both
// 0 in entries written before objects existed).
type DeleteTopicCmd struct {
	Name    string `json:"name"`
	NowMs   int64  `json:"now_ms,omitempty"`
	GraceMs int64  `json:"grace_ms,omitempty"`
}

// CreatePartitionsCmd grows a topic to Total partitions. The new partitions
// are spread over WALGroups by partition index; empty means the groups the
// topic's partitions use, in order of first use.
type CreatePartitionsCmd struct {
	Name      string   `json:"name"`
	Total     int32    `json:"total"`
	WALGroups []uint32 `json:"wal_groups,omitempty"`
}

// AlterTopicConfigsCmd sets and removes explicit topic configs.
type AlterTopicConfigsCmd struct {
	Name   string            `json:"name"`
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
}

// AllocateProducerIDsCmd reserves the next N producer ids.
type AllocateProducerIDsCmd struct {
	N int64 `json:"n"`
}

// Type implements Command.
func (InitClusterCmd) Type() CommandType { return CmdInitCluster }

// Type implements Command.
func (RegisterBrokerCmd) Type() CommandType { return CmdRegisterBroker }

// Type implements Command.
func (CreateTopicCmd) Type() CommandType { return CmdCreateTopic }

// Type implements Command.
func (DeleteTopicCmd) Type() CommandType { return CmdDeleteTopic }

// Type implements Command.
func (CreatePartitionsCmd) Type() CommandType { return CmdCreatePartitions }

// Type implements Command.
func (AlterTopicConfigsCmd) Type() CommandType { return CmdAlterTopicConfigs }

// Type implements Command.
func (AllocateProducerIDsCmd) Type() CommandType { return CmdAllocateProducerIDs }

func (c InitClusterCmd) check() error {
	if c.ClusterID == "" {
		return fmt.Errorf("%w: empty cluster id", ErrInvalidCommand)
	}
	return nil
}

func (c RegisterBrokerCmd) check() error { return checkBroker(c.Broker) }

func checkBroker(b Broker) error {
	switch {
	case b.ID < 0:
		return fmt.Errorf("%w: broker id %d is negative", ErrInvalidRequest, b.ID)
	case b.Host == "":
		return fmt.Errorf("%w: broker %d has no host", ErrInvalidRequest, b.ID)
	case b.Port <= 0 || b.Port > 65535:
		return fmt.Errorf("%w: broker %d port %d out of range", ErrInvalidRequest, b.ID, b.Port)
	}
	return checkEndpoints(b)
}

func (c CreateTopicCmd) check() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopicName)
	case c.ID.IsZero():
		return fmt.Errorf("%w: topic %s has a zero id", ErrInvalidCommand, c.Name)
	case c.Partitions < 1 || c.Partitions > MaxPartitions:
		return fmt.Errorf("%w: %d, must be in [1, %d]", ErrInvalidPartitions, c.Partitions, MaxPartitions)
	case c.ReplicationFactor < 1:
		return fmt.Errorf("%w: %d", ErrInvalidReplicationFactor, c.ReplicationFactor)
	case len(c.WALGroups) == 0:
		return fmt.Errorf("%w: topic %s has no WAL groups", ErrInvalidCommand, c.Name)
	}
	return nil
}

func (c DeleteTopicCmd) check() error {
	if c.Name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidTopicName)
	}
	return checkTime(c.NowMs, c.GraceMs)
}

func (c CreatePartitionsCmd) check() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopicName)
	case c.Total < 1 || c.Total > MaxPartitions:
		return fmt.Errorf("%w: %d, must be in [1, %d]", ErrInvalidPartitions, c.Total, MaxPartitions)
	}
	return nil
}

func (c AlterTopicConfigsCmd) check() error {
	if c.Name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidTopicName)
	}
	return nil
}

func (c AllocateProducerIDsCmd) check() error {
	if c.N < 1 || c.N > maxProducerIDBlock {
		return fmt.Errorf("%w: producer id block of %d, must be in [1, %d]", ErrInvalidRequest, c.N, maxProducerIDBlock)
	}
	return nil
}

// EncodeCommand encodes c for the Raft log: the type byte, then JSON.
func EncodeCommand(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode %s: %w", c.Type(), err)
	}
	return append([]byte{byte(c.Type())}, body...), nil
}

// DecodeCommand decodes and checks a command encoded by EncodeCommand. Any
// malformed input returns an error wrapping ErrInvalidCommand (or the
// sentinel of the field that is out of range); it never panics.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty entry", ErrInvalidCommand)
	}
	var (
		c   Command
		err error
	)
	body := b[1:]
	switch t := CommandType(b[0]); t {
	case CmdInitCluster:
		c, err = decodeInto[InitClusterCmd](body)
	case CmdRegisterBroker:
		c, err = decodeInto[RegisterBrokerCmd](body)
	case CmdCreateTopic:
		c, err = decodeInto[CreateTopicCmd](body)
	case CmdDeleteTopic:
		c, err = decodeInto[DeleteTopicCmd](body)
	case CmdCreatePartitions:
		c, err = decodeInto[CreatePartitionsCmd](body)
	case CmdAlterTopicConfigs:
		c, err = decodeInto[AlterTopicConfigsCmd](body)
	case CmdAllocateProducerIDs:
		c, err = decodeInto[AllocateProducerIDsCmd](body)
	case CmdCommitObject:
		c, err = decodeInto[CommitObjectCmd](body)
	case CmdCompactObjects:
		c, err = decodeInto[CompactObjectsCmd](body)
	case CmdTrimStream:
		c, err = decodeInto[TrimStreamCmd](body)
	case CmdObjectsDeleted:
		c, err = decodeInto[ObjectsDeletedCmd](body)
	case CmdCommitOffsets:
		c, err = decodeInto[CommitOffsetsCmd](body)
	case CmdDeleteGroupOffsets:
		c, err = decodeInto[DeleteGroupOffsetsCmd](body)
	case CmdExpireGroupOffsets:
		c, err = decodeInto[ExpireGroupOffsetsCmd](body)
	case CmdRequest:
		c, err = decodeInto[RequestCmd](body)
	case CmdInitLayout:
		c, err = decodeInto[InitLayoutCmd](body)
	case CmdAddMember:
		c, err = decodeInto[AddMemberCmd](body)
	case CmdRemoveMember:
		c, err = decodeInto[RemoveMemberCmd](body)
	case CmdSetWALLeader:
		c, err = decodeInto[SetWALLeaderCmd](body)
	case CmdReassignPartition:
		c, err = decodeInto[ReassignPartitionCmd](body)
	case CmdCancelReassignment:
		c, err = decodeInto[CancelReassignmentCmd](body)
	case CmdSwitchPartition:
		c, err = decodeInto[SwitchPartitionCmd](body)
	case CmdFinishReassignment:
		c, err = decodeInto[FinishReassignmentCmd](body)
	case CmdAlterUserScram:
		c, err = decodeInto[AlterUserScramCmd](body)
	case CmdAlterClientQuotas:
		c, err = decodeInto[AlterClientQuotasCmd](body)
	case CmdCreateACLs:
		c, err = decodeInto[CreateACLsCmd](body)
	case CmdDeleteACLs:
		c, err = decodeInto[DeleteACLsCmd](body)
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrInvalidCommand, b[0])
	}
	if err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeInto[T Command](body []byte) (Command, error) {
	var c T
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidCommand, c.Type(), err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: %s: trailing data", ErrInvalidCommand, c.Type())
	}
	return c, nil
}
