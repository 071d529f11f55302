// Package integration holds Shoal's multi-process tests: real shoald
// processes (built once per test run), real Kafka clients (franz-go's kgo
// and kadm, librdkafka through kcat), raw protocol clients, and faults
// (kill -9, malformed input, a hang between an object's PUT and its commit,
// MinIO stopped under load).
//
// The harness (harness.go) builds cmd/shoald into a temporary directory in
// TestMain and starts brokers on free loopback ports with temporary data
// directories:
//
//	b := StartBroker(t)               // waits for /readyz
//	cl := b.Client(t)                 // a kgo client seeded with b.Addr
//	b.Kill(); b.Restart()             // kill -9, then start on the same data and ports
//	b.Stop()                          // SIGTERM, asserts exit status 0
//
// Object-storage tests start a real MinIO (s3test.StartMinIO) and point
// shoald at it (WithMinIO). Cluster tests start several shoald processes
// with the same --peers (StartCluster in cluster.go): kill -9, SIGSTOP and
// SIGCONT, rolling and full restarts.
//
// Nothing imports this package. Benchmarks (run by make bench):
// BenchmarkProduceConsume reports produce throughput and latencies
// (SHOAL_BENCH_SECONDS sets the length of each phase); BenchmarkObjectStorage
// reports PUTs per GiB ingested, catch-up MB/s from object storage against
// raw GETs, GETs per GiB replayed and LISTs (SHOAL_BENCH_GIB sets the data size);
// BenchmarkCluster reports the same produce figures for 3 brokers and the
// failover time after a kill -9.
package integration
