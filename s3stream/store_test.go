package s3stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
)

func TestLocalDirSuite(t *testing.T) {
	s3test.RunObjectStoreSuite(t, func(t *testing.T) s3stream.ObjectStore {
		d, err := s3stream.NewLocalDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestMemStoreSuite(t *testing.T) {
	s3test.RunObjectStoreSuite(t, func(t *testing.T) s3stream.ObjectStore {
		return s3test.NewMemStore()
	})
}

// TestMinIO runs everything that needs a real S3 server against one MinIO.
func TestMinIO(t *testing.T) {
	m := s3test.StartMinIO(t)
	var buckets atomic.Int64
	t.Run("Suite", func(t *testing.T) {
		s3test.RunObjectStoreSuite(t, func(t *testing.T) s3stream.ObjectStore {
			return m.Store(t, fmt.Sprintf("suite-%d", buckets.Add(1)))
		})
	})
	t.Run("OpenCreatesBucket", func(t *testing.T) {
		testOpenCreatesBucket(t, m)
	})
	t.Run("OpenWrongCredentials", func(t *testing.T) {
		testOpenWrongCredentials(t, m)
	})
	t.Run("OpenFromEnvironment", func(t *testing.T) {
		testOpenFromEnvironment(t, m)
	})
	t.Run("Outage", func(t *testing.T) {
		testOutage(t, m)
	})
}

// testOutage stops MinIO: operations fail with ErrUnreachable (within their
// context's deadline), and after a restart on the same port the data is
// back and the same store works again.
func testOutage(t *testing.T, m *s3test.MinIO) {
	s := m.Store(t, "outage")
	data := []byte("survives a restart")
	if err := s.Put(t.Context(), "k", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	start := time.Now()
	if _, err := s.Get(t.Context(), "k", 0, -1); !errors.Is(err, s3stream.ErrUnreachable) {
		t.Fatalf("Get during outage: %v, want ErrUnreachable", err)
	}
	if err := s.Put(t.Context(), "k2", bytes.NewReader(data), int64(len(data))); !errors.Is(err, s3stream.ErrUnreachable) {
		t.Fatalf("Put during outage: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Get and Put during outage took %v, want ErrUnreachable within seconds", d)
	}
	if _, err := s3stream.Open(t.Context(), m.URL("outage"), m.Options()); !errors.Is(err, s3stream.ErrUnreachable) {
		t.Fatalf("Open during outage: %v, want ErrUnreachable", err)
	}
	m.Start()
	got, err := s.Get(t.Context(), "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after restart = %q, %v; want %q", got, err, data)
	}
}
