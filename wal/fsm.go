package wal

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/protocol"
)

// result is the FSM's verdict on one request of an entry.
type result struct {
	Base      int64 // first offset of the request's first batch (original offset for a duplicate)
	Duplicate bool
	Err       error
}

// cacheKey names one cached batch in eviction (append) order.
type cacheKey struct {
	stream *stream
	base   int64
}

// fsm is the WAL state machine. Apply runs on raft's FSM goroutine; reads
// come from broker goroutines under mu.
type fsm struct {
	logger *slog.Logger

	// pendingBytes is the size of the batches in the index: committed and
	// not yet uploaded. Written under mu, read without it.
	pendingBytes atomic.Int64

	mu struct {
		sync.RWMutex
		streams map[uint64]*stream
		// tail cache accounting
		cacheBytes int64
		cacheLimit int64
		fifo       []cacheKey // oldest first; fifo[fifoHead:] are live
		fifoHead   int
		changed    chan struct{}
	}
}

func newFSM(cacheLimit int64, logger *slog.Logger) *fsm {
	f := &fsm{logger: logger}
	f.mu.streams = make(map[uint64]*stream)
	f.mu.cacheLimit = cacheLimit
	f.mu.changed = make(chan struct{})
	return f
}

// Apply applies one committed entry.
func (f *fsm) Apply(l *raft.Log) interface{} {
	if len(l.Data) > 0 && l.Data[0] == entryKindTrim {
		return f.applyTrim(l)
	}
	reqs, err := decodeEntry(l.Data)
	if err != nil {
		// Entries are written only by encodeEntry; a decode failure means
		// the log itself is damaged. Refuse it loudly, change nothing.
		f.logger.Error("wal entry cannot be decoded", "index", l.Index, "err", err)
		return fmt.Errorf("entry %d: %w", l.Index, err)
	}
	results := make([]result, len(reqs))
	f.mu.Lock()
	pos := uint32(0) // position of the request's first batch in the entry
	for i := range reqs {
		results[i] = f.applyRequestLocked(&reqs[i], l.Index, pos, int32(l.Term))
		pos += uint32(len(reqs[i].batches))
	}
	f.evictLocked()
	close(f.mu.changed)
	f.mu.changed = make(chan struct{})
	f.mu.Unlock()
	return results
}

// applyRequestLocked accepts or refuses one partition's batches as a whole.
func (f *fsm) applyRequestLocked(r *request, index uint64, pos uint32, epoch int32) result {
	s := f.mu.streams[r.stream]
	if s == nil {
		s = newStream(r.stream)
		f.mu.streams[r.stream] = s
	}
	headers := make([]protocol.BatchHeader, len(r.batches))
	// Producer states as they would be after the batches, installed only
	// when every batch is accepted.
	staged := map[int64]*producerState{}
	next := s.Next
	for i, b := range r.batches {
		h, err := protocol.ParseBatchHeader(b)
		if err != nil {
			return result{Err: fmt.Errorf("%w: %v", ErrInvalidBatch, err)}
		}
		headers[i] = h
		if h.ProducerID >= 0 {
			p, ok := staged[h.ProducerID]
			if !ok {
				p = s.Producers[h.ProducerID]
			}
			c := checkProducer(p, h)
			if c.err != nil {
				return result{Err: c.err}
			}
			if c.dup != nil {
				return result{Base: c.dup.Base, Duplicate: true}
			}
			staged[h.ProducerID] = producerAfter(p, h, next)
		}
		next += int64(h.LastOffsetDelta) + 1
	}
	base := s.Next
	for i, b := range r.batches {
		h := headers[i]
		data := make([]byte, len(b))
		copy(data, b)
		protocol.SetBaseOffset(data, s.Next)
		protocol.SetPartitionLeaderEpoch(data, epoch)
		s.Batches = append(s.Batches, batchRef{
			Base: s.Next, Last: s.Next + int64(h.LastOffsetDelta), MaxTS: h.MaxTimestamp,
			LogIndex: index, Pos: pos + uint32(i), Epoch: epoch, Size: int32(len(b)), data: data,
		})
		s.noteEpoch(epoch, s.Next)
		idx := len(s.Batches) - 1
		if s.MaxTSIdx < 0 || h.MaxTimestamp > s.Batches[s.MaxTSIdx].MaxTS {
			s.MaxTSIdx = idx
		}
		f.mu.fifo = append(f.mu.fifo, cacheKey{stream: s, base: s.Next})
		f.mu.cacheBytes += int64(len(data))
		f.pendingBytes.Add(int64(len(data)))
		s.Next += int64(h.LastOffsetDelta) + 1
	}
	for pid, p := range staged {
		s.Producers[pid] = p
	}
	return result{Base: base}
}

