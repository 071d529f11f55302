package s3stream_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/shoal-io/shoal/s3stream"
)

// appendAt appends to every stream n one-record batches of size random
// bytes with timestamp ts.
func (r *uploadRig) appendAt(t *testing.T, ts time.Time, n, size int) {
	t.Helper()
	for _, s := range r.streams {
		for range n {
			v := make([]byte, size)
			rand.Read(v)
			b := prototest.Batch([]protocol.Record{{Value: v}}, prototest.WithFirstTimestamp(ts.UnixMilli()))
			if _, err := r.wal.Append(t.Context(), s, [][]byte{b}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (r *uploadRig) setConfigs(t *testing.T, kv map[string]string) {
	t.Helper()
	if err := r.meta.AlterTopicConfigs(t.Context(), "t", kv, nil); err != nil {
		t.Fatal(err)
	}
}

// uploadAt uploads one object per timestamp, n batches per stream each.
func (r *uploadRig) uploadAt(t *testing.T, n, size int, ts ...time.Time) {
	t.Helper()
	u := s3stream.NewUploader(r.store, r.wal, r.meta, s3stream.UploaderConfig{Logger: quietLog})
	for _, x := range ts {
		r.appendAt(t, x, n, size)
		if err := u.UploadOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetentionByTimeTrimsWholeOldRanges(t *testing.T) {
	r := newUploadRig(t, 2)
	now := time.Now()
	r.uploadAt(t, 3, 100, now.Add(-3*time.Hour), now.Add(-2*time.Hour), now)
	ret := s3stream.NewRetention(r.store, r.meta, s3stream.RetentionConfig{Logger: quietLog, Grace: time.Minute})

	// The default retention.ms (7 days) keeps everything.
	if n, err := ret.EnforceOnce(t.Context(), now); n != 0 || err != nil {
		t.Fatalf("default retention trimmed %d streams (%v)", n, err)
	}
	// So do a compact-only policy and unlimited retention.
	r.setConfigs(t, map[string]string{"retention.ms": "1", "cleanup.policy": "compact"})
	if n, err := ret.EnforceOnce(t.Context(), now); n != 0 || err != nil {
		t.Fatalf("compact-only topic trimmed %d streams (%v)", n, err)
	}
	r.setConfigs(t, map[string]string{"retention.ms": "-1", "cleanup.policy": "delete"})
	if n, err := ret.EnforceOnce(t.Context(), now); n != 0 || err != nil {
		t.Fatalf("unlimited retention trimmed %d streams (%v)", n, err)
	}

	r.setConfigs(t, map[string]string{"retention.ms": "5400000"}) // 90 min
	if n, err := ret.EnforceOnce(t.Context(), now); n != 2 || err != nil {
		t.Fatalf("retention trimmed %d streams (%v), want 2", n, err)
	}
	im := r.meta.Image()
	for _, s := range r.streams {
		so := im.StreamObjectsOf(s)
		if so.StartOffset != 6 || len(so.Ranges) != 1 {
			t.Fatalf("stream %d: start %d with %d ranges; want 6 and 1", s, so.StartOffset, len(so.Ranges))
		}
		if _, ok := im.Locate(s, 5); ok {
			t.Fatalf("stream %d: offset 5 still located", s)
		}
	}
	if len(im.Objects) != 1 || len(im.PendingDeletes) != 2 {
		t.Fatalf("%d live objects, %d pending deletes; want 1 and 2", len(im.Objects), len(im.PendingDeletes))
	}
	// One index read per object, cached across streams and passes.
	if c := r.store.Counts()[s3stream.ReasonGC]; c.Get != 3 || c.List != 0 || c.Delete != 0 {
		t.Fatalf("retention requests %+v; want 3 index GETs", c)
	}
	if n, err := ret.EnforceOnce(t.Context(), now); n != 0 || err != nil {
		t.Fatalf("second pass trimmed %d (%v)", n, err)
	}

	// GC: nothing before the grace period, everything after it.
	gc := s3stream.NewGC(r.store, r.meta, s3stream.GCConfig{Logger: quietLog})
	if n, err := gc.DeleteDue(t.Context(), time.Now()); n != 0 || err != nil {
		t.Fatalf("deleted %d objects before their grace (%v)", n, err)
	}
	if n, err := gc.DeleteDue(t.Context(), time.Now().Add(2*time.Minute)); n != 2 || err != nil {
		t.Fatalf("deleted %d objects after the grace (%v), want 2", n, err)
	}
	if p := r.meta.Image().PendingDeletes; len(p) != 0 {
		t.Fatalf("pending deletes left: %v", p)
	}
	if n := objectCount(t, r.store); n != 1 {
		t.Fatalf("%d objects in storage, want 1", n)
	}
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	got := r.readAll(t, reader)
	for _, s := range r.streams {
		if _, hdrs, err := protocol.SplitBatches(got[s]); err != nil || len(hdrs) != 3 || hdrs[0].BaseOffset != 6 {
			t.Fatalf("stream %d after retention: %d batches (%v)", s, len(hdrs), err)
		}
	}
	if c := r.store.Counts()[s3stream.ReasonGC]; c.Delete != 2 {
		t.Fatalf("gc requests %+v", c)
	}
}

func TestRetentionByBytesKeepsAtLeastTheLimit(t *testing.T) {
	r := newUploadRig(t, 2)
	now := time.Now()
	r.uploadAt(t, 1, 1000, now, now, now, now)
	r.setConfigs(t, map[string]string{"retention.bytes": "2500", "retention.ms": "-1"})
	ret := s3stream.NewRetention(r.store, r.meta, s3stream.RetentionConfig{Logger: quietLog})
	if n, err := ret.EnforceOnce(t.Context(), now); n != 2 || err != nil {
		t.Fatalf("retention trimmed %d streams (%v), want 2", n, err)
	}
	im := r.meta.Image()
	for _, s := range r.streams {
		// Each range holds one ~1 KB batch. As in Kafka, the oldest goes
		// only while at least 2500 bytes stay: three ranges stay, one goes.
		if so := im.StreamObjectsOf(s); so.StartOffset != 1 || len(so.Ranges) != 3 {
			t.Fatalf("stream %d: start %d, %d ranges; want 1 and 3", s, so.StartOffset, len(so.Ranges))
		}
	}
	if len(im.PendingDeletes) != 1 {
		t.Fatalf("%d pending deletes, want 1", len(im.PendingDeletes))
	}
	// Size retention reads no index.
	if c := r.store.Counts()[s3stream.ReasonGC]; c.Get != 0 {
		t.Fatalf("size retention issued %d GETs", c.Get)
	}
}
