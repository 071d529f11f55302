package broker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/s3stream"
)

// The object admin endpoints, on the metrics listener next to /admin/storage
// (shoalctl objects list|inspect|cost reads them):
//
//	GET /admin/objects[?topic=T]   every object of the metadata object index
//	GET /admin/objects/inspect?key=K   an object's footer and index, read from
//	                               the object store
//
// Both answer JSON; errors are JSON {"error": "..."} with 400 (bad query),
// 404 (unknown topic or object), 405 (not GET), 502 (the object store
// failed or the object is corrupt) or 503 (the broker does not serve yet).

// inspectTimeout bounds the object-store reads of one inspect request.
const inspectTimeout = 30 * time.Second

// ObjectsView is the answer of GET /admin/objects.
type ObjectsView struct {
	// Objects are the objects holding live ranges, oldest first (by
	// creation time, then key).
	Objects []ObjectView `json:"objects"`
	// Count and Bytes sum Objects.
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
	// PendingDeletes are the objects nothing refers to any more, waiting for
	// their grace period (left out when a topic filter is given).
	PendingDeletes []metadata.PendingDelete `json:"pending_deletes"`
}

// ObjectView is one object of the metadata object index.
type ObjectView struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
	// Kind is "SSO" (a stream set object: one upload of a WAL group) or
	// "SO" (a stream object, written by compaction).
	Kind string `json:"kind"`
	// CreatedMs is the commit time (Unix ms), 0 when unknown; Created is
	// the same time in RFC 3339, empty when unknown.
	CreatedMs int64  `json:"created_ms"`
	Created   string `json:"created,omitempty"`
	// Ranges are the stream ranges of the object (only the filtered
	// topic's with ?topic=).
	Ranges []RangeView `json:"ranges"`
}

// RangeView is one stream range of an object, with the topic partition the
// stream belongs to.
type RangeView struct {
	Stream uint64 `json:"stream"`
	// Topic and Partition name the stream's partition; Topic is empty for
	// the stream of a deleted topic.
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	StartOffset int64  `json:"start_offset"`
	EndOffset   int64  `json:"end_offset"`
	Position    int64  `json:"position"`
	Size        int64  `json:"size"`
	// Live is false for a range that metadata no longer refers to (trimmed
	// by retention or replaced by compaction while the object lives on for
	// its other ranges).
	Live bool `json:"live"`
}

// ObjectInspectView is the answer of GET /admin/objects/inspect.
type ObjectInspectView struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
	// Kind and CreatedMs come from the metadata object index; Kind is empty
	// for an object the index does not hold (pending deletion, orphan).
	Kind      string           `json:"kind"`
	CreatedMs int64            `json:"created_ms"`
	Footer    FooterView       `json:"footer"`
	Streams   []StreamInObject `json:"streams"`
	Blocks    []BlockView      `json:"blocks"`
}

// FooterView is an object's decoded footer.
type FooterView struct {
	Version       uint16 `json:"version"`
	IndexPosition int64  `json:"index_position"`
	IndexSize     int64  `json:"index_size"`
	IndexChecksum uint32 `json:"index_checksum"`
}

// StreamInObject summarises one stream's blocks in an object.
type StreamInObject struct {
	Stream       uint64 `json:"stream"`
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	StartOffset  int64  `json:"start_offset"`
	EndOffset    int64  `json:"end_offset"`
	Position     int64  `json:"position"`
	Size         int64  `json:"size"`
	MinTimestamp int64  `json:"min_timestamp"`
	MaxTimestamp int64  `json:"max_timestamp"`
	Blocks       int    `json:"blocks"`
}

// BlockView is one data block of an object's index.
type BlockView struct {
	Stream       uint64 `json:"stream"`
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	StartOffset  int64  `json:"start_offset"`
	EndOffset    int64  `json:"end_offset"`
	MinTimestamp int64  `json:"min_timestamp"`
	MaxTimestamp int64  `json:"max_timestamp"`
	Position     int64  `json:"position"`
	StoredSize   int64  `json:"stored_size"`
	RawSize      int64  `json:"raw_size"`
	Codec        string `json:"codec"`
	Batches      uint32 `json:"batches"`
	Checksum     uint32 `json:"checksum"`
}

