package s3stream_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-io/shoal/internal/raftgroup"
	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/metadata/metatest"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
	"github.com/shoal-io/shoal/wal"
)

// kcRig is a WAL group, metadata with topics by name, an object store.
type kcRig struct {
	wal    *wal.Group
	meta   *metadata.Store
	store  *s3stream.Metered
	stream map[string]uint64 // topic -> its one stream
	want   map[string]map[int64]protocol.Record
}

func newKCRig(t *testing.T, topics map[string]map[string]string) *kcRig {
	t.Helper()
	r := &kcRig{meta: metatest.Open(t), store: s3stream.NewMetered(s3test.NewMemStore()), stream: map[string]uint64{}}
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		tp, err := r.meta.CreateTopic(t.Context(), metadata.TopicSpec{Name: name, Partitions: 1, ReplicationFactor: 1, Configs: topics[name]})
		if err != nil {
			t.Fatal(err)
		}
		r.stream[name] = tp.Partitions[0].Stream
	}
	mux, err := raftgroup.Listen("127.0.0.1:0", quietLog)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	g, err := wal.Open(ctx, wal.Config{Raft: raftgroup.Config{Name: "wal-0", Dir: t.TempDir(), NodeID: "1", Mux: mux, Logger: quietLog}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); mux.Close() })
	r.wal = g
	return r
}

// kv is a record: key and value ("" with tomb: a tombstone).
type kv struct {
	key, value string
	tomb       bool
}

// appendBatch appends one batch of records to topic's stream and returns
// its base offset.
func (r *kcRig) appendBatch(t *testing.T, topic string, codec protocol.Codec, recs ...kv) int64 {
	t.Helper()
	prs := make([]protocol.Record, len(recs))
	for i, x := range recs {
		prs[i] = protocol.Record{TimestampDelta: int64(i), Key: []byte(x.key)}
		if !x.tomb {
			prs[i].Value = []byte(x.value)
		}
	}
	res, err := r.wal.Append(t.Context(), r.stream[topic], [][]byte{prototest.Batch(prs, prototest.WithCodec(codec),
		prototest.WithFirstTimestamp(time.Now().UnixMilli()))})
	if err != nil {
		t.Fatal(err)
	}
	return res.BaseOffset
}

// readStream reads topic's stream from object storage: its batch headers
// and records by offset. It checks that the batches cover the offsets
// densely from the log start to the end.
func (r *kcRig) readStream(t *testing.T, reader *s3stream.Reader, topic string) map[int64]protocol.Record {
	t.Helper()
	s := r.stream[topic]
	im := r.meta.Image()
	so := im.StreamObjectsOf(s)
	out := map[int64]protocol.Record{}
	for off := so.StartOffset; off < so.EndOffset; {
		loc, ok := im.Locate(s, off)
		if !ok {
			t.Fatalf("%s: offset %d not located", topic, off)
		}
		data, err := reader.Read(t.Context(), s, off, 1<<20, s3stream.ObjectLocation{
			Key: loc.Key, ObjectSize: loc.ObjectSize, StartOffset: loc.StartOffset, EndOffset: loc.EndOffset})
		if err != nil {
			t.Fatal(err)
		}
		for pos := 0; pos < len(data); {
			h, err := protocol.ParseBatchHeader(data[pos:])
			if err != nil {
				t.Fatal(err)
			}
			size := int(h.BatchLength) + 12
			if h.BaseOffset != off {
				t.Fatalf("%s: batch at %d, expected %d: the offsets have a gap", topic, h.BaseOffset, off)
			}
			recs, err := protocol.DecodeRecords(data[pos:pos+size], 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				o := h.BaseOffset + int64(rec.OffsetDelta)
				if o > h.LastOffset() {
					t.Fatalf("%s: record at %d beyond its batch's last offset %d", topic, o, h.LastOffset())
				}
				out[o] = rec
			}
			off = h.LastOffset() + 1
			pos += size
		}
	}
	return out
}

// latestPerKey returns, from records by offset, the offset of each key's
// latest record.
func latestPerKey(all map[int64]kv) map[string]int64 {
	out := map[string]int64{}
	for _, off := range slices.Sorted(maps.Keys(all)) {
		out[all[off].key] = off
	}
	return out
}

