package s3stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
)

func newLocalDir(t *testing.T, dir string) *s3stream.LocalDir {
	t.Helper()
	d, err := s3stream.NewLocalDir(dir)
	if err != nil {
		t.Fatalf("NewLocalDir(%s): %v", dir, err)
	}
	return d
}

func listKeys(t *testing.T, s s3stream.ObjectStore, prefix string) []string {
	t.Helper()
	infos, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	var keys []string
	for _, i := range infos {
		keys = append(keys, i.Key)
	}
	return keys
}

// Two stores on one directory behave like two clients of one bucket.
func TestLocalDirShared(t *testing.T) {
	dir := t.TempDir()
	a, b := newLocalDir(t, dir), newLocalDir(t, dir)
	ctx := t.Context()
	if err := a.Put(ctx, "x/1", bytes.NewReader([]byte("from a")), 6); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "x/1", 0, -1); err != nil || string(got) != "from a" {
		t.Fatalf("b.Get(x/1) = %q, %v; want the object a wrote", got, err)
	}
	if err := b.Put(ctx, "x/1", bytes.NewReader([]byte("from b")), 6); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, "x/1", 0, -1); err != nil || string(got) != "from b" {
		t.Fatalf("a.Get(x/1) = %q, %v; want b's overwrite", got, err)
	}
	if err := b.Put(ctx, "x/2", bytes.NewReader(nil), 0); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, a, "x/"); !slices.Equal(got, []string{"x/1", "x/2"}) {
		t.Fatalf("a.List(x/) = %q", got)
	}
	if err := a.Delete(ctx, "x/2"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Head(ctx, "x/2"); !errors.Is(err, s3stream.ErrNotFound) {
		t.Fatalf("b.Head(x/2) after a.Delete = %v, want ErrNotFound", err)
	}
}

// Puts and deletes racing in one directory tree: Delete prunes empty
// directories while Puts create them; no Put may fail or be lost.
func TestLocalDirSharedPutDeleteRace(t *testing.T) {
	dir := t.TempDir()
	a, b := newLocalDir(t, dir), newLocalDir(t, dir)
	const rounds = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for w, s := range []*s3stream.LocalDir{a, b} {
		wg.Go(func() {
			for i := range rounds {
				key := fmt.Sprintf("race/p%d/k%d", i%3, i)
				if w == 0 {
					if err := s.Put(t.Context(), key, bytes.NewReader([]byte("v")), 1); err != nil {
						errs <- fmt.Errorf("Put(%s): %w", key, err)
					}
					continue
				}
				// The other store deletes the previous key, often
				// leaving the directory empty for pruning.
				prev := fmt.Sprintf("race/p%d/k%d", i%3, i-3)
				if err := s.Delete(t.Context(), prev); err != nil {
					errs <- fmt.Errorf("Delete(%s): %w", prev, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := rounds - 1; i >= rounds-3; i-- {
		key := fmt.Sprintf("race/p%d/k%d", i%3, i)
		if _, err := a.Head(t.Context(), key); err != nil {
			t.Errorf("Head(%s) after the race: %v", key, err)
		}
	}
}

// Temporary files (of a crashed writer, or in flight) are invisible.
func TestLocalDirTempFilesHidden(t *testing.T) {
	dir := t.TempDir()
	d := newLocalDir(t, dir)
	if err := d.Put(t.Context(), "sub/obj", bytes.NewReader([]byte("ok")), 2); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "sub", ".shoal-tmp-123456")
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, d, ""); !slices.Equal(got, []string{"sub/obj"}) {
		t.Fatalf("List = %q, want only sub/obj", got)
	}
	if _, err := d.Get(t.Context(), "sub/.shoal-tmp-123456", 0, -1); !errors.Is(err, s3stream.ErrInvalidKey) {
		t.Fatalf("Get(temp file) = %v, want ErrInvalidKey", err)
	}
	// RemoveStaleTemp removes only files older than the threshold.
	if n, err := d.RemoveStaleTemp(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("RemoveStaleTemp(1h) = %d, %v; want 0 (the file is new)", n, err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if n, err := d.RemoveStaleTemp(t.Context(), time.Hour); err != nil || n != 1 {
		t.Fatalf("RemoveStaleTemp(1h) = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temp file still there: %v", err)
	}
	// No temporary file is left behind by Put, successful or not.
	_ = d.Put(t.Context(), "sub/short", bytes.NewReader([]byte("abc")), 10)
	entries, err := os.ReadDir(filepath.Join(dir, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "obj" {
		t.Fatalf("directory holds %v, want only obj", entries)
	}
}

// A key cannot be both an object and a directory on a file system.
func TestLocalDirPrefixConflict(t *testing.T) {
	d := newLocalDir(t, t.TempDir())
	ctx := t.Context()
	if err := d.Put(ctx, "p", bytes.NewReader([]byte("obj")), 3); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "p/q", bytes.NewReader([]byte("x")), 1); !errors.Is(err, s3stream.ErrInvalidKey) {
		t.Fatalf("Put(p/q) with object p = %v, want ErrInvalidKey", err)
	}
	if err := d.Put(ctx, "r/s", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "r", bytes.NewReader([]byte("x")), 1); !errors.Is(err, s3stream.ErrInvalidKey) {
		t.Fatalf("Put(r) with object r/s = %v, want ErrInvalidKey", err)
	}
}

// Delete removes directories it leaves empty, not others.
func TestLocalDirDeletePrunes(t *testing.T) {
	dir := t.TempDir()
	d := newLocalDir(t, dir)
	ctx := t.Context()
	for _, k := range []string{"a/b/c/1", "a/x"} {
		if err := d.Put(ctx, k, bytes.NewReader([]byte("v")), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete(ctx, "a/b/c/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a/b still exists after deleting its last object: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "x")); err != nil {
		t.Fatalf("a/x gone: %v", err)
	}
	if err := d.Delete(ctx, "a/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the store's root was removed: %v", err)
	}
}
