package s3stream_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
)

func putJunk(t *testing.T, store s3stream.ObjectStore, key string) {
	t.Helper()
	if err := store.Put(t.Context(), key, bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
}

func TestSweepDeletesOnlyOldUnreferencedObjects(t *testing.T) {
	r := newUploadRig(t, 2)
	r.uploads(t, 3, 1)
	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog})
	if n, err := c.CompactOnce(t.Context()); n != 1 || err != nil {
		t.Fatalf("compaction: %d, %v", n, err)
	}
	im := r.meta.Image()
	if len(im.Objects) != 1 || len(im.PendingDeletes) != 3 {
		t.Fatalf("%d live, %d pending", len(im.Objects), len(im.PendingDeletes))
	}
	putJunk(t, r.store, "sso/g0/1-orphan")  // a PUT whose commit never came
	putJunk(t, r.store, "so/1/0-orphan")    // a compaction output never swapped in
	putJunk(t, r.store, "elsewhere/orphan") // not a prefix Shoal writes
	before := listKeys(t, r.store, "")

	const grace = time.Minute
	gc := s3stream.NewGC(r.store, r.meta, s3stream.GCConfig{Logger: quietLog, Grace: grace})
	if n, err := gc.Sweep(t.Context(), time.Now()); n != 0 || err != nil {
		t.Fatalf("sweep deleted %d fresh objects (%v)", n, err)
	}
	if n, err := gc.Sweep(t.Context(), time.Now().Add(grace+time.Second)); n != 2 || err != nil {
		t.Fatalf("sweep deleted %d old orphans (%v), want 2", n, err)
	}
	after := listKeys(t, r.store, "")
	for _, k := range before {
		want := k != "sso/g0/1-orphan" && k != "so/1/0-orphan"
		if slices.Contains(after, k) != want {
			t.Fatalf("key %s kept=%v; keys before %v, after %v", k, !want, before, after)
		}
	}
	// The sweep is the only LIST (the test's own are counted as "other"):
	// two prefixes, two sweeps.
	for reason, c := range r.store.Counts() {
		if want := map[s3stream.Reason]int64{s3stream.ReasonGC: 4, s3stream.ReasonOther: c.List}[reason]; c.List != want {
			t.Fatalf("%d LISTs for %s, want %d", c.List, reason, want)
		}
	}
	if c := r.store.Counts()[s3stream.ReasonGC]; c.Delete != 2 {
		t.Fatalf("gc requests %+v", c)
	}
	// Pending deletes (still referenced by metadata) go through GC proper.
	if n, err := gc.DeleteDue(t.Context(), time.Now().Add(time.Hour)); n != 3 || err != nil {
		t.Fatalf("deleted %d pending (%v)", n, err)
	}
	if n := objectCount(t, r.store); n != 2 {
		t.Fatalf("%d objects left, want the live SSO and elsewhere/orphan", n)
	}
}

func TestGCRunDeletesDueObjectsAndSweeps(t *testing.T) {
	r := newUploadRig(t, 1)
	r.uploads(t, 2, 1)
	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog, Grace: time.Millisecond})
	if n, err := c.CompactOnce(t.Context()); n != 1 || err != nil {
		t.Fatalf("compaction: %d, %v", n, err)
	}
	putJunk(t, r.store, "sso/g0/2-orphan")
	gc := s3stream.NewGC(r.store, r.meta, s3stream.GCConfig{Logger: quietLog,
		Interval: 10 * time.Millisecond, SweepDelay: 10 * time.Millisecond, Grace: time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); gc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.meta.Image().PendingDeletes) > 0 || objectCount(t, r.store) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("pending %v, objects %v", r.meta.Image().PendingDeletes, listKeys(t, r.store, ""))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeleteDueKeepsKeysWhoseDeleteFailed(t *testing.T) {
	r := newUploadRig(t, 1)
	r.uploads(t, 2, 1)
	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog})
	if _, err := c.CompactOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	faulty := s3test.NewFaultStore(r.store)
	faulty.FailAll(s3stream.ErrUnreachable)
	gc := s3stream.NewGC(faulty, r.meta, s3stream.GCConfig{Logger: quietLog})
	later := time.Now().Add(time.Hour)
	if n, err := gc.DeleteDue(t.Context(), later); n != 0 || err == nil {
		t.Fatalf("deleted %d with a failing store (%v)", n, err)
	}
	if p := r.meta.Image().PendingDeletes; len(p) != 2 {
		t.Fatalf("pending %v; failed deletes must stay pending", p)
	}
	faulty.FailAll(nil)
	if n, err := gc.DeleteDue(t.Context(), later); n != 2 || err != nil {
		t.Fatalf("after recovery deleted %d (%v)", n, err)
	}
}

