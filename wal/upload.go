package wal

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/raft"
)

// PendingRange is a run of committed batches of one stream that is not yet
// in object storage: offsets [StartOffset, EndOffset).
type PendingRange struct {
	Stream                 uint64
	StartOffset, EndOffset int64
	Bytes                  int64
	refs                   []batchRef
}

// PendingBytes is the size of the committed data not yet uploaded.
func (g *Group) PendingBytes() int64 { return g.fsm.pendingBytes.Load() }

// Pending returns what is waiting for upload, by ascending stream id, each
// stream's batches from its WAL start on. It stops adding batches once
// about maxBytes are collected (always at least one batch when there is any),
// so a backlog is uploaded in several objects.
func (g *Group) Pending(maxBytes int64) []PendingRange {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	ids := make([]uint64, 0, len(g.fsm.mu.streams))
	for id, s := range g.fsm.mu.streams {
		if len(s.Batches) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []PendingRange
	total := int64(0)
	for _, id := range ids {
		s := g.fsm.mu.streams[id]
		r := PendingRange{Stream: id, StartOffset: s.Batches[0].Base}
		for _, b := range s.Batches {
			if total > 0 && total+int64(b.Size) > maxBytes {
				break
			}
			r.refs = append(r.refs, b)
			r.Bytes += int64(b.Size)
			total += int64(b.Size)
		}
		if len(r.refs) == 0 {
			break
		}
		r.EndOffset = r.refs[len(r.refs)-1].Last + 1
		out = append(out, r)
	}
	return out
}

// ReadPending calls fn with every batch of r, in offset order, patched with
// its offsets. fn must not keep the slice.
func (g *Group) ReadPending(r PendingRange, fn func(batch []byte) error) error {
	var ent *loadedEntry
	var buf []byte
	for _, b := range r.refs {
		if b.data != nil {
			if err := fn(b.data); err != nil {
				return err
			}
			continue
		}
		var err error
		if ent, err = g.loadEntry(ent, b.LogIndex); err != nil {
			return err
		}
		if buf, err = ent.appendBatch(buf[:0], b); err != nil {
			return err
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
	return nil
}

// Trim records, through Raft, that the given ranges are durable in object
// storage (and committed to metadata): every replica drops them from its
// index and cache. Then the Raft log below what the index still needs is
// deleted, after a snapshot that no longer refers to it.
func (g *Group) Trim(ctx context.Context, ranges []PendingRange) error {
	if len(ranges) == 0 {
		return nil
	}
	trims := make([]trim, len(ranges))
	for i, r := range ranges {
		trims[i] = trim{Stream: r.Stream, End: r.EndOffset}
	}
	f := g.rg.Raft.Apply(encodeTrim(trims), g.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return mapRaftError(err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return fmt.Errorf("wal: trim: %w", err)
	}
	return g.compactLog()
}

// compactLog snapshots the FSM and deletes the Raft log entries that are
// both covered by the snapshot and below every batch still indexed. Raft
// itself never compacts the WAL's log (Config.KeepAllLogs), because reads of
// evicted batches go to it.
func (g *Group) compactLog() error {
	g.compactMu.Lock()
	defer g.compactMu.Unlock()
	f := g.rg.Raft.Snapshot()
	var snapIndex uint64
	switch err := f.Error(); {
	case errors.Is(err, raft.ErrNothingNewToSnapshot):
		snapIndex = g.snapIndex
	case err != nil:
		return fmt.Errorf("wal: snapshot before log compaction: %w", err)
	default:
		meta, rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("wal: open snapshot: %w", err)
		}
		rc.Close()
		snapIndex = meta.Index
		g.snapIndex = snapIndex
	}
	upTo := snapIndex
	if need := g.fsm.minLogIndex(); need > 0 && need-1 < upTo {
		upTo = need - 1
	}
	first, err := g.rg.Logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("wal: first log index: %w", err)
	}
	if first == 0 || upTo < first {
		return nil
	}
	g.fsm.logMu.Lock() // not while a snapshot reads the log
	defer g.fsm.logMu.Unlock()
	if err := g.rg.Logs.DeleteRange(first, upTo); err != nil {
		return fmt.Errorf("wal: delete log %d-%d: %w", first, upTo, err)
	}
	return nil
}

// compactLoop compacts the log of a follower after trims: the leader
// compacts in Trim itself, every other replica when the FSM applied one.
func (g *Group) compactLoop() {
	defer g.wg.Done()
	for {
		select {
		case <-g.closing:
			return
		case <-g.fsm.trimmed:
		}
		if g.IsLeader() {
			continue
		}
		if err := g.compactLog(); err != nil {
			g.logger.Warn("wal log compaction after trim failed", "err", err)
		}
	}
}
