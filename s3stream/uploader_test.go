package s3stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// uploadRig is one WAL group, a metadata store with a topic, an object store.
type uploadRig struct {
	wal     *wal.Group
	meta    *metadata.Store
	store   *s3stream.Metered
	streams []uint64
}

func newUploadRig(t *testing.T, partitions int32) *uploadRig {
	t.Helper()
	meta := metatest.Open(t)
	topic, err := meta.CreateTopic(t.Context(), metadata.TopicSpec{Name: "t", Partitions: partitions, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
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
	r := &uploadRig{wal: g, meta: meta, store: s3stream.NewMetered(s3test.NewMemStore())}
	for _, p := range topic.Partitions {
		r.streams = append(r.streams, p.Stream)
	}
	return r
}

// produce appends n batches of 4 records to every stream.
func (r *uploadRig) produce(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		for _, s := range r.streams {
			recs := make([]protocol.Record, 4)
			for j := range recs {
				recs[j] = protocol.Record{Value: []byte(fmt.Sprintf("s%d-b%d-r%d", s, i, j))}
			}
			if _, err := r.wal.Append(t.Context(), s, [][]byte{prototest.Batch(recs)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readAll reads every stream back through metadata and the Reader.
func (r *uploadRig) readAll(t *testing.T, reader *s3stream.Reader) map[uint64][]byte {
	t.Helper()
	out := map[uint64][]byte{}
	im := r.meta.Image()
	for _, s := range r.streams {
		so := im.StreamObjectsOf(s)
		for off := so.StartOffset; off < so.EndOffset; {
			loc, ok := im.Locate(s, off)
			if !ok {
				t.Fatalf("stream %d: offset %d not located", s, off)
			}
			data, err := reader.Read(t.Context(), s, off, 1<<20, s3stream.ObjectLocation{
				Key: loc.Key, ObjectSize: loc.ObjectSize, StartOffset: loc.StartOffset, EndOffset: loc.EndOffset})
			if err != nil {
				t.Fatal(err)
			}
			out[s] = append(out[s], data...)
			_, hdrs, err := protocol.SplitBatches(data)
			if err != nil {
				t.Fatal(err)
			}
			off = hdrs[len(hdrs)-1].LastOffset() + 1
		}
	}
	return out
}

// walBytes reads every stream from the WAL before an upload.
func (r *uploadRig) walBytes(t *testing.T) map[uint64][]byte {
	out := map[uint64][]byte{}
	for _, s := range r.streams {
		res, err := r.wal.Read(s, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		out[s] = res.Records
	}
	return out
}

func objectCount(t *testing.T, store s3stream.ObjectStore) int {
	infos, err := store.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	return len(infos)
}

func TestUploaderMovesWALDataToObjects(t *testing.T) {
	r := newUploadRig(t, 4)
	r.produce(t, 20)
	want := r.walBytes(t)
	u := s3stream.NewUploader(r.store, r.wal, r.meta, s3stream.UploaderConfig{Logger: quietLog})
	if err := u.UploadOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := objectCount(t, r.store); n != 1 {
		t.Fatalf("%d objects after one upload, want 1", n)
	}
	if p := r.wal.PendingBytes(); p != 0 {
		t.Fatalf("WAL still holds %d pending bytes", p)
	}
	for _, s := range r.streams {
		if _, err := r.wal.Read(s, 0, 100); !errors.Is(err, wal.ErrBelowWAL) {
			t.Fatalf("stream %d offset 0 still in the WAL: %v", s, err)
		}
		if so := r.meta.Image().StreamObjectsOf(s); so.EndOffset != 80 {
			t.Fatalf("stream %d committed up to %d, want 80", s, so.EndOffset)
		}
	}
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	got := r.readAll(t, reader)
	for _, s := range r.streams {
		if !bytes.Equal(got[s], want[s]) {
			t.Fatalf("stream %d: object data differs from what the WAL held", s)
		}
	}
	if c := r.store.Counts()[s3stream.ReasonUpload]; c.Put != 1 {
		t.Fatalf("upload PUTs counted: %+v", c)
	}
	// More data continues where the first object ended.
	r.produce(t, 3)
	if err := u.UploadOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if so := r.meta.Image().StreamObjectsOf(r.streams[0]); so.EndOffset != 92 || len(so.Ranges) != 2 {
		t.Fatalf("after a second upload: end %d, %d ranges", so.EndOffset, len(so.Ranges))
	}
}

// failingCommitter fails the next n commits, as a crash between PUT and
// commit would leave things.
type failingCommitter struct {
	*metadata.Store
	fail int
}

func (f *failingCommitter) CommitObject(ctx context.Context, obj metadata.Object) error {
	if f.fail > 0 {
		f.fail--
		return errors.New("injected: process died before the commit")
	}
	return f.Store.CommitObject(ctx, obj)
}

func TestUploaderRetryAfterFailedCommitStoresOnce(t *testing.T) {
	r := newUploadRig(t, 2)
	r.produce(t, 5)
	want := r.walBytes(t)
	u := s3stream.NewUploader(r.store, r.wal, &failingCommitter{Store: r.meta, fail: 1}, s3stream.UploaderConfig{Logger: quietLog})
	if err := u.UploadOnce(t.Context()); err == nil {
		t.Fatal("upload with a failing commit succeeded")
	}
	if r.wal.PendingBytes() == 0 {
		t.Fatal("the WAL was trimmed although the commit failed")
	}
	if err := u.UploadOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Two PUTs, one committed: the other is an orphan for the sweep.
	if n, live := objectCount(t, r.store), len(r.meta.Image().Objects); n != 2 || live != 1 {
		t.Fatalf("%d objects in storage, %d in metadata; want 2 and 1", n, live)
	}
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	got := r.readAll(t, reader)
	for _, s := range r.streams {
		if !bytes.Equal(got[s], want[s]) {
			t.Fatalf("stream %d: data differs after the retried upload", s)
		}
	}
}

// failingTrim fails the next trim, as a crash between commit and trim would.
type failingTrim struct {
	*wal.Group
	fail bool
}

func (f *failingTrim) Trim(ctx context.Context, ranges []wal.PendingRange) error {
	if f.fail {
		f.fail = false
		return errors.New("injected: process died before the trim")
	}
	return f.Group.Trim(ctx, ranges)
}

func TestUploaderResumesAfterCommitWithoutTrim(t *testing.T) {
	r := newUploadRig(t, 2)
	r.produce(t, 5)
	src := &failingTrim{Group: r.wal, fail: true}
	u := s3stream.NewUploader(r.store, src, r.meta, s3stream.UploaderConfig{Logger: quietLog})
	if err := u.UploadOnce(t.Context()); err == nil {
		t.Fatal("upload with a failing trim succeeded")
	}
	r.produce(t, 2) // new data arrives meanwhile
	if err := u.UploadOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	im := r.meta.Image()
	for _, s := range r.streams {
		so := im.StreamObjectsOf(s)
		if so.EndOffset != 28 || len(so.Ranges) != 2 || so.Ranges[0].EndOffset != 20 {
			t.Fatalf("stream %d: %+v; want [0,20) then [20,28)", s, so)
		}
	}
	if r.wal.PendingBytes() != 0 {
		t.Fatal("WAL not trimmed after the resumed upload")
	}
}

func TestUploaderRunUploadsByAge(t *testing.T) {
	r := newUploadRig(t, 1)
	r.produce(t, 1)
	u := s3stream.NewUploader(r.store, r.wal, r.meta, s3stream.UploaderConfig{
		Logger: quietLog, UploadAge: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for r.wal.PendingBytes() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a small amount of old data was never uploaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
