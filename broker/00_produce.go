package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/wal"
)

// Produce: v3-13 (v0-2 listed, refused)
//
// Behavior:
// * v0-2 are listed in ApiVersions but every partition gets
//   UNSUPPORTED_VERSION, as Kafka 4.0 does (KAFKA-18659): librdkafka
//   compresses batches only when the broker lists Produce v0
// * acks=-1 and acks=1 both wait for the WAL's Raft commit; acks=0 sends no
//   response, and a partition error then closes the connection (as Kafka
//   does, so the client refreshes its metadata)
// * other acks values: INVALID_REQUIRED_ACKS on every partition
// * each partition must hold exactly one magic-2 batch (INVALID_RECORD
//   otherwise, as Kafka's validator); the batch is checked by
//   protocol.SplitBatches: bad CRC or lengths CORRUPT_MESSAGE, magic 0/1
//   UNSUPPORTED_FOR_MESSAGE_FORMAT, bad records INVALID_RECORD
// * a batch larger than the topic's max.message.bytes: MESSAGE_TOO_LARGE
// * transactions are not supported: a request with a TransactionID or a
//   transactional batch gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED (what
//   Kafka answers a client it does not allow transactions); control batches
//   INVALID_RECORD
// * batches are submitted to the WAL in request order before the reader
//   moves on, so pipelined requests of an idempotent producer keep their
//   order; the commits are then waited for concurrently with later requests
// * a retried idempotent batch gets its original base offset and no error;
//   a sequence gap OUT_OF_ORDER_SEQUENCE_NUMBER; an old producer epoch
//   INVALID_PRODUCER_EPOCH; a group that is not led here
//   NOT_LEADER_OR_FOLLOWER
// * a partition moving to another WAL group (reassign.go):
//   NOT_LEADER_OR_FOLLOWER from its fence on; the retry goes to the new
//   group, which knows the producer's sequences
// * TimeoutMillis bounds the wait for the commit (REQUEST_TIMED_OUT; the
//   write may still commit, and a retry is then detected as a duplicate);
//   0 or less leaves the WAL's own commit timeout in charge
// * compressed batches are decompressed and their records checked; records
//   without a key in a compacted topic INVALID_RECORD; a compression.type
//   other than producer recompresses (recompress.go)
// * WRITE on the topic is needed (TOPIC_AUTHORIZATION_FAILED, checked
//   before existence); idempotent producers need nothing more (KIP-679)
// * LogAppendTime is always -1: message.timestamp.type=LogAppendTime is not
//   applied yet
//
// Version notes:
// * v3: record batches (magic 2), TransactionID
// * v5: LogStartOffset in the response
// * v7: zstd allowed (UNSUPPORTED_COMPRESSION_TYPE before)
// * v8: ErrorMessage (no per-record errors are produced)
// * v9: flexible
// * v10: NOT_LEADER_OR_FOLLOWER names the new leader and its epoch
//   (CurrentLeader) and its address (NodeEndpoints), KIP-951
// * v13: topics by id (UNKNOWN_TOPIC_ID)

// defaultMaxMessageBytes is Kafka's max.message.bytes default.
const defaultMaxMessageBytes = 1048588

// pendingProduce is a submitted partition waiting for its commit.
type pendingProduce struct {
	rp     *kmsg.ProduceResponseTopicPartition
	append *wal.Append
	part   partition
}

