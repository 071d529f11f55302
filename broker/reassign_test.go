package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// startMoveCluster starts three brokers on one shared object store that
// upload small amounts often, so that most of a partition's data is in
// objects when it moves. It returns the cluster and the store's directory.
func startMoveCluster(t *testing.T) (*testCluster, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "objects")
	c := startCluster(t, 3, func(cfg *Config) {
		cfg.ObjectStore = "file://" + dir
		cfg.UploadBytes = 64 << 10
		cfg.UploadAge = 200 * time.Millisecond
	})
	return c, dir
}

// createMoveTopic creates topic and waits until every broker knows it.
func createMoveTopic(t *testing.T, c *testCluster, topic string, partitions int32) {
	t.Helper()
	createClusterTopic(t, c.running()[0], topic, partitions)
	eventually(t, 10*time.Second, func() error {
		for _, b := range c.running() {
			if tp := b.meta.Image().Topics[topic]; tp == nil {
				return fmt.Errorf("broker %d does not know %s yet", b.cfg.NodeID, topic)
			}
		}
		return nil
	})
}

// partitionMeta is partition idx of topic as broker b's image has it.
func partitionMeta(t *testing.T, b *Broker, topic string, idx int32) metadata.Partition {
	t.Helper()
	tp := b.meta.Image().Topics[topic]
	if tp == nil || int(idx) >= len(tp.Partitions) {
		t.Fatalf("broker %d does not know %s-%d", b.cfg.NodeID, topic, idx)
	}
	return tp.Partitions[idx]
}

// controller returns the broker leading the metadata group.
func (c *testCluster) controller(t *testing.T) *Broker {
	t.Helper()
	for _, b := range c.running() {
		if b.meta.IsLeader() {
			return b
		}
	}
	t.Fatal("no metadata leader")
	return nil
}

// listMoves lists every reassignment in progress through cl (kadm's
// ListPartitionReassignments sends nothing for an empty topic set).
func listMoves(ctx context.Context, cl *kgo.Client) (map[string][]kmsg.ListPartitionReassignmentsResponseTopicPartition, error) {
	resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	out := map[string][]kmsg.ListPartitionReassignmentsResponseTopicPartition{}
	for _, rt := range resp.Topics {
		out[rt.Topic] = append(out[rt.Topic], rt.Partitions...)
	}
	return out, nil
}

// consumeLog reads one partition from offset 0 until ctx ends and records
// what it saw, in order.
type consumeLog struct {
	mu      sync.Mutex
	offsets []int64
	values  []string
}

func (l *consumeLog) run(ctx context.Context, cl *kgo.Client) {
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		l.mu.Lock()
		for _, r := range fs.Records() {
			l.offsets = append(l.offsets, r.Offset)
			l.values = append(l.values, string(r.Value))
		}
		l.mu.Unlock()
	}
}

func (l *consumeLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.offsets)
}

