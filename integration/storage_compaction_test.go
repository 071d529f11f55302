package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-io/shoal/broker"
	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCompaction uploads many small objects with compaction off, restarts
// the broker with a 1 s compaction interval and a short object grace, and
// checks that they become few objects, that the replaced ones leave the
// bucket, and that consumers reading the whole topic over and over while
// this happens (and a producer goes on writing) always read every record
// exactly, before, during and after the swap.
func TestCompaction(t *testing.T) {
	const (
		topic      = "compact"
		partitions = 4
		recordSize = 4 << 10
		minObjects = 24
	)
	m := s3test.StartMinIO(t)
	b := StartBroker(t, WithMinIO(m, "compact"), WithArgs(
		"--upload-bytes", "512KiB", "--upload-age", "200ms",
		"--compaction-interval", "1h", "--object-grace", "3s"))
	createTopic(t, b, topic, partitions)

	p := newProducer(t, b, topic, partitions, recordSize)
	pp := startPaced(t, p, time.Millisecond)
	defer pp.stop()
	Eventually(t, 60*time.Second, func() error {
		if v := storageView(t, b); v.Objects < minObjects {
			return fmt.Errorf("%d objects, want %d", v.Objects, minObjects)
		}
		return nil
	})
	pp.stop()
	p.flush(t)
	before := waitUploaded(t, b, 30*time.Second)
	t.Logf("before compaction: %d objects, %.1f MB", before.Objects, float64(before.ObjectBytes)/1e6)

	b.Stop()
	b.AddArgs("--compaction-interval", "1s")
	b.Restart()

	// Consumers read everything acknowledged so far, again and again,
	// until compaction is over; a producer keeps writing meanwhile.
	ctx, stopReading := context.WithCancel(t.Context())
	var passes atomic.Int64
	var readErr firstError
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				sums, end := p.ds.snapshot()
				// Small fetches, so that one pass spans many requests.
				_, err := readRange(t, b, topic, sums, map[int32]int64{}, end, time.Minute,
					kgo.FetchMaxPartitionBytes(256<<10), kgo.FetchMaxBytes(1<<20))
				if err != nil && ctx.Err() == nil {
					readErr.set(err)
					return
				}
				passes.Add(1)
			}
		}()
	}
	defer func() { stopReading(); wg.Wait() }()
	check := func() {
		if err := readErr.get(); err != nil {
			t.Fatalf("a consumer during compaction: %v", err)
		}
	}
	pp = startPaced(t, p, 5*time.Millisecond)
	defer pp.stop()
	Eventually(t, 60*time.Second, func() error {
		check()
		v := storageView(t, b)
		if c := v.Requests[s3stream.ReasonCompaction]; c.Put == 0 || v.Objects > before.Objects/3 {
			return fmt.Errorf("%d objects after %d compaction PUTs", v.Objects, c.Put)
		}
		return nil
	})
	pp.stop()
	p.flush(t)
	// Then few objects, and the inputs leave the bucket once their grace
	// has passed.
	var after broker.StorageView
	Eventually(t, 60*time.Second, func() error {
		check()
		after = storageView(t, b)
		if after.Objects > 4 || after.PendingDeletes > 0 || walPending(after) > 0 {
			return fmt.Errorf("%d objects, %d waiting for deletion, %d bytes for upload",
				after.Objects, after.PendingDeletes, walPending(after))
		}
		return nil
	})
	// Two more passes after the swaps and the deletes.
	n := passes.Load()
	Eventually(t, 60*time.Second, func() error {
		check()
		if passes.Load() < n+2 {
			return errors.New("consumers still reading")
		}
		return nil
	})
	stopReading()
	wg.Wait()
	check()
	c := after.Requests[s3stream.ReasonCompaction]
	t.Logf("after compaction: %d objects, %.1f MB; compaction requests %+v; %d consumer passes",
		after.Objects, float64(after.ObjectBytes)/1e6, c, passes.Load())

	records, _, _ := p.ds.counts()
	res := verifyTopic(t, b, topic, p.ds, time.Minute)
	if res.records != records {
		t.Errorf("read %d records, %d acknowledged", res.records, records)
	}
	// The bucket holds exactly what metadata refers to.
	if n := len(listBucket(t, m, "compact")); n != after.Objects {
		t.Errorf("%d objects in the bucket, %d live", n, after.Objects)
	}
}

