// Package s3test is test support for code that uses s3stream.ObjectStore.
//
// It provides:
//   - RunObjectStoreSuite, the one behaviour suite every ObjectStore
//     implementation passes (local directory, in-memory, S3 on MinIO);
//   - MemStore, an in-memory ObjectStore for fast unit tests;
//   - FaultStore, a wrapper that fails chosen operations (outages, denied
//     access) and counts calls;
//   - StartMinIO, which runs a real MinIO server (the pinned binary that
//     `make test` installs) on a free loopback port with its data in the
//     test's temporary directory, and can stop and restart it on the same
//     port to simulate an outage.
//
// Production code must not import this package.
//
// Usage:
//
//	func TestWithMinIO(t *testing.T) {
//		m := s3test.StartMinIO(t)
//		store := m.Store(t, "bucket")
//		// ... or run shoald with --object-store m.URL("bucket") and m.Env().
//	}
package s3test