// registerObjectAdmin adds the object admin endpoints to mux.
func (b *Broker) registerObjectAdmin(mux *http.ServeMux) {
	mux.HandleFunc("/admin/objects", b.adminHandler(b.serveObjects))
	mux.HandleFunc("/admin/objects/inspect", b.adminHandler(b.serveObjectInspect))
}

// adminError is an admin request's failure with its HTTP status.
type adminError struct {
	status int
	msg    string
}

func (e *adminError) Error() string { return e.msg }

// adminHandler wraps an admin endpoint: GET only, 503 until the broker
// serves, the result as indented JSON, errors as JSON {"error": ...}.
func (b *Broker) adminHandler(fn func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v any
		var err error
		switch {
		case r.Method != http.MethodGet:
			w.Header().Set("Allow", http.MethodGet)
			err = &adminError{http.StatusMethodNotAllowed, "method " + r.Method + " not allowed"}
		case !b.ready.Load():
			err = &adminError{http.StatusServiceUnavailable, "not ready"}
		default:
			v, err = fn(r)
		}
		status := http.StatusOK
		if err != nil {
			status = http.StatusBadGateway
			var ae *adminError
			if errors.As(err, &ae) {
				status = ae.status
			}
			v = map[string]string{"error": err.Error()}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			b.logger.Debug("write admin response", "path", r.URL.Path, "err", err)
		}
	}
}

// topicPartition names the partition a stream belongs to.
type topicPartition struct {
	topic     string
	partition int32
}

// partitionOf maps every stream of an existing topic to its partition.
type partitionOf map[uint64]topicPartition

// streamPartitions returns the partition of every stream of im's topics.
func streamPartitions(im *metadata.Image) partitionOf {
	m := partitionOf{}
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			m[p.Stream] = topicPartition{t.Name, p.Index}
		}
	}
	return m
}

// serveObjects lists the metadata object index, optionally only the
// objects (and ranges) of one topic.
func (b *Broker) serveObjects(r *http.Request) (any, error) {
	im := b.meta.Image()
	topic := r.URL.Query().Get("topic")
	if _, ok := im.Topics[topic]; topic != "" && !ok {
		return nil, &adminError{http.StatusNotFound, fmt.Sprintf("unknown topic %q", topic)}
	}
	return objectsView(im, topic), nil
}

// objectsView builds the object list of im; with topic != "" only the
// objects holding a range of topic, with only those ranges.
func objectsView(im *metadata.Image, topic string) ObjectsView {
	parts := streamPartitions(im)
	type rangeID struct {
		key    string
		stream uint64
		start  int64
	}
	live := map[rangeID]bool{}
	for id, s := range im.Streams {
		for _, rr := range s.Ranges {
			live[rangeID{rr.Key, id, rr.StartOffset}] = true
		}
	}
	v := ObjectsView{Objects: []ObjectView{}, PendingDeletes: []metadata.PendingDelete{}}
	for _, o := range im.Objects {
		ov := ObjectView{Key: o.Key, Size: o.Size, Kind: kindName(o.Kind), CreatedMs: o.CreatedMs, Ranges: []RangeView{}}
		if o.CreatedMs > 0 {
			ov.Created = time.UnixMilli(o.CreatedMs).UTC().Format(time.RFC3339)
		}
		for _, rg := range o.Ranges {
			p := parts[rg.Stream]
			if topic != "" && p.topic != topic {
				continue
			}
			ov.Ranges = append(ov.Ranges, RangeView{
				Stream: rg.Stream, Topic: p.topic, Partition: p.partition,
				StartOffset: rg.StartOffset, EndOffset: rg.EndOffset, Position: rg.Position, Size: rg.Size,
				Live: live[rangeID{o.Key, rg.Stream, rg.StartOffset}],
			})
		}
		if topic != "" && len(ov.Ranges) == 0 {
			continue
		}
		v.Objects = append(v.Objects, ov)
		v.Bytes += o.Size
	}
	slices.SortFunc(v.Objects, func(a, b ObjectView) int {
		return cmp.Or(cmp.Compare(a.CreatedMs, b.CreatedMs), cmp.Compare(a.Key, b.Key))
	})
	v.Count = len(v.Objects)
	if topic == "" {
		v.PendingDeletes = append(v.PendingDeletes, im.PendingDeletes...)
	}
	return v
}

