// Package s3stream is Shoal's object-storage layer. This part provides the
// ObjectStore interface that every object-storage user goes through, and
// its two real implementations:
//
//   - LocalDir: a local directory, for the embedded single-node default
//     (`file://DIR`). Put writes a temporary file next to the target,
//     fsyncs it, renames it into place and fsyncs the directory.
//   - S3: a bucket of an S3-compatible service through minio-go/v7
//     (`s3://BUCKET?endpoint=HOST:PORT&region=R&path-style=true&tls=false`),
//     with multipart uploads in 16 MiB parts.
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
