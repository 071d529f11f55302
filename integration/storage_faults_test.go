package integration

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
	"github.com/twmb/franz-go/pkg/kerr"
)

// pacedProducer runs p.produce in the background, one record per given
// interval at most, until stopped.
type pacedProducer struct {
	stopped chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// startPaced starts the loop. Records are produced with the test's
// context (a cancelled record context fails the record), so stop does not
// fail the records the client holds.
func startPaced(t testing.TB, p *producer, every time.Duration) *pacedProducer {
	pp := &pacedProducer{stopped: make(chan struct{})}
	ctx := t.Context()
	pp.wg.Add(1)
	go func() {
		defer pp.wg.Done()
		for {
			select {
			case <-pp.stopped:
				return
			case <-ctx.Done():
				return
			default:
			}
			p.produce(ctx)
			time.Sleep(every)
		}
	}()
	return pp
}

// stop ends the loop; records already handed to the client stay buffered
// (flush the producer to wait for them).
func (pp *pacedProducer) stop() {
	pp.once.Do(func() { close(pp.stopped) })
	pp.wg.Wait()
}

// waitAcked waits until the dataset holds at least n acknowledged records.
func waitAcked(t testing.TB, ds *dataset, n int64, d time.Duration) {
	t.Helper()
	Eventually(t, d, func() error {
		if got, _, failed := ds.counts(); got < n {
			return fmt.Errorf("%d of %d records acknowledged (%d failed)", got, n, failed)
		}
		return nil
	})
}

// TestUploadCrash kills shoald (kill -9) while an upload hangs after its
// PUT (the object is stored, metadata does not know it) and after its
// metadata commit (the WAL is not yet trimmed), restarts it without the
// hang, and checks that nothing acknowledged is lost or duplicated, that
// the live objects hold the data once, and that no unreferenced object
// stays in the bucket once the orphan sweep has run.
//
// It runs in parallel with the other long waiting tests: the first orphan
// sweep comes a minute after shoald starts.
func TestUploadCrash(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"after-put", "after-commit"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			testUploadCrash(t, point)
		})
	}
}

func testUploadCrash(t *testing.T, point string) {
	const topic, partitions, recordSize = "crash", 4, 4 << 10
	m := s3test.StartMinIO(t)
	// The first orphan sweep comes a minute after start, then one every
	// --orphan-sweep-interval; it deletes orphans older than the grace.
	args := append([]string{"--object-grace", "1s", "--orphan-sweep-interval", "5s"}, smallUploads...)
	b := StartBroker(t, WithMinIO(m, "crash"), WithArgs(args...), WithEnv("SHOAL_TEST_UPLOAD_HANG="+point))
	createTopic(t, b, topic, partitions)

	p := newProducer(t, b, topic, partitions, recordSize)
	pp := startPaced(t, p, time.Millisecond)
	defer pp.stop()
	hook := "test hook: upload hangs " + point + " of "
	b.WaitLog(30*time.Second, hook)
	hungKey := hungObject(t, b.Log(), hook)
	// Acknowledged writes keep arriving while the upload hangs.
	before, _, _ := p.ds.counts()
	waitAcked(t, p.ds, before+500, 30*time.Second)
	b.Kill()

	b.SetEnv(m.Env()...)
	b.Restart()
	restarted := time.Now()
	after, _, _ := p.ds.counts()
	waitAcked(t, p.ds, after+500, 60*time.Second)
	pp.stop()
	p.flush(t)

	v := waitUploaded(t, b, 60*time.Second)
	records, bytes, _ := p.ds.counts()
	res := verifyTopic(t, b, topic, p.ds, time.Minute)
	if res.records != records {
		t.Errorf("read %d records, %d acknowledged", res.records, records)
	}
	// Nothing stored twice: the live objects hold the data once (plus
	// indexes and batch headers).
	if v.ObjectBytes > bytes*11/10+1<<20 {
		t.Errorf("live objects hold %d bytes for %d bytes produced: a range was uploaded twice", v.ObjectBytes, bytes)
	}
	keys := listBucket(t, m, "crash")
	t.Logf("%d records, %.1f MB; %d live objects (%.1f MB), %d pending deletes, %d objects in the bucket; the hang was at %s",
		records, float64(bytes)/1e6, v.Objects, float64(v.ObjectBytes)/1e6, v.PendingDeletes, len(keys), hungKey)
	inBucket := func(keys []s3stream.ObjectInfo) bool {
		return slices.ContainsFunc(keys, func(o s3stream.ObjectInfo) bool { return o.Key == hungKey })
	}
	if !inBucket(keys) {
		t.Errorf("object %s, PUT before the crash, is not in the bucket", hungKey)
	}
	switch {
	case point == "after-commit" && len(keys) != v.Objects+v.PendingDeletes:
		t.Errorf("%d objects in the bucket, %d live and %d pending deletes", len(keys), v.Objects, v.PendingDeletes)
	case point == "after-put" && time.Since(restarted) < 50*time.Second && len(keys) != v.Objects+v.PendingDeletes+1:
		// Before the first sweep, the object of the crashed upload is the
		// one orphan.
		t.Errorf("%d objects in the bucket, %d live and %d pending deletes: want one orphan", len(keys), v.Objects, v.PendingDeletes)
	}
	if point == "after-commit" {
		return
	}
	Eventually(t, 90*time.Second, func() error {
		v := storageView(t, b)
		keys := listBucket(t, m, "crash")
		if inBucket(keys) || len(keys) != v.Objects+v.PendingDeletes {
			return fmt.Errorf("%d objects in the bucket (the orphan %s among them: %v), %d live and %d pending deletes",
				len(keys), hungKey, inBucket(keys), v.Objects, v.PendingDeletes)
		}
		return nil
	})
	res = verifyTopic(t, b, topic, p.ds, time.Minute)
	if res.records != records {
		t.Errorf("after the sweep: read %d records, %d acknowledged", res.records, records)
	}
}

