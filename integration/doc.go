// Package integration holds Shoal's multi-process tests: real shoald
// processes (built once per test run), real Kafka clients (franz-go's kgo
// and kadm, librdkafka through kcat), raw protocol clients, and faults
// (kill -9, malformed input).
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
// Nothing imports this package. The benchmark BenchmarkProduceConsume (run
// by make bench) reports produce throughput and latencies; SHOAL_BENCH_SECONDS
// sets the length of each of its phases.
package integration
