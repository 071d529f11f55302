// Package broker is Shoal's Kafka server: the Kafka listener, one reader and
// one writer goroutine per connection, the dispatch table, and one file per
// Kafka API named by its key (00_produce.go, 01_fetch.go, ...), each opening
// with the versions it serves and their notes. docs/compatibility.md lists
// them.
//
// [Start] opens everything a broker needs: the data directory, the Kafka,
// cluster and health listeners, the object store, the metadata Raft group
// and the WAL group, and registers the broker in the metadata.
//
//	b, err := broker.Start(ctx, broker.DefaultConfig())
//	if err != nil { ... }       // one line: "listen 127.0.0.1:9092: address already in use"
//	defer b.Close()
//	fmt.Println(b.Addr())      // the Kafka listener
//
// Guarantees:
//   - Responses on a connection are written strictly in request order, also
//     when requests are pipelined; handlers run concurrently.
//   - Requests start in order: the reader goes on to the next request only
//     once the handler released it. A Produce releases after it submitted
//     its batches to the WAL, so an idempotent producer's pipelined batches
//     reach the WAL in order, while their commits are awaited concurrently;
//     a Fetch releases before its long poll.
//   - Produce with acks=1 or acks=-1 is acknowledged only after the WAL's
//     Raft commit. Offsets are assigned by the WAL, never by the broker.
//   - Bad input never panics the broker: a frame over the size limit,
//     undecodable bytes, an unknown API key or an unsupported version close
//     only that connection with a log line (an unknown ApiVersions version
//     gets the KIP-511 answer instead); a bad batch is an error code for its
//     partition and nothing of it is stored. A handler panic is recovered
//     and closes only its connection.
//   - Every topic or partition failure is a Kafka error code in the
//     response; the codes come from errcode.go, which maps the sentinel
//     errors of wal, metadata, protocol and s3stream.
//   - Close (in a cluster) first hands every WAL group and the metadata
//     group this broker leads to another voter, then stops accepting, lets
//     in-flight requests finish (long polls answer at once), then closes
//     connections, the WAL, the metadata store and the cluster listener; no
//     goroutine outlives it.
//
// Goroutines: the accept loop; per connection the reader (serve), the
// writer and one goroutine per running request (at most 64); the health
// HTTP server; uploaders, storage tasks and WAL leadership watchers (see
// docs/concurrency.md). All are owned by the Broker and waited for in Close.
package broker