func (b *Broker) handleProduce(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var reqErr error
	switch {
	case req.Version < 3:
		reqErr = fmt.Errorf("%w: produce v%d carries the legacy message format", errUnsupportedVersion, req.Version)
	case req.Acks != -1 && req.Acks != 0 && req.Acks != 1:
		reqErr = errInvalidRequiredAcks
	case req.TransactionID != nil:
		reqErr = errTransactions
	}
	im := b.meta.Image()
	var (
		pending  []pendingProduce
		rejected error     // the first partition refused before submitting
		hints    endpoints // leaders named in NOT_LEADER_OR_FOLLOWER results
	)
	hints.im, hints.listener = im, r.conn.auth.listenerName()
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		byID := req.Version >= 13
		topic := lookupTopic(im, byID, rt.Topic, rt.TopicID)
		denied := b.topicDenied(r, opWrite, topic, byID, rt.Topic) // authz.go
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rp.Partition
			err := reqErr
			var part partition
			var batch []byte
			if err == nil {
				err = denied
			}
			if err == nil && topic == nil {
				err = topicLookupErr(byID)
			}
			if err == nil {
				part, err = b.partitionOf(topic, rp.Partition)
			}
			if err == nil { // a partition moving to another group (reassign.go)
				err = part.writable()
			}
			if err == nil {
				batch, err = validateProduceBatch(req.Version, topic, rp.Records)
			}
			if err == nil { // record checks, keys of compacted topics, compression.type (recompress.go)
				batch, err = prepareProduceBatch(topic, batch)
			}
			if err != nil {
				b.setProduceErr(req.Version, sp, err)
				if errors.Is(err, errNotLeader) && req.Version >= 10 {
					if leader, epoch, ok := b.leaderHint(topic, rp.Partition); ok {
						sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leader, epoch
						hints.add(leader)
					}
				}
				rejected = cmp.Or(rejected, err)
				continue
			}
			pending = append(pending, pendingProduce{
				rp: sp, part: part,
				append: part.group.Submit(ctx, part.stream(), [][]byte{batch}),
			})
		}
		resp.Topics = append(resp.Topics, st)
	}
	r.release() // everything is submitted: the next request may start
	for _, ep := range hints.list {
		nb := kmsg.NewProduceResponseBroker()
		nb.NodeID, nb.Host, nb.Port, nb.Rack = ep.id, ep.host, ep.port, ep.rack
		resp.Brokers = append(resp.Brokers, nb)
	}
	failed := b.awaitProduce(ctx, req, pending)
	if ctx.Err() != nil {
		return nil, ctx.Err() // the connection is closing
	}
	if req.Acks == 0 {
		return nil, cmp.Or(rejected, failed)
	}
	return resp, nil
}

// awaitProduce waits for the commits and fills in the partition results.
// It returns the first partition error (acks=0 closes the connection on it).
func (b *Broker) awaitProduce(ctx context.Context, req *kmsg.ProduceRequest, pending []pendingProduce) error {
	var failed error
	if len(pending) == 0 {
		return nil
	}
	wctx := ctx
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	for _, p := range pending {
		res, err := p.append.Wait(wctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: no commit within %d ms", errTimeout, req.TimeoutMillis)
			}
			b.setProduceErr(req.Version, p.rp, err)
			if failed == nil {
				failed = err
			}
			continue
		}
		p.rp.BaseOffset = res.BaseOffset
		p.rp.LogStartOffset = b.logStart(b.meta.Image(), p.part)
	}
	return failed
}

// setProduceErr fills a failed partition result.
func (b *Broker) setProduceErr(version int16, rp *kmsg.ProduceResponseTopicPartition, err error) {
	rp.ErrorCode = errCode(err)
	rp.BaseOffset = -1
	rp.LogStartOffset = -1
	if version >= 8 {
		rp.ErrorMessage = errMessage(err)
	}
	if isUnknownCode(rp.ErrorCode) {
		b.logger.Warn("produce failed", "partition", rp.Partition, "err", err)
	}
}

// validateProduceBatch checks one partition's record set and returns its
// single batch.
func validateProduceBatch(version int16, t *metadata.Topic, records []byte) ([]byte, error) {
	batches, hdrs, err := protocol.SplitBatches(records)
	if err != nil {
		return nil, err
	}
	if len(batches) != 1 {
		return nil, fmt.Errorf("%w: got %d", errOneBatch, len(batches))
	}
	h := hdrs[0]
	switch {
	case h.IsControl():
		return nil, errControlBatch
	case h.IsTransactional():
		return nil, errTransactions
	case h.Codec() == protocol.CodecZstd && version < 7:
		return nil, errZstdVersion
	}
	if max := intConfig(t, "max.message.bytes", defaultMaxMessageBytes); int64(len(batches[0])) > max {
		return nil, fmt.Errorf("%w: %d bytes, max.message.bytes is %d", errMessageTooLarge, len(batches[0]), max)
	}
	return batches[0], nil
}
