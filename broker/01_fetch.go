package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
)

// Fetch: v4-18
//
// Behavior:
// * sessionless: every request is a full fetch and the response's SessionID
//   is 0, which tells clients no session was created (KIP-227); a request
//   naming a session id other than 0 gets FETCH_SESSION_ID_NOT_FOUND;
//   ForgottenTopics are ignored
// * long poll: while fewer than MinBytes are available the request waits,
//   woken by every commit of a WAL group it reads, until MaxWaitMillis
//   (capped at 30 s), a partition error, broker shutdown or the connection
//   closing; the reader is released first, so later requests on the
//   connection start meanwhile (their responses still follow in order)
// * MaxBytes and PartitionMaxBytes: only the first non-empty partition may
//   exceed them, by whole batches, so a large batch cannot stall a consumer
//   (KIP-74); later partitions that do not fit return no records
// * CurrentLeaderEpoch is checked (FENCED_LEADER_EPOCH /
//   UNKNOWN_LEADER_EPOCH); the leader epoch is the WAL group's Raft term
// * READ_COMMITTED reads the same as READ_UNCOMMITTED: there are no
//   transactions, so LastStableOffset is the high watermark
// * follower fetches (ReplicaID >= 0) are served like consumer fetches
// * READ on the topic is needed (TOPIC_AUTHORIZATION_FAILED), checked once
//   when the request arrives
//
// Version notes:
// * v4: LastStableOffset, AbortedTransactions (always empty)
// * v5: LogStartOffset
// * v7: sessions (see above)
// * v9: CurrentLeaderEpoch
// * v10: zstd batches; before it UNSUPPORTED_COMPRESSION_TYPE
// * v11: Rack, PreferredReadReplica (always -1)
// * v12: flexible; NOT_LEADER_OR_FOLLOWER names the new leader and its
//   epoch (CurrentLeader, KIP-951)
// * v13: topics by id (UNKNOWN_TOPIC_ID)
// * v16: NodeEndpoints gives the address of the leaders named (KIP-951)
// * v15-18: replica state, directory ids and the KIP-1166 high watermark
//   tag are broker-to-broker fields and ignored

// maxFetchWait caps a fetch's MaxWaitMillis.
const maxFetchWait = 30 * time.Second

func (b *Broker) handleFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.FetchRequest)
	r.release() // the long poll must not hold up the connection's reader
	if req.Version >= 7 && req.SessionID != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = errCode(errFetchSessionNotFound)
		resp.SessionID = 0
		return resp, nil
	}
	denied := b.fetchDenied(r, req)
	wait := min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, maxFetchWait)
	deadline := time.Now().Add(wait)
	var timer *time.Timer
	for {
		// Take the change signals before reading, so that a commit between
		// the read and the wait is not missed.
		changed := b.changedSignals()
		resp, size, urgent := b.readFetch(ctx, req, denied, r.conn.auth.listenerName())
		left := time.Until(deadline)
		if size >= int(req.MinBytes) || urgent || left <= 0 {
			return resp, nil
		}
		if timer == nil {
			timer = time.NewTimer(left)
			defer timer.Stop()
		}
		switch waitSignal(ctx, r.draining(), timer.C, changed) {
		case signalChanged:
			continue
		case signalClosed:
			return nil, ctx.Err()
		default: // time is up or the broker shuts down: answer with what there is
			resp, _, _ := b.readFetch(ctx, req, denied, r.conn.auth.listenerName())
			return resp, nil
		}
	}
}

// changedSignals returns the change channel of every WAL group on this
// broker (closed on each group's next commit).
func (b *Broker) changedSignals() []<-chan struct{} {
	groups := b.localWALs()
	chans := make([]<-chan struct{}, len(groups))
	for i, ws := range groups {
		chans[i] = ws.g.Changed()
	}
	return chans
}

type signal int

const (
	signalChanged signal = iota
	signalTimeout
	signalDrain
	signalClosed
)

// waitSignal waits for a commit, the timer, a drain or the connection to close.
func waitSignal(ctx context.Context, drain <-chan struct{}, timer <-chan time.Time, changed []<-chan struct{}) signal {
	if len(changed) == 1 {
		select {
		case <-changed[0]:
			return signalChanged
		case <-timer:
			return signalTimeout
		case <-drain:
			return signalDrain
		case <-ctx.Done():
			return signalClosed
		}
	}
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(drain)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer)},
	}
	for _, ch := range changed {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	switch i, _, _ := reflect.Select(cases); i {
	case 0:
		return signalClosed
	case 1:
		return signalDrain
	case 2:
		return signalTimeout
	}
	return signalChanged
}

