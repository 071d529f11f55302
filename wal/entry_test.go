package wal

import (
	"bytes"
	"errors"
	"testing"
)

func TestEntryRoundTrip(t *testing.T) {
	reqs := []*request{
		{stream: 7, batches: [][]byte{[]byte("first"), []byte("second")}},
		{stream: 1 << 40, batches: [][]byte{{}}},
		{stream: 3, batches: nil},
	}
	size := entryHeaderSize
	for _, r := range reqs {
		size += r.encodedSize()
	}
	data := encodeEntry(reqs, size)
	if len(data) != size {
		t.Fatalf("encoded %d bytes, sized %d", len(data), size)
	}
	got, err := decodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(reqs) {
		t.Fatalf("decoded %d requests, want %d", len(got), len(reqs))
	}
	for i, r := range reqs {
		if got[i].stream != r.stream || len(got[i].batches) != len(r.batches) {
			t.Fatalf("request %d: got stream %d with %d batches", i, got[i].stream, len(got[i].batches))
		}
		for j := range r.batches {
			if !bytes.Equal(got[i].batches[j], r.batches[j]) {
				t.Fatalf("request %d batch %d differs", i, j)
			}
		}
	}
}

func TestDecodeEntryRejectsDamage(t *testing.T) {
	good := encodeEntry([]*request{{stream: 1, batches: [][]byte{[]byte("abc")}}}, 0)
	cases := map[string][]byte{
		"empty":          nil,
		"unknown kind":   append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte{}, good...), 0),
		"huge count":     {entryKindAppend, 0xff, 0xff, 0xff, 0xff},
	}
	for name, data := range cases {
		if _, err := decodeEntry(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry([]*request{{stream: 1, batches: [][]byte{[]byte("abc"), nil}}}, 0))
	f.Add([]byte{entryKindAppend, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs, err := decodeEntry(data)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to the same bytes.
		ptrs := make([]*request, len(reqs))
		for i := range reqs {
			ptrs[i] = &reqs[i]
		}
		if again := encodeEntry(ptrs, len(data)); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs")
		}
	})
}
