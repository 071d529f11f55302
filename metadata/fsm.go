package metadata

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm is the metadata group's raft.FSM. Raft calls Apply, ApplyBatch,
// Snapshot and Restore from its one FSM goroutine; readers load the image
// and the applied index concurrently through atomics.
type fsm struct {
	logger *slog.Logger
	image  atomic.Pointer[Image]
	// applied is the highest log index the FSM has applied (or restored);
	// the image of every index up to it is published.
	applied atomic.Uint64
	// requests remembers request outcomes; FSM goroutine only.
	requests *requestTable
	mu       struct {
		sync.Mutex
		changed  chan struct{} // closed when the image is next replaced
		progress chan struct{} // closed when applied next grows
	}
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(logger *slog.Logger) *fsm {
	f := &fsm{logger: logger, requests: newRequestTable()}
	f.image.Store(emptyImage())
	f.mu.changed = make(chan struct{})
	f.mu.progress = make(chan struct{})
	return f
}

// current returns the published image.
func (f *fsm) current() *Image { return f.image.Load() }

// changed returns the channel closed at the next publish.
func (f *fsm) changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.changed
}

// progress returns the channel closed when the applied index next grows.
func (f *fsm) progress() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.progress
}

// setApplied records that every log entry up to index is applied and
// published, and wakes the waiters.
func (f *fsm) setApplied(index uint64) {
	f.applied.Store(index)
	f.mu.Lock()
	close(f.mu.progress)
	f.mu.progress = make(chan struct{})
	f.mu.Unlock()
}

// publish makes im the current image and wakes the watchers. The image is
// stored before the channel closes, so a watcher that takes the channel and
// then the image never misses a change.
func (f *fsm) publish(im *Image) {
	f.image.Store(im)
	f.mu.Lock()
	close(f.mu.changed)
	f.mu.changed = make(chan struct{})
	f.mu.Unlock()
}

// Apply applies one committed log entry.
func (f *fsm) Apply(l *raft.Log) any {
	next, resp := f.applyLog(f.current(), l)
	if next != nil {
		f.publish(next)
	}
	f.setApplied(l.Index)
	return resp
}

// ApplyBatch applies committed entries in order and publishes one image for
// the whole batch.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	im := f.current()
	changed := false
	resps := make([]any, len(logs))
	for i, l := range logs {
		next, resp := f.applyLog(im, l)
		if next != nil {
			im, changed = next, true
		}
		resps[i] = resp
	}
	if changed {
		f.publish(im)
	}
	if len(logs) > 0 {
		f.setApplied(logs[len(logs)-1].Index)
	}
	return resps
}

func (f *fsm) applyLog(im *Image, l *raft.Log) (*Image, any) {
	if l.Type != raft.LogCommand {
		return nil, nil
	}
	c, err := DecodeCommand(l.Data)
	if err != nil {
		// A committed entry that does not decode was written by a broken or
		// newer proposer. Every replica rejects it alike, so the images agree.
		f.logger.Error("metadata: undecodable log entry", "index", l.Index, "err", err)
		return nil, err
	}
	if r, ok := c.(RequestCmd); ok {
		return f.applyRequest(im, r, l.Index)
	}
	return im.apply(c, l.Index)
}

// applyRequest applies a request's command once: a request id seen before
// gets the outcome of its first apply and changes nothing.
func (f *fsm) applyRequest(im *Image, r RequestCmd, index uint64) (*Image, any) {
	if first, ok := f.requests.get(r.ID); ok {
		v, err := first.decode(r.Cmd.Type())
		if err != nil {
			return nil, err
		}
		return nil, v
	}
	next, resp := im.apply(r.Cmd, index)
	f.requests.put(r.ID, encodeResult(resp))
	return next, resp
}

// snapshotVersion is the version of the snapshot format written by Persist.
// Version 2 added the object index, version 3 the committed group offsets,
// version 4 the applied index and the request outcomes, version 5 the
// members and the WAL-group layout, version 6 the SCRAM credentials,
// version 7 the client quotas, version 8 the ACLs; older snapshots still
// restore.
const snapshotVersion = 8

