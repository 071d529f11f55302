package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// commitReq builds an OffsetCommit request of one topic.
func commitReq(version int16, group, topic string, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = version, group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < 100; p++ { // in partition order
		off, ok := offsets[p]
		if !ok {
			continue
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, off, 4
		rp.Metadata = kmsg.StringPtr(fmt.Sprintf("m%d", p))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// commitCodes returns the error codes of a commit response by "topic/partition".
func commitCodes(resp *kmsg.OffsetCommitResponse) map[string]int16 {
	out := map[string]int16{}
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			out[fmt.Sprintf("%s/%d", st.Topic, sp.Partition)] = sp.ErrorCode
		}
	}
	return out
}

// fetchV7 fetches a group's offsets of topic (nil partitions: the whole
// group) with OffsetFetch v7 and returns "partition=offset/epoch/metadata".
func fetchV7(t *testing.T, c *rawConn, group, topic string, partitions []int32) []string {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 7, group
	if partitions != nil {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, partitions
		req.Topics = append(req.Topics, rt)
	}
	resp := c.do(req).(*kmsg.OffsetFetchResponse)
	wantCode(t, "offset fetch", resp.ErrorCode, nil)
	var out []string
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			wantCode(t, "offset fetch partition", sp.ErrorCode, nil)
			out = append(out, fmt.Sprintf("%s/%d=%d/%d/%s", st.Topic, sp.Partition, sp.Offset, sp.LeaderEpoch, deref(sp.Metadata)))
		}
	}
	return out
}

func TestOffsetCommitFetchRaw(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	name := uniqueNames()
	topic, group := name("offsets"), name("group")
	createTopic(t, b, topic, 3)
	c := dialRaw(t, b)

	// Unknown partition, oversized metadata and an unknown topic fail alone.
	req := commitReq(8, group, topic, map[int32]int64{0: 10, 1: 11, 7: 1})
	req.Topics[0].Partitions[1].Metadata = kmsg.StringPtr(strings.Repeat("x", 4097))
	bad := kmsg.NewOffsetCommitRequestTopic()
	bad.Topic = name("missing")
	bad.Partitions = append(bad.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	req.Topics = append(req.Topics, bad)
	codes := commitCodes(c.do(req).(*kmsg.OffsetCommitResponse))
	want := map[string]int16{
		topic + "/0": 0, topic + "/1": kerr.OffsetMetadataTooLarge.Code, topic + "/7": kerr.UnknownTopicOrPartition.Code,
		bad.Topic + "/0": kerr.UnknownTopicOrPartition.Code,
	}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("commit codes %v, want %v", codes, want)
	}
	if got := fetchV7(t, c, group, "", nil); fmt.Sprint(got) != fmt.Sprintf("[%s/0=10/4/m0]", topic) {
		t.Fatalf("whole group after the first commit: %v", got)
	}

	// Overwrite, and v2 with a retention time; fetch names partitions
	// without a commit (offset -1, no error).
	commitCodes(c.do(commitReq(2, group, topic, map[int32]int64{0: 20, 2: 22})).(*kmsg.OffsetCommitResponse))
	got := fetchV7(t, c, group, topic, []int32{2, 1, 0})
	wantOffsets := []string{topic + "/2=22/-1/m2", topic + "/1=-1/-1/", topic + "/0=20/-1/m0"}
	if fmt.Sprint(got) != fmt.Sprint(wantOffsets) {
		t.Fatalf("fetch %v, want %v", got, wantOffsets)
	}
	r2 := commitReq(3, group, topic, map[int32]int64{1: 5})
	r2.RetentionTimeMillis = 60_000
	if codes := commitCodes(c.do(r2).(*kmsg.OffsetCommitResponse)); codes[topic+"/1"] != 0 {
		t.Fatalf("v3 commit: %v", codes)
	}
	if o := b.meta.Image().GroupOffsets(group); o == nil || o[tpOf(topic, 1)].ExpireMs < time.Now().UnixMilli()+50_000 ||
		o[tpOf(topic, 0)].ExpireMs != 0 || o[tpOf(topic, 0)].CommitMs == 0 {
		t.Fatalf("stored offsets %+v", o)
	}

	// Empty group id.
	codes = commitCodes(c.do(commitReq(8, "", topic, map[int32]int64{0: 1})).(*kmsg.OffsetCommitResponse))
	if codes[topic+"/0"] != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group: %v", codes)
	}
}