// TestReassignUnderLoad moves a partition to another WAL group while an
// idempotent producer (acks=all) writes to it and a consumer reads it:
// every acknowledged record is stored once, offsets stay dense, the
// consumer sees every record once, and the leader epochs stay monotonic.
func TestReassignUnderLoad(t *testing.T) {
	c, _ := startMoveCluster(t)
	const topic, partitions = "moving", 3
	createMoveTopic(t, c, topic, partitions)
	b0 := c.running()[0]
	src := partitionMeta(t, b0, topic, 0).WALGroup
	dst := (src + 1) % 3
	target := b0.meta.Image().WALGroups[dst].Replicas

	log := newAckLog()
	prod := clusterClient(t, c.seeds(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(2000))
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); produceLoop(pctx, prod, topic, partitions, log) }()
	defer func() { stop(); <-done }()

	var seen consumeLog
	cons := clusterClient(t, c.seeds(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
	cctx, stopConsumer := context.WithCancel(context.Background())
	consumed := make(chan struct{})
	go func() { defer close(consumed); seen.run(cctx, cons) }()
	defer func() { stopConsumer(); <-consumed }()

	eventually(t, 15*time.Second, func() error {
		if n := log.count(); n < 1500 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	admCl := clusterClient(t, c.seeds())
	adm := kadm.NewClient(admCl)
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, target)
	start := time.Now()
	resp, err := adm.AlterPartitionAssignments(t.Context(), req)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("alter partition assignments: %v", err)
	}
	eventually(t, 15*time.Second, func() error {
		ls, err := listMoves(t.Context(), admCl)
		if err != nil {
			return err
		}
		if len(ls) > 0 {
			return fmt.Errorf("still moving: %v", ls)
		}
		for _, b := range c.running() {
			if p := partitionMeta(t, b, topic, 0); p.WALGroup != dst || p.Move != nil {
				return fmt.Errorf("broker %d: %+v", b.cfg.NodeID, p)
			}
		}
		return nil
	})
	took := time.Since(start)
	before := log.count()
	eventually(t, 15*time.Second, func() error {
		if n := log.count(); n < before+1500 {
			return fmt.Errorf("%d acknowledged since the move", n-before)
		}
		return nil
	})
	t.Logf("moved partition 0 from wal group %d to %d (replicas %v) in %v under load", src, dst, target, took.Round(time.Millisecond))
	stop()
	<-done
	if len(log.errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(log.errs), log.errs[0])
	}
	verifyTopic(t, c.seeds(), topic, partitions, log)

	// The consumer that read through the move saw every record of
	// partition 0 once, in offset order.
	var end int64
	log.mu.Lock()
	for _, at := range log.acked {
		if at.partition == 0 {
			end = max(end, at.offset+1)
		}
	}
	log.mu.Unlock()
	eventually(t, 15*time.Second, func() error {
		if n := seen.count(); int64(n) < end {
			return fmt.Errorf("consumer read %d of %d", n, end)
		}
		return nil
	})
	stopConsumer()
	<-consumed
	seen.mu.Lock()
	defer seen.mu.Unlock()
	values := map[string]bool{}
	for i, off := range seen.offsets {
		if off != int64(i) {
			t.Fatalf("consumer: record %d has offset %d", i, off)
		}
		if values[seen.values[i]] {
			t.Fatalf("consumer saw %s twice", seen.values[i])
		}
		values[seen.values[i]] = true
	}
	// The source dropped the stream.
	p := partitionMeta(t, b0, topic, 0)
	eventually(t, 10*time.Second, func() error {
		for _, b := range c.running() {
			if ws := b.localGroup(src); ws != nil {
				if f, ok := ws.g.FenceOf(p.Stream); !ok || !f.Dropped {
					return fmt.Errorf("broker %d: source fence %+v %v", b.cfg.NodeID, f, ok)
				}
			}
		}
		return nil
	})
}