// kindName is the short name of an object kind: SSO or SO.
func kindName(k metadata.ObjectKind) string {
	switch k {
	case metadata.KindStreamSet:
		return "SSO"
	case metadata.KindStream:
		return "SO"
	}
	return k.String()
}

// serveObjectInspect reads an object's footer and index from the object
// store. The object's size comes from the metadata index, or from a HEAD
// for an object the index does not hold.
func (b *Broker) serveObjectInspect(r *http.Request) (any, error) {
	key := r.URL.Query().Get("key")
	if key == "" {
		return nil, &adminError{http.StatusBadRequest, "missing query parameter key"}
	}
	ctx, cancel := context.WithTimeout(s3stream.WithReason(r.Context(), s3stream.ReasonOther), inspectTimeout)
	defer cancel()
	im := b.meta.Image()
	v := ObjectInspectView{Key: key, Blocks: []BlockView{}, Streams: []StreamInObject{}}
	if o := im.Objects[key]; o != nil {
		v.Size, v.Kind, v.CreatedMs = o.Size, kindName(o.Kind), o.CreatedMs
	} else {
		info, err := b.objects.Head(ctx, key)
		if errors.Is(err, s3stream.ErrNotFound) {
			return nil, &adminError{http.StatusNotFound, fmt.Sprintf("no object %q", key)}
		}
		if err != nil {
			return nil, fmt.Errorf("head %q: %w", key, err)
		}
		v.Size = info.Size
	}
	if v.Size < s3stream.FooterSize {
		return nil, fmt.Errorf("object %q has %d bytes, less than a footer", key, v.Size)
	}
	tail, err := b.objects.Get(ctx, key, v.Size-s3stream.FooterSize, s3stream.FooterSize)
	if err != nil {
		return nil, fmt.Errorf("read footer of %q: %w", key, err)
	}
	f, err := s3stream.DecodeFooter(tail)
	if err != nil {
		return nil, fmt.Errorf("object %q: %w", key, err)
	}
	v.Footer = FooterView{Version: f.Version, IndexPosition: f.IndexPosition, IndexSize: f.IndexSize, IndexChecksum: f.IndexChecksum}
	ix, err := b.reader.ObjectIndex(ctx, key, v.Size)
	if err != nil {
		return nil, err // names the key already
	}
	fillIndexView(&v, ix, streamPartitions(im))
	return v, nil
}

// fillIndexView adds the blocks and per-stream summaries of ix to v.
func fillIndexView(v *ObjectInspectView, ix *s3stream.ObjectIndex, parts partitionOf) {
	blocks := map[uint64]int{}
	for _, bi := range ix.Blocks {
		p := parts[bi.Stream]
		codec := "raw"
		if bi.Codec == s3stream.CodecLZ4 {
			codec = "lz4"
		}
		v.Blocks = append(v.Blocks, BlockView{
			Stream: bi.Stream, Topic: p.topic, Partition: p.partition,
			StartOffset: bi.StartOffset, EndOffset: bi.EndOffset,
			MinTimestamp: bi.MinTimestamp, MaxTimestamp: bi.MaxTimestamp,
			Position: bi.Position, StoredSize: bi.StoredSize, RawSize: bi.RawSize,
			Codec: codec, Batches: bi.Batches, Checksum: bi.Checksum,
		})
		blocks[bi.Stream]++
	}
	for _, s := range ix.Streams() {
		p := parts[s.Stream]
		v.Streams = append(v.Streams, StreamInObject{
			Stream: s.Stream, Topic: p.topic, Partition: p.partition,
			StartOffset: s.StartOffset, EndOffset: s.EndOffset, Position: s.Position, Size: s.Size,
			MinTimestamp: s.MinTimestamp, MaxTimestamp: s.MaxTimestamp, Blocks: blocks[s.Stream],
		})
	}
}