// snapshotData is the serialised image.
type snapshotData struct {
	Version        int      `json:"version"`
	ClusterID      string   `json:"cluster_id"`
	Brokers        []Broker `json:"brokers"`
	Topics         []*Topic `json:"topics"`
	NextStreamID   uint64   `json:"next_stream_id"`
	NextProducerID int64    `json:"next_producer_id"`
	Index          uint64   `json:"index"`
	// Since version 2. The streams' range refs are not written: they follow
	// from the objects and the streams' start offsets.
	Streams        []streamOffsets `json:"streams,omitempty"`
	Objects        []*Object       `json:"objects,omitempty"`
	PendingDeletes []PendingDelete `json:"pending_deletes,omitempty"`
	// Since version 3.
	Offsets []groupOffsetsSnapshot `json:"offsets,omitempty"`
	// Since version 4.
	Applied  uint64          `json:"applied,omitempty"`
	Requests []requestRecord `json:"requests,omitempty"`
	// Since version 5.
	Members        []Member   `json:"members,omitempty"`
	WALGroups      []WALGroup `json:"wal_groups,omitempty"`
	RemovedMembers []int32    `json:"removed_members,omitempty"`
	// Since version 6.
	Scram []scramUserSnapshot `json:"scram,omitempty"`
	// Since version 7.
	Quotas []quotaSnapshot `json:"quotas,omitempty"`
	// Since version 8.
	ACLs []ACLBinding `json:"acls,omitempty"`
}

// streamOffsets is a stream's history in a snapshot, for streams with a
// non-zero start or end offset.
type streamOffsets struct {
	Stream      uint64 `json:"stream"`
	StartOffset int64  `json:"start_offset"`
	EndOffset   int64  `json:"end_offset"`
}

// Snapshot captures the current image, applied index and request outcomes
// (on the FSM goroutine, so they agree); Persist may run concurrently with
// later applies because the image is immutable and the records are copied.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return fsmSnapshot{im: f.current(), applied: f.applied.Load(), requests: f.requests.records()}, nil
}

// Restore replaces the image, applied index and request outcomes with
// persisted ones.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := decodeState(rc)
	if err != nil {
		return err
	}
	table, err := restoreRequestTable(st.requests)
	if err != nil {
		return err
	}
	f.requests = table
	f.publish(st.im)
	f.setApplied(st.applied)
	return nil
}

// fsmSnapshot is the FSM state a snapshot holds.
type fsmSnapshot struct {
	im       *Image
	applied  uint64
	requests []requestRecord
}

