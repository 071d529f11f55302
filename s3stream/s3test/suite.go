package s3test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/shoal-io/shoal/s3stream"
)

// RunObjectStoreSuite runs the behaviour suite every s3stream.ObjectStore
// implementation must pass. newStore returns an empty store; it is called
// once per subtest. With -short the large-object subtest is skipped.
func RunObjectStoreSuite(t *testing.T, newStore func(t *testing.T) s3stream.ObjectStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s s3stream.ObjectStore)
	}{
		{"PutGetWhole", testPutGetWhole},
		{"RangedGet", testRangedGet},
		{"Overwrite", testOverwrite},
		{"Head", testHead},
		{"Delete", testDelete},
		{"List", testList},
		{"MissingKeys", testMissingKeys},
		{"InvalidKeys", testInvalidKeys},
		{"BodySize", testBodySize},
		{"PrefixConflict", testPrefixConflict},
		{"LargeObject", testLargeObject},
		{"Concurrent", testConcurrent},
		{"AtomicOverwrite", testAtomicOverwrite},
		{"ContextCancel", testContextCancel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// mustPut stores data under key with its known size.
func mustPut(t *testing.T, s s3stream.ObjectStore, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

// mustGet reads the whole object.
func mustGet(t *testing.T, s s3stream.ObjectStore, key string) []byte {
	t.Helper()
	got, err := s.Get(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return got
}

// wantContent checks that key holds exactly want.
func wantContent(t *testing.T, s s3stream.ObjectStore, key string, want []byte) {
	t.Helper()
	if got := mustGet(t, s, key); !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %q..., want %d bytes %q...", key, len(got), head(got), len(want), head(want))
	}
}

// wantMissing checks that key does not exist.
func wantMissing(t *testing.T, s s3stream.ObjectStore, key string) {
	t.Helper()
	if _, err := s.Get(t.Context(), key, 0, -1); !errors.Is(err, s3stream.ErrNotFound) {
		t.Fatalf("Get(%q) error = %v, want ErrNotFound", key, err)
	}
	if _, err := s.Head(t.Context(), key); !errors.Is(err, s3stream.ErrNotFound) {
		t.Fatalf("Head(%q) error = %v, want ErrNotFound", key, err)
	}
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

// keysOf returns the keys of a listing.
func keysOf(infos []s3stream.ObjectInfo) []string {
	keys := make([]string, 0, len(infos))
	for _, i := range infos {
		keys = append(keys, i.Key)
	}
	return keys
}

// pattern returns n deterministic bytes that differ per seed and position,
// so that misplaced ranges are detected.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func testPutGetWhole(t *testing.T, s s3stream.ObjectStore) {
	data := pattern(1, 1000)
	mustPut(t, s, "a/b/c.obj", data)
	wantContent(t, s, "a/b/c.obj", data)

	mustPut(t, s, "empty", nil)
	wantContent(t, s, "empty", []byte{})
	info, err := s.Head(t.Context(), "empty")
	if err != nil || info.Size != 0 {
		t.Fatalf("Head(empty) = %+v, %v; want size 0", info, err)
	}

	// Unknown size: read to EOF.
	data2 := pattern(2, 3000)
	if err := s.Put(t.Context(), "unknown-size", bytes.NewBufferString(string(data2)), -1); err != nil {
		t.Fatalf("Put(size -1): %v", err)
	}
	wantContent(t, s, "unknown-size", data2)

	// Keys with characters that need escaping on the wire.
	odd := "odd/sp ace+plus%25&amp=é"
	mustPut(t, s, odd, []byte("x"))
	wantContent(t, s, odd, []byte("x"))
}

func testRangedGet(t *testing.T, s s3stream.ObjectStore) {
	data := pattern(3, 100)
	mustPut(t, s, "r", data)
	mustPut(t, s, "r-empty", nil)
	tests := []struct {
		key         string
		off, length int64
		want        []byte // nil with wantErr
		wantErr     error
	}{
		{"r", 0, -1, data, nil},
		{"r", 0, 10, data[:10], nil},
		{"r", 10, 10, data[10:20], nil},
		{"r", 0, 1, data[:1], nil},
		{"r", 99, 1, data[99:], nil},
		{"r", 90, 10, data[90:], nil},
		{"r", 90, 50, data[90:], nil}, // truncated at the end
		{"r", 0, 100, data, nil},
		{"r", 0, 1000, data, nil},
		{"r", 0, math.MaxInt64, data, nil},
		{"r", 50, math.MaxInt64, data[50:], nil},
		{"r", 50, -1, data[50:], nil},
		{"r", 99, -1, data[99:], nil},
		{"r", 0, 0, []byte{}, nil},
		{"r", 42, 0, []byte{}, nil},
		{"r", 100, 0, []byte{}, nil},
		{"r", 100, 1, nil, s3stream.ErrInvalidRange}, // at the end
		{"r", 100, -1, nil, s3stream.ErrInvalidRange},
		{"r", 150, 10, nil, s3stream.ErrInvalidRange}, // beyond the end
		{"r", 101, 0, nil, s3stream.ErrInvalidRange},
		{"r", -1, 5, nil, s3stream.ErrInvalidRange},
		{"r", -5, -1, nil, s3stream.ErrInvalidRange},
		{"r-empty", 0, -1, []byte{}, nil},
		{"r-empty", 0, 0, []byte{}, nil},
		{"r-empty", 0, 1, nil, s3stream.ErrInvalidRange},
		{"r-empty", 0, math.MaxInt64, nil, s3stream.ErrInvalidRange},
		{"r-empty", 1, -1, nil, s3stream.ErrInvalidRange},
		{"r-missing", 0, 10, nil, s3stream.ErrNotFound},
		{"r-missing", 5, -1, nil, s3stream.ErrNotFound},
		{"r-missing", 0, 0, nil, s3stream.ErrNotFound},
	}
	for _, tc := range tests {
		got, err := s.Get(t.Context(), tc.key, tc.off, tc.length)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Get(%q, %d, %d) = %d bytes, %v; want %v", tc.key, tc.off, tc.length, len(got), err, tc.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) || got == nil {
			t.Errorf("Get(%q, %d, %d) = %d bytes (nil %t), %v; want %d bytes", tc.key, tc.off, tc.length, len(got), got == nil, err, len(tc.want))
		}
	}
}

func testOverwrite(t *testing.T, s s3stream.ObjectStore) {
	v1, v2 := pattern(4, 5000), pattern(5, 200)
	mustPut(t, s, "ow", v1)
	mustPut(t, s, "ow", v2)
	wantContent(t, s, "ow", v2)
	info, err := s.Head(t.Context(), "ow")
	if err != nil || info.Size != int64(len(v2)) {
		t.Fatalf("Head after overwrite = %+v, %v; want size %d", info, err, len(v2))
	}
	infos, err := s.List(t.Context(), "ow")
	if err != nil || len(infos) != 1 || infos[0].Size != int64(len(v2)) {
		t.Fatalf("List after overwrite = %+v, %v; want one object of %d bytes", infos, err, len(v2))
	}
}

func testHead(t *testing.T, s s3stream.ObjectStore) {
	before := time.Now().Add(-2 * time.Second).Truncate(time.Second) // S3: second precision
	mustPut(t, s, "h/obj", pattern(6, 777))
	after := time.Now().Add(2 * time.Second)
	info, err := s.Head(t.Context(), "h/obj")
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if info.Key != "h/obj" || info.Size != 777 {
		t.Fatalf("Head = %+v, want key h/obj size 777", info)
	}
	if info.LastModified.Before(before) || info.LastModified.After(after) {
		t.Fatalf("Head LastModified = %v, want within [%v, %v]", info.LastModified, before, after)
	}
	infos, err := s.List(t.Context(), "h/")
	if err != nil || len(infos) != 1 {
		t.Fatalf("List(h/) = %+v, %v", infos, err)
	}
	if l := infos[0]; l.Key != info.Key || l.Size != info.Size || l.LastModified.Sub(info.LastModified).Abs() > time.Second {
		t.Fatalf("List entry %+v disagrees with Head %+v", l, info)
	}
}

func testDelete(t *testing.T, s s3stream.ObjectStore) {
	mustPut(t, s, "d/x", []byte("x"))
	mustPut(t, s, "d/y/z", []byte("z"))
	for i := 0; i < 2; i++ { // the second delete is of a missing key
		if err := s.Delete(t.Context(), "d/x"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		wantMissing(t, s, "d/x")
	}
	if err := s.Delete(t.Context(), "never/existed"); err != nil {
		t.Fatalf("Delete(never/existed): %v", err)
	}
	// A prefix is not an object: deleting it deletes nothing.
	if err := s.Delete(t.Context(), "d/y"); err != nil {
		t.Fatalf("Delete(prefix d/y): %v", err)
	}
	wantContent(t, s, "d/y/z", []byte("z"))
	if err := s.Delete(t.Context(), "d/y/z"); err != nil {
		t.Fatalf("Delete(d/y/z): %v", err)
	}
	infos, err := s.List(t.Context(), "")
	if err != nil || len(infos) != 0 {
		t.Fatalf("List after deleting everything = %v, %v; want empty", keysOf(infos), err)
	}
	// Put works again where everything was deleted.
	mustPut(t, s, "d/y/z", []byte("again"))
	wantContent(t, s, "d/y/z", []byte("again"))
}

func testList(t *testing.T, s s3stream.ObjectStore) {
	all := []string{"a.b", "a/1", "a/10", "a/2", "a/b/c", "ab", "b/x/y", "b/z", "c"} // byte order
	put := slices.Clone(all)
	slices.Reverse(put)
	for i, k := range put {
		mustPut(t, s, k, pattern(byte(i), i+1))
	}
	sizes := map[string]int64{}
	for i, k := range put {
		sizes[k] = int64(i + 1)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a", []string{"a.b", "a/1", "a/10", "a/2", "a/b/c", "ab"}},
		{"a/", []string{"a/1", "a/10", "a/2", "a/b/c"}},
		{"a/1", []string{"a/1", "a/10"}},
		{"a/b", []string{"a/b/c"}},
		{"a/b/", []string{"a/b/c"}},
		{"b/x", []string{"b/x/y"}},
		{"b/x/y", []string{"b/x/y"}},
		{"c", []string{"c"}},
		{"c/", nil},
		{"zzz", nil},
		{"zzz/", nil},
		{"../", nil},
		{"/a", nil},
		{"a//", nil},
		{"a/./", nil},
	}
	for _, tc := range tests {
		infos, err := s.List(t.Context(), tc.prefix)
		if err != nil {
			t.Errorf("List(%q): %v", tc.prefix, err)
			continue
		}
		if got := keysOf(infos); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		for _, i := range infos {
			if i.Size != sizes[i.Key] || i.LastModified.IsZero() {
				t.Errorf("List(%q) entry %+v, want size %d and a time", tc.prefix, i, sizes[i.Key])
			}
		}
	}
	if err := s.Delete(t.Context(), "a/10"); err != nil {
		t.Fatal(err)
	}
	infos, err := s.List(t.Context(), "a/1")
	if got := keysOf(infos); err != nil || !slices.Equal(got, []string{"a/1"}) {
		t.Fatalf("List(a/1) after delete = %q, %v", got, err)
	}
}

func testMissingKeys(t *testing.T, s s3stream.ObjectStore) {
	wantMissing(t, s, "missing")
	wantMissing(t, s, "missing/deep/key")
	mustPut(t, s, "p/q", []byte("q"))
	wantMissing(t, s, "p")     // a prefix is not an object
	wantMissing(t, s, "p/q/r") // below an object
}
