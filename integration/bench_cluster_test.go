package integration

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkCluster measures 3 shoald brokers on one machine, with the
// shape of BenchmarkProduceConsume (1 KiB uncompressed records, acks=all,
// idempotent producers, 8 partitions spread over the 3 WAL groups, a
// consumer tailing the topic): (a) an offered load of 50 MB/s
// (SHOAL_BENCH_OFFERED_MBS) and (b) unthrottled producers, each for
// SHOAL_BENCH_SECONDS (default 10), reporting produce MB/s, produce-ack
// p50/p99/p99.9, end-to-end p50/p99 and the brokers' CPU time per MB
// produced; then (c) failover: under the 50 MB/s offered load the broker
// leading the most partitions is killed with SIGKILL, and failover-ms is
// the time from the kill until a new client's acks=all write has succeeded
// on every partition (the slowest partition).
func BenchmarkCluster(b *testing.B) {
	dur := benchSeconds(b)
	c := StartCluster(b, 3, WithArgs(append([]string{"--log-level", "warn"}, strings.Fields(os.Getenv("SHOAL_BENCH_ARGS"))...)...))
	c.CreateTopic(b, "bench", benchPartitions)
	waitBalanced(b, c)
	producers := make([]*kgo.Client, benchProducers)
	for i := range producers {
		producers[i] = c.Client(b, kgo.DefaultProduceTopic("bench"), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(0), kgo.MaxBufferedRecords(4000), kgo.ProducerBatchMaxBytes(1<<20),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	run := &benchRun{brokers: c.Brokers}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	consumer := c.Client(b, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxBytes(64<<20))
	consumerDone := tailBench(ctx, consumer, run)
	defer func() { cancel(); <-consumerDone }()

	value := make([]byte, benchRecordSize)
	rand.Read(value) // incompressible

	b.ResetTimer()
	for range b.N {
		runPhase(ctx, run, producers, value, 0, min(dur, 2*time.Second)) // warm-up
		run.settle(b)

		fixed := runPhase(ctx, run, producers, value, benchOffered(b), dur)
		report(b, "fixed", run, fixed)
		run.settle(b)

		peak := runPhase(ctx, run, producers, value, 0, dur)
		report(b, "peak", run, peak)
		run.settle(b)

		failover(b, c, ctx, run, producers, value)
	}
}

// failover kills the busiest leader under the fixed offered load and
// reports the time until every partition takes writes again.
func failover(b *testing.B, c *Cluster, ctx context.Context, run *benchRun, producers []*kgo.Client, value []byte) {
	victim, led := c.BusiestLeader(b, "bench")
	phase := make(chan phaseResult)
	go func() { phase <- runPhase(ctx, run, producers, value, benchOfferedMBs, 5*time.Second) }()
	time.Sleep(time.Second) // under load when the kill comes: part of the scenario, not synchronisation
	victim.Kill()
	took := c.WaitWritable(b, "bench", benchPartitions, 30*time.Second)
	var worst time.Duration
	for _, d := range took {
		worst = max(worst, d)
	}
	r := <-phase
	b.ReportMetric(float64(worst.Microseconds())/1000, "failover-ms")
	fmt.Fprintf(os.Stderr, "failover: killed broker %s (leader of %d of %d partitions); writes on every partition after %v (per partition %v); %d records acknowledged in the phase, %d failed\n",
		victim.NodeID(), led, benchPartitions, worst.Round(time.Millisecond), roundAll(took), r.records, r.failed)
	victim.Restart()
	c.WaitInSync(b, "bench", 30*time.Second)
}

// tailBench consumes with cl until ctx is done, recording end-to-end
// latencies in run.
func tailBench(ctx context.Context, cl *kgo.Client, run *benchRun) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				run.e2e.add(now.Sub(r.Timestamp))
				run.consumed.Add(1)
			})
		}
	}()
	return done
}

// waitBalanced waits until every broker leads exactly one WAL group (right
// after start, a broker may lead two until the preferred-leader balance),
// so that the load spreads as it does in steady state.
func waitBalanced(b *testing.B, c *Cluster) {
	Eventually(b, 60*time.Second, func() error {
		for _, br := range c.Brokers {
			led := 0
			for _, g := range getClusterView(b, br).WALGroups {
				if g.Local != nil && g.Local.State == "Leader" {
					led++
				}
			}
			if led != 1 {
				return fmt.Errorf("broker %s leads %d wal groups", br.NodeID(), led)
			}
		}
		return nil
	})
}
