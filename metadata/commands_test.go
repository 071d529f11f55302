package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

var testID = TopicID{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01}

// sampleCommands holds one valid command of every type.
func sampleCommands() []Command {
	return []Command{
		InitClusterCmd{ClusterID: "MkU3OEVBNTcwNTJENDM2Qk"},
		RegisterBrokerCmd{Broker: Broker{ID: 1, Host: "127.0.0.1", Port: 9092, Rack: "r1", ClusterAddr: "127.0.0.1:9093"}},
		CreateTopicCmd{Name: "orders", ID: testID, Partitions: 3, ReplicationFactor: 1,
			Configs: map[string]string{"retention.ms": "1000"}, WALGroups: []uint32{0, 1}},
		DeleteTopicCmd{Name: "orders"},
		CreatePartitionsCmd{Name: "orders", Total: 5},
		CreatePartitionsCmd{Name: "orders", Total: 6, WALGroups: []uint32{2}},
		AlterTopicConfigsCmd{Name: "orders", Set: map[string]string{"cleanup.policy": "compact"}, Delete: []string{"retention.ms"}},
		AllocateProducerIDsCmd{N: 1000},
		DeleteTopicCmd{Name: "orders", NowMs: 1_700_000_000_000, GraceMs: 300_000},
		CommitObjectCmd{Object: Object{Key: "o/1", Size: 300, Kind: KindStreamSet, CreatedMs: 5, Ranges: []ObjectRange{
			{Stream: 1, StartOffset: 10, EndOffset: 20, Position: 0, Size: 100},
			{Stream: 2, StartOffset: 0, EndOffset: 5, Position: 100, Size: 200},
		}}, NowMs: 1000, GraceMs: 300_000},
		CompactObjectsCmd{Inputs: []string{"o/base"}, Outputs: []Object{{Key: "o/c1", Size: 50, Kind: KindStream, CreatedMs: 6,
			Ranges: []ObjectRange{{Stream: 1, StartOffset: 0, EndOffset: 10, Position: 0, Size: 50}}}}, NowMs: 2000, GraceMs: 60_000},
		TrimStreamCmd{Stream: 1, NewStart: 5, NowMs: 3000, GraceMs: 1},
		ObjectsDeletedCmd{Keys: []string{"o/old", "o/unknown"}},
		CommitOffsetsCmd{Group: "g2", Offsets: []OffsetCommit{
			{TopicPartition{"orders", 0}, CommittedOffset{Offset: 7, LeaderEpoch: 2, Metadata: "m", CommitMs: 1000, ExpireMs: 9000}},
			{TopicPartition{"orders", 1}, CommittedOffset{Offset: 0, LeaderEpoch: -1, CommitMs: 1000}},
		}},
		DeleteGroupOffsetsCmd{Group: "g", Partitions: []TopicPartition{{"orders", 1}, {"other", 0}}},
		DeleteGroupOffsetsCmd{Group: "g", All: true},
		ExpireGroupOffsetsCmd{Group: "g", NowMs: 5000, RetentionMs: 1000},
		RequestCmd{ID: "c2VlZA", Cmd: AllocateProducerIDsCmd{N: 5}},
		InitLayoutCmd{Members: []Member{{1, "h1:9093"}, {2, "h2:9093"}}, Groups: [][]int32{{1, 2}, {2, 1}}},
		AddMemberCmd{Member: Member{3, "h3:9093"}, Replicas: 3},
		RemoveMemberCmd{ID: 2},
		SetWALLeaderCmd{Group: 1, Leader: 2, Epoch: 7},
		ReassignPartitionCmd{Topic: "orders", Partition: 0, Target: 2},
		CancelReassignmentCmd{Topic: "orders", Partition: 0},
		FinishReassignmentCmd{Topic: "orders", Partition: 0, Stream: 1, Move: 40},
		AlterUserScramCmd{User: "alice", Set: []ScramCredential{testCred(ScramSHA512, 2, 8192)}},
		AlterClientQuotasCmd{Entries: []QuotaAlteration{
			setQuota(aliceApp, map[string]float64{QuotaProducerByteRate: 1 << 20}),
			{Entity: QuotaEntity{User: QuotaDefault}, Remove: []string{QuotaConsumerByteRate}},
		}},
		CreateACLsCmd{ACLs: []ACLBinding{allowTopic(ACLPatternPrefixed, "ord", "User:b", ACLOpWrite)}},
		DeleteACLsCmd{Filters: []ACLFilter{
			{ResourceType: ACLResourceTopic, PatternType: ACLPatternAny, Operation: ACLOpRead, Permission: ACLPermissionAny},
		}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("encode %s: %v", c.Type(), err)
		}
		if CommandType(b[0]) != c.Type() {
			t.Errorf("%s: type byte %d", c.Type(), b[0])
		}
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("decode %s: %v", c.Type(), err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s: round trip gave %#v, want %#v", c.Type(), got, c)
		}
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrInvalidCommand},
		{"unknown type", []byte{99, '{', '}'}, ErrInvalidCommand},
		{"type zero", []byte{0}, ErrInvalidCommand},
		{"no body", []byte{byte(CmdDeleteTopic)}, ErrInvalidCommand},
		{"not json", append([]byte{byte(CmdDeleteTopic)}, "name=x"...), ErrInvalidCommand},
		{"unknown field", append([]byte{byte(CmdDeleteTopic)}, `{"name":"x","extra":1}`...), ErrInvalidCommand},
		{"trailing data", append([]byte{byte(CmdDeleteTopic)}, `{"name":"x"}{}`...), ErrInvalidCommand},
		{"trailing brace", append([]byte{byte(CmdDeleteTopic)}, `{"name":"x"}}`...), ErrInvalidCommand},
		{"empty name", append([]byte{byte(CmdDeleteTopic)}, `{"name":""}`...), ErrInvalidTopicName},
		{"zero topic id", append([]byte{byte(CmdCreateTopic)},
			`{"name":"x","id":"AAAAAAAAAAAAAAAAAAAAAA","partitions":1,"replication_factor":1,"wal_groups":[0]}`...), ErrInvalidCommand},
		{"short topic id", append([]byte{byte(CmdCreateTopic)},
			`{"name":"x","id":"AAAA","partitions":1,"replication_factor":1,"wal_groups":[0]}`...), ErrInvalidCommand},
		{"no wal groups", append([]byte{byte(CmdCreateTopic)},
			`{"name":"x","id":"ESIzRFVmR4iZqrvM3e7_AQ","partitions":1,"replication_factor":1}`...), ErrInvalidCommand},
		{"zero partitions", append([]byte{byte(CmdCreateTopic)},
			`{"name":"x","id":"ESIzRFVmR4iZqrvM3e7_AQ","partitions":0,"replication_factor":1,"wal_groups":[0]}`...), ErrInvalidPartitions},
		{"huge partitions", append([]byte{byte(CmdCreatePartitions)}, `{"name":"x","total":2000000000}`...), ErrInvalidPartitions},
		{"zero rf", append([]byte{byte(CmdCreateTopic)},
			`{"name":"x","id":"ESIzRFVmR4iZqrvM3e7_AQ","partitions":1,"replication_factor":0,"wal_groups":[0]}`...), ErrInvalidReplicationFactor},
		{"negative pid block", append([]byte{byte(CmdAllocateProducerIDs)}, `{"n":-5}`...), ErrInvalidRequest},
		{"broker without host", append([]byte{byte(CmdRegisterBroker)}, `{"broker":{"ID":1,"Port":9092}}`...), ErrInvalidRequest},
		{"empty cluster id", append([]byte{byte(CmdInitCluster)}, `{"cluster_id":""}`...), ErrInvalidCommand},
		{"request without id", append([]byte{byte(CmdRequest)}, `{"id":"","type":7,"cmd":{"n":1}}`...), ErrInvalidCommand},
		{"nested request", append([]byte{byte(CmdRequest)}, `{"id":"a","type":15,"cmd":{"id":"b","type":7,"cmd":{"n":1}}}`...), ErrInvalidCommand},
		{"request of unknown type", append([]byte{byte(CmdRequest)}, `{"id":"a","type":99,"cmd":{}}`...), ErrInvalidCommand},
		{"request with bad command", append([]byte{byte(CmdRequest)}, `{"id":"a","type":7,"cmd":{"n":0}}`...), ErrInvalidRequest},
		{"request with extra field", append([]byte{byte(CmdRequest)}, `{"id":"a","type":7,"cmd":{"n":1},"x":1}`...), ErrInvalidCommand},
	} {
		if _, err := DecodeCommand(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeCommand = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestTopicIDText(t *testing.T) {
	s := testID.String()
	if len(s) != 22 {
		t.Fatalf("String() = %q, want 22 characters", s)
	}
	var back TopicID
	if err := back.UnmarshalText([]byte(s)); err != nil || back != testID {
		t.Fatalf("UnmarshalText(%q) = %v, %v", s, back, err)
	}
	if err := back.UnmarshalText([]byte("!!!!!!!!!!!!!!!!!!!!!!")); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("bad base64: %v", err)
	}
}

// FuzzDecodeCommand feeds arbitrary bytes to the decoder and every command it
// accepts to the FSM: neither may panic, an accepted command must re-encode
// stably, and a rejected apply must leave the image unchanged.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		b, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{byte(CmdCreateTopic), '{', '}'})
	f.Add(append([]byte{byte(CmdAllocateProducerIDs)}, `{"n":9223372036854775807}`...))
	f.Add(append([]byte{byte(CmdTrimStream)}, `{"stream":1,"new_start":9223372036854775807,"now_ms":9223372036854775807,"grace_ms":9223372036854775807}`...))
	f.Add(append([]byte{byte(CmdCompactObjects)}, `{"inputs":["o/base"],"now_ms":0,"grace_ms":0}`...))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with command %#v", err, c)
			}
			return
		}
		again, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", c, err)
		}
		// The encoding is canonical: decoding and encoding again is stable
		// (nil and empty collections encode alike, so compare bytes).
		c2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("re-decode %#v: %v", c, err)
		}
		if third, _ := EncodeCommand(c2); !bytes.Equal(third, again) {
			t.Fatalf("encoding not stable: %q then %q", again, third)
		}
		f := newFSM(discardLogger())
		f.publish(fuzzBaseImage(t))
		before := f.current()
		resp := f.Apply(&raft.Log{Index: 100, Type: raft.LogCommand, Data: data})
		if _, failed := resp.(error); failed && f.current() != before {
			t.Fatalf("failed %s changed the image", c.Type())
		}
		if err := f.current().checkObjectIndex(); err != nil {
			t.Fatalf("after %s: %v", c.Type(), err)
		}
	})
}

