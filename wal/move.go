package wal

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Moving a stream from one WAL group to another (partition reassignment).
//
// The source group's leader fences the stream (entry op fence): from then
// on the FSM refuses appends to it with ErrFenced, on every replica and
// across leader changes, so its end offset is final. Once its data is in
// object storage and metadata has switched the partition to the target
// group, the source drops the stream (op drop): its batches leave the index,
// and the fence stays as a tombstone, so that an append routed here by a
// stale view cannot start the stream again at offset 0. A move cancelled
// before the switch lifts the fence (op unfence).
//
// The target group's leader opens the stream (op open) at the source's end
// offset with the source's idempotent-producer state and leader-epoch
// history (a Handoff), so that a retried batch is answered with its
// original offsets and sequences continue. Opening also raises the group's
// epoch base, so that the group's leader epoch (Raft term + base) is above
// every epoch the partition had in the source group: Kafka clients never
// see a partition's leader epoch go backwards.
//
// Each entry names the move (an id the caller chooses: the metadata log
// index that started it), so that repeated or late entries are harmless: a
// fence for the same move, an unfence or drop of another move, an open
// already applied all change nothing.

// entryKindMove: a fence, unfence, drop or open of one stream (JSON body).
const entryKindMove byte = 3

// moveOp is the operation of a move entry.
type moveOp uint8

// Move operations. The values are part of the log format.
const (
	opFence   moveOp = 1
	opUnfence moveOp = 2
	opDrop    moveOp = 3
	opOpen    moveOp = 4
)

// moveEntry is the body of a move entry.
type moveEntry struct {
	Op      moveOp   `json:"op"`
	Stream  uint64   `json:"stream"`
	Move    uint64   `json:"move"`
	Handoff *Handoff `json:"handoff,omitempty"` // op open only
}

// ErrFenced is returned for appends to a stream that is moving to another
// WAL group (or has moved). It wraps ErrNotLeader: the client refreshes its
// metadata and retries on the partition's new leader.
var ErrFenced = fmt.Errorf("%w: the partition is moving to another wal group", ErrNotLeader)

// Handoff is what a stream carries from one WAL group to another: where it
// continues, and the state that lets the new group deduplicate retries.
type Handoff struct {
	// End is the stream's next offset: the target opens it there.
	End int64 `json:"end"`
	// MinEpoch is the lowest leader epoch the target may use for the
	// stream: one above the source group's epoch at the hand-off.
	MinEpoch int32 `json:"min_epoch"`
	// Producers are the idempotent producers' states, by producer id.
	Producers []HandoffProducer `json:"producers,omitempty"`
	// Epochs is the leader-epoch history (OffsetForLeaderEpoch).
	Epochs []EpochStart `json:"epochs,omitempty"`
}

// HandoffProducer is one idempotent producer's state on a stream.
type HandoffProducer struct {
	ID    int64 `json:"id"`
	Epoch int16 `json:"epoch"`
	// Batches are its last batches (at most five), oldest first.
	Batches []HandoffBatch `json:"batches,omitempty"`
}

// HandoffBatch is where one producer batch went.
type HandoffBatch struct {
	FirstSeq int32 `json:"first_seq"`
	LastSeq  int32 `json:"last_seq"`
	Base     int64 `json:"base"`
	Last     int64 `json:"last"`
}

// Fence is a stream's fence in this group.
type Fence struct {
	// Move is the move that fenced the stream.
	Move uint64
	// Dropped: the stream's data left this group; the fence stays so that
	// nothing appends to the stream here again (until it is opened here).
	Dropped bool
}

// moveState is the FSM's move bookkeeping; it is part of the snapshot.
type moveState struct {
	// Fenced holds the fenced (and dropped) streams.
	Fenced map[uint64]Fence
	// Opened holds, for streams that moved into this group, the move that
	// opened them.
	Opened map[uint64]uint64
	// EpochBase is added to the Raft term to give the group's leader epoch.
	EpochBase int32
}

// newMoveState returns an empty moveState.
func newMoveState() moveState {
	return moveState{Fenced: map[uint64]Fence{}, Opened: map[uint64]uint64{}}
}

// clone copies s for a snapshot.
func (s moveState) clone() moveState {
	return moveState{Fenced: maps.Clone(s.Fenced), Opened: maps.Clone(s.Opened), EpochBase: s.EpochBase}
}

