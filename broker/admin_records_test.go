package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// admProduce produces n records to one partition, one at a time, with the
// client's default (idempotent) producer.
func admProduce(t *testing.T, cl *kgo.Client, topic string, partition int32, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v" + strconv.Itoa(i))}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatalf("produce to %s/%d: %v", topic, partition, err)
		}
	}
}

// manualClient is a client producing to the partition each record names.
func manualClient(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	return newClient(t, b, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
}

// startOffset is ListOffsets(earliest) of one partition through kadm.
func startOffset(t *testing.T, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	los, err := adm.ListStartOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	lo, ok := los.Lookup(topic, partition)
	if !ok || lo.Err != nil {
		t.Fatalf("start offset of %s/%d: %v", topic, partition, lo.Err)
	}
	return lo.Offset
}

// firstConsumed consumes partition from its start and returns the offset
// of the first record and how many records follow up to the end.
func firstConsumed(t *testing.T, b *Broker, topic string, partition int32, end int64) (first int64, n int) {
	t.Helper()
	cl := newClient(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	first = -1
	for {
		fs := cl.PollFetches(t.Context())
		if err := fs.Err(); err != nil {
			t.Fatalf("consume %s: %v", topic, err)
		}
		for _, r := range fs.Records() {
			if first < 0 {
				first = r.Offset
			}
			n++
			if r.Offset == end-1 {
				return first, n
			}
		}
	}
}

// deleteRecordsAt deletes records of one partition below offset.
func deleteRecordsAt(t *testing.T, adm *kadm.Client, topic string, partition int32, offset int64) kadm.DeleteRecordsResponse {
	t.Helper()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: partition, At: offset})
	drs, err := adm.DeleteRecords(t.Context(), os)
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	dr, ok := drs.Lookup(topic, partition)
	if !ok {
		t.Fatalf("delete records: no answer for %s/%d", topic, partition)
	}
	return dr
}

