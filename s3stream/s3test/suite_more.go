package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-io/shoal/s3stream"
)

func testInvalidKeys(t *testing.T, s s3stream.ObjectStore) {
	bad := []string{
		"", "/abs", "a/../b", "..", ".", "./a", "a/.", "a//b", "a/", "a\x00b", "a\nb",
		".shoal-tmp-x", "d/.shoal-tmp-123", strings.Repeat("k", 1025), strings.Repeat("s", 256), "\xff",
	}
	ctx := t.Context()
	for _, k := range bad {
		if err := s.Put(ctx, k, strings.NewReader("x"), 1); !errors.Is(err, s3stream.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(ctx, k, 0, -1); !errors.Is(err, s3stream.ErrInvalidKey) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Head(ctx, k); !errors.Is(err, s3stream.ErrInvalidKey) {
			t.Errorf("Head(%q) error = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, s3stream.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", k, err)
		}
	}
	infos, err := s.List(ctx, "")
	if err != nil || len(infos) != 0 {
		t.Fatalf("List after invalid puts = %q, %v; want empty", keysOf(infos), err)
	}
	// Longest valid key and segment.
	long := strings.Repeat("s", 255) + "/" + strings.Repeat("t", 255)
	mustPut(t, s, long, []byte("ok"))
	wantContent(t, s, long, []byte("ok"))
}

// shortReader yields n bytes, then EOF.
func shortReader(n int) io.Reader { return bytes.NewReader(pattern(9, n)) }

func testBodySize(t *testing.T, s s3stream.ObjectStore) {
	ctx := t.Context()
	// A body shorter than declared stores nothing.
	if err := s.Put(ctx, "short", shortReader(5), 10); !errors.Is(err, s3stream.ErrShortBody) {
		t.Fatalf("Put(5 of 10 bytes) error = %v, want ErrShortBody", err)
	}
	wantMissing(t, s, "short")
	// ... and leaves an existing object untouched.
	mustPut(t, s, "short", []byte("old"))
	if err := s.Put(ctx, "short", shortReader(5), 10); !errors.Is(err, s3stream.ErrShortBody) {
		t.Fatalf("overwriting Put(5 of 10 bytes) error = %v, want ErrShortBody", err)
	}
	wantContent(t, s, "short", []byte("old"))
	// A longer body is cut at the declared size.
	if err := s.Put(ctx, "cut", shortReader(100), 30); err != nil {
		t.Fatalf("Put(30 of 100 bytes): %v", err)
	}
	wantContent(t, s, "cut", pattern(9, 30))
	// The body starts at the reader's current position.
	for _, tc := range []struct {
		size int64
		want error
	}{{7, nil}, {8, s3stream.ErrShortBody}} {
		r := bytes.NewReader([]byte("0123456789"))
		_, _ = r.Read(make([]byte, 3))
		err := s.Put(ctx, "mid", r, tc.size)
		if !errors.Is(err, tc.want) {
			t.Fatalf("Put(mid-read reader, size %d) = %v, want %v", tc.size, err, tc.want)
		}
	}
	wantContent(t, s, "mid", []byte("3456789"))
}

// testPrefixConflict puts an object and then one below it as a prefix (and
// the reverse). S3 allows both; a file system cannot, and LocalDir rejects
// the second with ErrInvalidKey. Either way the first stays intact.
func testPrefixConflict(t *testing.T, s s3stream.ObjectStore) {
	pairs := [][2]string{{"pc1", "pc1/child"}, {"pc2/child", "pc2"}}
	for _, p := range pairs {
		first, second := p[0], p[1]
		mustPut(t, s, first, []byte("first"))
		err := s.Put(t.Context(), second, strings.NewReader("second"), 6)
		switch {
		case err == nil:
			wantContent(t, s, second, []byte("second"))
		case errors.Is(err, s3stream.ErrInvalidKey):
			wantMissing(t, s, second)
		default:
			t.Fatalf("Put(%q) after Put(%q) error = %v, want nil or ErrInvalidKey", second, first, err)
		}
		wantContent(t, s, first, []byte("first"))
	}
}

// onlyReader hides io.ReaderAt and io.Seeker so stores stream the body.
type onlyReader struct{ io.Reader }

func testLargeObject(t *testing.T, s s3stream.ObjectStore) {
	if testing.Short() {
		t.Skip("large object skipped in -short mode")
	}
	const mib = 1 << 20
	big := pattern(10, 40*mib) // several multipart parts on S3
	if err := s.Put(t.Context(), "large/known", onlyReader{bytes.NewReader(big)}, int64(len(big))); err != nil {
		t.Fatalf("Put(40 MiB): %v", err)
	}
	info, err := s.Head(t.Context(), "large/known")
	if err != nil || info.Size != int64(len(big)) {
		t.Fatalf("Head(40 MiB) = %+v, %v", info, err)
	}
	wantContent(t, s, "large/known", big)
	// A range across the 16 MiB part boundary.
	off := int64(16*mib - 1000)
	got, err := s.Get(t.Context(), "large/known", off, 5000)
	if err != nil || !bytes.Equal(got, big[off:off+5000]) {
		t.Fatalf("Get across part boundary = %d bytes, %v; want the matching 5000 bytes", len(got), err)
	}
	got, err = s.Get(t.Context(), "large/known", int64(len(big))-10, -1)
	if err != nil || !bytes.Equal(got, big[len(big)-10:]) {
		t.Fatalf("Get of the tail = %d bytes, %v", len(got), err)
	}

	// Unknown size, more than one part.
	mid := big[:17*mib]
	if err := s.Put(t.Context(), "large/unknown", onlyReader{bytes.NewReader(mid)}, -1); err != nil {
		t.Fatalf("Put(17 MiB, size -1): %v", err)
	}
	wantContent(t, s, "large/unknown", mid)
}

func testConcurrent(t *testing.T, s s3stream.ObjectStore) {
	const workers, perWorker = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("conc/w%d/o%d", w, i)
				data := pattern(byte(w*perWorker+i), 1000+w*100+i)
				if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
					errs <- fmt.Errorf("Put(%s): %w", key, err)
					return
				}
				got, err := s.Get(t.Context(), key, 0, -1)
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("Get(%s) = %d bytes, %v; want %d bytes", key, len(got), err, len(data))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	infos, err := s.List(t.Context(), "conc/")
	if err != nil || len(infos) != workers*perWorker {
		t.Fatalf("List(conc/) = %d objects, %v; want %d", len(infos), err, workers*perWorker)
	}
}