func tpOf(topic string, p int32) metadata.TopicPartition {
	return metadata.TopicPartition{Topic: topic, Partition: p}
}

func TestOffsetFetchMultiGroupAndTopicIDs(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	name := uniqueNames()
	topic, g1, g2 := name("multi"), name("g1"), name("g2")
	createTopic(t, b, topic, 2)
	c := dialRaw(t, b)
	for _, r := range []*kmsg.OffsetCommitRequest{
		commitReq(9, g1, topic, map[int32]int64{0: 1, 1: 2}),
		commitReq(9, g2, topic, map[int32]int64{1: 3}),
	} {
		for k, code := range commitCodes(c.do(r).(*kmsg.OffsetCommitResponse)) {
			wantCode(t, k, code, nil)
		}
	}
	id := b.meta.Image().Topics[topic].ID

	// v8: g1 whole, g2 one partition, an unknown group.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.RequireStable = 8, true
	for _, g := range []string{g1, g2, name("nobody")} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		if g != g1 {
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic, rt.Partitions = topic, []int32{1, 0}
			rg.Topics = append(rg.Topics, rt)
		}
		req.Groups = append(req.Groups, rg)
	}
	resp := c.do(req).(*kmsg.OffsetFetchResponse)
	var got []string
	for _, sg := range resp.Groups {
		wantCode(t, "group "+sg.Group, sg.ErrorCode, nil)
		for _, st := range sg.Topics {
			for _, sp := range st.Partitions {
				wantCode(t, "partition", sp.ErrorCode, nil)
				got = append(got, fmt.Sprintf("%s:%d=%d", strings.TrimSuffix(sg.Group, name("")), sp.Partition, sp.Offset))
			}
		}
	}
	want := []string{"g1:0=1", "g1:1=2", "g2:1=3", "g2:0=-1", "nobody:1=-1", "nobody:0=-1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("v8 fetch %v, want %v", got, want)
	}

	// v10: topics by id, in commits and fetches; an unknown id fails.
	cr := commitReq(10, g2, "", map[int32]int64{0: 42})
	cr.Topics[0].TopicID = id
	unknown := kmsg.NewOffsetCommitRequestTopic()
	unknown.TopicID = [16]byte{9, 9}
	unknown.Partitions = append(unknown.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	cr.Topics = append(cr.Topics, unknown)
	cresp := c.do(cr).(*kmsg.OffsetCommitResponse)
	if cresp.Topics[0].TopicID != id || cresp.Topics[0].Partitions[0].ErrorCode != 0 ||
		cresp.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("v10 commit: %+v", cresp.Topics)
	}
	fr := kmsg.NewPtrOffsetFetchRequest()
	fr.Version = 10
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = g2
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.TopicID, rt.Partitions = id, []int32{0}
	rg.Topics = append(rg.Topics, rt)
	fr.Groups = append(fr.Groups, rg)
	fresp := c.do(fr).(*kmsg.OffsetFetchResponse)
	if st := fresp.Groups[0].Topics[0]; st.TopicID != id || st.Partitions[0].Offset != 42 {
		t.Fatalf("v10 fetch: %+v", st)
	}
}

