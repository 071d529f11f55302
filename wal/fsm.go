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

	// logs is the Raft log store, read by snapshots for evicted batches;
	// logMu keeps log compaction from deleting entries a snapshot is
	// reading (Persist holds it for reading, compaction for writing).
	logs  raft.LogStore // set once by setLogStore, under logMu
	logMu sync.RWMutex
	// trimmed wakes the Group's log compactor after a trim is applied.
	trimmed chan struct{}
	// replicated: the group has other voters, so snapshots carry the
	// batch bytes (see snapshotState.WithData).
	replicated atomic.Bool
	// epochBase mirrors mu.moves.EpochBase for LeaderEpoch (move.go).
	epochBase atomic.Int32
	// uploadReq carries Group.RequestUpload to the uploader (move.go).
	uploadReq chan struct{}

	mu struct {
		sync.RWMutex
		streams map[uint64]*stream
		// tail cache accounting
		cacheBytes int64
		cacheLimit int64
		fifo       []cacheKey // oldest first; fifo[fifoHead:] are live
		fifoHead   int
		changed    chan struct{}
		moves      moveState // fenced and opened streams (move.go)
	}
}

func newFSM(cacheLimit int64, logger *slog.Logger) *fsm {
	f := &fsm{logger: logger, trimmed: make(chan struct{}, 1), uploadReq: make(chan struct{}, 1)}
	f.mu.streams = make(map[uint64]*stream)
	f.mu.moves = newMoveState()
	f.mu.cacheLimit = cacheLimit
	f.mu.changed = make(chan struct{})
	return f
}