// testAtomicOverwrite overwrites one key from several writers while readers
// read it: every read must return one complete version.
func testAtomicOverwrite(t *testing.T, s s3stream.ObjectStore) {
	const size, writers, readers, rounds = 256 << 10, 4, 4, 8
	version := func(w, r int) []byte { return bytes.Repeat([]byte{byte(1 + w*rounds + r)}, size) }
	mustPut(t, s, "atomic", version(0, 0))
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var writing sync.WaitGroup
	for w := range writers {
		writing.Add(1)
		wg.Go(func() {
			defer writing.Done()
			for r := range rounds {
				v := version(w, r)
				if err := s.Put(ctx, "atomic", bytes.NewReader(v), size); err != nil {
					errs <- fmt.Errorf("Put: %w", err)
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for ctx.Err() == nil {
				got, err := s.Get(ctx, "atomic", 0, -1)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					errs <- fmt.Errorf("Get: %w", err)
					return
				}
				if len(got) != size || bytes.Count(got, got[:1]) != size {
					errs <- fmt.Errorf("Get returned a torn object: %d bytes, first byte %d", len(got), got[0])
					return
				}
			}
		})
	}
	writing.Wait()
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// cancellingReader yields data and cancels its context after half of it.
type cancellingReader struct {
	data   []byte
	pos    int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.pos >= len(c.data) {
		return 0, io.EOF
	}
	if c.pos >= len(c.data)/2 {
		c.cancel()
	}
	n := copy(p[:min(len(p), 64<<10)], c.data[c.pos:])
	c.pos += n
	return n, nil
}

func testContextCancel(t *testing.T, s s3stream.ObjectStore) {
	mustPut(t, s, "cc/existing", []byte("keep"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "cc/new", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled ctx: %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "cc/existing", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with cancelled ctx: %v, want context.Canceled", err)
	}
	if _, err := s.Head(ctx, "cc/existing"); !errors.Is(err, context.Canceled) {
		t.Errorf("Head with cancelled ctx: %v, want context.Canceled", err)
	}
	if _, err := s.List(ctx, "cc/"); !errors.Is(err, context.Canceled) {
		t.Errorf("List with cancelled ctx: %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "cc/existing"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with cancelled ctx: %v, want context.Canceled", err)
	}
	wantMissing(t, s, "cc/new")
	wantContent(t, s, "cc/existing", []byte("keep"))

	// Cancelled in the middle of the body, known and unknown size: nothing
	// becomes visible and the old content stays.
	for _, size := range []int64{4 << 20, -1} {
		for _, key := range []string{"cc/new", "cc/existing"} {
			ctx, cancel := context.WithCancel(t.Context())
			r := &cancellingReader{data: pattern(11, 4<<20), cancel: cancel}
			err := s.Put(ctx, key, r, size)
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Put(%s, size %d) cancelled mid-body: %v, want context.Canceled", key, size, err)
			}
		}
	}
	wantMissing(t, s, "cc/new")
	wantContent(t, s, "cc/existing", []byte("keep"))
	infos, err := s.List(t.Context(), "")
	if got := keysOf(infos); err != nil || len(got) != 1 || got[0] != "cc/existing" {
		t.Fatalf("List after cancelled puts = %q, %v; want only cc/existing", got, err)
	}
}
