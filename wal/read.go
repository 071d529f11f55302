package wal

import (
	"fmt"
	"sort"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/protocol"
)

// ReadResult is what Read returns for one stream.
type ReadResult struct {
	// Records holds whole, patched batches, concatenated; the first batch
	// contains the requested offset. Empty when the offset is the high watermark.
	Records       []byte
	HighWatermark int64
	// LogStartOffset is the first offset still in the WAL; lower offsets
	// were uploaded to object storage (ErrBelowWAL).
	LogStartOffset int64
}

// Offsets returns the first offset still in the WAL for a stream and its
// high watermark. A stream that has never been written has both at 0.
func (g *Group) Offsets(stream uint64) (start, hwm int64) {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	if s := g.fsm.mu.streams[stream]; s != nil {
		return s.Start, s.Next
	}
	return 0, 0
}

// Read returns the batches of stream from offset on, at most maxBytes of them
// but always at least one whole batch when there is data (as Kafka does, so
// a batch larger than maxBytes cannot stall a consumer).
func (g *Group) Read(stream uint64, offset int64, maxBytes int) (ReadResult, error) {
	g.fsm.mu.RLock()
	s := g.fsm.mu.streams[stream]
	if s == nil {
		g.fsm.mu.RUnlock()
		if offset == 0 {
			return ReadResult{}, nil
		}
		return ReadResult{}, ErrOffsetOutOfRange
	}
	res := ReadResult{HighWatermark: s.Next, LogStartOffset: s.Start}
	if offset < s.Start {
		g.fsm.mu.RUnlock()
		return res, ErrBelowWAL
	}
	if offset > s.Next {
		g.fsm.mu.RUnlock()
		return res, ErrOffsetOutOfRange
	}
	var refs []batchRef
	total := 0
	for i := s.find(offset); i < len(s.Batches); i++ {
		b := s.Batches[i]
		if len(refs) > 0 && total+int(b.Size) > maxBytes {
			break
		}
		refs = append(refs, b) // copies the ref; b.data is immutable once set
		total += int(b.Size)
	}
	g.fsm.mu.RUnlock()

	out := make([]byte, 0, total)
	var ent *loadedEntry
	hits, misses := 0, 0
	defer func() { g.stats.read(hits, misses) }()
	for _, b := range refs {
		if b.data != nil {
			out = append(out, b.data...)
			hits++
			continue
		}
		misses++
		var err error
		if ent, err = g.loadEntry(ent, b.LogIndex); err != nil {
			return res, err
		}
		if out, err = ent.appendBatch(out, b); err != nil {
			return res, err
		}
	}
	res.Records = out
	return res, nil
}

// loadedEntry is a decoded Raft entry, kept while consecutive batches come from it.
type loadedEntry struct {
	index   uint64
	batches [][]byte // every batch of the entry, in order (batchRef.Pos indexes it)
}

// loadEntry reads entry index from the Raft log store unless prev is it.
func (g *Group) loadEntry(prev *loadedEntry, index uint64) (*loadedEntry, error) {
	return loadEntry(g.rg.Logs, prev, index)
}

// loadEntry reads entry index from logs unless prev is it.
func loadEntry(logs raft.LogStore, prev *loadedEntry, index uint64) (*loadedEntry, error) {
	if prev != nil && prev.index == index {
		return prev, nil
	}
	var l raft.Log
	if err := logs.GetLog(index, &l); err != nil {
		return nil, fmt.Errorf("wal: read log entry %d: %w", index, err)
	}
	reqs, err := decodeEntry(l.Data)
	if err != nil {
		return nil, fmt.Errorf("wal: log entry %d: %w", index, err)
	}
	e := &loadedEntry{index: index}
	for _, r := range reqs {
		e.batches = append(e.batches, r.batches...)
	}
	return e, nil
}

// appendBatch appends a copy of the batch ref points at, patched with its
// offset and epoch.
func (e *loadedEntry) appendBatch(dst []byte, ref batchRef) ([]byte, error) {
	if int(ref.Pos) >= len(e.batches) {
		return dst, fmt.Errorf("wal: log entry %d has no batch %d: %w", e.index, ref.Pos, ErrCorrupt)
	}
	b := e.batches[ref.Pos]
	if len(b) != int(ref.Size) {
		return dst, fmt.Errorf("wal: log entry %d batch %d: size %d, index says %d: %w", e.index, ref.Pos, len(b), ref.Size, ErrCorrupt)
	}
	start := len(dst)
	dst = append(dst, b...)
	protocol.SetBaseOffset(dst[start:], ref.Base)
	protocol.SetPartitionLeaderEpoch(dst[start:], ref.Epoch)
	return dst, nil
}

// batchAt returns the patched bytes of one indexed batch.
func (g *Group) batchAt(ref batchRef) ([]byte, error) {
	if ref.data != nil {
		return ref.data, nil
	}
	ent, err := g.loadEntry(nil, ref.LogIndex)
	if err != nil {
		return nil, err
	}
	return ent.appendBatch(nil, ref)
}

// FindTimestamp returns the first batch of stream whose max timestamp is at
// least ts; ok is false when there is none. The caller finds the exact record.
func (g *Group) FindTimestamp(stream uint64, ts int64) (batch []byte, ok bool, err error) {
	g.fsm.mu.RLock()
	s := g.fsm.mu.streams[stream]
	var ref batchRef
	if s != nil {
		for i := s.find(s.Start); i < len(s.Batches); i++ {
			if s.Batches[i].MaxTS >= ts {
				ref, ok = s.Batches[i], true
				break
			}
		}
	}
	g.fsm.mu.RUnlock()
	if !ok {
		return nil, false, nil
	}
	batch, err = g.batchAt(ref)
	return batch, err == nil, err
}

// MaxTimestampBatch returns the batch holding the stream's largest timestamp
// (the first such batch on ties); ok is false for an empty stream.
func (g *Group) MaxTimestampBatch(stream uint64) (batch []byte, ok bool, err error) {
	g.fsm.mu.RLock()
	s := g.fsm.mu.streams[stream]
	var ref batchRef
	if s != nil && s.MaxTSIdx >= 0 {
		ref, ok = s.Batches[s.MaxTSIdx], true
	}
	g.fsm.mu.RUnlock()
	if !ok {
		return nil, false, nil
	}
	batch, err = g.batchAt(ref)
	return batch, err == nil, err
}

// EpochEndOffset answers Kafka's OffsetForLeaderEpoch for a stream, as
// Kafka's leader-epoch cache does: for the latest epoch, the high watermark;
// for an older one, the start of the next higher epoch, with the largest
// known epoch at or below the requested one (the requested epoch itself when
// it precedes every known epoch); for an epoch above the latest, -1 and -1.
func (g *Group) EpochEndOffset(stream uint64, epoch int32) (endEpoch int32, endOffset int64) {
	g.fsm.mu.RLock()
	defer g.fsm.mu.RUnlock()
	s := g.fsm.mu.streams[stream]
	if s == nil || len(s.Epochs) == 0 || epoch < 0 {
		return -1, -1
	}
	latest := s.Epochs[len(s.Epochs)-1]
	if epoch == latest.Epoch {
		return epoch, s.Next
	}
	// higher: the first epoch above the requested one.
	higher := sort.Search(len(s.Epochs), func(i int) bool { return s.Epochs[i].Epoch > epoch })
	if higher == len(s.Epochs) {
		return -1, -1
	}
	if higher == 0 {
		return epoch, s.Epochs[0].Start
	}
	return s.Epochs[higher-1].Epoch, s.Epochs[higher].Start
}