// hungObject returns the object key the test hook's log line names.
func hungObject(t testing.TB, log, hook string) string {
	t.Helper()
	_, rest, ok := strings.Cut(log, hook)
	if !ok {
		t.Fatalf("no %q in the log", hook)
	}
	key, _, _ := strings.Cut(rest, "\n")
	return strings.TrimSpace(key)
}

// TestObjectStoreOutage stops MinIO for 30 s while a producer writes:
// produce goes on from the WAL until the WAL budget is reached, then gets a
// retriable error; tail consumers keep reading; after MinIO returns the
// uploads catch up and every acknowledged record is readable, also from
// object storage after a restart. It runs in parallel with the other long
// waiting tests.
func TestObjectStoreOutage(t *testing.T) {
	t.Parallel()
	const (
		topic, probeTopic = "outage", "probe"
		partitions        = 4
		recordSize        = 4 << 10
		outage            = 30 * time.Second
	)
	m := s3test.StartMinIO(t)
	b := StartBroker(t, WithMinIO(m, "outage"),
		WithArgs(append(smallUploads, "--wal-max-pending-bytes", "24MiB")...))
	createTopic(t, b, topic, partitions)
	createTopic(t, b, probeTopic, 1)

	p := newProducer(t, b, topic, partitions, recordSize)
	pp := startPaced(t, p, time.Millisecond)
	defer pp.stop()
	waitAcked(t, p.ds, 2000, 30*time.Second)
	Eventually(t, 30*time.Second, func() error {
		if v := storageView(t, b); v.Objects == 0 {
			return errors.New("no object uploaded yet")
		}
		return nil
	})

	m.Stop()
	down := time.Now()
	atStop := endOffsets(t, b, topic)
	ackedAtStop, _, _ := p.ds.counts()
	// Produce goes on from the WAL...
	waitAcked(t, p.ds, ackedAtStop+1000, 20*time.Second)
	// ...until the budget: then a retriable error, not a hang.
	raw := dialRaw(t, b.Addr)
	var code int16
	Eventually(t, outage, func() error {
		resp := raw.produce(probeTopic, 0, makeBatch(-1, 0, 0, time.Now().UnixMilli(),
			[]testRecord{{value: []byte("probe")}}))
		if code = resp.ErrorCode; code == 0 {
			return errors.New("produce still accepted")
		}
		return nil
	})
	err := kerr.ErrorForCode(code)
	t.Logf("after %v without object storage: produce answers %v", time.Since(down).Round(time.Millisecond), err)
	if !kerr.IsRetriable(err) {
		t.Errorf("produce with a full WAL: %v, want a retriable error", err)
	}
	// Tail consumers keep reading what was written during the outage.
	sums, end := p.ds.snapshot()
	tail := readAndCheck(t, b, topic, sums, atStop, end, 20*time.Second)
	t.Logf("read %d records written during the outage from the WAL", tail.records)
	if resp, err := http.Get("http://" + b.MetricsAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz during the outage: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	time.Sleep(time.Until(down.Add(outage))) // the outage's length is the point
	m.Start()
	catchUp := time.Now()
	// The WAL drains while the producer goes on.
	Eventually(t, 90*time.Second, func() error {
		v := storageView(t, b)
		if pend := walPending(v); pend > 16<<20 {
			return fmt.Errorf("%d bytes wait for upload", pend)
		}
		return nil
	})
	pp.stop()
	p.flush(t)
	v := waitUploaded(t, b, 60*time.Second)
	t.Logf("uploads caught up %v after object storage returned; upload requests %+v",
		time.Since(catchUp).Round(time.Millisecond), v.Requests[s3stream.ReasonUpload])

	b.Stop()
	b.Restart()
	records, _, _ := p.ds.counts()
	res := verifyTopic(t, b, topic, p.ds, 2*time.Minute)
	if res.records != records {
		t.Errorf("read %d records, %d acknowledged", res.records, records)
	}
	if f := storageView(t, b).Requests[s3stream.ReasonFetch]; f.Get == 0 {
		t.Errorf("no fetch GETs after a restart: the records were not read from object storage")
	}
}