// TestReassignCancel: with object storage unavailable the source cannot
// upload, so a move stays fenced; cancelling it lifts the fence and writes
// go on in the same group, at dense offsets.
func TestReassignCancel(t *testing.T) {
	c, objects := startMoveCluster(t)
	const topic = "cancelled"
	createMoveTopic(t, c, topic, 1)
	b0 := c.running()[0]
	src := partitionMeta(t, b0, topic, 0).WALGroup
	dst := (src + 1) % 3
	target := b0.meta.Image().WALGroups[dst].Replicas
	prod := clusterClient(t, c.seeds(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 10 {
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "a-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// Break the object store: uploads fail from now on.
	if err := os.Rename(objects, objects+".off"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(objects, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		os.Remove(objects)
		os.Rename(objects+".off", objects)
	}
	defer restore()

	admCl := clusterClient(t, c.seeds())
	adm := kadm.NewClient(admCl)
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, target)
	if resp, err := adm.AlterPartitionAssignments(t.Context(), req); err != nil || resp.Error() != nil {
		t.Fatalf("alter: %v %v", err, resp.Error())
	}
	stream := partitionMeta(t, b0, topic, 0).Stream
	eventually(t, 10*time.Second, func() error {
		for _, b := range c.running() {
			if ws := b.localGroup(src); ws != nil && ws.g.IsLeader() {
				if _, ok := ws.g.FenceOf(stream); ok {
					return nil
				}
				return errors.New("not fenced yet")
			}
		}
		return errors.New("no source leader")
	})
	ls, err := listMoves(t.Context(), admCl)
	if err != nil || len(ls[topic]) != 1 {
		t.Fatalf("listed reassignments %v, %v", ls, err)
	}
	if byTopic, err := adm.ListPartitionReassignments(t.Context(), kadm.TopicsSet{topic: {0: {}}}); err != nil || len(byTopic[topic]) != 1 {
		t.Fatalf("listed reassignments of %s: %v, %v", topic, byTopic, err)
	}
	got := ls[topic][0]
	if !slices.Equal(got.Replicas, target) || len(got.AddingReplicas) != 0 || len(got.RemovingReplicas) != 0 {
		t.Fatalf("listed reassignment %+v, want replicas %v and none adding or removing", got, target)
	}
	// A write now gets NOT_LEADER_OR_FOLLOWER (retriable): kgo retries it.
	pending := make(chan error, 1)
	prod.Produce(context.Background(), &kgo.Record{Topic: topic, Value: []byte("during")}, func(_ *kgo.Record, err error) { pending <- err })

	var cancelReq kadm.AlterPartitionAssignmentsReq
	cancelReq.CancelAssign(topic, 0)
	if resp, err := adm.AlterPartitionAssignments(t.Context(), cancelReq); err != nil || resp.Error() != nil {
		t.Fatalf("cancel: %v %v", err, resp.Error())
	}
	select {
	case err := <-pending:
		if err != nil {
			t.Fatalf("write retried across the cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the write held during the move did not complete after the cancel")
	}
	r := prod.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Value: []byte("after")})
	if err := r.FirstErr(); err != nil || r[0].Record.Offset != 11 {
		t.Fatalf("write after the cancel: %v at offset %d, want 11", err, r[0].Record.Offset)
	}
	if p := partitionMeta(t, b0, topic, 0); p.WALGroup != src || p.Move != nil {
		t.Fatalf("partition after the cancel: %+v", p)
	}
	// Nothing left to cancel.
	resp, err := adm.AlterPartitionAssignments(t.Context(), cancelReq)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); !errors.Is(err, kerr.NoReassignmentInProgress) {
		t.Fatalf("second cancel: %v, want NO_REASSIGNMENT_IN_PROGRESS", err)
	}
}

// TestReassignRequestErrors: unknown partitions, replica lists no group
// has, a move to where the partition is, and requests to a broker that is
// not the controller.
func TestReassignRequestErrors(t *testing.T) {
	c, _ := startMoveCluster(t)
	const topic = "errors"
	createMoveTopic(t, c, topic, 1)
	ctrl := c.controller(t)
	src := partitionMeta(t, ctrl, topic, 0).WALGroup
	here := ctrl.meta.Image().WALGroups[src].Replicas

	alter := func(b *Broker, topic string, idx int32, replicas []int32) *kmsg.AlterPartitionAssignmentsResponse {
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.TimeoutMillis = 5000
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition, rp.Replicas = idx, replicas
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return dialRaw(t, b).do(req).(*kmsg.AlterPartitionAssignmentsResponse)
	}
	code := func(resp *kmsg.AlterPartitionAssignmentsResponse) (int16, string) {
		if resp.ErrorCode != 0 {
			return resp.ErrorCode, ""
		}
		p := resp.Topics[0].Partitions[0]
		msg := ""
		if p.ErrorMessage != nil {
			msg = *p.ErrorMessage
		}
		return p.ErrorCode, msg
	}
	for _, tc := range []struct {
		name     string
		topic    string
		idx      int32
		replicas []int32
		want     *kerr.Error
	}{
		{"unknown topic", "nope", 0, []int32{1, 2, 3}, kerr.UnknownTopicOrPartition},
		{"unknown partition", topic, 5, []int32{1, 2, 3}, kerr.UnknownTopicOrPartition},
		{"no such group", topic, 0, []int32{1, 2}, kerr.InvalidReplicaAssignment},
		{"unknown broker", topic, 0, []int32{1, 2, 9}, kerr.InvalidReplicaAssignment},
		{"where it is", topic, 0, here, nil},
	} {
		got, msg := code(alter(ctrl, tc.topic, tc.idx, tc.replicas))
		want := int16(0)
		if tc.want != nil {
			want = tc.want.Code
		}
		if got != want {
			t.Errorf("%s: %v (%s), want %v", tc.name, kerr.ErrorForCode(got), msg, tc.want)
		}
		if tc.want == kerr.InvalidReplicaAssignment && msg == "" {
			t.Errorf("%s: no message naming the groups", tc.name)
		}
	}
	if p := partitionMeta(t, ctrl, topic, 0); p.Move != nil || p.WALGroup != src {
		t.Fatalf("a move to where the partition is recorded one: %+v", p)
	}
	for _, b := range c.running() {
		if b == ctrl {
			continue
		}
		if got, _ := code(alter(b, topic, 0, here)); got != kerr.NotController.Code {
			t.Errorf("alter on broker %d (not the controller): %v", b.cfg.NodeID, kerr.ErrorForCode(got))
		}
		lreq := kmsg.NewPtrListPartitionReassignmentsRequest()
		if resp := dialRaw(t, b).do(lreq).(*kmsg.ListPartitionReassignmentsResponse); resp.ErrorCode != kerr.NotController.Code {
			t.Errorf("list on broker %d (not the controller): %v", b.cfg.NodeID, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
}