// Apply applies one committed entry.
func (f *fsm) Apply(l *raft.Log) interface{} {
	if len(l.Data) > 0 && l.Data[0] == entryKindTrim {
		return f.applyTrim(l)
	}
	if len(l.Data) > 0 && l.Data[0] == entryKindMove {
		return f.applyMove(l)
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
		results[i] = f.applyRequestLocked(&reqs[i], l.Index, pos, int32(l.Term)+f.mu.moves.EpochBase)
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
	if _, fenced := f.mu.moves.Fenced[r.stream]; fenced {
		return result{Err: ErrFenced}
	}
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

// snapshotState is what a snapshot holds: every stream's index and
// producer state, then the bytes of every indexed batch (the data not yet
// uploaded), so that a replica restored from it -- one that joined or fell
// behind the leader's compacted log -- can serve and upload that data.
type snapshotState struct {
	Version int
	Streams []*stream
	// WithData says the batch bytes follow the index. A group with one
	// voter leaves them out: nobody can install its snapshots, and its own
	// log keeps every entry the index needs.
	WithData bool
	// Moves holds the fenced and opened streams and the epoch base
	// (version 3; move.go).
	Moves moveState

	data [][][]byte // per stream, per batch: cached bytes at Snapshot time (nil: read from the log)
	fsm  *fsm
}

// snapshotVersion 2 adds the batch bytes after the index, version 3 the
// moves; version 1 snapshots (index only) still restore.
const snapshotVersion = 3

// Snapshot captures a copy of the index and the cached batch bytes (which
// are immutable); Persist writes it later, concurrently with Apply, reading
// evicted batches from the Raft log.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := &snapshotState{Version: snapshotVersion, fsm: f, WithData: f.replicated.Load(), Moves: f.mu.moves.clone()}
	for _, s := range f.mu.streams {
		c := &stream{ID: s.ID, Start: s.Start, Next: s.Next, MaxTSIdx: s.MaxTSIdx, Epochs: slices.Clone(s.Epochs),
			Batches: make([]batchRef, len(s.Batches)), Producers: make(map[int64]*producerState, len(s.Producers))}
		data := make([][]byte, len(s.Batches))
		for i, b := range s.Batches {
			data[i] = b.data
			b.data, b.pinned = nil, false
			c.Batches[i] = b
		}
		for pid, p := range s.Producers {
			c.Producers[pid] = &producerState{Epoch: p.Epoch, Recent: append([]producerBatch(nil), p.Recent...)}
		}
		st.Streams = append(st.Streams, c)
		st.data = append(st.data, data)
	}
	return st, nil
}

// Persist writes the index with gob, then every batch's bytes in index
// order. Log compaction waits while a snapshot reads the log.
func (st *snapshotState) Persist(sink raft.SnapshotSink) error {
	fail := func(err error) error {
		return errors.Join(fmt.Errorf("wal: write snapshot: %w", err), sink.Cancel())
	}
	enc := gob.NewEncoder(sink)
	if err := enc.Encode(st); err != nil {
		return fail(err)
	}
	if !st.WithData {
		return sink.Close()
	}
	st.fsm.logMu.RLock()
	defer st.fsm.logMu.RUnlock()
	logs := st.fsm.logStore()
	var ent *loadedEntry
	for i, s := range st.Streams {
		for j, ref := range s.Batches {
			b := st.data[i][j]
			if b == nil {
				var err error
				if ent, err = loadEntry(logs, ent, ref.LogIndex); err != nil {
					return fail(err)
				}
				if b, err = ent.appendBatch(nil, ref); err != nil {
					return fail(err)
				}
			}
			if err := enc.Encode(b); err != nil {
				return fail(err)
			}
		}
	}
	return sink.Close()
}

// Release drops the captured bytes.
func (st *snapshotState) Release() { st.data = nil }

// Restore replaces all state with a snapshot's. The snapshot's batch bytes
// are pinned in memory until trimmed: this replica's log may not hold them.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st snapshotState
	dec := gob.NewDecoder(rc)
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("wal: restore snapshot: %w: %v", ErrCorrupt, err)
	}
	if st.Version < 1 || st.Version > snapshotVersion {
		return fmt.Errorf("wal: restore snapshot: %w: version %d", ErrCorrupt, st.Version)
	}
	streams := make(map[uint64]*stream, len(st.Streams))
	pending := int64(0)
	for _, s := range st.Streams {
		if s.Producers == nil {
			s.Producers = make(map[int64]*producerState)
		}
		for i := range s.Batches {
			pending += int64(s.Batches[i].Size)
			if st.Version < 2 || !st.WithData {
				continue // the bytes are in this replica's log
			}
			var b []byte
			if err := dec.Decode(&b); err != nil {
				return fmt.Errorf("wal: restore snapshot: %w: batch %d of stream %d: %v", ErrCorrupt, i, s.ID, err)
			}
			if len(b) != int(s.Batches[i].Size) {
				return fmt.Errorf("wal: restore snapshot: %w: batch %d of stream %d has %d bytes, index says %d",
					ErrCorrupt, i, s.ID, len(b), s.Batches[i].Size)
			}
			s.Batches[i].data, s.Batches[i].pinned = b, true
		}
		streams[s.ID] = s
	}
	f.mu.Lock()
	f.mu.streams = streams
	f.mu.moves = st.Moves.orEmpty()
	f.epochBase.Store(st.Moves.EpochBase)
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
	trimmed := false
	defer func() {
		if trimmed {
			select { // wake the log compactor; one pending wake-up is enough
			case f.trimmed <- struct{}{}:
			default:
			}
		}
	}()
	for _, t := range trims {
		s := f.mu.streams[t.Stream]
		if s == nil || t.End <= s.Start {
			continue
		}
		n := 0
		for n < len(s.Batches) && s.Batches[n].Last < t.End {
			b := s.Batches[n]
			if b.data != nil && !b.pinned {
				f.mu.cacheBytes -= int64(len(b.data))
			}
			f.pendingBytes.Add(-int64(b.Size))
			n++
		}
		s.Batches = slices.Delete(s.Batches, 0, n)
		s.Start = min(t.End, s.Next)
		trimmed = true
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

// setLogStore gives the FSM the Raft log store once the group is open.
func (f *fsm) setLogStore(logs raft.LogStore) {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	f.logs = logs
}

// logStore returns the Raft log store; the caller holds logMu.
func (f *fsm) logStore() raft.LogStore { return f.logs }