// evictLocked drops the oldest cached batches until the cache fits its limit.
// Evicted batches stay readable from the Raft log.
func (f *fsm) evictLocked() {
	for f.mu.cacheBytes > f.mu.cacheLimit && f.mu.fifoHead < len(f.mu.fifo) {
		k := f.mu.fifo[f.mu.fifoHead]
		f.mu.fifo[f.mu.fifoHead] = cacheKey{}
		f.mu.fifoHead++
		s := k.stream
		if i := s.find(k.base); i < len(s.Batches) && s.Batches[i].Base == k.base && s.Batches[i].data != nil {
			f.mu.cacheBytes -= int64(len(s.Batches[i].data))
			s.Batches[i].data = nil
		}
	}
	// Compact the queue once its dead prefix dominates.
	if f.mu.fifoHead > 1024 && f.mu.fifoHead*2 > len(f.mu.fifo) {
		n := copy(f.mu.fifo, f.mu.fifo[f.mu.fifoHead:])
		clear(f.mu.fifo[n:])
		f.mu.fifo = f.mu.fifo[:n]
		f.mu.fifoHead = 0
	}
}

// changed returns a channel closed by the next applied entry.
func (f *fsm) changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.mu.changed
}

// snapshotState is what a snapshot holds: every stream's index and producer
// state. Batch bytes are not in it; they stay in the Raft log.
type snapshotState struct {
	Version int
	Streams []*stream
}

const snapshotVersion = 1

// Snapshot captures a deep copy of the index; Persist writes it later,
// concurrently with Apply.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := &snapshotState{Version: snapshotVersion}
	for _, s := range f.mu.streams {
		c := &stream{ID: s.ID, Start: s.Start, Next: s.Next, MaxTSIdx: s.MaxTSIdx, Epochs: slices.Clone(s.Epochs),
			Batches: make([]batchRef, len(s.Batches)), Producers: make(map[int64]*producerState, len(s.Producers))}
		for i, b := range s.Batches {
			b.data = nil
			c.Batches[i] = b
		}
		for pid, p := range s.Producers {
			c.Producers[pid] = &producerState{Epoch: p.Epoch, Recent: append([]producerBatch(nil), p.Recent...)}
		}
		st.Streams = append(st.Streams, c)
	}
	return st, nil
}

// Persist writes the snapshot with gob.
func (st *snapshotState) Persist(sink raft.SnapshotSink) error {
	if err := gob.NewEncoder(sink).Encode(st); err != nil {
		return errors.Join(fmt.Errorf("wal: write snapshot: %w", err), sink.Cancel())
	}
	return sink.Close()
}

// Release is a no-op: the snapshot holds no resources.
func (st *snapshotState) Release() {}

// Restore replaces all state with a snapshot's. Cached bytes are dropped;
// reads go to the Raft log until new entries fill the cache again.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st snapshotState
	if err := gob.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("wal: restore snapshot: %w: %v", ErrCorrupt, err)
	}
	if st.Version != snapshotVersion {
		return fmt.Errorf("wal: restore snapshot: %w: version %d", ErrCorrupt, st.Version)
	}
	streams := make(map[uint64]*stream, len(st.Streams))
	pending := int64(0)
	for _, s := range st.Streams {
		if s.Producers == nil {
			s.Producers = make(map[int64]*producerState)
		}
		for _, b := range s.Batches {
			pending += int64(b.Size)
		}
		streams[s.ID] = s
	}
	f.mu.Lock()
	f.mu.streams = streams
	f.mu.fifo, f.mu.fifoHead, f.mu.cacheBytes = nil, 0, 0
	f.pendingBytes.Store(pending)
	close(f.mu.changed)
	f.mu.changed = make(chan struct{})
	f.mu.Unlock()
	return nil
}

// applyTrim drops the index entries (and cached bytes) of data that is now
// in object storage, and moves each stream's WAL start to the trim point.
// Trims at or below a stream's start are no-ops, so a repeated trim is harmless.
func (f *fsm) applyTrim(l *raft.Log) interface{} {
	trims, err := decodeTrim(l.Data)
	if err != nil {
		f.logger.Error("wal trim entry cannot be decoded", "index", l.Index, "err", err)
		return fmt.Errorf("entry %d: %w", l.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range trims {
		s := f.mu.streams[t.Stream]
		if s == nil || t.End <= s.Start {
			continue
		}
		n := 0
		for n < len(s.Batches) && s.Batches[n].Last < t.End {
			b := s.Batches[n]
			if b.data != nil {
				f.mu.cacheBytes -= int64(len(b.data))
			}
			f.pendingBytes.Add(-int64(b.Size))
			n++
		}
		s.Batches = slices.Delete(s.Batches, 0, n)
		s.Start = min(t.End, s.Next)
		s.MaxTSIdx = -1
		for i := range s.Batches {
			if s.MaxTSIdx < 0 || s.Batches[i].MaxTS > s.Batches[s.MaxTSIdx].MaxTS {
				s.MaxTSIdx = i
			}
		}
	}
	return nil
}

// minLogIndex is the lowest Raft log index any indexed batch still needs,
// or 0 when the index is empty.
func (f *fsm) minLogIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var lowest uint64
	for _, s := range f.mu.streams {
		if len(s.Batches) > 0 && (lowest == 0 || s.Batches[0].LogIndex < lowest) {
			lowest = s.Batches[0].LogIndex
		}
	}
	return lowest
}
