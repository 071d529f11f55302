package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/wal"
)

// Partition reassignment (docs/reassignment.md): a partition moves from its
// WAL group (the source) to another (the target) without copying data.
// AlterPartitionReassignments records the move in the metadata; then each
// broker's reassigner does, for the groups it leads:
//
//   - as the source's leader: fence the stream in the WAL (appends get
//     NOT_LEADER_OR_FOLLOWER from then on, on every replica), ask the
//     uploader for an upload at once, and when the metadata's committed
//     history of the stream reaches the fenced end, switch the partition to
//     the target in the metadata with the stream's hand-off (producer
//     state, epoch history);
//   - as the target's leader: open the stream in the WAL at that end with
//     the hand-off, then finish the move in the metadata;
//   - again as the source's leader: drop the stream from the WAL once the
//     metadata shows it elsewhere, or lift the fence of a cancelled move.
//
// Until the target opened the stream its partition answers
// LEADER_NOT_AVAILABLE there; a source replica that dropped it answers
// NOT_LEADER_OR_FOLLOWER (a client with an old view), so no write lands in
// a group that does not own the stream.
//
// The reassigner is one goroutine per broker. It is started on first use
// (the first partition lookup or reassignment request) and stops when the
// broker closes; see startReassigner.

const (
	// reassignInterval is how often the reassigner looks at the moves
	// besides reacting to metadata changes.
	reassignInterval = 100 * time.Millisecond
	// reassignStepTimeout bounds one WAL or metadata write of a move.
	reassignStepTimeout = 10 * time.Second
)

// startReassigner starts the broker's move driver. It is owned by the
// broker: it returns within reassignInterval of b.closing being set, and
// stopReassigner waits for that.
func (b *Broker) startReassigner() {
	b.reassignDone = make(chan struct{})
	go func() {
		defer close(b.reassignDone)
		b.runReassigner()
	}()
}

// stopReassigner waits for the reassigner to stop; b.closing must be set.
func (b *Broker) stopReassigner() {
	if b.reassignDone != nil {
		<-b.reassignDone
	}
}

// runReassigner drives the moves until the broker closes.
func (b *Broker) runReassigner() {
	tick := time.NewTicker(reassignInterval)
	defer tick.Stop()
	var (
		seen  *metadata.Image // the image moves was taken from
		moves []metadata.MoveRef
	)
	for !b.closing.Load() {
		ch := b.meta.Changed()
		if im := b.meta.Image(); im != seen {
			seen, moves = im, im.Moves()
		}
		b.reassignStep(seen, moves)
		select {
		case <-ch:
		case <-tick.C:
		}
	}
}

// reassignStep does what the moves of im need of the groups this broker
// leads.
func (b *Broker) reassignStep(im *metadata.Image, moves []metadata.MoveRef) {
	for _, ws := range b.localWALs() {
		if b.closing.Load() {
			return
		}
		if !ws.ready() {
			continue
		}
		for _, mv := range moves {
			b.stepMove(im, ws, mv)
		}
		if fenced := ws.g.FencedStreams(); len(fenced) > 0 {
			b.settleFences(im, ws, fenced)
		}
	}
}

// stepMove advances one move on group ws, which this broker leads.
func (b *Broker) stepMove(im *metadata.Image, ws *walState, mv metadata.MoveRef) {
	p, m := mv.Partition, mv.Partition.Move
	if p.WALGroup != uint32(ws.id) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), reassignStepTimeout)
	defer cancel()
	log := b.logger.With("topic", mv.Topic, "partition", p.Index, "move", m.ID, "from", m.Source, "to", m.Target)
	g := ws.g
	if m.Switched { // the target's part
		if g.OpenedBy(p.Stream) != m.ID {
			if m.Handoff == nil {
				log.Error("switched move without hand-off (broken invariant)")
				return
			}
			if err := g.OpenStream(ctx, p.Stream, m.ID, walHandoff(*m.Handoff)); err != nil {
				log.Warn("partition move: open in the target group failed", "err", err)
				return
			}
			log.Info("partition move: opened in the target group", "offset", m.Handoff.End)
		}
		if err := b.meta.FinishReassignment(ctx, mv.Topic, p.Index, p.Stream, m.ID); err != nil {
			log.Warn("partition move: finish failed", "err", err)
			return
		}
		log.Info("partition move: done")
		return
	}
	// The source's part.
	f, ok := g.FenceOf(p.Stream)
	if ok && f.Dropped {
		return // left this group already: the image is older than the group's state
	}
	if !ok || f.Move != m.ID {
		end, err := g.Fence(ctx, p.Stream, m.ID)
		if err != nil {
			log.Warn("partition move: fence failed", "err", err)
			return
		}
		log.Info("partition move: fenced", "end", end)
	}
	_, end := g.Offsets(p.Stream)
	if committedEnd(im, p.Stream) < end {
		g.RequestUpload() // the upload's commit changes the image: the next step comes then
		return
	}
	h := metaHandoff(g.HandoffOf(p.Stream))
	if err := b.meta.SwitchPartition(ctx, mv.Topic, p.Index, p.Stream, m.ID, h); err != nil {
		log.Warn("partition move: switch failed", "err", err)
		return
	}
	log.Info("partition move: switched to the target group", "offset", h.End, "producers", len(h.Producers))
}