// The whole lifecycle against a real MinIO: uploads, compaction with a
// concurrent reader, retention, GC after the grace, and the orphan sweep
// judged by MinIO's own LastModified.
func TestCompactionRetentionGCMinIO(t *testing.T) {
	m := s3test.StartMinIO(t)
	r := newUploadRig(t, 3)
	r.store = s3stream.NewMetered(m.Store(t, "shoal-compaction"))
	now := time.Now()
	r.uploadAt(t, 4, 500, now.Add(-3*time.Hour), now.Add(-2*time.Hour), now, now, now)
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	want := r.readAll(t, reader)

	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog, Grace: time.Second})
	if n, err := c.CompactOnce(t.Context()); n != 1 || err != nil {
		t.Fatalf("compaction: %d, %v", n, err)
	}
	if im := r.meta.Image(); len(im.Objects) != 1 || len(im.PendingDeletes) != 5 {
		t.Fatalf("%d live, %d pending after compaction", len(im.Objects), len(im.PendingDeletes))
	}
	sameData(t, r.streams, r.readAll(t, reader), want)

	// The compacted object holds all ranges: retention by time cannot cut
	// it (whole objects only); by bytes 0 it goes entirely.
	r.setConfigs(t, map[string]string{"retention.ms": "5400000"})
	ret := s3stream.NewRetention(r.store, r.meta, s3stream.RetentionConfig{Logger: quietLog, Grace: time.Second})
	if n, err := ret.EnforceOnce(t.Context(), now); n != 0 || err != nil {
		t.Fatalf("time retention trimmed %d (%v)", n, err)
	}
	r.setConfigs(t, map[string]string{"retention.bytes": "0"})
	if n, err := ret.EnforceOnce(t.Context(), now); n != 3 || err != nil {
		t.Fatalf("size retention trimmed %d (%v)", n, err)
	}
	for _, s := range r.streams {
		if so := r.meta.Image().StreamObjectsOf(s); so.StartOffset != 20 || len(so.Ranges) != 0 {
			t.Fatalf("stream %d after retention: %+v", s, so)
		}
	}
	gc := s3stream.NewGC(r.store, r.meta, s3stream.GCConfig{Logger: quietLog, Grace: time.Minute})
	if n, err := gc.DeleteDue(t.Context(), time.Now().Add(2*time.Second)); n != 6 || err != nil {
		t.Fatalf("gc deleted %d (%v), want 6", n, err)
	}
	putJunk(t, r.store, "sso/g0/9-orphan")
	if n, err := gc.Sweep(t.Context(), time.Now()); n != 0 || err != nil {
		t.Fatalf("sweep deleted %d fresh objects (%v)", n, err)
	}
	if n, err := gc.Sweep(t.Context(), time.Now().Add(time.Minute+2*time.Second)); n != 1 || err != nil {
		t.Fatalf("sweep deleted %d (%v), want the orphan", n, err)
	}
	if keys := listKeys(t, r.store, ""); len(keys) != 0 {
		t.Fatalf("bucket still holds %v", keys)
	}
}