func TestKeyCompactionKeepsLatestPerKey(t *testing.T) {
	r := newKCRig(t, map[string]map[string]string{
		"keep": {"cleanup.policy": "compact", "delete.retention.ms": "3600000", "min.cleanable.dirty.ratio": "0.1"},
		"drop": {"cleanup.policy": "compact,delete", "delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0.1"},
		// lazy waits until 99% of its cleanable bytes are dirty.
		"lazy":  {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.99"},
		"plain": nil, // shares the SSOs; untouched
	})
	u := s3stream.NewUploader(r.store, r.wal, r.meta, s3stream.UploaderConfig{Logger: quietLog})
	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog})
	n := 0
	uploadAndCompact := func() {
		t.Helper()
		if err := u.UploadOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		done, err := c.CompactOnce(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n += done
	}
	codecs := []protocol.Codec{protocol.CodecNone, protocol.CodecZstd, protocol.CodecGzip, protocol.CodecLZ4, protocol.CodecSnappy}
	sent := map[string]map[int64]kv{"keep": {}, "drop": {}, "lazy": {}}
	add := func(topic string, codec protocol.Codec, recs ...kv) {
		base := r.appendBatch(t, topic, codec, recs...)
		for i, x := range recs {
			sent[topic][base+int64(i)] = x
		}
	}
	for round := range 6 {
		for _, topic := range []string{"keep", "drop", "lazy"} {
			codec := codecs[round%len(codecs)]
			for b := range 3 {
				var recs []kv
				for k := range 5 {
					recs = append(recs, kv{key: fmt.Sprint("k", k), value: fmt.Sprintf("%s-r%d-b%d", topic, round, b)})
				}
				add(topic, codec, recs...)
			}
			switch round {
			case 0:
				add(topic, codec, kv{key: "t1", value: "x"}, kv{key: "t2", value: "y"})
			case 3: // tombstones for t1 and t2
				add(topic, codec, kv{key: "t1", tomb: true}, kv{key: "t2", tomb: true})
			case 4: // t2 comes back
				add(topic, codec, kv{key: "t2", value: topic + "-again"})
			}
		}
		if _, err := r.wal.Append(t.Context(), r.stream["plain"], [][]byte{prototest.Batch(prototest.Values("p", "q"))}); err != nil {
			t.Fatal(err)
		}
		uploadAndCompact()
	}
	// The head: one last upload with a key of its own.
	add("keep", protocol.CodecNone, kv{key: "head", value: "h"})
	add("drop", protocol.CodecNone, kv{key: "head", value: "h"})
	uploadAndCompact()
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	im := r.meta.Image()
	for _, topic := range []string{"keep", "drop"} {
		got := r.readStream(t, reader, topic)
		want := latestPerKey(sent[topic])
		if topic == "drop" {
			delete(want, "t1") // its tombstone is past delete.retention.ms=0
		}
		if len(got) != len(want) {
			for _, rg := range im.StreamObjectsOf(r.stream[topic]).Ranges {
				t.Logf("range %+v size %d", rg, im.Objects[rg.Key].Size)
			}
			t.Fatalf("%s after %d compactions: %d records read, want %d (one per key): %v", topic, n, len(got), len(want), got)
		}
		for key, off := range want {
			rec, ok := got[off]
			exp := sent[topic][off]
			if !ok || string(rec.Key) != key || (rec.Value == nil) != exp.tomb || string(rec.Value) != exp.value {
				t.Fatalf("%s: key %s: read %+v at offset %d, want %+v", topic, key, rec, off, exp)
			}
		}
		if rec, ok := got[want["t1"]]; topic == "keep" && (!ok || rec.Value != nil) {
			t.Fatalf("keep: tombstone of t1 lost")
		}
		// History: one key-compacted SO, the head included (the WAL is the
		// dirty head; every committed range is cleanable).
		rg := im.StreamObjectsOf(r.stream[topic]).Ranges
		if len(rg) != 1 || !strings.Contains(rg[0].Key, "-k") || im.Objects[rg[0].Key].Kind != metadata.KindStream {
			t.Fatalf("%s ranges %+v", topic, rg)
		}
		hasTomb := !strings.Contains(rg[0].Key, "-k-")
		if hasTomb != (topic == "keep") {
			t.Fatalf("%s: compacted object %s says tombstones=%v", topic, rg[0].Key, hasTomb)
		}
	}
	if rg := im.StreamObjectsOf(r.stream["lazy"]).Ranges; len(rg) < 3 {
		t.Fatalf("lazy: ranges %+v; min.cleanable.dirty.ratio 0.99 should leave dirty ranges", rg)
	}
	if plain := r.readStream(t, reader, "plain"); len(plain) != 12 {
		t.Fatalf("plain topic: %d records, want 12", len(plain))
	}
	// Stable: nothing left to do.
	if n, err := c.CompactOnce(t.Context()); n != 0 || err != nil {
		t.Fatalf("second round: %d compactions, %v", n, err)
	}
}

// TestKeyCompactionDropsDueTombstones: a tombstone kept by one pass goes
// in a later pass once delete.retention.ms has passed; a batch losing every
// record hands its offsets to a neighbour.
func TestKeyCompactionDropsDueTombstones(t *testing.T) {
	r := newKCRig(t, map[string]map[string]string{
		"t": {"cleanup.policy": "compact", "delete.retention.ms": "300", "min.cleanable.dirty.ratio": "0.01"},
	})
	u := s3stream.NewUploader(r.store, r.wal, r.meta, s3stream.UploaderConfig{Logger: quietLog})
	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog})
	upload := func() {
		if err := u.UploadOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CompactOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	r.appendBatch(t, "t", protocol.CodecZstd, kv{key: "a", value: "1"}, kv{key: "b", value: "1"})
	r.appendBatch(t, "t", protocol.CodecNone, kv{key: "a", value: "2"}) // superseded whole below
	upload()
	r.appendBatch(t, "t", protocol.CodecGzip, kv{key: "a", tomb: true}, kv{key: "c", value: "1"})
	r.appendBatch(t, "t", protocol.CodecNone, kv{key: "b", value: "2"}) // leaves offset 1 of batch 0 alone
	upload()
	r.appendBatch(t, "t", protocol.CodecNone, kv{key: "head", value: "x"})
	upload()
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	// Offsets: 0 a=1, 1 b=1, 2 a=2, 3 a=tomb, 4 c=1, 5 b=2, 6 head.
	keys := func(got map[int64]protocol.Record) string {
		var s []string
		for _, off := range slices.Sorted(maps.Keys(got)) {
			v := "<nil>"
			if got[off].Value != nil {
				v = string(got[off].Value)
			}
			s = append(s, fmt.Sprintf("%d:%s=%s", off, got[off].Key, v))
		}
		return strings.Join(s, " ")
	}
	if got := keys(r.readStream(t, reader, "t")); got != "3:a=<nil> 4:c=1 5:b=2 6:head=x" {
		t.Fatalf("after the first pass: %s", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.CompactOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := keys(r.readStream(t, reader, "t"))
		if got == "4:c=1 5:b=2 6:head=x" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tombstone still there: %s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := c.CompactOnce(t.Context()); n != 0 || err != nil {
		t.Fatalf("after the tombstone went: %d compactions, %v", n, err)
	}
}
