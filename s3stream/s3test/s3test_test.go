package s3test_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
)

// Without faults a FaultStore is its inner store.
func TestFaultStoreSuite(t *testing.T) {
	s3test.RunObjectStoreSuite(t, func(t *testing.T) s3stream.ObjectStore {
		return s3test.NewFaultStore(s3test.NewMemStore())
	})
}

func TestFaultStoreInjects(t *testing.T) {
	mem := s3test.NewMemStore()
	f := s3test.NewFaultStore(mem)
	ctx := t.Context()
	if err := f.Put(ctx, "a/1", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	f.SetFault(func(op s3test.Op, key string) error {
		if op == s3test.OpPut && strings.HasPrefix(key, "b/") {
			return s3stream.ErrUnreachable
		}
		return nil
	})
	if err := f.Put(ctx, "b/1", bytes.NewReader([]byte("y")), 1); !errors.Is(err, s3stream.ErrUnreachable) {
		t.Fatalf("Put(b/1) with a fault = %v, want ErrUnreachable", err)
	}
	if mem.Len() != 1 {
		t.Fatalf("inner store holds %d objects after a failed Put, want 1", mem.Len())
	}
	if err := f.Put(ctx, "a/2", bytes.NewReader([]byte("z")), 1); err != nil {
		t.Fatalf("Put(a/2) not matched by the rule: %v", err)
	}
	f.FailAll(s3stream.ErrAccessDenied)
	if _, err := f.Get(ctx, "a/1", 0, -1); !errors.Is(err, s3stream.ErrAccessDenied) {
		t.Fatalf("Get with FailAll = %v", err)
	}
	if _, err := f.List(ctx, ""); !errors.Is(err, s3stream.ErrAccessDenied) {
		t.Fatalf("List with FailAll = %v", err)
	}
	f.FailAll(nil)
	if got, err := f.Get(ctx, "a/1", 0, -1); err != nil || string(got) != "x" {
		t.Fatalf("Get after clearing faults = %q, %v", got, err)
	}
	if n := f.Calls(s3test.OpPut); n != 3 {
		t.Fatalf("Calls(put) = %d, want 3", n)
	}
	if n := f.Calls(s3test.OpGet); n != 2 {
		t.Fatalf("Calls(get) = %d, want 2", n)
	}
}

func TestFindMinIOHonoursEnv(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "my-minio")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOAL_MINIO_BIN", bin)
	if got, err := s3test.FindMinIO(); err != nil || got != bin {
		t.Fatalf("FindMinIO() = %q, %v; want %q", got, err, bin)
	}
	// A missing SHOAL_MINIO_BIN (make unit before make test) falls back
	// to PATH and GOPATH.
	t.Setenv("SHOAL_MINIO_BIN", bin+"-missing")
	if got, err := s3test.FindMinIO(); got == bin+"-missing" || (err == nil) == (got == "") {
		t.Fatalf("FindMinIO() with a missing SHOAL_MINIO_BIN = %q, %v", got, err)
	}
}