// committedEnd is how far a stream's history is in object storage and
// committed: its committed end, or its log start when retention went past.
func committedEnd(im *metadata.Image, stream uint64) int64 {
	so := im.StreamObjectsOf(stream)
	if so == nil {
		return 0
	}
	return max(so.EndOffset, so.StartOffset)
}

// settleFences drops the fenced streams of ws that moved elsewhere (or
// whose topic is gone) and unfences those whose move was cancelled. It
// acts only on an image that holds the fence's move (Image.Index at least
// the move id): an older image cannot tell a cancelled move from one it
// has not seen yet.
func (b *Broker) settleFences(im *metadata.Image, ws *walState, fenced map[uint64]uint64) {
	where := map[uint64]metadata.Partition{}
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			if _, ok := fenced[p.Stream]; ok {
				where[p.Stream] = p
			}
		}
	}
	for stream, move := range fenced {
		if im.Index < move {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), reassignStepTimeout)
		p, ok := where[stream]
		var err error
		switch {
		case !ok || p.WALGroup != uint32(ws.id):
			if err = ws.g.Drop(ctx, stream, move); err == nil {
				b.logger.Info("partition move: dropped from the source group", "stream", stream, "move", move, "group", ws.id)
			}
		case p.Move == nil:
			if err = ws.g.Unfence(ctx, stream, move); err == nil {
				b.logger.Info("partition move cancelled: unfenced", "stream", stream, "move", move, "group", ws.id)
			}
		}
		cancel()
		if err != nil {
			b.logger.Warn("partition move: settling the source failed", "stream", stream, "move", move, "err", err)
		}
	}
}

// moveErr is the error for partition p served by group g while it moves:
// LEADER_NOT_AVAILABLE in the target until the stream is open there,
// NOT_LEADER_OR_FOLLOWER in a source that dropped it (the caller's view of
// the metadata is older than the move). nil otherwise.
func moveErr(p metadata.Partition, g *wal.Group) error {
	if m := p.Move; m != nil && m.Switched && g.OpenedBy(p.Stream) != m.ID {
		return fmt.Errorf("%w: the partition is opening in wal group %d", errLeaderNotAvailable, m.Target)
	}
	if f, ok := g.FenceOf(p.Stream); ok && f.Dropped {
		return fmt.Errorf("%w: the partition moved to another wal group", errNotLeader)
	}
	return nil
}

// writable refuses appends to a stream fenced for a move early (the WAL
// refuses them too): NOT_LEADER_OR_FOLLOWER, and the client retries on the
// partition's new leader.
func (p partition) writable() error {
	if _, fenced := p.group.FenceOf(p.stream()); fenced {
		return fmt.Errorf("%w: %w", errNotLeader, wal.ErrFenced)
	}
	return nil
}

// reassignErrCode is errCode with the reassignment sentinels that
// errcode.go's table does not hold yet.
func reassignErrCode(err error) int16 {
	switch {
	case errors.Is(err, metadata.ErrNoReassignment):
		return kerr.NoReassignmentInProgress.Code
	case errors.Is(err, metadata.ErrReassignmentInProgress):
		return kerr.ReassignmentInProgress.Code
	case errors.Is(err, metadata.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	}
	return errCode(err)
}

// metaHandoff converts the WAL's hand-off to the metadata's.
func metaHandoff(h wal.Handoff) metadata.StreamHandoff {
	out := metadata.StreamHandoff{End: h.End, MinEpoch: h.MinEpoch}
	for _, e := range h.Epochs {
		out.Epochs = append(out.Epochs, metadata.HandoffEpoch{Epoch: e.Epoch, Start: e.Start})
	}
	for _, p := range h.Producers {
		mp := metadata.HandoffProducer{ID: p.ID, Epoch: p.Epoch}
		for _, bt := range p.Batches {
			mp.Batches = append(mp.Batches, metadata.HandoffBatch{FirstSeq: bt.FirstSeq, LastSeq: bt.LastSeq, Base: bt.Base, Last: bt.Last})
		}
		out.Producers = append(out.Producers, mp)
	}
	return out
}

// walHandoff converts the metadata's hand-off to the WAL's.
func walHandoff(h metadata.StreamHandoff) wal.Handoff {
	out := wal.Handoff{End: h.End, MinEpoch: h.MinEpoch}
	for _, e := range h.Epochs {
		out.Epochs = append(out.Epochs, wal.EpochStart{Epoch: e.Epoch, Start: e.Start})
	}
	for _, p := range h.Producers {
		wp := wal.HandoffProducer{ID: p.ID, Epoch: p.Epoch}
		for _, bt := range p.Batches {
			wp.Batches = append(wp.Batches, wal.HandoffBatch{FirstSeq: bt.FirstSeq, LastSeq: bt.LastSeq, Base: bt.Base, Last: bt.Last})
		}
		out.Producers = append(out.Producers, wp)
	}
	return out
}
