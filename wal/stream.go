package wal

import (
	"math"
	"sort"

	"github.com/shoal-io/shoal/protocol"
)

// maxProducerBatches is how many recent batches per producer are remembered
// for duplicate detection, as in Kafka (a producer has at most 5 in flight).
const maxProducerBatches = 5

// batchRef locates one committed batch of a stream.
type batchRef struct {
	Base     int64  // first offset
	Last     int64  // last offset
	MaxTS    int64  // the batch's max timestamp
	LogIndex uint64 // Raft log index of the entry holding the batch
	Pos      uint32 // position of the batch among all batches of the entry
	Epoch    int32  // leader epoch (Raft term of the entry)
	Size     int32  // bytes

	data []byte // patched copy while in the tail cache, nil after eviction
	// pinned: data came with a snapshot and is not in the cache's eviction
	// queue; it stays until trimmed (the log may not hold its entry).
	pinned bool
}

// producerBatch remembers where one producer batch went.
type producerBatch struct {
	FirstSeq, LastSeq int32
	Base, Last        int64
}

// producerState is the idempotence state of one producer on one stream.
type producerState struct {
	Epoch  int16
	Recent []producerBatch // oldest first, at most maxProducerBatches
}

// lastSeq is the last sequence the producer wrote.
func (p *producerState) lastSeq() int32 {
	if len(p.Recent) == 0 {
		return -1
	}
	return p.Recent[len(p.Recent)-1].LastSeq
}

func (p *producerState) remember(b producerBatch) {
	if len(p.Recent) == maxProducerBatches {
		copy(p.Recent, p.Recent[1:])
		p.Recent = p.Recent[:maxProducerBatches-1]
	}
	p.Recent = append(p.Recent, b)
}

// stream is the WAL's state for one stream (one Kafka partition).
type stream struct {
	ID        uint64
	Start     int64 // log start offset
	Next      int64 // next offset to assign = high watermark
	Batches   []batchRef
	Producers map[int64]*producerState
	// MaxTSIdx is the index in Batches of the batch with the largest max
	// timestamp (the first one on ties), -1 when empty.
	MaxTSIdx int
	// Epochs is the leader-epoch history: where each epoch's first batch
	// starts, ascending. It is kept across trims (it is tiny) so that
	// OffsetForLeaderEpoch can answer for uploaded data too.
	Epochs []EpochStart
}

// EpochStart is the first offset written in a leader epoch.
type EpochStart struct {
	Epoch int32
	Start int64
}

// noteEpoch records that a batch of epoch starts at offset.
func (s *stream) noteEpoch(epoch int32, offset int64) {
	if n := len(s.Epochs); n == 0 || s.Epochs[n-1].Epoch < epoch {
		s.Epochs = append(s.Epochs, EpochStart{Epoch: epoch, Start: offset})
	}
}

func newStream(id uint64) *stream {
	return &stream{ID: id, Producers: make(map[int64]*producerState), MaxTSIdx: -1}
}

// find returns the index of the batch holding offset, or len(Batches).
func (s *stream) find(offset int64) int {
	return sort.Search(len(s.Batches), func(i int) bool { return s.Batches[i].Last >= offset })
}

// inSequence reports whether next directly follows last, wrapping like Kafka.
func inSequence(last, next int32) bool {
	if last == math.MaxInt32 {
		return next == 0
	}
	return next == last+1
}

// checkResult is the verdict on one producer batch.
type checkResult struct {
	dup *producerBatch // non-nil: a retry of this earlier batch
	err error
}

// checkProducer applies Kafka's idempotent-producer rules to h against the
// producer state p (nil: unknown producer, which may start at any sequence).
func checkProducer(p *producerState, h protocol.BatchHeader) checkResult {
	if p == nil {
		return checkResult{}
	}
	switch {
	case h.ProducerEpoch < p.Epoch:
		return checkResult{err: ErrInvalidProducerEpoch}
	case h.ProducerEpoch > p.Epoch:
		if h.BaseSequence != 0 {
			return checkResult{err: ErrOutOfOrderSequence}
		}
		return checkResult{}
	}
	last := h.LastSequence()
	for i := range p.Recent {
		if p.Recent[i].FirstSeq == h.BaseSequence && p.Recent[i].LastSeq == last {
			return checkResult{dup: &p.Recent[i]}
		}
	}
	if len(p.Recent) > 0 && !inSequence(p.lastSeq(), h.BaseSequence) {
		return checkResult{err: ErrOutOfOrderSequence}
	}
	return checkResult{}
}

// producerAfter returns the producer state after accepting a batch, without
// touching p (the caller installs it when the whole request is accepted).
func producerAfter(p *producerState, h protocol.BatchHeader, base int64) *producerState {
	np := &producerState{Epoch: h.ProducerEpoch}
	if p != nil && p.Epoch == h.ProducerEpoch {
		np.Recent = append(make([]producerBatch, 0, maxProducerBatches), p.Recent...)
	}
	np.remember(producerBatch{
		FirstSeq: h.BaseSequence, LastSeq: h.LastSequence(),
		Base: base, Last: base + int64(h.LastOffsetDelta),
	})
	return np
}
