package integration

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-io/shoal/broker"
	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
	"github.com/twmb/franz-go/pkg/kgo"
)

// storageView reads the broker's GET /admin/storage.
func storageView(t testing.TB, b *Broker) broker.StorageView {
	t.Helper()
	v, err := fetchStorageView(b)
	if err != nil {
		t.Fatalf("storage view of %s: %v", b.Addr, err)
	}
	return v
}

func fetchStorageView(b *Broker) (broker.StorageView, error) {
	var v broker.StorageView
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + b.MetricsAddr + "/admin/storage")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("/admin/storage: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&v)
	return v, err
}

// walPending sums the view's per-group WAL backlog.
func walPending(v broker.StorageView) int64 {
	var n int64
	for _, p := range v.WALPending {
		n += p
	}
	return n
}

// waitUploaded waits until no WAL group has data waiting for upload.
func waitUploaded(t testing.TB, b *Broker, d time.Duration) broker.StorageView {
	t.Helper()
	var v broker.StorageView
	Eventually(t, d, func() error {
		var err error
		if v, err = fetchStorageView(b); err != nil {
			return err
		}
		if p := walPending(v); p > 0 {
			return fmt.Errorf("%d bytes wait for upload", p)
		}
		return nil
	})
	return v
}

// dirSize is the total size of the regular files under dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed during the walk (snapshot rotation)
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("size of %s: %v", dir, err)
	}
	return n
}

// listBucket returns every object in bucket, read directly from MinIO.
func listBucket(t testing.TB, m *s3test.MinIO, bucket string) []s3stream.ObjectInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	objs, err := m.Store(t, bucket).List(ctx, "")
	if err != nil {
		t.Fatalf("list bucket %s: %v", bucket, err)
	}
	return objs
}

// valuePool is the incompressible material record values are cut from.
var valuePool = func() []byte {
	b := make([]byte, 4<<20)
	rand.Read(b)
	return b
}()

// recordValue builds the value of record seq of partition p: a 12-byte
// header naming both, then size-12 bytes of the pool from a position that
// depends on both, so every value differs and none compresses.
func recordValue(p int32, seq int64, size int) []byte {
	v := make([]byte, size)
	binary.BigEndian.PutUint32(v, uint32(p))
	binary.BigEndian.PutUint64(v[4:], uint64(seq))
	from := (int64(p)*1_000_003 + seq*7_919) % int64(len(valuePool)-size)
	copy(v[12:], valuePool[from:])
	return v
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// dataset is what a test knows it wrote: per partition, the checksum of
// the acknowledged record at each offset.
type dataset struct {
	mu       sync.Mutex
	sums     map[int32]map[int64]uint32
	records  int64
	bytes    int64
	failures int64 // records the client gave up on (not acknowledged)
	firstErr error
}

func newDataset() *dataset { return &dataset{sums: map[int32]map[int64]uint32{}} }

// ack records an acknowledged record; a second acknowledgement of the same
// offset is a duplicate and fails the check later.
func (d *dataset) ack(r *kgo.Record, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.failures++
		if d.firstErr == nil {
			d.firstErr = err
		}
		return
	}
	m := d.sums[r.Partition]
	if m == nil {
		m = map[int64]uint32{}
		d.sums[r.Partition] = m
	}
	if _, dup := m[r.Offset]; dup {
		d.firstErr = fmt.Errorf("partition %d offset %d acknowledged twice", r.Partition, r.Offset)
	}
	m[r.Offset] = crc32.Checksum(r.Value, crcTable)
	d.records++
	d.bytes += int64(len(r.Value))
}

func (d *dataset) counts() (records, bytes, failures int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.records, d.bytes, d.failures
}

// producer writes recordValue records round-robin over a topic's
// partitions and records every acknowledgement in a dataset.
type producer struct {
	cl         *kgo.Client
	topic      string
	partitions int32
	size       int
	ds         *dataset
	seq        atomic.Int64
}

func newProducer(t testing.TB, b *Broker, topic string, partitions int32, size int, opts ...kgo.Opt) *producer {
	all := append([]kgo.Opt{
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.MaxBufferedBytes(64 << 20),
		kgo.ProducerLinger(5 * time.Millisecond),
		// A full WAL answers with a retriable error; retry soon, not after
		// kgo's default backoff of up to seconds.
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	}, opts...)
	return &producer{cl: b.Client(t, all...), topic: topic, partitions: partitions, size: size, ds: newDataset()}
}

