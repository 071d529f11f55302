package integration

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Benchmark shape: uncompressed 1 KiB records at acks=all (idempotent
// producers) into 8 partitions.
const (
	benchRecordSize = 1024
	benchPartitions = 8
	benchProducers  = 4       // kgo clients: each has 5 produce requests in flight at most
	benchOfferedMBs = 50.0    // phase (a) offered load, MB/s (10^6 bytes); SHOAL_BENCH_OFFERED_MBS overrides it
	benchMB         = 1000000 // bytes per reported MB
)

// benchSeconds is the length of each benchmark phase: SHOAL_BENCH_SECONDS,
// default 10.
func benchSeconds(b *testing.B) time.Duration {
	s := os.Getenv("SHOAL_BENCH_SECONDS")
	if s == "" {
		return 10 * time.Second
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		b.Fatalf("SHOAL_BENCH_SECONDS=%q: want a positive number of seconds", s)
	}
	return time.Duration(f * float64(time.Second))
}

// benchOffered is the fixed phase's offered load in MB/s: benchOfferedMBs
// unless SHOAL_BENCH_OFFERED_MBS says otherwise (to see how latency and
// broker CPU change with the load).
func benchOffered(b *testing.B) float64 {
	s := os.Getenv("SHOAL_BENCH_OFFERED_MBS")
	if s == "" {
		return benchOfferedMBs
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		b.Fatalf("SHOAL_BENCH_OFFERED_MBS=%q: want a positive number of MB/s", s)
	}
	return f
}

// latencies collects samples in milliseconds.
type latencies struct {
	mu sync.Mutex
	ms []float64
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ms = append(l.ms, float64(d.Microseconds())/1000)
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.ms = l.ms[:0]
	l.mu.Unlock()
}

// quantiles returns the given quantiles (0..1) of the samples.
func (l *latencies) quantiles(qs ...float64) []float64 {
	l.mu.Lock()
	s := slices.Clone(l.ms)
	l.mu.Unlock()
	slices.Sort(s)
	out := make([]float64, len(qs))
	if len(s) == 0 {
		return out
	}
	for i, q := range qs {
		out[i] = s[min(len(s)-1, int(q*float64(len(s))))]
	}
	return out
}

// benchRun is the state of one phase.
type benchRun struct {
	ack, e2e     latencies
	acked, bytes atomic.Int64
	failed       atomic.Int64
	consumed     atomic.Int64
	brokers      []*Broker // whose CPU time each phase reports
}

// brokerCPU is the CPU time the run's brokers have used so far.
func (r *benchRun) brokerCPU() time.Duration {
	var sum time.Duration
	for _, br := range r.brokers {
		sum += br.CPUTime()
	}
	return sum
}

// settle waits until the consumer has read every acknowledged record, so
// that the next phase's end-to-end latencies are not those of a backlog.
func (r *benchRun) settle(b *testing.B) {
	Eventually(b, 60*time.Second, func() error {
		if c, a := r.consumed.Load(), r.acked.Load(); c < a {
			return fmt.Errorf("consumer at %d of %d acknowledged records", c, a)
		}
		return nil
	})
	r.ack.reset()
	r.e2e.reset()
}

// BenchmarkProduceConsume measures a single shoald: (a) a fixed offered
// load of 50 MB/s (SHOAL_BENCH_OFFERED_MBS) and (b) unthrottled producers,
// each for SHOAL_BENCH_SECONDS (default 10), with a consumer tailing the
// topic. It reports produce MB/s, records/s, produce-ack latency
// p50/p99/p99.9 (from the Produce call to its promise), end-to-end latency
// p50/p99 (record timestamp to consume) and the broker's CPU time per MB.
func BenchmarkProduceConsume(b *testing.B) {
	dur := benchSeconds(b)
	br := StartBroker(b, WithArgs("--log-level", "warn"))
	createTopic(b, br, "bench", benchPartitions)
	producers := make([]*kgo.Client, benchProducers)
	for i := range producers {
		producers[i] = br.Client(b, kgo.DefaultProduceTopic("bench"), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(0), kgo.MaxBufferedRecords(4000), kgo.ProducerBatchMaxBytes(1<<20),
			// Uncompressed, so MB/s is what the WAL carries.
			kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	run := &benchRun{brokers: []*Broker{br}}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	consumerDone := startBenchConsumer(b, br, run, ctx)
	defer func() { cancel(); <-consumerDone }()

	value := make([]byte, benchRecordSize)
	rand.Read(value) // incompressible

	b.ResetTimer()
	for range b.N {
		// Warm-up: connections, producer ids, metadata.
		runPhase(ctx, run, producers, value, 0, min(dur, 2*time.Second))
		run.settle(b)

		fixed := runPhase(ctx, run, producers, value, benchOffered(b), dur)
		report(b, "fixed", run, fixed)
		run.settle(b)

		peak := runPhase(ctx, run, producers, value, 0, dur)
		report(b, "peak", run, peak)
	}
}

// phaseResult is what one phase achieved.
type phaseResult struct {
	elapsed time.Duration
	records int64
	bytes   int64
	failed  int64
	cpu     time.Duration // CPU time the brokers used during the phase
}

// runPhase produces for dur at offeredMBs (0: as fast as the producers
// take records) and waits for every record's acknowledgement.
func runPhase(ctx context.Context, run *benchRun, producers []*kgo.Client, value []byte, offeredMBs float64, dur time.Duration) phaseResult {
	acked0, bytes0, failed0 := run.acked.Load(), run.bytes.Load(), run.failed.Load()
	cpu0 := run.brokerCPU()
	start := time.Now()
	deadline := start.Add(dur)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			run.failed.Add(1)
			return
		}
		run.ack.add(time.Since(r.Context.Value(sentAtKey{}).(time.Time)))
		run.acked.Add(1)
		run.bytes.Add(int64(len(r.Value)))
	}
	produce := func(cl *kgo.Client, n int) {
		now := time.Now()
		rec := &kgo.Record{Value: value, Key: strconv.AppendInt(nil, int64(n), 10), Timestamp: now,
			Context: context.WithValue(ctx, sentAtKey{}, now)}
		cl.Produce(ctx, rec, promise)
	}
	var wg sync.WaitGroup
	if offeredMBs > 0 {
		rate := offeredMBs * benchMB / float64(len(value)) // records per second
		wg.Add(1)
		go func() {
			defer wg.Done()
			ticker := time.NewTicker(time.Millisecond)
			defer ticker.Stop()
			sent := 0
			for now := range ticker.C {
				if now.After(deadline) || ctx.Err() != nil {
					return
				}
				for due := int(rate * now.Sub(start).Seconds()); sent < due; sent++ {
					produce(producers[sent%len(producers)], sent)
				}
			}
		}()
	} else {
		for _, cl := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
					produce(cl, n)
				}
			}()
		}
	}
	wg.Wait()
	for _, cl := range producers {
		_ = cl.Flush(ctx)
	}
	return phaseResult{
		elapsed: time.Since(start),
		records: run.acked.Load() - acked0,
		bytes:   run.bytes.Load() - bytes0,
		failed:  run.failed.Load() - failed0,
		cpu:     run.brokerCPU() - cpu0,
	}
}

