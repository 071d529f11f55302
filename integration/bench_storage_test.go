package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
)

// Object storage benchmark shape: 16 KiB incompressible records into 16
// partitions, broker at its default upload settings (64 MiB or 10 s).
const (
	objBenchPartitions = 16
	objBenchRecordSize = 16 << 10
	gib                = 1 << 30
	// rawGetRange and rawGetParallelism mirror the reader: sequential
	// reads coalesce blocks into GETs of up to 4 MiB
	// (s3stream.DefaultCoalesceBytes), and up to 8 read-aheads run at once
	// (s3stream.DefaultMaxReadAheads).
	rawGetRange       = s3stream.DefaultCoalesceBytes
	rawGetParallelism = s3stream.DefaultMaxReadAheads
)

// benchGiB is the amount of data BenchmarkObjectStorage ingests:
// SHOAL_BENCH_GIB, default 1 (at the default 64 MiB upload size, less than
// that makes too few objects to count PUTs per GiB).
func benchGiB(b *testing.B) float64 {
	s := os.Getenv("SHOAL_BENCH_GIB")
	if s == "" {
		return 1
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		b.Fatalf("SHOAL_BENCH_GIB=%q: want a positive number of GiB", s)
	}
	return f
}

// BenchmarkObjectStorage measures a single shoald on MinIO at default
// settings: it ingests SHOAL_BENCH_GIB GiB (default 1), counts the upload
// PUTs per GiB, restarts the broker (cold block cache) and replays the
// topic from offset 0, reporting the catch-up MB/s and GETs per GiB
// replayed, then reads the same objects with raw ranged GETs of the same
// size and parallelism as the reader for the raw MB/s of the same MinIO,
// and reports the ratio. LIST calls are counted over the whole run (the
// orphan sweep's first LIST comes a minute after start; steady state has
// none).
func BenchmarkObjectStorage(b *testing.B) {
	total := int64(benchGiB(b) * gib)
	m := s3test.StartMinIO(b)
	br := StartBroker(b, WithMinIO(m, "bench"), WithArgs("--log-level", "warn"))
	createTopic(b, br, "objbench", objBenchPartitions)

	b.ResetTimer()
	for range b.N {
		p := newProducer(b, br, "objbench", objBenchPartitions, objBenchRecordSize)
		began := time.Now()
		p.produceBytes(b, total)
		ingest := time.Since(began)
		records, bytes, _ := p.ds.counts()
		v := waitUploaded(b, br, 2*time.Minute)
		up := v.Requests[s3stream.ReasonUpload]
		gibIn := float64(bytes) / gib
		b.Logf("ingested %d records, %.2f GiB in %v (%.1f MB/s); upload: %d PUTs, %.1f MB; %d objects",
			records, gibIn, ingest.Round(time.Millisecond), float64(bytes)/1e6/ingest.Seconds(),
			up.Put, float64(up.PutBytes)/1e6, v.Objects)
		b.ReportMetric(float64(up.Put)/gibIn, "PUTs/GiB")
		listsBefore := v.Total.List

		br.Stop()
		br.Restart()
		res := verifyTopic(b, br, "objbench", p.ds, 10*time.Minute)
		v = storageView(b, br)
		fetch := v.Requests[s3stream.ReasonFetch]
		catchUp := float64(res.bytes) / 1e6 / res.elapsed.Seconds()
		gibOut := float64(res.bytes) / gib
		b.Logf("replayed %d records, %.2f GiB in %v (%.1f MB/s): %d fetch GETs, %.1f MB; reader %+v",
			res.records, gibOut, res.elapsed.Round(time.Millisecond), catchUp, fetch.Get,
			float64(fetch.GetBytes)/1e6, v.Reader)
		b.ReportMetric(catchUp, "catchup-MB/s")
		b.ReportMetric(float64(fetch.Get)/gibOut, "GETs/GiB")

		raw, rawSerial := rawGetThroughput(b, m, "bench")
		b.Logf("raw ranged GETs (%d MiB) of the same objects: %.1f MB/s with %d in parallel, %.1f MB/s one at a time",
			rawGetRange>>20, raw, rawGetParallelism, rawSerial)
		b.ReportMetric(raw, "rawGET-MB/s")
		b.ReportMetric(catchUp/raw, "catchup/raw")
		// The restart reset the counters: LISTs before it plus after it.
		lists := listsBefore + v.Total.List
		b.Logf("LIST calls: %d over the run (requests by reason after the restart: %+v)", lists, v.Requests)
		b.ReportMetric(float64(lists), "LISTs")
	}
}

// rawGetThroughput reads every object in bucket with ranged GETs of
// rawGetRange bytes, rawGetParallelism at a time and then one at a time,
// and returns both rates in MB/s.
func rawGetThroughput(b *testing.B, m *s3test.MinIO, bucket string) (parallel, serial float64) {
	b.Helper()
	store := m.Store(b, bucket)
	objs := listBucket(b, m, bucket)
	type rng struct {
		key      string
		off, len int64
	}
	var ranges []rng
	for _, o := range objs {
		for off := int64(0); off < o.Size; off += rawGetRange {
			ranges = append(ranges, rng{o.Key, off, min(rawGetRange, o.Size-off)})
		}
	}
	run := func(workers int) float64 {
		ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
		defer cancel()
		var next, bytes atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		began := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1) - 1; i < int64(len(ranges)); i = next.Add(1) - 1 {
					r := ranges[i]
					data, err := store.Get(ctx, r.key, r.off, r.len)
					if err != nil {
						errs <- fmt.Errorf("get %s [%d, +%d): %w", r.key, r.off, r.len, err)
						return
					}
					bytes.Add(int64(len(data)))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return float64(bytes.Load()) / 1e6 / time.Since(began).Seconds()
	}
	return run(rawGetParallelism), run(1)
}