// fuzzBaseImage is an image with a topic and a broker for fuzzed commands to
// act on.
func fuzzBaseImage(t *testing.T) *Image {
	im := emptyImage()
	for i, c := range []Command{
		InitClusterCmd{ClusterID: "c"},
		RegisterBrokerCmd{Broker: Broker{ID: 1, Host: "h", Port: 1}},
		CreateTopicCmd{Name: "orders", ID: testID, Partitions: 2, ReplicationFactor: 1, WALGroups: []uint32{0}},
		CommitObjectCmd{Object: Object{Key: "o/base", Size: 10, Kind: KindStreamSet,
			Ranges: []ObjectRange{{Stream: 1, StartOffset: 0, EndOffset: 10, Size: 10}}}},
		CommitObjectCmd{Object: Object{Key: "o/old", Size: 10, Kind: KindStreamSet, // no such stream: pending at once
			Ranges: []ObjectRange{{Stream: 99, StartOffset: 0, EndOffset: 10, Size: 10}}}},
		CommitOffsetsCmd{Group: "g", Offsets: []OffsetCommit{
			{TopicPartition{"orders", 0}, CommittedOffset{Offset: 3, CommitMs: 1000}},
			{TopicPartition{"orders", 1}, CommittedOffset{Offset: 4, CommitMs: 1000}},
		}},
	} {
		next, resp := im.apply(c, uint64(i+1))
		if err, ok := resp.(error); ok {
			t.Fatalf("seed %s: %v", c.Type(), err)
		}
		im = next
	}
	return im
}

// TestSampleObjectCommandsApply keeps the fuzz seeds of the object and
// offset commands meaningful: each one changes the fuzz base image.
func TestSampleObjectCommandsApply(t *testing.T) {
	for _, c := range sampleCommands() {
		if c.Type() < CmdCommitObject || c.Type() > CmdRequest {
			continue // the object and offset commands (8-15) act on the fuzz base
		}
		next, err := applyCmd(t, fuzzBaseImage(t), c)
		if err != nil || next == nil {
			t.Errorf("%s on the fuzz base: %v, changed %v", c.Type(), err, next != nil)
		}
	}
}