// Persist writes the state as JSON.
func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := encodeState(sink, s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release has nothing to free.
func (fsmSnapshot) Release() {}

// encodeSnapshot writes a snapshot of im alone (applied index im.Index, no
// request outcomes).
func encodeSnapshot(w io.Writer, im *Image) error {
	return encodeState(w, fsmSnapshot{im: im, applied: im.Index})
}

// decodeSnapshot reads the image of a snapshot.
func decodeSnapshot(r io.Reader) (*Image, error) {
	st, err := decodeState(r)
	return st.im, err
}

func encodeState(w io.Writer, s fsmSnapshot) error {
	im := s.im
	d := snapshotData{
		Applied:        s.applied,
		Requests:       s.requests,
		Version:        snapshotVersion,
		ClusterID:      im.ClusterID,
		Brokers:        im.SortedBrokers(),
		NextStreamID:   im.NextStreamID,
		NextProducerID: im.NextProducerID,
		Index:          im.Index,
		Members:        im.SortedMembers(),
		WALGroups:      im.WALGroups,
		RemovedMembers: im.RemovedMembers,
	}
	for _, name := range im.SortedTopicNames() {
		d.Topics = append(d.Topics, im.Topics[name])
	}
	for _, id := range slices.Sorted(maps.Keys(im.Streams)) {
		if s := im.Streams[id]; s.StartOffset != 0 || s.EndOffset != 0 {
			d.Streams = append(d.Streams, streamOffsets{Stream: id, StartOffset: s.StartOffset, EndOffset: s.EndOffset})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(im.Objects)) {
		d.Objects = append(d.Objects, im.Objects[k])
	}
	d.PendingDeletes = im.PendingDeletes
	d.Offsets = im.snapshotOffsets()
	d.Scram = im.snapshotScram()
	d.Quotas = im.snapshotQuotas()
	d.ACLs = im.ACLs.All()
	if err := json.NewEncoder(w).Encode(&d); err != nil {
		return fmt.Errorf("metadata: write snapshot: %w", err)
	}
	return nil
}

func decodeState(r io.Reader) (fsmSnapshot, error) {
	var d snapshotData
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return fsmSnapshot{}, fmt.Errorf("%w: snapshot: %w", ErrInvalidCommand, err)
	}
	if d.Version < 1 || d.Version > snapshotVersion {
		return fsmSnapshot{}, fmt.Errorf("%w: snapshot version %d, want 1 to %d", ErrInvalidCommand, d.Version, snapshotVersion)
	}
	im, err := decodeImage(&d)
	if err != nil {
		return fsmSnapshot{}, err
	}
	// Before version 4 the applied index was not written; the image's index
	// is a lower bound.
	return fsmSnapshot{im: im, applied: max(d.Applied, d.Index), requests: d.Requests}, nil
}

// decodeImage rebuilds and checks the image of a decoded snapshot.
func decodeImage(d *snapshotData) (*Image, error) {
	im := emptyImage()
	im.ClusterID, im.NextStreamID, im.NextProducerID, im.Index = d.ClusterID, d.NextStreamID, d.NextProducerID, d.Index
	for _, b := range d.Brokers {
		im.Brokers[b.ID] = b
	}
	for _, m := range d.Members {
		im.Members[m.ID] = m
	}
	for i, g := range d.WALGroups {
		if g.ID != uint32(i) || len(g.Replicas) == 0 {
			return nil, fmt.Errorf("%w: snapshot wal group %d is inconsistent", ErrInvalidCommand, i)
		}
	}
	im.WALGroups, im.RemovedMembers = d.WALGroups, d.RemovedMembers
	for _, t := range d.Topics {
		if err := checkSnapshotTopic(im, t); err != nil {
			return nil, err
		}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		im.putTopic(t)
		for _, p := range t.Partitions {
			im.Streams[p.Stream] = &StreamObjects{Stream: p.Stream}
		}
	}
	if err := im.restoreObjects(d.Streams, d.Objects, d.PendingDeletes); err != nil {
		return nil, err
	}
	if err := im.restoreOffsets(d.Offsets); err != nil {
		return nil, err
	}
	if err := im.restoreScram(d.Scram); err != nil {
		return nil, err
	}
	if err := im.restoreQuotas(d.Quotas); err != nil {
		return nil, err
	}
	if err := im.restoreACLs(d.ACLs); err != nil {
		return nil, err
	}
	return im, nil
}

// restoreObjects rebuilds the object index of a fresh image from a snapshot's
// stream offsets, objects and pending deletes, and checks its invariants.
func (im *Image) restoreObjects(streams []streamOffsets, objects []*Object, pending []PendingDelete) error {
	for _, so := range streams {
		s := im.Streams[so.Stream]
		if s == nil || s.StartOffset != 0 || s.EndOffset != 0 || so.StartOffset < 0 || so.EndOffset < 0 {
			return fmt.Errorf("%w: snapshot stream %d is unknown, repeated or negative", ErrInvalidCommand, so.Stream)
		}
		s.StartOffset, s.EndOffset = so.StartOffset, so.EndOffset
	}
	for _, o := range objects {
		if o == nil {
			return fmt.Errorf("%w: snapshot holds a null object", ErrInvalidCommand)
		}
		if err := checkObject(o); err != nil {
			return fmt.Errorf("%w: snapshot: %w", ErrInvalidCommand, err)
		}
		if im.Objects[o.Key] != nil {
			return fmt.Errorf("%w: snapshot holds object %s twice", ErrInvalidCommand, o.Key)
		}
		im.Objects[o.Key] = o
		for _, r := range o.Ranges {
			if s := im.Streams[r.Stream]; s != nil && r.EndOffset > s.StartOffset {
				s.Ranges = append(s.Ranges, o.ref(r))
			}
		}
	}
	for _, s := range im.Streams {
		slices.SortFunc(s.Ranges, func(a, b RangeRef) int { return cmp.Compare(a.StartOffset, b.StartOffset) })
	}
	im.PendingDeletes = pending
	return im.checkObjectIndex()
}

// checkSnapshotTopic rejects a topic that would break the image's invariants.
func checkSnapshotTopic(im *Image, t *Topic) error {
	if t == nil || t.Name == "" || t.ID.IsZero() {
		return fmt.Errorf("%w: snapshot holds a topic without name or id", ErrInvalidCommand)
	}
	if _, ok := im.Topics[t.Name]; ok {
		return fmt.Errorf("%w: snapshot holds topic %s twice", ErrInvalidCommand, t.Name)
	}
	if _, ok := im.TopicsByID[t.ID]; ok {
		return fmt.Errorf("%w: snapshot holds topic id %s twice", ErrInvalidCommand, t.ID)
	}
	for i, p := range t.Partitions {
		if p.Index != int32(i) || p.Stream == 0 || p.Stream >= im.NextStreamID {
			return fmt.Errorf("%w: snapshot topic %s partition %d is inconsistent", ErrInvalidCommand, t.Name, i)
		}
	}
	return nil
}