// orEmpty fills in the maps of a state restored from an older snapshot.
func (s moveState) orEmpty() moveState {
	if s.Fenced == nil {
		s.Fenced = map[uint64]Fence{}
	}
	if s.Opened == nil {
		s.Opened = map[uint64]uint64{}
	}
	return s
}

// encodeMove builds a move entry.
func encodeMove(e moveEntry) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("wal: encode move entry: %w", err)
	}
	return append([]byte{entryKindMove}, body...), nil
}

// decodeMove parses a move entry.
func decodeMove(data []byte) (moveEntry, error) {
	var e moveEntry
	if len(data) < 1 || data[0] != entryKindMove {
		return e, fmt.Errorf("%w: not a move entry", ErrCorrupt)
	}
	if err := json.Unmarshal(data[1:], &e); err != nil {
		return e, fmt.Errorf("%w: move entry: %v", ErrCorrupt, err)
	}
	switch {
	case e.Op < opFence || e.Op > opOpen:
		return e, fmt.Errorf("%w: move entry op %d", ErrCorrupt, e.Op)
	case e.Op == opOpen && e.Handoff == nil:
		return e, fmt.Errorf("%w: open entry without hand-off", ErrCorrupt)
	case e.Op == opOpen && e.Handoff.End < 0:
		return e, fmt.Errorf("%w: open entry at offset %d", ErrCorrupt, e.Handoff.End)
	}
	return e, nil
}

