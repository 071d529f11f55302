package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
)

// Small upload thresholds, so that a few hundred MB make many objects.
var smallUploads = []string{"--upload-bytes", "8MiB", "--upload-age", "1s"}

// TestObjectStorageRoundTrip produces 300 MB across 16 partitions to a
// broker on MinIO with small upload thresholds, checks that objects appear
// in the bucket and that the WAL on disk stays bounded, then restarts the
// broker (cold caches) and reads everything back from offset 0: every
// record exactly once, offsets dense, contents equal, and served from
// object storage (the fetch GET counters).
func TestObjectStorageRoundTrip(t *testing.T) {
	const (
		topic      = "roundtrip"
		partitions = 16
		total      = 300_000_000
		recordSize = 16 << 10
		walBudget  = 64 << 20
		// walBound is what the WAL directory of a single broker may reach
		// (docs/configuration.md, --wal-max-pending-bytes): the Raft log
		// with the entries in flight past the budget and bolt's free pages
		// (about 105 MiB measured). Its snapshots hold no batch bytes (only
		// replicated groups' do).
		walBound = 2 * walBudget
	)
	m := s3test.StartMinIO(t)
	b := StartBroker(t, WithMinIO(m, "roundtrip"),
		WithArgs(append(smallUploads, "--wal-max-pending-bytes", fmt.Sprint(walBudget))...))
	createTopic(t, b, topic, partitions)

	// Sample the WAL's size on disk while producing.
	walDir := filepath.Join(b.DataDir, "wal-0")
	var maxWAL atomic.Int64
	ctx, stop := context.WithCancel(t.Context())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			if n := dirSize(t, walDir); n > maxWAL.Load() {
				maxWAL.Store(n)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	p := newProducer(t, b, topic, partitions, recordSize)
	began := time.Now()
	p.produceBytes(t, total)
	produced := time.Since(began)
	stop()
	<-sampled
	records, bytes, _ := p.ds.counts()
	t.Logf("produced %d records, %.1f MB in %v (%.1f MB/s); WAL on disk at most %.1f MiB",
		records, float64(bytes)/1e6, produced.Round(time.Millisecond), float64(bytes)/1e6/produced.Seconds(),
		float64(maxWAL.Load())/(1<<20))
	if w := maxWAL.Load(); w > walBound {
		t.Errorf("WAL on disk reached %d bytes, bound %d", w, walBound)
	}

	v := waitUploaded(t, b, 60*time.Second)
	up := v.Requests[s3stream.ReasonUpload]
	keys := listBucket(t, m, "roundtrip")
	t.Logf("uploaded: %d PUTs, %.1f MB; %d objects in metadata (%.1f MB), %d in the bucket",
		up.Put, float64(up.PutBytes)/1e6, v.Objects, float64(v.ObjectBytes)/1e6, len(keys))
	if up.PutBytes < bytes {
		t.Errorf("upload PUT bytes %d, less than the %d bytes produced", up.PutBytes, bytes)
	}
	// The uploader takes everything pending when it starts an object, so
	// while uploads trail an unthrottled producer objects grow past 8 MiB.
	if v.Objects < 3 || len(keys) < v.Objects {
		t.Errorf("%d objects in metadata and %d in the bucket, want >= 3 with every referenced one stored", v.Objects, len(keys))
	}

	// Cold caches: a new process. Everything is below the WAL now.
	b.Stop()
	b.Restart()
	res := verifyTopic(t, b, topic, p.ds, 3*time.Minute)
	v = storageView(t, b)
	fetch := v.Requests[s3stream.ReasonFetch]
	t.Logf("read back %d records, %.1f MB in %v (%.1f MB/s): %d fetch GETs, %.1f MB; reader %+v",
		res.records, float64(res.bytes)/1e6, res.elapsed.Round(time.Millisecond),
		float64(res.bytes)/1e6/res.elapsed.Seconds(), fetch.Get, float64(fetch.GetBytes)/1e6, v.Reader)
	if res.records != records {
		t.Errorf("read %d records, produced %d", res.records, records)
	}
	if fetch.Get == 0 || fetch.GetBytes < bytes*9/10 {
		t.Errorf("fetch from object storage: %d GETs of %d bytes, want >= 90%% of the %d bytes produced",
			fetch.Get, fetch.GetBytes, bytes)
	}
}