// firstError keeps the first error set by any goroutine.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// startOffsets returns the log start offset (ListOffsets earliest) of
// every partition of topic.
func startOffsets(t testing.TB, b *Broker, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	lo, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("list start offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// TestRetention checks retention.ms and retention.bytes on object
// storage: whole objects are deleted from the bucket, ListOffsets(earliest)
// moves to the first record kept, and what is kept stays readable.
func TestRetention(t *testing.T) {
	const (
		timeTopic, bytesTopic = "ret-time", "ret-bytes"
		partitions            = 2
		recordSize            = 4 << 10
		retentionBytes        = 1 << 20
	)
	m := s3test.StartMinIO(t)
	b := StartBroker(t, WithMinIO(m, "retention"), WithArgs(
		"--upload-bytes", "256KiB", "--upload-age", "200ms", "--compaction-interval", "1h",
		"--retention-check-interval", "1s", "--object-grace", "1s"))
	adm := kadm.NewClient(b.Client(t))
	create := func(topic, key, value string) {
		t.Helper()
		resp, err := adm.CreateTopic(t.Context(), partitions, 1, map[string]*string{key: kadm.StringPtr(value)}, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
	}
	// Topic configs are set at CreateTopics: shoald does not serve
	// AlterConfigs or IncrementalAlterConfigs yet (issue [C]).
	create(timeTopic, "retention.ms", "600000")
	create(bytesTopic, "retention.bytes", fmt.Sprint(retentionBytes))

	// retention.ms: records an hour old, uploaded, then new records.
	old := newProducer(t, b, timeTopic, partitions, recordSize)
	hourAgo := time.Now().Add(-time.Hour)
	for range 1000 {
		seq := old.seq.Add(1) - 1
		part := int32(seq % partitions)
		old.cl.Produce(t.Context(), &kgo.Record{Topic: timeTopic, Partition: part, Timestamp: hourAgo,
			Value: recordValue(part, seq, recordSize)}, old.ds.ack)
	}
	old.flush(t)
	waitUploaded(t, b, 30*time.Second)
	boundary := endOffsets(t, b, timeTopic)
	for range 500 {
		old.produce(t.Context())
	}
	old.flush(t)

	// retention.bytes: 4 MiB per partition against a 1 MiB limit.
	sized := newProducer(t, b, bytesTopic, partitions, recordSize)
	pp := startPaced(t, sized, time.Millisecond) // paced: many small ranges
	waitAcked(t, sized.ds, 4*partitions<<20/recordSize, 60*time.Second)
	pp.stop()
	sized.flush(t)
	v := waitUploaded(t, b, 30*time.Second)
	objectsBefore := len(listBucket(t, m, "retention"))
	t.Logf("%d objects (%d in the bucket), time topic split at %v", v.Objects, objectsBefore, boundary)

	// retention.bytes applies from creation: each partition keeps at
	// least the limit (in stored bytes: a little less in record values),
	// and not much more (whole ranges go).
	Eventually(t, 30*time.Second, func() error {
		start, end := startOffsets(t, b, bytesTopic), endOffsets(t, b, bytesTopic)
		for p, e := range end {
			kept := (e - start[p]) * recordSize
			if start[p] == 0 || kept > 2*retentionBytes {
				return fmt.Errorf("partition %d keeps [%d, %d), %d bytes", p, start[p], e, kept)
			}
			if kept < retentionBytes*95/100 {
				t.Fatalf("partition %d keeps [%d, %d), %d bytes: less than retention.bytes %d", p, start[p], e, kept, retentionBytes)
			}
		}
		return nil
	})
	sizedStart := startOffsets(t, b, bytesTopic)
	sums, end := sized.ds.snapshot()
	readAndCheck(t, b, bytesTopic, sums, sizedStart, end, time.Minute)

	// retention.ms of 10 minutes: the hour-old records go, the new stay.
	Eventually(t, 30*time.Second, func() error {
		start := startOffsets(t, b, timeTopic)
		for p, want := range boundary {
			if start[p] != want {
				return fmt.Errorf("partition %d starts at %d, want %d (the first new record)", p, start[p], want)
			}
		}
		return nil
	})
	sums, end = old.ds.snapshot()
	readAndCheck(t, b, timeTopic, sums, boundary, end, time.Minute)

	// The objects out of retention leave the bucket.
	Eventually(t, 30*time.Second, func() error {
		v = storageView(t, b)
		n := len(listBucket(t, m, "retention"))
		if v.PendingDeletes > 0 || n != v.Objects {
			return fmt.Errorf("%d objects in the bucket, %d live and %d pending deletes", n, v.Objects, v.PendingDeletes)
		}
		return nil
	})
	gc := v.Requests[s3stream.ReasonGC]
	t.Logf("after retention: %d objects (%d in the bucket before); GC requests %+v", v.Objects, objectsBefore, gc)
	if gc.Delete == 0 || v.Objects >= objectsBefore {
		t.Errorf("%d objects after retention, %d in the bucket before, %d GC DELETEs: no object was deleted",
			v.Objects, objectsBefore, gc.Delete)
	}
}
