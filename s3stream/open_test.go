package s3stream_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
)

func TestOpenBadURL(t *testing.T) {
	bad := []string{
		"",
		"/plain/path",
		"data/objects",
		"http://127.0.0.1:9000/bucket",
		"gs://bucket",
		"file://",
		"file:/abs",
		"file:///tmp/x?sync=1",
		"s3://",
		"s3://?endpoint=127.0.0.1:9000",
		"s3://Bad_Bucket?endpoint=127.0.0.1:9000",
		"s3://ab",
		"s3://bucket/prefix",
		"s3://user:pass@bucket",
		"s3://bucket?endpoint=",
		"s3://bucket?endpoint=http://127.0.0.1:9000",
		"s3://bucket?endpoint=127.0.0.1:99999",
		"s3://bucket?endpoint=127.0.0.1:9000/x",
		"s3://bucket?endpoint=127.0.0.1:9000&endpoint=127.0.0.1:9001",
		"s3://bucket?region=",
		"s3://bucket?tls=maybe",
		"s3://bucket?path-style=yes",
		"s3://bucket?pathstyle=true",
		"s3://bucket?endpoint=127.0.0.1:9000#frag",
		"s3://bucket?%zz",
	}
	for _, u := range bad {
		start := time.Now()
		s, err := s3stream.Open(t.Context(), u, s3stream.DefaultOptions())
		if !errors.Is(err, s3stream.ErrBadURL) {
			t.Errorf("Open(%q) = %v, %v; want ErrBadURL", u, s, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Open(%q) took %v; a bad URL must fail without I/O", u, d)
		}
	}
}

func TestParseS3URL(t *testing.T) {
	tests := []struct {
		url  string
		want s3stream.S3Config
	}{
		{"s3://bucket", s3stream.S3Config{Bucket: "bucket", Endpoint: "s3.amazonaws.com", Region: "us-east-1", TLS: true}},
		{"s3://my.bucket-1?endpoint=127.0.0.1:9000&region=eu-west-1&path-style=true&tls=false",
			s3stream.S3Config{Bucket: "my.bucket-1", Endpoint: "127.0.0.1:9000", Region: "eu-west-1", PathStyle: true}},
		{"s3://b12/?endpoint=minio.local", s3stream.S3Config{Bucket: "b12", Endpoint: "minio.local", Region: "us-east-1", TLS: true}},
		{"s3://b12?endpoint=[::1]:9000&tls=1", s3stream.S3Config{Bucket: "b12", Endpoint: "[::1]:9000", Region: "us-east-1", TLS: true}},
	}
	for _, tc := range tests {
		got, err := s3stream.ParseS3URL(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("ParseS3URL(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
}

func TestOpenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "objects")
	s, err := s3stream.Open(t.Context(), "file://"+dir, s3stream.DefaultOptions())
	if err != nil {
		t.Fatalf("Open(file://%s): %v", dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Open did not create %s: %v", dir, err)
	}
	if err := s.Put(t.Context(), "k", bytes.NewReader([]byte("v")), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "k")); err != nil {
		t.Fatalf("object k is not the file DIR/k: %v", err)
	}

	// A relative directory resolves against the working directory.
	t.Chdir(t.TempDir())
	s, err = s3stream.Open(t.Context(), "file://rel/objects", s3stream.DefaultOptions())
	if err != nil {
		t.Fatalf("Open(file://rel/objects): %v", err)
	}
	if err := s.Put(t.Context(), "k2", bytes.NewReader([]byte("v")), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("rel", "objects", "k2")); err != nil {
		t.Fatalf("relative store not under ./rel/objects: %v", err)
	}

	// A path that cannot be a directory fails clearly.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s3stream.Open(t.Context(), "file://"+file+"/sub", s3stream.DefaultOptions()); err == nil {
		t.Fatal("Open below a regular file succeeded")
	}
}

func TestOpenUnreachable(t *testing.T) {
	// A port that was just free: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	start := time.Now()
	_, err = s3stream.Open(t.Context(), "s3://bucket?endpoint="+addr+"&path-style=true&tls=false",
		s3stream.Options{AccessKey: "k", SecretKey: "s"})
	if !errors.Is(err, s3stream.ErrUnreachable) {
		t.Fatalf("Open(closed port) = %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("Open(closed port) took %v, want at most about 5 s", d)
	}
	t.Logf("unreachable endpoint reported after %v: %v", time.Since(start).Round(time.Millisecond), err)

	// A server that accepts connections but never answers: bounded by the
	// caller's deadline (and by 5 s without one).
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = s3stream.Open(ctx, "s3://bucket?endpoint="+l.Addr().String()+"&path-style=true&tls=false",
		s3stream.Options{AccessKey: "k", SecretKey: "s"})
	if !errors.Is(err, s3stream.ErrUnreachable) {
		t.Fatalf("Open(silent server) = %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Open(silent server) took %v despite a 500 ms deadline", d)
	}
}

func testOpenCreatesBucket(t *testing.T, m *s3test.MinIO) {
	opts := m.Options()
	opts.CreateBucket = false
	if _, err := s3stream.Open(t.Context(), m.URL("not-created"), opts); !errors.Is(err, s3stream.ErrNotFound) {
		t.Fatalf("Open(missing bucket, CreateBucket=false) = %v, want ErrNotFound", err)
	}
	s, err := s3stream.Open(t.Context(), m.URL("created"), m.Options())
	if err != nil {
		t.Fatalf("Open(missing bucket, CreateBucket=true): %v", err)
	}
	if err := s.Put(t.Context(), "x", bytes.NewReader([]byte("y")), 1); err != nil {
		t.Fatalf("Put in created bucket: %v", err)
	}
	// The bucket now exists: opening it without CreateBucket works and sees
	// the object.
	s2, err := s3stream.Open(t.Context(), m.URL("created"), opts)
	if err != nil {
		t.Fatalf("Open(existing bucket, CreateBucket=false): %v", err)
	}
	if got, err := s2.Get(t.Context(), "x", 0, -1); err != nil || string(got) != "y" {
		t.Fatalf("Get via second Open = %q, %v", got, err)
	}
}

func testOpenWrongCredentials(t *testing.T, m *s3test.MinIO) {
	m.Store(t, "creds") // exists, so only the credentials are wrong
	for _, opts := range []s3stream.Options{
		{AccessKey: m.AccessKey, SecretKey: "wrong-secret", CreateBucket: true},
		{AccessKey: "no-such-user", SecretKey: "whatever-secret", CreateBucket: true},
		{AccessKey: "no-such-user", SecretKey: "whatever-secret", CreateBucket: false},
	} {
		start := time.Now()
		_, err := s3stream.Open(t.Context(), m.URL("creds"), opts)
		if !errors.Is(err, s3stream.ErrAccessDenied) {
			t.Errorf("Open with access key %q and a wrong secret = %v, want ErrAccessDenied", opts.AccessKey, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Open with wrong credentials took %v", d)
		}
	}
	// Also for a bucket that does not exist (no creation is attempted).
	_, err := s3stream.Open(t.Context(), m.URL("creds-missing"),
		s3stream.Options{AccessKey: "no-such-user", SecretKey: "whatever-secret", CreateBucket: true})
	if !errors.Is(err, s3stream.ErrAccessDenied) {
		t.Errorf("Open(missing bucket, wrong credentials) = %v, want ErrAccessDenied", err)
	}
}

func testOpenFromEnvironment(t *testing.T, m *s3test.MinIO) {
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	s, err := s3stream.Open(t.Context(), m.URL("from-env"), s3stream.DefaultOptions())
	if err != nil {
		t.Fatalf("Open with credentials from the environment: %v", err)
	}
	if err := s.Put(t.Context(), "k", bytes.NewReader(nil), 0); err != nil {
		t.Fatal(err)
	}
	// Explicit options take precedence over the environment.
	_, err = s3stream.Open(t.Context(), m.URL("from-env"), s3stream.Options{AccessKey: "other", SecretKey: "other-secret"})
	if !errors.Is(err, s3stream.ErrAccessDenied) {
		t.Fatalf("Open with explicit wrong credentials = %v, want ErrAccessDenied", err)
	}
}
