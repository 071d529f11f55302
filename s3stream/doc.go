// Package s3stream is Shoal's object-storage layer: the store interface and
// its implementations, the object format, the uploader that moves committed
// WAL data into objects, the reader that serves history through a block
// cache, and request accounting.
//
// Data path:
//   - Uploader (one per WAL group, active on its Raft leader): when enough
//     data (UploadBytes) or old enough data (UploadAge) waits in the WAL, it
//     writes one stream set object (ObjectWriter: blocks of ~1 MiB per
//     stream, an index, a footer; docs/format/s3-object.md), PUTs it,
//     commits its ranges to metadata, and only then trims the WAL. A new
//     leader resumes from what metadata holds, so no range is lost or stored
//     twice; an object PUT but never committed is an orphan for the sweep.
//   - Reader: offset -> object (the caller locates it in the metadata
//     index) -> block (cached object index) -> LRU block cache -> ranged GET,
//     with read-ahead for sequential catch-up and one GET for concurrent
//     misses of the same block.
//   - Compactor (on the metadata leader): merges small stream set objects,
//     splits streams above 16 MiB into per-stream stream objects ("so/"),
//     merges small stream objects of a stream; metadata swaps inputs for
//     outputs atomically (CompactObjects) and queues the inputs for deletion.
//   - Retention: retention.ms and retention.bytes (Kafka's rules, whole
//     ranges only) advance a stream's log start through metadata.TrimStream.
//   - GC: objects whose deletion grace (5 min) has passed are deleted; a
//     slow orphan sweep (the only LIST) removes objects no metadata refers
//     to, older than the grace (a crash between PUT and commit leaves those).
//   - Key compaction (keycompact.go): for compacted topics the compactor
//     rewrites every committed range but the newest into stream objects
//     holding the latest record per key, at the original offsets; tombstones
//     go after delete.retention.ms.
//   - Keys: "sso/g<group>/<ms>-<hex>" for uploads, "sso/g<group>/c<ms>-<hex>"
//     for merged SSOs, "so/<stream>/<start>-<hex>" for stream objects and
//     "so/<stream>/<start>-k[<ms>]-<hex>" for key-compacted ones.
//   - Metered wraps a store and counts PUT/GET/DELETE/LIST and bytes per
//     Reason (upload, compaction, fetch, gc), taken from the context.
//
// Stores: the ObjectStore interface that every object-storage user goes
// through has two real implementations:
//
//   - LocalDir: a local directory, for the embedded single-node default
//     (`file://DIR`). Put writes a temporary file next to the target,
//     fsyncs it, renames it into place and fsyncs the directory.
//   - S3: a bucket of an S3-compatible service through minio-go/v7
//     (`s3://BUCKET?endpoint=HOST:PORT&region=R&path-style=true&tls=false`),
//     with one PUT per object up to 128 MiB and multipart uploads above.
//
// Guarantees, identical for every implementation (the behaviour suite in
// s3stream/s3test checks them against LocalDir, the in-memory store and a
// real MinIO server):
//   - Put is atomic: a reader sees the old object (or ErrNotFound) or the
//     whole new one, never a part; a failed or cancelled Put changes nothing.
//   - Get is ranged, with the rules of CheckRange: a read extending past the
//     end is truncated; a non-empty read starting at or past the end is
//     ErrInvalidRange.
//   - Keys follow ValidateKey ("segment/segment", no "..", not absolute);
//     anything else is ErrInvalidKey before any I/O.
//   - Delete of a missing key succeeds; List returns keys sorted bytewise.
//   - Errors wrap the sentinels of errors.go (ErrNotFound, ErrInvalidRange,
//     ErrInvalidKey, ErrBadURL, ErrUnreachable, ErrAccessDenied,
//     ErrShortBody) and keep context.Canceled/DeadlineExceeded visible.
//
// Open turns a command-line URL into a checked, usable store:
//
//	store, err := s3stream.Open(ctx, "s3://shoal?endpoint=127.0.0.1:9000&path-style=true&tls=false",
//		s3stream.DefaultOptions()) // credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
//	if err != nil { // errors.Is(err, s3stream.ErrUnreachable), ErrAccessDenied, ErrBadURL ...
//		return err
//	}
//	err = store.Put(ctx, "sso/00000001", bytes.NewReader(obj), int64(len(obj)))
//	block, err := store.Get(ctx, "sso/00000001", off, 1<<20)
package s3stream