// fetchBudget tracks the request's MaxBytes across partitions.
type fetchBudget struct {
	size      int // record bytes in the response so far
	remaining int // what is left of MaxBytes
}

// fetchDenied returns, per requested topic, its authorisation error or nil.
func (b *Broker) fetchDenied(r *request, req *kmsg.FetchRequest) []error {
	im := b.meta.Image()
	denied := make([]error, len(req.Topics))
	for i, rt := range req.Topics {
		denied[i] = b.topicDenied(r, opRead, lookupTopic(im, req.Version >= 13, rt.Topic, rt.TopicID), req.Version >= 13, rt.Topic)
	}
	return denied
}

// readFetch reads every requested partition once, except those of denied
// topics (fetchDenied). size is the number of record bytes read; urgent
// reports a partition error (answer at once).
func (b *Broker) readFetch(ctx context.Context, req *kmsg.FetchRequest, denied []error, listener string) (resp *kmsg.FetchResponse, size int, urgent bool) {
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	im := b.meta.Image()
	budget := fetchBudget{remaining: int(req.MaxBytes)}
	byID := req.Version >= 13
	hints := endpoints{im: im, listener: listener}
	resp.Topics = make([]kmsg.FetchResponseTopic, 0, len(req.Topics))
	for ti, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		topic := lookupTopic(im, byID, rt.Topic, rt.TopicID)
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for i := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rt.Partitions[i].Partition
			err := denied[ti]
			if err == nil {
				err = b.readPartition(ctx, im, req.Version, topic, byID, &rt.Partitions[i], sp, &budget)
			}
			if err != nil {
				sp.ErrorCode = errCode(err)
				urgent = true
				if errors.Is(err, errNotLeader) && req.Version >= 12 {
					if leader, epoch, ok := b.leaderHint(topic, rt.Partitions[i].Partition); ok {
						sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leader, epoch
						hints.add(leader)
					}
				}
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Version >= 16 {
		for _, ep := range hints.list {
			nb := kmsg.NewFetchResponseBroker()
			nb.NodeID, nb.Host, nb.Port, nb.Rack = ep.id, ep.host, ep.port, ep.rack
			resp.Brokers = append(resp.Brokers, nb)
		}
	}
	return resp, budget.size, urgent
}

// readPartition fills one partition's result.
func (b *Broker) readPartition(ctx context.Context, im *metadata.Image, version int16, topic *metadata.Topic, byID bool,
	rp *kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition, budget *fetchBudget) error {
	sp.Partition = rp.Partition
	if topic == nil {
		return topicLookupErr(byID)
	}
	part, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return err
	}
	if err := checkLeaderEpoch(rp.CurrentLeaderEpoch, part.leaderEpoch()); err != nil {
		return err
	}
	limit := min(int(rp.PartitionMaxBytes), budget.remaining)
	if budget.size > 0 && limit <= 0 {
		_, sp.HighWatermark = part.group.Offsets(part.stream())
		sp.LogStartOffset = b.logStart(im, part)
		sp.LastStableOffset = sp.HighWatermark
		return nil
	}
	res, err := b.readPartitionData(ctx, im, part, rp.FetchOffset, max(limit, 0))
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.highWatermark, res.highWatermark, res.logStartOffset
	if err != nil {
		return err
	}
	recs := res.records
	if budget.size > 0 && len(recs) > limit {
		return nil // only the first non-empty partition may exceed the limits
	}
	if version < 10 && hasZstd(recs) {
		return errZstdVersion
	}
	sp.RecordBatches = recs
	budget.size += len(recs)
	budget.remaining -= len(recs)
	return nil
}

// hasZstd reports whether any batch of a record set is zstd-compressed.
func hasZstd(recs []byte) bool {
	const offAttributes, offLength, overhead = 21, 8, 12
	for pos := 0; pos+offAttributes+2 <= len(recs); {
		codec := protocol.Codec(binary.BigEndian.Uint16(recs[pos+offAttributes:]) & 0x07)
		if codec == protocol.CodecZstd {
			return true
		}
		n := int(int32(binary.BigEndian.Uint32(recs[pos+offLength:]))) + overhead
		if n <= overhead {
			return false
		}
		pos += n
	}
	return false
}
