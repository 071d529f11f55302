package s3stream

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ObjectStore is the small storage interface every object-storage user goes
// through. Implementations are safe for concurrent use.
type ObjectStore interface {
	// Put stores the object key with the content read from r. It is atomic:
	// readers see the previous content (or ErrNotFound) until Put returns
	// successfully, then all of the new content, never a part. size is the
	// number of bytes to read from r, or -1 when unknown (read to EOF). With
	// size >= 0 exactly size bytes are read; a shorter reader fails with
	// ErrShortBody and stores nothing.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns length bytes of the object starting at off; length < 0
	// reads to the end. A missing object gives ErrNotFound. The range rules
	// are those of CheckRange: a read that starts inside the object but
	// extends past its end is truncated at the end; a non-empty read that
	// starts at or beyond the end gives ErrInvalidRange, except that
	// Get(key, 0, -1) of an empty object returns an empty slice.
	Get(ctx context.Context, key string, off, length int64) ([]byte, error)
	// Head returns the object's size and modification time, or ErrNotFound.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every object whose key starts with prefix (all objects
	// for ""), sorted by key in byte order.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	// Key is the object's key.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// LastModified is when the object was last written (second precision
	// on S3).
	LastModified time.Time
}

// MaxKeyLen is the longest accepted key, in bytes (the S3 limit).
const MaxKeyLen = 1024

// maxSegmentLen is the longest accepted key segment, in bytes: the usual
// file-name limit, so that every key maps to a file in a LocalDir.
const maxSegmentLen = 255

// tempPrefix starts the names of LocalDir temporary files. Keys with a
// segment starting with it are reserved (ErrInvalidKey), so a temporary file
// never collides with an object and List can skip it by name.
const tempPrefix = ".shoal-tmp-"

// ValidateKey reports whether key is acceptable to every ObjectStore: it
// must be non-empty, at most MaxKeyLen bytes of valid UTF-8 without control
// characters, relative ("a/b", not "/a/b"), made of non-empty segments of at
// most 255 bytes separated by "/", none of which is "." or ".." or starts
// with the reserved ".shoal-tmp-". Errors wrap ErrInvalidKey.
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("key %q: %s: %w", key, why, ErrInvalidKey)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad("longer than 1024 bytes")
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("absolute")
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f {
			return bad("control character")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return bad("empty segment")
		case seg == "." || seg == "..":
			return bad(`"." or ".." segment`)
		case len(seg) > maxSegmentLen:
			return bad("segment longer than 255 bytes")
		case strings.HasPrefix(seg, tempPrefix):
			return bad("reserved name")
		}
	}
	return nil
}

// prefixCanMatch reports whether some valid key starts with prefix. List
// returns nothing, without I/O, for a prefix that cannot match ("/a",
// "../"), where S3 servers would differ (MinIO rejects ".." outright).
func prefixCanMatch(prefix string) bool {
	return prefix == "" || ValidateKey(prefix) == nil || ValidateKey(prefix+"x") == nil
}

// CheckRange resolves a ranged read of length bytes at off from an object of
// size bytes into the half-open interval [start, end). It is the one
// definition of range semantics that every ObjectStore follows:
//   - off < 0 is ErrInvalidRange;
//   - off == 0 with length < 0 is the whole object, even when it is empty;
//   - length == 0 is an empty read, valid for 0 <= off <= size;
//   - otherwise off >= size is ErrInvalidRange (nothing to read there);
//   - length < 0 reads to the end; a range extending past the end is
//     truncated at the end.
func CheckRange(size, off, length int64) (start, end int64, err error) {
	switch {
	case off < 0:
		return 0, 0, fmt.Errorf("offset %d: %w", off, ErrInvalidRange)
	case off == 0 && length < 0:
		return 0, size, nil
	case length == 0 && off <= size:
		return off, off, nil
	case off >= size:
		return 0, 0, fmt.Errorf("offset %d of an object of %d bytes: %w", off, size, ErrInvalidRange)
	case length < 0 || length > size-off:
		return off, size, nil
	default:
		return off, off + length, nil
	}
}

// ctxReader fails reads once its context is done, so that a Put copying from
// a long (non-blocking) reader stops promptly on cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// exactReader reads exactly size bytes of r, reporting ErrShortBody when r
// ends early. It never reads beyond size.
type exactReader struct {
	r     io.Reader
	left  int64
	size  int64
	short atomic.Bool // r ended before size bytes (read after an HTTP client may still hold the body)
}

func newExactReader(r io.Reader, size int64) *exactReader {
	return &exactReader{r: r, left: size, size: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		e.short.Store(true)
		return n, fmt.Errorf("got %d of %d bytes: %w", e.size-e.left, e.size, ErrShortBody)
	}
	if e.left == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// ReadBody reads a Put body by the ObjectStore rules: exactly size bytes
// when size >= 0 (ErrShortBody if r ends early), to EOF when size is -1, and
// stopping with the context's error once ctx is done. It serves stores that
// hold objects in memory.
func ReadBody(ctx context.Context, r io.Reader, size int64) ([]byte, error) {
	if size < -1 {
		return nil, fmt.Errorf("size %d: negative size other than -1", size)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var src io.Reader = ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		src = newExactReader(src, size)
	}
	return io.ReadAll(src)
}