func TestCreatePartitions(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	name := uniqueNames()("grown")
	admCreateTopic(t, adm, ctx, name, 2)

	if rs, err := adm.ValidateCreatePartitions(ctx, 2, name); err != nil || rs[name].Err != nil {
		t.Fatalf("validate: %v / %v", err, rs[name].Err)
	}
	rs, err := adm.CreatePartitions(ctx, 2, name)
	if err != nil || rs[name].Err != nil {
		t.Fatalf("create partitions: %v / %v", err, rs[name].Err)
	}
	td, err := adm.ListTopics(ctx, name)
	if err != nil || len(td[name].Partitions) != 4 {
		t.Fatalf("after growing: %v, %d partitions", err, len(td[name].Partitions))
	}
	// The new partitions take writes and reads at once.
	admProduce(t, manualClient(t, b), name, 3, 3)
	if first, n := firstConsumed(t, b, name, 3, 3); first != 0 || n != 3 {
		t.Fatalf("partition 3: first %d, %d records", first, n)
	}

	for _, c := range []struct {
		what  string
		total int
		topic string
		want  *kerr.Error
	}{
		{"shrink", 3, name, kerr.InvalidPartitions},
		{"same count", 4, name, kerr.InvalidPartitions},
		{"unknown topic", 5, "no-such-topic-grown", kerr.UnknownTopicOrPartition},
	} {
		rs, err := adm.UpdatePartitions(ctx, c.total, c.topic)
		if err != nil || !errors.Is(rs[c.topic].Err, c.want) {
			t.Fatalf("%s: %v / %v, want %v", c.what, err, rs[c.topic].Err, c.want)
		}
	}

	// Raw: manual assignments are checked; duplicates and validate-only.
	c := dialRaw(t, b)
	topic := func(name string, count int32, assign ...[]int32) kmsg.CreatePartitionsRequestTopic {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, count
		for _, replicas := range assign {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = replicas
			rt.Assignment = append(rt.Assignment, a)
		}
		return rt
	}
	for _, c2 := range []struct {
		what string
		rt   kmsg.CreatePartitionsRequestTopic
		want *kerr.Error
	}{
		{"too few assignments", topic(name, 6, []int32{1}), kerr.InvalidReplicaAssignment},
		{"unknown broker", topic(name, 5, []int32{9}), kerr.InvalidReplicaAssignment},
		{"too many replicas", topic(name, 5, []int32{1, 1}), kerr.InvalidReplicaAssignment},
		{"valid assignment", topic(name, 5, []int32{1}), nil},
	} {
		for v := int16(0); v <= 3; v++ {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.Version, req.ValidateOnly = v, true
			req.Topics = []kmsg.CreatePartitionsRequestTopic{c2.rt}
			resp := c.do(req).(*kmsg.CreatePartitionsResponse)
			wantCode(t, c2.what+" v"+strconv.Itoa(int(v)), resp.Topics[0].ErrorCode, c2.want)
		}
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Topics = []kmsg.CreatePartitionsRequestTopic{topic(name, 5), topic(name, 6)}
	resp := c.do(req).(*kmsg.CreatePartitionsResponse)
	wantCode(t, "duplicate topic", resp.Topics[0].ErrorCode, kerr.InvalidRequest)
	wantCode(t, "duplicate topic", resp.Topics[1].ErrorCode, kerr.InvalidRequest)
	if td, _ := adm.ListTopics(ctx, name); len(td[name].Partitions) != 4 {
		t.Fatalf("validate-only or refused requests changed the count to %d", len(td[name].Partitions))
	}
}

func TestDeleteRecords(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	names := uniqueNames()
	name, compacted := names("trimmed"), names("trimmed-compacted")
	admCreateTopic(t, adm, ctx, name, 2)
	admCreateTopic(t, adm, ctx, compacted, 1, "cleanup.policy", "compact")
	cl := manualClient(t, b)
	admProduce(t, cl, name, 0, 10)
	admProduce(t, cl, name, 1, 3)

	if dr := deleteRecordsAt(t, adm, name, 0, 4); dr.Err != nil || dr.LowWatermark != 4 {
		t.Fatalf("delete below 4: %v, low watermark %d", dr.Err, dr.LowWatermark)
	}
	if got := startOffset(t, adm, name, 0); got != 4 {
		t.Fatalf("earliest offset %d after deleting below 4", got)
	}
	if first, n := firstConsumed(t, b, name, 0, 10); first != 4 || n != 6 {
		t.Fatalf("a consumer from the start begins at %d with %d records, want 4 and 6", first, n)
	}
	// The WAL dropped what lies below: a fetch there is out of range.
	c := dialRaw(t, b)
	resp := c.do(fetchRequest(name, 0, 2, 0, 0)).(*kmsg.FetchResponse)
	wantCode(t, "fetch below the log start", resp.Topics[0].Partitions[0].ErrorCode, kerr.OffsetOutOfRange)
	if dr := deleteRecordsAt(t, adm, name, 0, 2); dr.Err != nil || dr.LowWatermark != 4 {
		t.Fatalf("delete below 2 (already gone): %v, low watermark %d", dr.Err, dr.LowWatermark)
	}
	for _, c := range []struct {
		what   string
		topic  string
		part   int32
		offset int64
		want   *kerr.Error
	}{
		{"beyond the high watermark", name, 0, 11, kerr.OffsetOutOfRange},
		{"negative", name, 0, -7, kerr.OffsetOutOfRange},
		{"compacted topic", compacted, 0, 0, kerr.PolicyViolation},
	} {
		if dr := deleteRecordsAt(t, adm, c.topic, c.part, c.offset); !errors.Is(dr.Err, c.want) {
			t.Fatalf("%s: %v, want %v", c.what, dr.Err, c.want)
		}
	}
	if got := startOffset(t, adm, name, 0); got != 4 {
		t.Fatalf("refused deletes moved the start to %d", got)
	}

	// Raw v0-2: -1 means the high watermark; kadm cannot name an unknown
	// partition.
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.Version, req.TimeoutMillis = v, 5000
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = name
		for _, p := range []int32{1, 9} {
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Partition, rp.Offset = p, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp := c.do(req).(*kmsg.DeleteRecordsResponse)
		sp := resp.Topics[0].Partitions[0]
		wantCode(t, "delete all v"+strconv.Itoa(int(v)), sp.ErrorCode, nil)
		if sp.LowWatermark != 3 {
			t.Fatalf("v%d: low watermark %d, want the high watermark 3", v, sp.LowWatermark)
		}
		wantCode(t, "unknown partition", resp.Topics[0].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition)
	}
	if got := startOffset(t, adm, name, 1); got != 3 {
		t.Fatalf("partition 1 starts at %d after deleting everything", got)
	}
}

// TestAdminAcrossUpload runs DeleteRecords, DescribeLogDirs and
// OffsetForLeaderEpoch against data in object storage and across a restart
// (which starts a new leader epoch).
func TestAdminAcrossUpload(t *testing.T) {
	dir := t.TempDir()
	edit := func(c *Config) { c.DataDir, c.UploadAge = dir, 50*time.Millisecond }
	b := startBroker(t, edit)
	adm, ctx := admClient(t, b)
	admCreateTopic(t, adm, ctx, "up", 1)
	admProduce(t, manualClient(t, b), "up", 0, 20)
	epoch1 := b.localGroup(0).g.LeaderEpoch()
	eventually(t, 20*time.Second, func() error {
		if v := b.StorageView(); v.WALPending[0] != 0 || v.Objects == 0 {
			return fmt.Errorf("wal pending %d bytes, %d objects", v.WALPending[0], v.Objects)
		}
		return nil
	})
	walSize, objSize := logDirSizes(t, adm, "up", 0)
	if walSize != 0 || objSize <= 0 {
		t.Fatalf("after upload: %d WAL bytes, %d object bytes", walSize, objSize)
	}

	// Delete into the uploaded range.
	if dr := deleteRecordsAt(t, adm, "up", 0, 12); dr.Err != nil || dr.LowWatermark != 12 {
		t.Fatalf("delete below 12: %v, %d", dr.Err, dr.LowWatermark)
	}
	c := dialRaw(t, b)
	resp := c.do(fetchRequest("up", 0, 3, 0, 0)).(*kmsg.FetchResponse)
	wantCode(t, "fetch below the log start", resp.Topics[0].Partitions[0].ErrorCode, kerr.OffsetOutOfRange)
	if first, n := firstConsumed(t, b, "up", 0, 20); first != 12 || n != 8 {
		t.Fatalf("from the start: first %d, %d records", first, n)
	}

	// A restart is a new leader epoch; the log start survives it.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startBroker(t, edit)
	adm, ctx = admClient(t, b)
	if got := startOffset(t, adm, "up", 0); got != 12 {
		t.Fatalf("log start %d after restart, want 12", got)
	}
	epoch2 := b.localGroup(0).g.LeaderEpoch()
	admProduce(t, manualClient(t, b), "up", 0, 5) // offsets 20-24
	walSize, _ = logDirSizes(t, adm, "up", 0)
	if walSize <= 0 {
		t.Fatalf("%d WAL bytes after producing", walSize)
	}
	var req kadm.OffsetForLeaderEpochRequest
	req.Add("up", 0, epoch1)
	ends, err := adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if e := ends["up"][0]; e.Err != nil || e.LeaderEpoch != epoch1 || e.EndOffset != 20 {
		t.Fatalf("epoch %d: %+v, want it to end at 20", epoch1, e)
	}
	req.Add("up", 0, epoch2)
	ends, err = adm.OffsetForLeaderEpoch(ctx, req)
	if e := ends["up"][0]; err != nil || e.Err != nil || e.LeaderEpoch != epoch2 || e.EndOffset != 25 {
		t.Fatalf("epoch %d: %v %+v, want the high watermark 25", epoch2, err, e)
	}

	// Delete into data not yet uploaded: the next upload starts above the
	// committed end, and reads stay consistent.
	if dr := deleteRecordsAt(t, adm, "up", 0, 22); dr.Err != nil || dr.LowWatermark != 22 {
		t.Fatalf("delete below 22: %v, %d", dr.Err, dr.LowWatermark)
	}
	eventually(t, 20*time.Second, func() error {
		if v := b.StorageView(); v.WALPending[0] != 0 {
			return fmt.Errorf("wal pending %d bytes", v.WALPending[0])
		}
		return nil
	})
	if first, n := firstConsumed(t, b, "up", 0, 25); first != 22 || n != 3 {
		t.Fatalf("after the upload: first %d, %d records", first, n)
	}
}

// logDirSizes returns a partition's WAL and object-storage sizes as
// DescribeLogDirs reports them.
func logDirSizes(t *testing.T, adm *kadm.Client, topic string, partition int32) (wal, objects int64) {
	t.Helper()
	all, err := adm.DescribeAllLogDirs(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wal, objects = -1, -1
	for _, dirs := range all {
		for dir, d := range dirs {
			if d.Err != nil {
				t.Fatalf("log dir %s: %v", dir, d.Err)
			}
			p, ok := dirs.Lookup(dir, topic, partition)
			switch {
			case !ok:
			case strings.HasSuffix(dir, "/wal-0"):
				wal = p.Size
			case strings.HasPrefix(dir, "file://"):
				objects = p.Size
			default:
				t.Fatalf("unexpected log dir %q", dir)
			}
		}
	}
	return wal, objects
}

func TestOffsetForLeaderEpochVersions(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	name := uniqueNames()("epochs")
	admCreateTopic(t, adm, ctx, name, 1)
	admProduce(t, manualClient(t, b), name, 0, 3)
	current := b.localGroup(0).g.LeaderEpoch()
	c := dialRaw(t, b)
	ask := func(v int16, topic string, epoch, currentEpoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version, req.ReplicaID = v, -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.LeaderEpoch, rp.CurrentLeaderEpoch = epoch, currentEpoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.do(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	}
	for v := int16(0); v <= 4; v++ {
		what := "v" + strconv.Itoa(int(v))
		p := ask(v, name, current, -1)
		wantCode(t, what, p.ErrorCode, nil)
		if p.EndOffset != 3 || (v >= 1 && p.LeaderEpoch != current) {
			t.Fatalf("%s: current epoch ends at %d (epoch %d), want 3 (%d)", what, p.EndOffset, p.LeaderEpoch, current)
		}
		if p := ask(v, name, current+1, -1); p.ErrorCode != 0 || p.EndOffset != -1 {
			t.Fatalf("%s: a future epoch: %v, end %d", what, kerr.ErrorForCode(p.ErrorCode), p.EndOffset)
		}
		if p := ask(v, name, current-1, -1); p.ErrorCode != 0 || p.EndOffset != 0 {
			t.Fatalf("%s: an epoch before any data: %v, end %d, want 0", what, kerr.ErrorForCode(p.ErrorCode), p.EndOffset)
		}
		wantCode(t, what+" unknown topic", ask(v, "no-such-topic-epochs", 1, -1).ErrorCode, kerr.UnknownTopicOrPartition)
		if v >= 2 {
			wantCode(t, what+" fenced", ask(v, name, current, current-1).ErrorCode, kerr.FencedLeaderEpoch)
			wantCode(t, what+" unknown epoch", ask(v, name, current, current+1).ErrorCode, kerr.UnknownLeaderEpoch)
			wantCode(t, what+" current epoch", ask(v, name, current, current).ErrorCode, nil)
		}
	}
}

func TestElectLeaders(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	name := uniqueNames()("elected")
	admCreateTopic(t, adm, ctx, name, 2)
	for _, how := range []kadm.ElectLeadersHow{kadm.ElectPreferredReplica, kadm.ElectLiveReplica} {
		rs, err := adm.ElectLeaders(ctx, how, kadm.TopicsSet{name: {0: {}, 1: {}}, "no-such-topic-elected": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			if r := rs[name][p]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
				t.Fatalf("election type %d, partition %d: %v, want ELECTION_NOT_NEEDED", how, p, r.Err)
			}
		}
		if r := rs["no-such-topic-elected"][0]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("unknown topic: %v", r.Err)
		}
	}
	// All partitions: those needing no election are left out.
	c := dialRaw(t, b)
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version, req.TimeoutMillis = v, 5000
		resp := c.do(req).(*kmsg.ElectLeadersResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 0 {
			t.Fatalf("v%d: all partitions: %v, %d topics", v, kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics))
		}
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType = 2, 7
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = name, []int32{0, 0}
	req.Topics = append(req.Topics, rt)
	resp := c.do(req).(*kmsg.ElectLeadersResponse)
	if ps := resp.Topics[0].Partitions; len(ps) != 1 {
		t.Fatalf("a partition named twice is answered %d times", len(ps))
	}
	wantCode(t, "bad election type", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequest)
}

func TestDescribeProducers(t *testing.T) {
	t.Parallel()
	b := sharedBroker(t)
	adm, ctx := admClient(t, b)
	name := uniqueNames()("producers")
	admCreateTopic(t, adm, ctx, name, 2)
	cl := manualClient(t, b)
	admProduce(t, cl, name, 0, 5)
	ds, err := adm.DescribeProducers(ctx, kadm.TopicsSet{name: {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	p0 := ds[name].Partitions[0]
	if p0.Err != nil || len(p0.ActiveProducers) != 1 {
		t.Fatalf("partition 0: %v, %d producers", p0.Err, len(p0.ActiveProducers))
	}
	var pid int64
	for _, p := range p0.ActiveProducers {
		pid = p.ProducerID
		if p.ProducerID < 0 || p.LastSequence != 4 || p.LastTimestamp <= 0 || p.CoordinatorEpoch != -1 || p.CurrentTxnStartOffset != -1 {
			t.Fatalf("producer %+v, want last sequence 4", p)
		}
	}
	if id, _, _ := cl.ProducerID(ctx); id != pid {
		t.Fatalf("described producer %d, the client's is %d", pid, id)
	}
	if p1 := ds[name].Partitions[1]; p1.Err != nil || len(p1.ActiveProducers) != 0 {
		t.Fatalf("partition 1: %v, %d producers", p1.Err, len(p1.ActiveProducers))
	}
	// Raw: an unknown partition (kadm cannot route one).
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = name, []int32{7}
	req.Topics = append(req.Topics, rt)
	resp := dialRaw(t, b).do(req).(*kmsg.DescribeProducersResponse)
	wantCode(t, "unknown partition", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
}

// TestAdminApiVersions checks that ApiVersions advertises the admin APIs
// with the versions they serve.
func TestAdminApiVersions(t *testing.T) {
	t.Parallel()
	c := dialRaw(t, sharedBroker(t))
	resp := c.do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	want := map[int16][2]int16{21: {0, 2}, 23: {0, 4}, 32: {0, 4}, 33: {0, 2}, 35: {0, 5}, 37: {0, 3},
		43: {0, 2}, 44: {0, 1}, 61: {0, 0}}
	for _, k := range resp.ApiKeys {
		if w, ok := want[k.ApiKey]; ok {
			if w != [2]int16{k.MinVersion, k.MaxVersion} {
				t.Errorf("api key %d: versions %d-%d, want %v", k.ApiKey, k.MinVersion, k.MaxVersion, w)
			}
			delete(want, k.ApiKey)
		}
	}
	if len(want) > 0 {
		t.Fatalf("not advertised: %v", want)
	}
}