type sentAtKey struct{}

// startBenchConsumer tails the topic (new, so from its start), recording
// end-to-end latencies, until ctx is done.
func startBenchConsumer(b *testing.B, br *Broker, run *benchRun, ctx context.Context) chan struct{} {
	cl := br.Client(b, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxBytes(64<<20))
	return tailBench(ctx, cl, run)
}

// report publishes a phase's figures as benchmark metrics.
func report(b *testing.B, phase string, run *benchRun, r phaseResult) {
	secs := r.elapsed.Seconds()
	mbs := float64(r.bytes) / benchMB / secs
	recs := float64(r.records) / secs
	ack := run.ack.quantiles(0.5, 0.99, 0.999)
	e2e := run.e2e.quantiles(0.5, 0.99)
	b.ReportMetric(mbs, phase+"-MB/s")
	b.ReportMetric(recs, phase+"-records/s")
	b.ReportMetric(ack[0], phase+"-ack-p50-ms")
	b.ReportMetric(ack[1], phase+"-ack-p99-ms")
	b.ReportMetric(ack[2], phase+"-ack-p99.9-ms")
	b.ReportMetric(e2e[0], phase+"-e2e-p50-ms")
	b.ReportMetric(e2e[1], phase+"-e2e-p99-ms")
	cores := r.cpu.Seconds() / secs
	cpuPerMB := 0.0
	if r.bytes > 0 {
		cpuPerMB = float64(r.cpu.Milliseconds()) / (float64(r.bytes) / benchMB)
	}
	b.ReportMetric(cpuPerMB, phase+"-broker-cpu-ms/MB")
	fmt.Fprintf(os.Stderr, "%-5s %6.1f MB/s %8.0f records/s  ack p50 %.2f p99 %.2f p99.9 %.2f ms  e2e p50 %.2f p99 %.2f ms  brokers %.2f cores, %.1f ms CPU/MB  (%d records in %.1fs, %d failed)\n",
		phase, mbs, recs, ack[0], ack[1], ack[2], e2e[0], e2e[1], cores, cpuPerMB, r.records, secs, r.failed)
}