// applyMove applies a move entry.
func (f *fsm) applyMove(l *raft.Log) interface{} {
	e, err := decodeMove(l.Data)
	if err != nil {
		f.logger.Error("wal move entry cannot be decoded", "index", l.Index, "err", err)
		return fmt.Errorf("entry %d: %w", l.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ms := &f.mu.moves
	fence, fenced := ms.Fenced[e.Stream]
	switch e.Op {
	case opFence:
		if !fence.Dropped {
			ms.Fenced[e.Stream] = Fence{Move: e.Move}
		}
	case opUnfence:
		if fenced && !fence.Dropped && fence.Move == e.Move {
			delete(ms.Fenced, e.Stream)
		}
	case opDrop:
		if fenced && !fence.Dropped && fence.Move == e.Move {
			f.removeStreamLocked(e.Stream)
			delete(ms.Opened, e.Stream)
			ms.Fenced[e.Stream] = Fence{Move: e.Move, Dropped: true}
		}
	case opOpen:
		if ms.Opened[e.Stream] == e.Move {
			break // opened already
		}
		f.removeStreamLocked(e.Stream)
		f.mu.streams[e.Stream] = openedStream(e.Stream, e.Handoff)
		delete(ms.Fenced, e.Stream)
		ms.Opened[e.Stream] = e.Move
		if base := e.Handoff.MinEpoch - int32(l.Term); base > ms.EpochBase {
			ms.EpochBase = base
			f.epochBase.Store(base)
		}
	}
	close(f.mu.changed)
	f.mu.changed = make(chan struct{})
	return nil
}

// removeStreamLocked forgets a stream and its batches (their bytes leave
// the cache and the pending count).
func (f *fsm) removeStreamLocked(id uint64) {
	s := f.mu.streams[id]
	if s == nil {
		return
	}
	for _, b := range s.Batches {
		if b.data != nil && !b.pinned {
			f.mu.cacheBytes -= int64(len(b.data))
		}
		f.pendingBytes.Add(-int64(b.Size))
	}
	// Cache-queue keys still point at s; with no batches left they evict
	// nothing.
	s.Batches = nil
	delete(f.mu.streams, id)
}

// openedStream builds the state of a stream opened at h.End.
func openedStream(id uint64, h *Handoff) *stream {
	s := newStream(id)
	s.Start, s.Next = h.End, h.End
	s.Epochs = slices.Clone(h.Epochs)
	for _, p := range h.Producers {
		ps := &producerState{Epoch: p.Epoch}
		for _, b := range p.Batches {
			ps.remember(producerBatch{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq, Base: b.Base, Last: b.Last})
		}
		s.Producers[p.ID] = ps
	}
	return s
}

// applyMoveEntry replicates a move entry through Raft (on the leader) and
// returns once this replica applied it.
func (g *Group) applyMoveEntry(ctx context.Context, e moveEntry) error {
	data, err := encodeMove(e)
	if err != nil {
		return err
	}
	timeout := g.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return fmt.Errorf("wal: move entry: %w", context.DeadlineExceeded)
	}
	f := g.rg.Raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return mapRaftError(err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return fmt.Errorf("wal: move entry: %w", err)
	}
	return nil
}

// Fence stops appends to stream for move (see the comment at the top of
// this file) and returns the stream's end offset, final from now on. Fencing
// a stream fenced for another move changes the move it is fenced for.
// Only the leader can fence (ErrNotLeader).
func (g *Group) Fence(ctx context.Context, stream, move uint64) (end int64, err error) {
	if err := g.applyMoveEntry(ctx, moveEntry{Op: opFence, Stream: stream, Move: move}); err != nil {
		return 0, fmt.Errorf("fence stream %d: %w", stream, err)
	}
	_, end = g.Offsets(stream)
	return end, nil
}

// Unfence lifts the fence move put on stream (a cancelled move); a fence of
// another move, or a dropped stream, stays.
func (g *Group) Unfence(ctx context.Context, stream, move uint64) error {
	if err := g.applyMoveEntry(ctx, moveEntry{Op: opUnfence, Stream: stream, Move: move}); err != nil {
		return fmt.Errorf("unfence stream %d: %w", stream, err)
	}
	return nil
}

// Drop removes stream, fenced for move, from this group: it moved to
// another group and its data is in object storage. It stays fenced.
func (g *Group) Drop(ctx context.Context, stream, move uint64) error {
	if err := g.applyMoveEntry(ctx, moveEntry{Op: opDrop, Stream: stream, Move: move}); err != nil {
		return fmt.Errorf("drop stream %d: %w", stream, err)
	}
	return nil
}

// OpenStream starts stream in this group at h.End with h's producer state
// and epoch history, replacing whatever the group held of it; opening it
// again for the same move changes nothing.
func (g *Group) OpenStream(ctx context.Context, stream, move uint64, h Handoff) error {
	if h.End < 0 {
		return fmt.Errorf("open stream %d: %w: offset %d", stream, ErrInvalidBatch, h.End)
	}
	if err := g.applyMoveEntry(ctx, moveEntry{Op: opOpen, Stream: stream, Move: move, Handoff: &h}); err != nil {
		return fmt.Errorf("open stream %d: %w", stream, err)
	}
	return nil
}

// FenceOf returns stream's fence, if it has one.
func (g *Group) FenceOf(stream uint64) (Fence, bool) {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	f, ok := g.fsm.mu.moves.Fenced[stream]
	return f, ok
}

// FencedStreams returns the streams fenced and not dropped, each with the
// move that fenced it.
func (g *Group) FencedStreams() map[uint64]uint64 {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	out := map[uint64]uint64{}
	for id, f := range g.fsm.mu.moves.Fenced {
		if !f.Dropped {
			out[id] = f.Move
		}
	}
	return out
}

// OpenedBy returns the move that opened stream in this group (0: none).
func (g *Group) OpenedBy(stream uint64) uint64 {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	return g.fsm.mu.moves.Opened[stream]
}

// HandoffOf returns what stream carries to another group: its end, its
// producers' states, its epoch history, and MinEpoch one above this group's
// leader epoch. Call it once the stream is fenced, so that nothing changes
// it any more.
func (g *Group) HandoffOf(stream uint64) Handoff {
	h := Handoff{MinEpoch: g.LeaderEpoch() + 1}
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	s := g.fsm.mu.streams[stream]
	if s == nil {
		return h
	}
	h.End, h.Epochs = s.Next, slices.Clone(s.Epochs)
	for pid, p := range s.Producers {
		hp := HandoffProducer{ID: pid, Epoch: p.Epoch}
		for _, b := range p.Recent {
			hp.Batches = append(hp.Batches, HandoffBatch{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq, Base: b.Base, Last: b.Last})
		}
		h.Producers = append(h.Producers, hp)
	}
	slices.SortFunc(h.Producers, func(a, b HandoffProducer) int { return cmp.Compare(a.ID, b.ID) })
	return h
}

// RequestUpload asks the group's uploader to upload what is pending now,
// whatever its size and age (a move waits for its stream's data to be in
// object storage). Requests made while one waits are merged.
func (g *Group) RequestUpload() {
	select {
	case g.fsm.uploadReq <- struct{}{}:
	default:
	}
}

// UploadRequested returns the channel RequestUpload signals; the uploader
// waits on it besides its own schedule.
func (g *Group) UploadRequested() <-chan struct{} { return g.fsm.uploadReq }
