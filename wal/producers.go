package wal

import (
	"cmp"
	"slices"
)

// This file holds read-only views of a stream's state for admin APIs
// (DescribeProducers, DescribeLogDirs, OffsetForLeaderEpoch). They take the
// FSM's read lock, copy what they report and change nothing.

// ProducerState is what the WAL knows of one idempotent producer on one
// stream: the state its sequence checks use.
type ProducerState struct {
	ProducerID int64
	// Epoch is the producer epoch of the producer's last accepted batch.
	Epoch int16
	// LastSequence is the sequence of the last record of that batch.
	LastSequence int32
	// LastOffset is the offset of the last record of that batch.
	LastOffset int64
	// LastTimestamp is that batch's max timestamp while the batch is still
	// in the WAL, -1 once it was uploaded and trimmed (the producer state
	// keeps offsets and sequences, not timestamps).
	LastTimestamp int64
}

// Producers returns the idempotent producers the WAL remembers for stream,
// by ascending producer id; nil when there are none. Producer states are
// kept across uploads and trims (they are part of the snapshot).
func (g *Group) Producers(stream uint64) []ProducerState {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	s := g.fsm.mu.streams[stream]
	if s == nil || len(s.Producers) == 0 {
		return nil
	}
	out := make([]ProducerState, 0, len(s.Producers))
	for pid, p := range s.Producers {
		ps := ProducerState{ProducerID: pid, Epoch: p.Epoch, LastSequence: -1, LastOffset: -1, LastTimestamp: -1}
		if n := len(p.Recent); n > 0 {
			last := p.Recent[n-1]
			ps.LastSequence, ps.LastOffset = last.LastSeq, last.Last
			if i := s.find(last.Last); i < len(s.Batches) && s.Batches[i].Base <= last.Last {
				ps.LastTimestamp = s.Batches[i].MaxTS
			}
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

// StreamBytes returns the size of stream's batches the WAL holds: committed
// and not yet uploaded to object storage (0 for an unknown stream).
func (g *Group) StreamBytes(stream uint64) int64 {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	s := g.fsm.mu.streams[stream]
	if s == nil {
		return 0
	}
	total := int64(0)
	for i := range s.Batches {
		total += int64(s.Batches[i].Size)
	}
	return total
}

// LatestEpoch returns the leader epoch of stream's newest batch, or -1 when
// nothing was ever written to it. It is the last entry of the leader-epoch
// history that EpochEndOffset answers from.
func (g *Group) LatestEpoch(stream uint64) int32 {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	s := g.fsm.mu.streams[stream]
	if s == nil || len(s.Epochs) == 0 {
		return -1
	}
	return s.Epochs[len(s.Epochs)-1].Epoch
}