func TestOffsetDeleteRaw(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	name := uniqueNames()
	topic, group := name("del"), name("group")
	createTopic(t, b, topic, 2)
	c := dialRaw(t, b)
	del := func(group string, topic string, partitions ...int32) *kmsg.OffsetDeleteResponse {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		for _, p := range partitions {
			rp := kmsg.NewOffsetDeleteRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return c.do(req).(*kmsg.OffsetDeleteResponse)
	}
	wantCode(t, "no such group", del(group, topic, 0).ErrorCode, kerr.GroupIDNotFound)
	wantCode(t, "empty group id", del("", topic, 0).ErrorCode, kerr.InvalidGroupID)
	commitCodes(c.do(commitReq(8, group, topic, map[int32]int64{0: 1, 1: 2})).(*kmsg.OffsetCommitResponse))
	resp := del(group, topic, 0, 5)
	wantCode(t, "delete", resp.ErrorCode, nil)
	wantCode(t, "partition 0", resp.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "partition 5", resp.Topics[0].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition)
	if got := fetchV7(t, c, group, "", nil); fmt.Sprint(got) != fmt.Sprintf("[%s/1=2/4/m1]", topic) {
		t.Fatalf("after delete: %v", got)
	}

	// Deleting the topic drops its offsets.
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.DeleteTopics(t.Context(), topic); err != nil {
		t.Fatal(err)
	}
	if o := b.meta.Image().GroupOffsets(group); o != nil {
		t.Fatalf("offsets after topic deletion: %v", o)
	}
}

func TestOffsetsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, func(cfg *Config) { cfg.DataDir = dir })
	createTopic(t, b, "keep", 2)
	c := dialRaw(t, b)
	commitCodes(c.do(commitReq(8, "durable", "keep", map[int32]int64{0: 100, 1: 200})).(*kmsg.OffsetCommitResponse))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startBroker(t, func(cfg *Config) { cfg.DataDir = dir })
	c = dialRaw(t, b)
	if got := fetchV7(t, c, "durable", "", nil); fmt.Sprint(got) != "[keep/0=100/4/m0 keep/1=200/4/m1]" {
		t.Fatalf("offsets after restart: %v", got)
	}
}

// needGroups skips a test that needs the group coordinator's APIs until
// the dispatch table serves them.
func needGroups(t *testing.T, keys ...int16) {
	t.Helper()
	for _, k := range keys {
		if apis[k] == nil {
			t.Skipf("%s is not served yet", kmsg.NameForKey(k))
		}
	}
}

func TestOffsetsKadmRoundTrip(t *testing.T) {
	t.Parallel()
	needGroups(t, 10) // FindCoordinator
	b := sharedBroker(t)
	name := uniqueNames()
	topic, group := name("kadm"), name("group")
	createTopic(t, b, topic, 3)
	adm := kadm.NewClient(newClient(t, b))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var offs kadm.Offsets
	for p := int32(0); p < 3; p++ {
		offs.Add(kadm.Offset{Topic: topic, Partition: p, At: int64(10 * (p + 1)), LeaderEpoch: -1, Metadata: "meta"})
	}
	resps, err := adm.CommitOffsets(ctx, group, offs)
	if err != nil || resps.Error() != nil {
		t.Fatalf("commit: %v / %v", err, resps.Error())
	}
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil || fetched.Error() != nil {
		t.Fatalf("fetch: %v / %v", err, fetched.Error())
	}
	for p := int32(0); p < 3; p++ {
		o, ok := fetched.Lookup(topic, p)
		if !ok || o.At != int64(10*(p+1)) || o.Metadata != "meta" {
			t.Fatalf("partition %d: %+v, %v", p, o, ok)
		}
	}
	del := kadm.TopicsSet{}
	del.Add(topic, 0, 1)
	dresp, err := adm.DeleteOffsets(ctx, group, del)
	if err != nil || dresp.Error() != nil {
		t.Fatalf("delete: %v / %v", err, dresp.Error())
	}
	fetched, err = adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fetched.Lookup(topic, 0); ok {
		t.Fatal("partition 0 still has an offset")
	}
	if o, ok := fetched.Lookup(topic, 2); !ok || o.At != 30 {
		t.Fatalf("partition 2 after delete: %+v, %v", o, ok)
	}
}

