package s3stream_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/shoal-io/shoal/s3stream"
)

// uploads produces rounds of n batches per stream, each round uploaded as
// its own object.
func (r *uploadRig) uploads(t *testing.T, rounds, n int) *s3stream.Uploader {
	t.Helper()
	u := s3stream.NewUploader(r.store, r.wal, r.meta, s3stream.UploaderConfig{Logger: quietLog})
	for range rounds {
		r.produce(t, n)
		if err := u.UploadOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// appendBig appends n batches of one record of size bytes to stream.
func (r *uploadRig) appendBig(t *testing.T, stream uint64, n, size int) {
	t.Helper()
	for range n {
		v := make([]byte, size)
		rand.Read(v) // incompressible: stored sizes are what the test expects
		if _, err := r.wal.Append(t.Context(), stream, [][]byte{prototest.Batch([]protocol.Record{{Value: v}})}); err != nil {
			t.Fatal(err)
		}
	}
}

// readStreams reads every stream back through image im and reader; unlike
// readAll it reports errors instead of failing, for use off the test
// goroutine.
func readStreams(ctx context.Context, im *metadata.Image, reader *s3stream.Reader, streams []uint64) (map[uint64][]byte, error) {
	out := map[uint64][]byte{}
	for _, s := range streams {
		so := im.StreamObjectsOf(s)
		for off := so.StartOffset; off < so.EndOffset; {
			loc, ok := im.Locate(s, off)
			if !ok {
				return nil, fmt.Errorf("stream %d: offset %d not located", s, off)
			}
			data, err := reader.Read(ctx, s, off, 64<<10, s3stream.ObjectLocation{
				Key: loc.Key, ObjectSize: loc.ObjectSize, StartOffset: loc.StartOffset, EndOffset: loc.EndOffset})
			if err != nil {
				return nil, err
			}
			out[s] = append(out[s], data...)
			_, hdrs, err := protocol.SplitBatches(data)
			if err != nil {
				return nil, err
			}
			off = hdrs[len(hdrs)-1].LastOffset() + 1
		}
	}
	return out, nil
}

func sameData(t *testing.T, streams []uint64, got, want map[uint64][]byte) {
	t.Helper()
	for _, s := range streams {
		if len(want[s]) == 0 || !bytes.Equal(got[s], want[s]) {
			t.Fatalf("stream %d: %d bytes read back, want %d identical bytes", s, len(got[s]), len(want[s]))
		}
	}
}

// kinds counts the live objects by kind.
func kinds(im *metadata.Image) map[metadata.ObjectKind]int {
	m := map[metadata.ObjectKind]int{}
	for _, o := range im.Objects {
		m[o.Kind]++
	}
	return m
}

func TestCompactorMergesSmallUploadsWhileReadersRead(t *testing.T) {
	r := newUploadRig(t, 4)
	r.uploads(t, 12, 3)
	if n := len(r.meta.Image().Objects); n != 12 {
		t.Fatalf("%d objects after 12 uploads", n)
	}
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	want := r.readAll(t, reader)

	// A reader keeps reading through whatever image is current while the
	// compaction runs and after it.
	var (
		stop   atomic.Bool
		reads  atomic.Int64
		wg     sync.WaitGroup
		readEr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		cold := s3stream.NewReader(r.store, s3stream.ReaderConfig{CacheBytes: 1 << 10})
		defer cold.Close()
		for !stop.Load() || reads.Load() < 3 {
			got, err := readStreams(context.Background(), r.meta.Image(), cold, r.streams)
			if err == nil {
				for _, s := range r.streams {
					if !bytes.Equal(got[s], want[s]) {
						err = fmt.Errorf("stream %d differs during compaction", s)
					}
				}
			}
			if err != nil {
				readEr = err
				return
			}
			reads.Add(1)
		}
	}()

	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog, MaxInputs: 5})
	n, err := c.CompactOnce(t.Context())
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if readEr != nil {
		t.Fatalf("concurrent reader: %v", readEr)
	}
	// 12 small SSOs, at most 5 inputs at a time: 5 -> 1, 1+4 -> 1, 1+3 -> 1.
	im := r.meta.Image()
	if k := kinds(im); k[metadata.KindStreamSet] != 1 || len(im.Objects) != 1 {
		t.Fatalf("after %d compactions: objects by kind %v, want one SSO", n, k)
	}
	for k := range im.Objects {
		if !bytes.HasPrefix([]byte(k), []byte("sso/g0/c")) {
			t.Fatalf("compacted SSO key %q lost its WAL group prefix", k)
		}
	}
	if len(im.PendingDeletes) < 12 {
		t.Fatalf("%d pending deletes; every input waits for the grace period", len(im.PendingDeletes))
	}
	got := r.readAll(t, reader)
	sameData(t, r.streams, got, want)
	st := c.Stats()
	if st.Compactions != int64(n) || st.OutputObjects != int64(n) || st.BytesWritten == 0 {
		t.Fatalf("stats %+v after %d compactions", st, n)
	}
	counts := r.store.Counts()[s3stream.ReasonCompaction]
	if counts.Put != int64(n) || counts.Get != st.InputObjects || counts.List != 0 || counts.Delete != 0 {
		t.Fatalf("compaction requests %+v for stats %+v", counts, st)
	}
	if tot := r.store.Total(); tot.List != 0 {
		t.Fatalf("%d LISTs without a sweep", tot.List)
	}
	// Nothing left to do.
	if n, err := c.CompactOnce(t.Context()); n != 0 || err != nil {
		t.Fatalf("second round: %d compactions, %v", n, err)
	}
}