// produce sends one record (blocking while the client's buffer is full).
func (p *producer) produce(ctx context.Context) {
	seq := p.seq.Add(1) - 1
	part := int32(seq % int64(p.partitions))
	rec := &kgo.Record{Topic: p.topic, Partition: part, Value: recordValue(part, seq, p.size)}
	p.cl.Produce(ctx, rec, p.ds.ack)
}

// produceBytes sends records until total bytes are offered, then waits
// for every acknowledgement.
func (p *producer) produceBytes(t testing.TB, total int64) {
	t.Helper()
	ctx := t.Context()
	for n := int64(0); n < total && ctx.Err() == nil; n += int64(p.size) {
		p.produce(ctx)
	}
	p.flush(t)
}

// flush waits for every buffered record and fails the test if any was
// not acknowledged.
func (p *producer) flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Fatalf("flush producer: %v", err)
	}
	p.ds.mu.Lock()
	defer p.ds.mu.Unlock()
	if p.ds.firstErr != nil {
		t.Fatalf("produce: %d records failed; first error: %v", p.ds.failures, p.ds.firstErr)
	}
}

// verifyResult is what verifyTopic read.
type verifyResult struct {
	records, bytes int64
	elapsed        time.Duration
}

// verifyTopic consumes topic from offset 0 of every partition until each
// partition reaches its end offset and checks the records against ds:
// offsets dense from 0, as many records as were acknowledged, and each
// record's checksum equal to the acknowledged one. The producer must be
// flushed. It fails the test after timeout.
func verifyTopic(t testing.TB, b *Broker, topic string, ds *dataset, timeout time.Duration, opts ...kgo.Opt) verifyResult {
	t.Helper()
	end := endOffsets(t, b, topic)
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for p, e := range end {
		if want := int64(len(ds.sums[p])); e != want {
			t.Fatalf("partition %d: end offset %d, but %d records were acknowledged", p, e, want)
		}
	}
	return readAndCheck(t, b, topic, ds.sums, map[int32]int64{}, end, timeout, opts...)
}

// snapshot returns a copy of the checksums acknowledged so far and, per
// partition, the offset after the last one (acknowledgements of a
// partition arrive in offset order).
func (d *dataset) snapshot() (sums map[int32]map[int64]uint32, end map[int32]int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sums, end = map[int32]map[int64]uint32{}, map[int32]int64{}
	for p, m := range d.sums {
		sums[p] = make(map[int64]uint32, len(m))
		for o, c := range m {
			sums[p][o] = c
			end[p] = max(end[p], o+1)
		}
	}
	return sums, end
}

// readAndCheck consumes topic's partitions from start[p] to end[p] (the
// partitions of end) and checks that offsets are dense and every record's
// checksum is the one in sums. It fails the test on the first difference.
func readAndCheck(t testing.TB, b *Broker, topic string, sums map[int32]map[int64]uint32, start, end map[int32]int64, timeout time.Duration, opts ...kgo.Opt) verifyResult {
	t.Helper()
	res, err := readRange(t, b, topic, sums, start, end, timeout, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// readRange is readAndCheck returning the first difference as an error,
// for use off the test's goroutine.
func readRange(t testing.TB, b *Broker, topic string, sums map[int32]map[int64]uint32, start, end map[int32]int64, timeout time.Duration, opts ...kgo.Opt) (verifyResult, error) {
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	next := map[int32]int64{}
	for p := range end {
		offsets[topic][p] = kgo.NewOffset().At(start[p])
		next[p] = start[p]
	}
	all := append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr),
		kgo.ConsumePartitions(offsets),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(8 << 20),
	}, opts...)
	var res verifyResult
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	began := time.Now()
	done := func() bool {
		for p, e := range end {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return res, fmt.Errorf("consume %s: timed out after %v at %v, want %v", topic, timeout, next, end)
		}
		if err := fs.Err(); err != nil {
			return res, fmt.Errorf("consume %s: %w", topic, err)
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if r.Offset >= end[r.Partition] {
				continue // beyond what this check covers
			}
			if r.Offset != next[r.Partition] {
				return res, fmt.Errorf("partition %d: got offset %d, want %d (gap or duplicate)", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			want, ok := sums[r.Partition][r.Offset]
			if !ok {
				return res, fmt.Errorf("partition %d offset %d: a record nobody acknowledged", r.Partition, r.Offset)
			}
			if got := crc32.Checksum(r.Value, crcTable); got != want {
				return res, fmt.Errorf("partition %d offset %d: checksum %08x, acknowledged %08x", r.Partition, r.Offset, got, want)
			}
			res.records++
			res.bytes += int64(len(r.Value))
		}
	}
	res.elapsed = time.Since(began)
	return res, nil
}