func TestOffsetsConsumerGroupAutocommit(t *testing.T) {
	t.Parallel()
	needGroups(t, 10, 11, 12, 13, 14) // FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup
	b := sharedBroker(t)
	name := uniqueNames()
	topic, group := name("autocommit"), name("group")
	createTopic(t, b, topic, 2)
	prod := newClient(t, b, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const n = 20
	for i := range n {
		r := &kgo.Record{Partition: int32(i % 2), Value: []byte{byte(i)}}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := newClient(t, b, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.AutoCommitInterval(100*time.Millisecond))
	for got := 0; got < n; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}

	// A member in the group: its generation is checked, and OffsetDelete refuses.
	member, gen := cons.GroupMetadata()
	c := dialRaw(t, b)
	stale := commitReq(8, group, topic, map[int32]int64{0: 1})
	stale.MemberID, stale.Generation = member, gen+1
	if code := commitCodes(c.do(stale).(*kmsg.OffsetCommitResponse))[topic+"/0"]; code != kerr.IllegalGeneration.Code {
		t.Errorf("stale generation: %v", kerr.ErrorForCode(code))
	}
	stale.MemberID, stale.Generation = "nobody", gen
	if code := commitCodes(c.do(stale).(*kmsg.OffsetCommitResponse))[topic+"/0"]; code != kerr.UnknownMemberID.Code {
		t.Errorf("unknown member: %v", kerr.ErrorForCode(code))
	}
	dreq := kmsg.NewPtrOffsetDeleteRequest()
	dreq.Group = group
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = topic
	dt.Partitions = append(dt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
	dreq.Topics = append(dreq.Topics, dt)
	dresp := c.do(dreq).(*kmsg.OffsetDeleteResponse)
	if dresp.ErrorCode != 0 || dresp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Errorf("offset delete of a consumed topic: %d / %+v", dresp.ErrorCode, dresp.Topics)
	}

	// kgo autocommits what an earlier poll returned once the next poll
	// begins: poll on while waiting for the commits.
	adm := kadm.NewClient(newClient(t, b))
	eventually(t, 10*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		cons.PollFetches(pctx)
		pcancel()
		fetched, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return err
		}
		for p := int32(0); p < 2; p++ {
			if o, ok := fetched.Lookup(topic, p); !ok || o.At != n/2 {
				return fmt.Errorf("partition %d: %+v, %v", p, o, ok)
			}
		}
		return nil
	})
}

func TestOffsetsExpire(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	name := uniqueNames()
	topic, group, retained := name("expire"), name("group"), name("retained")
	createTopic(t, b, topic, 2)
	c := dialRaw(t, b)
	commitCodes(c.do(commitReq(8, group, topic, map[int32]int64{0: 1, 1: 2})).(*kmsg.OffsetCommitResponse))
	short := commitReq(4, retained, topic, map[int32]int64{0: 3})
	short.RetentionTimeMillis = 1000
	commitCodes(c.do(short).(*kmsg.OffsetCommitResponse))

	now := time.Now()
	if _, err := b.expireOffsets(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	if len(b.meta.Image().GroupOffsets(group)) != 2 || len(b.meta.Image().GroupOffsets(retained)) != 1 {
		t.Fatal("offsets expired early")
	}
	if _, err := b.expireOffsets(t.Context(), now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if len(b.meta.Image().GroupOffsets(group)) != 2 || b.meta.Image().GroupOffsets(retained) != nil {
		t.Fatal("the explicit retention did not expire alone")
	}
	if _, err := b.expireOffsets(t.Context(), now.Add(offsetsRetention+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if b.meta.Image().GroupOffsets(group) != nil {
		t.Fatal("offsets of an empty group outlived the retention")
	}
	// The periodic task returns when its context ends.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b.runOffsetExpiry(ctx)
}