func TestCompactorSplitsBigStreams(t *testing.T) {
	r := newUploadRig(t, 3)
	big := r.streams[1]
	u := s3stream.NewUploader(r.store, r.wal, r.meta, s3stream.UploaderConfig{Logger: quietLog})
	for range 4 {
		r.produce(t, 2)
		r.appendBig(t, big, 8, 1000) // 8 KB per upload
		if err := u.UploadOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	want := r.readAll(t, reader)

	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog, SplitBytes: 4096})
	if _, err := c.CompactOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	im := r.meta.Image()
	for _, s := range r.streams {
		for _, rg := range im.StreamObjectsOf(s).Ranges {
			kind := im.Objects[rg.Key].Kind
			if (s == big) != (kind == metadata.KindStream) {
				t.Fatalf("stream %d range [%d, %d) is in a %v object", s, rg.StartOffset, rg.EndOffset, kind)
			}
		}
	}
	// The big stream's split-out ranges were merged into one SO; the small
	// streams share one SSO.
	if k := kinds(im); k[metadata.KindStream] != 1 || k[metadata.KindStreamSet] != 1 {
		t.Fatalf("objects by kind %v, want one SO and one SSO", k)
	}
	if rg := im.StreamObjectsOf(big).Ranges; len(rg) != 1 || rg[0].StartOffset != 0 || rg[0].EndOffset != 64 {
		t.Fatalf("big stream ranges %+v", rg)
	}
	sameData(t, r.streams, r.readAll(t, reader), want)
}

func TestCompactorMergesStreamObjects(t *testing.T) {
	r := newUploadRig(t, 2)
	u := s3stream.NewUploader(r.store, r.wal, r.meta, s3stream.UploaderConfig{Logger: quietLog})
	// Split every upload into SOs at once, never merging them (every SO is
	// above half of a tiny MaxStreamObject).
	splitter := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{
		Logger: quietLog, SplitBytes: 1, MaxStreamObject: 1024})
	for range 6 {
		for _, s := range r.streams {
			r.appendBig(t, s, 3, 1000)
		}
		if err := u.UploadOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := splitter.CompactOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	im := r.meta.Image()
	if k := kinds(im); k[metadata.KindStream] != 12 || k[metadata.KindStreamSet] != 0 {
		t.Fatalf("objects by kind %v, want 6 SOs per stream", k)
	}
	reader := s3stream.NewReader(r.store, s3stream.ReaderConfig{})
	defer reader.Close()
	want := r.readAll(t, reader)
	soSize := im.Objects[im.StreamObjectsOf(r.streams[0]).Ranges[0].Key].Size

	// MaxStreamObject fits three of them: each stream becomes two SOs.
	merger := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{
		Logger: quietLog, MaxStreamObject: 3*soSize + soSize/2})
	n, err := merger.CompactOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	im = r.meta.Image()
	for _, s := range r.streams {
		rg := im.StreamObjectsOf(s).Ranges
		if len(rg) != 2 || rg[0].EndOffset != 9 || rg[1].EndOffset != 18 {
			t.Fatalf("after %d merges, stream %d ranges %+v; want [0,9) and [9,18)", n, s, rg)
		}
		for _, x := range rg {
			if o := im.Objects[x.Key]; o.Kind != metadata.KindStream || len(o.Ranges) != 1 {
				t.Fatalf("merged object %+v", o)
			}
		}
	}
	sameData(t, r.streams, r.readAll(t, reader), want)
}

// compactRace makes the first CompactObjects fail as if another node had
// compacted an input first.
type compactRace struct {
	*metadata.Store
	fail bool
}

func (c *compactRace) CompactObjects(ctx context.Context, in []string, out []metadata.Object, nowMs, graceMs int64) error {
	if c.fail {
		c.fail = false
		return fmt.Errorf("injected: %w", metadata.ErrUnknownObject)
	}
	return c.Store.CompactObjects(ctx, in, out, nowMs, graceMs)
}

func TestCompactorRemovesOutputsOfARejectedSwap(t *testing.T) {
	r := newUploadRig(t, 2)
	r.uploads(t, 3, 2)
	c := s3stream.NewCompactor(r.store, &compactRace{Store: r.meta, fail: true}, s3stream.CompactorConfig{Logger: quietLog})
	n, err := c.CompactOnce(t.Context())
	if !errors.Is(err, metadata.ErrUnknownObject) || n != 0 {
		t.Fatalf("round with a rejected swap: %d compactions, %v", n, err)
	}
	if got := objectCount(t, r.store); got != 3 {
		t.Fatalf("%d objects in storage after a rejected swap, want the 3 inputs only", got)
	}
	if c.Stats().Failed != 1 {
		t.Fatalf("stats %+v", c.Stats())
	}
	// The next round succeeds.
	if n, err := c.CompactOnce(t.Context()); n != 1 || err != nil {
		t.Fatalf("next round: %d, %v", n, err)
	}
}

func TestCompactorRunOnlyOnLeaderAndStops(t *testing.T) {
	r := newUploadRig(t, 1)
	r.uploads(t, 3, 1)
	c := s3stream.NewCompactor(r.store, r.meta, s3stream.CompactorConfig{Logger: quietLog, Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.meta.Image().Objects) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not compact")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
