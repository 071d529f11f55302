package s3stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
)

// testBatch builds a batch of n records with values of valueSize bytes at
// base; compressible values repeat a phrase, others are random.
func testBatch(base int64, n, valueSize int, compressible bool, opts ...prototest.Option) []byte {
	rng := rand.New(rand.NewPCG(uint64(base), uint64(n)))
	recs := make([]protocol.Record, n)
	for i := range recs {
		v := make([]byte, valueSize)
		if compressible {
			copy(v, bytes.Repeat([]byte(fmt.Sprintf("record %d of a log line; ", base)), valueSize/20+1))
		} else {
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
		}
		recs[i] = protocol.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Value: v}
	}
	opts = append([]prototest.Option{prototest.WithBaseOffset(base), prototest.WithFirstTimestamp(1000 + base)}, opts...)
	return prototest.Batch(recs, opts...)
}

type streamBatches struct {
	stream  uint64
	batches [][]byte
}

// buildTestObject appends every batch and returns the finished object.
func buildTestObject(t testing.TB, blockSize int, streams []streamBatches) ([]byte, *ObjectIndex) {
	t.Helper()
	w := NewObjectWriter(blockSize)
	for _, s := range streams {
		for _, b := range s.batches {
			if err := w.Append(s.stream, b); err != nil {
				t.Fatalf("append stream %d: %v", s.stream, err)
			}
		}
	}
	obj, ix, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return obj, ix
}

// denseBatches returns count batches of stream from offset start.
func denseBatches(start int64, count, records, valueSize int, compressible bool) [][]byte {
	var out [][]byte
	off := start
	for range count {
		out = append(out, testBatch(off, records, valueSize, compressible))
		off += int64(records)
	}
	return out
}

// decodeObject decodes footer and index from obj as a reader would.
func decodeObject(t *testing.T, obj []byte) *ObjectIndex {
	t.Helper()
	f, err := DecodeFooter(obj)
	if err != nil {
		t.Fatal(err)
	}
	if f.ObjectSize() != int64(len(obj)) || f.Version != FormatVersion {
		t.Fatalf("footer %+v for an object of %d bytes", f, len(obj))
	}
	ix, err := DecodeIndex(obj[f.IndexPosition:f.IndexPosition+f.IndexSize], f)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestObjectRoundTrip(t *testing.T) {
	var streams []streamBatches
	for s := range 6 {
		streams = append(streams, streamBatches{
			stream:  uint64(s*7 + 3),
			batches: denseBatches(int64(s*1000), 40+s*10, 1+s%4, 100+s*50, s%2 == 0),
		})
	}
	obj, written := buildTestObject(t, 8<<10, streams)
	ix := decodeObject(t, obj)
	if fmt.Sprint(ix.Blocks) != fmt.Sprint(written.Blocks) {
		t.Fatalf("decoded index differs from the written one")
	}
	ranges := ix.Streams()
	if len(ranges) != len(streams) {
		t.Fatalf("%d stream ranges, want %d", len(ranges), len(streams))
	}
	for si, s := range streams {
		var want, got []byte
		for _, b := range s.batches {
			want = append(want, b...)
		}
		for _, bi := range ix.Blocks {
			if bi.Stream != s.stream {
				continue
			}
			raw, err := DecodeBlock(obj[bi.Position:bi.Position+bi.StoredSize], bi)
			if err != nil {
				t.Fatalf("stream %d block at %d: %v", s.stream, bi.Position, err)
			}
			got = append(got, raw...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("stream %d: decoded %d bytes, want %d identical", s.stream, len(got), len(want))
		}
		h, _ := protocol.ParseBatchHeader(s.batches[len(s.batches)-1])
		r := ranges[si]
		if r.Stream != s.stream || r.StartOffset != int64(si*1000) || r.EndOffset != h.LastOffset()+1 {
			t.Fatalf("range %+v, want stream %d [%d, %d)", r, s.stream, si*1000, h.LastOffset()+1)
		}
		for off := r.StartOffset; off < r.EndOffset; off++ {
			i, ok := ix.Find(s.stream, off)
			if !ok || ix.Blocks[i].StartOffset > off || ix.Blocks[i].EndOffset <= off || ix.Blocks[i].Stream != s.stream {
				t.Fatalf("Find(%d, %d) = %d, %v", s.stream, off, i, ok)
			}
		}
		if _, ok := ix.Find(s.stream, r.EndOffset); ok {
			t.Fatalf("Find(%d, end %d) found a block", s.stream, r.EndOffset)
		}
		if _, ok := ix.Find(s.stream+1, r.StartOffset); ok {
			t.Fatalf("Find of a missing stream found a block")
		}
	}
}

func TestEmptyObject(t *testing.T) {
	obj, ix := buildTestObject(t, 0, nil)
	if len(obj) != FooterSize+indexHeaderSize || len(ix.Blocks) != 0 {
		t.Fatalf("empty object of %d bytes with %d blocks", len(obj), len(ix.Blocks))
	}
	if got := decodeObject(t, obj); len(got.Blocks) != 0 || len(got.Streams()) != 0 {
		t.Fatalf("decoded %d blocks", len(got.Blocks))
	}
}

func TestBlockSplitting(t *testing.T) {
	const blockSize = 10_000
	batches := denseBatches(0, 30, 3, 1000, false) // ~3.1 KB each
	_, ix := buildTestObject(t, blockSize, []streamBatches{{1, batches}})
	size := len(batches[0])
	perBlock := (blockSize + size - 1) / size
	if want := (30 + perBlock - 1) / perBlock; len(ix.Blocks) != want {
		t.Fatalf("%d blocks, want %d (%d batches of %d bytes each)", len(ix.Blocks), want, perBlock, size)
	}
	for i, bi := range ix.Blocks[:len(ix.Blocks)-1] {
		if bi.RawSize < blockSize || bi.RawSize-int64(size) >= blockSize || bi.Batches != uint32(perBlock) {
			t.Fatalf("block %d: raw %d bytes, %d batches; closes at the first boundary >= %d", i, bi.RawSize, bi.Batches, blockSize)
		}
	}
}

func TestBigBatchIsItsOwnBlock(t *testing.T) {
	small1 := testBatch(0, 1, 100, false)
	small2 := testBatch(1, 1, 100, false)
	big := testBatch(2, 2, 6000, false)
	small3 := testBatch(4, 1, 100, false)
	_, ix := buildTestObject(t, 4096, []streamBatches{{9, [][]byte{small1, small2, big, small3}}})
	want := []struct{ start, end int64 }{{0, 2}, {2, 4}, {4, 5}}
	if len(ix.Blocks) != len(want) {
		t.Fatalf("%d blocks, want 3: %+v", len(ix.Blocks), ix.Blocks)
	}
	for i, w := range want {
		if b := ix.Blocks[i]; b.StartOffset != w.start || b.EndOffset != w.end {
			t.Fatalf("block %d holds [%d, %d), want [%d, %d)", i, b.StartOffset, b.EndOffset, w.start, w.end)
		}
	}
	if ix.Blocks[1].RawSize != int64(len(big)) {
		t.Fatalf("big block raw %d, batch %d", ix.Blocks[1].RawSize, len(big))
	}
}

func TestLZ4OnlyWhenUncompressedAndSmaller(t *testing.T) {
	cases := []struct {
		name      string
		batches   [][]byte
		wantCodec uint8
	}{
		{"compressible uncompressed", denseBatches(0, 10, 5, 500, true), CodecLZ4},
		{"random uncompressed", denseBatches(0, 10, 5, 500, false), CodecRaw},
		{"producer gzip", [][]byte{
			testBatch(0, 5, 500, true, prototest.WithCodec(protocol.CodecGzip)),
			testBatch(5, 5, 500, true, prototest.WithCodec(protocol.CodecGzip)),
		}, CodecRaw},
		{"mixed codecs", [][]byte{
			testBatch(0, 5, 500, true),
			testBatch(5, 5, 500, true, prototest.WithCodec(protocol.CodecLZ4)),
		}, CodecRaw},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj, ix := buildTestObject(t, DefaultBlockSize, []streamBatches{{1, tc.batches}})
			if len(ix.Blocks) != 1 {
				t.Fatalf("%d blocks", len(ix.Blocks))
			}
			bi := ix.Blocks[0]
			if bi.Codec != tc.wantCodec {
				t.Fatalf("codec %d, want %d (stored %d, raw %d)", bi.Codec, tc.wantCodec, bi.StoredSize, bi.RawSize)
			}
			if bi.Codec == CodecLZ4 && bi.StoredSize >= bi.RawSize/2 {
				t.Fatalf("lz4 block of %d bytes for %d raw: expected a real saving", bi.StoredSize, bi.RawSize)
			}
			raw, err := DecodeBlock(obj[bi.Position:bi.Position+bi.StoredSize], bi)
			if err != nil || !bytes.Equal(raw, bytes.Join(tc.batches, nil)) {
				t.Fatalf("decode: %v, equal %v", err, bytes.Equal(raw, bytes.Join(tc.batches, nil)))
			}
		})
	}
}

func TestAppendOrder(t *testing.T) {
	b := func(base int64) []byte { return testBatch(base, 2, 10, true) } // offsets base, base+1
	badCRC := b(0)
	badCRC[len(badCRC)-1] ^= 0xff
	type step struct {
		stream uint64
		batch  []byte
	}
	cases := []struct {
		name  string
		steps []step
		want  error
	}{
		{"dense", []step{{1, b(5)}, {1, b(7)}, {2, b(0)}, {2, b(2)}, {9, b(100)}}, nil},
		{"gap", []step{{1, b(0)}, {1, b(3)}}, ErrOutOfOrder},
		{"overlap", []step{{1, b(0)}, {1, b(1)}}, ErrOutOfOrder},
		{"repeat", []step{{1, b(0)}, {1, b(0)}}, ErrOutOfOrder},
		{"stream goes back", []step{{2, b(0)}, {1, b(2)}}, ErrOutOfOrder},
		{"bad crc", []step{{1, badCRC}}, ErrInvalidBatch},
		{"truncated", []step{{1, b(0)[:40]}}, ErrInvalidBatch},
		{"trailing bytes", []step{{1, append(b(0), 0)}}, ErrInvalidBatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := NewObjectWriter(0)
			var err error
			for _, s := range tc.steps {
				if err = w.Append(s.stream, s.batch); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	w := NewObjectWriter(0)
	if _, _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(1, b(0)); !errors.Is(err, ErrWriterFinished) {
		t.Fatalf("append after finish: %v", err)
	}
}

// reencode rebuilds an object from blocks bytes and a (modified) index,
// with valid checksums, so that value checks are reached.
func reencode(data []byte, blocks []BlockInfo) []byte {
	obj := append([]byte(nil), data...)
	pos := int64(len(obj))
	obj = appendIndex(obj, blocks)
	return appendFooter(obj, Footer{IndexPosition: pos, IndexSize: int64(len(obj)) - pos,
		Version: FormatVersion, IndexChecksum: crc32c(obj[pos:])})
}

func TestCorruptFooter(t *testing.T) {
	obj, _ := buildTestObject(t, 2048, []streamBatches{{1, denseBatches(0, 10, 2, 300, true)}})
	tail := obj[len(obj)-FooterSize:]
	mutate := func(fn func(b []byte)) []byte {
		b := append([]byte(nil), tail...)
		fn(b)
		return b
	}
	resum := func(fn func(b []byte)) []byte {
		return mutate(func(b []byte) { fn(b); binary.BigEndian.PutUint32(b[24:], crc32c(b[:24])) })
	}
	cases := map[string][]byte{
		"short":            tail[1:],
		"empty":            nil,
		"magic":            mutate(func(b []byte) { b[35] ^= 1 }),
		"checksum":         mutate(func(b []byte) { b[3] ^= 1 }),
		"version 0":        resum(func(b []byte) { binary.BigEndian.PutUint16(b[20:], 0) }),
		"version 2":        resum(func(b []byte) { binary.BigEndian.PutUint16(b[20:], 2) }),
		"flags":            resum(func(b []byte) { b[23] = 1 }),
		"negative pos":     resum(func(b []byte) { b[0] = 0x80 }),
		"huge index":       resum(func(b []byte) { binary.BigEndian.PutUint64(b[8:], 1<<40) }),
		"partial entry":    resum(func(b []byte) { binary.BigEndian.PutUint64(b[8:], indexHeaderSize+IndexEntrySize+1) }),
		"index too small":  resum(func(b []byte) { binary.BigEndian.PutUint64(b[8:], 2) }),
		"position too far": resum(func(b []byte) { binary.BigEndian.PutUint64(b[0:], 1<<63-1) }),
	}
	for name, b := range cases {
		if _, err := DecodeFooter(b); !errors.Is(err, ErrCorruptObject) {
			t.Errorf("%s: err = %v, want ErrCorruptObject", name, err)
		}
	}
}

func TestCorruptIndex(t *testing.T) {
	obj, ix := buildTestObject(t, 2048, []streamBatches{
		{1, denseBatches(0, 10, 2, 300, true)}, {2, denseBatches(0, 10, 2, 300, false)},
	})
	data := obj[:ix.Blocks[len(ix.Blocks)-1].Position+ix.Blocks[len(ix.Blocks)-1].StoredSize]
	edit := func(fn func(bs []BlockInfo)) []byte {
		bs := append([]BlockInfo(nil), ix.Blocks...)
		fn(bs)
		return reencode(data, bs)
	}
	flipped := append([]byte(nil), obj...)
	flipped[len(data)+10] ^= 1
	reserved := append([]byte(nil), obj...)
	reserved[len(data)+indexHeaderSize+66] = 1
	binary.BigEndian.PutUint32(reserved[len(reserved)-FooterSize+16:], crc32c(reserved[len(data):len(reserved)-FooterSize]))
	binary.BigEndian.PutUint32(reserved[len(reserved)-FooterSize+24:], crc32c(reserved[len(reserved)-FooterSize:][:24]))
	cases := map[string][]byte{
		"checksum":       flipped,
		"reserved":       reserved,
		"position gap":   edit(func(bs []BlockInfo) { bs[1].Position++ }),
		"stored size":    edit(func(bs []BlockInfo) { bs[0].StoredSize-- }),
		"out of order":   edit(func(bs []BlockInfo) { bs[0].Stream = 5 }),
		"overlap":        edit(func(bs []BlockInfo) { bs[1].StartOffset = bs[0].StartOffset }),
		"empty range":    edit(func(bs []BlockInfo) { bs[0].EndOffset = bs[0].StartOffset }),
		"negative start": edit(func(bs []BlockInfo) { bs[0].StartOffset = -4 }),
		"codec":          edit(func(bs []BlockInfo) { bs[0].Codec = 7 }),
		"no batches":     edit(func(bs []BlockInfo) { bs[0].Batches = 0 }),
		"lz4 ratio":      edit(func(bs []BlockInfo) { bs[0].RawSize = bs[0].StoredSize*maxLZ4Ratio + 1 }),
		"raw size": edit(func(bs []BlockInfo) {
			for i := range bs {
				if bs[i].Codec == CodecRaw {
					bs[i].RawSize++
					return
				}
			}
		}),
		"count": func() []byte {
			b := append([]byte(nil), obj...)
			binary.BigEndian.PutUint32(b[len(data):], 1000)
			binary.BigEndian.PutUint32(b[len(b)-FooterSize+16:], crc32c(b[len(data):len(b)-FooterSize]))
			binary.BigEndian.PutUint32(b[len(b)-FooterSize+24:], crc32c(b[len(b)-FooterSize:][:24]))
			return b
		}(),
	}
	for name, b := range cases {
		f, err := DecodeFooter(b)
		if err == nil {
			_, err = DecodeIndex(b[f.IndexPosition:f.IndexPosition+f.IndexSize], f)
		}
		if !errors.Is(err, ErrCorruptObject) {
			t.Errorf("%s: err = %v, want ErrCorruptObject", name, err)
		}
	}
	f, _ := DecodeFooter(obj)
	if _, err := DecodeIndex(obj[f.IndexPosition:f.IndexPosition+f.IndexSize-1], f); !errors.Is(err, ErrCorruptObject) {
		t.Errorf("short index: %v", err)
	}
}

func TestCorruptBlock(t *testing.T) {
	batches := denseBatches(10, 4, 2, 300, true)
	obj, ix := buildTestObject(t, DefaultBlockSize, []streamBatches{{1, batches}})
	bi := ix.Blocks[0]
	stored := obj[bi.Position : bi.Position+bi.StoredSize]
	if bi.Codec != CodecLZ4 {
		t.Fatalf("expected an lz4 block")
	}
	withSum := func(b []byte, bi BlockInfo) ([]byte, BlockInfo) {
		bi.Checksum, bi.StoredSize = crc32c(b), int64(len(b))
		return b, bi
	}
	raw := bytes.Join(batches, nil)
	rawInfo := bi
	rawInfo.Codec, rawInfo.RawSize = CodecRaw, int64(len(raw))
	type tc struct {
		b  []byte
		bi BlockInfo
	}
	flip := append([]byte(nil), stored...)
	flip[5] ^= 1
	garbage, gi := withSum(bytes.Repeat([]byte{0xf0}, 64), bi)
	gi.RawSize = 1000
	badMagic := append([]byte(nil), raw...)
	badMagic[16] = 1
	shifted := append([]byte(nil), raw...)
	protocol.SetBaseOffset(shifted[len(batches[0]):], 99)
	cases := map[string]tc{
		"checksum":      {flip, bi},
		"short":         {stored[1:], bi},
		"lz4 garbage":   {garbage, gi},
		"raw size":      func() tc { i := bi; i.RawSize++; return tc{stored, i} }(),
		"end offset":    func() tc { i := rawInfo; i.EndOffset++; b, i := withSum(raw, i); return tc{b, i} }(),
		"batch count":   func() tc { i := rawInfo; i.Batches++; b, i := withSum(raw, i); return tc{b, i} }(),
		"magic":         func() tc { b, i := withSum(badMagic, rawInfo); return tc{b, i} }(),
		"offset gap":    func() tc { b, i := withSum(shifted, rawInfo); return tc{b, i} }(),
		"truncated raw": func() tc { i := rawInfo; i.RawSize -= 5; b, i := withSum(raw[:len(raw)-5], i); return tc{b, i} }(),
	}
	for name, c := range cases {
		if _, err := DecodeBlock(c.b, c.bi); !errors.Is(err, ErrCorruptObject) {
			t.Errorf("%s: err = %v, want ErrCorruptObject", name, err)
		}
	}
	if got, err := DecodeBlock(withSum(raw, rawInfo)); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("valid raw block: %v", err)
	}
}

func FuzzDecodeFooterAndIndex(f *testing.F) {
	obj, _ := buildTestObject(f, 1024, []streamBatches{
		{1, denseBatches(0, 6, 2, 200, true)}, {3, denseBatches(7, 3, 1, 100, false)},
	})
	f.Add(obj)
	f.Add(obj[len(obj)-FooterSize:])
	empty, _ := buildTestObject(f, 0, nil)
	f.Add(empty)
	f.Add([]byte("SHOALOBJ"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ft, err := DecodeFooter(data); err == nil {
			if ft.ObjectSize() == int64(len(data)) {
				ix, err := DecodeIndex(data[ft.IndexPosition:ft.IndexPosition+ft.IndexSize], ft)
				if err == nil && len(ix.Blocks) > len(data)/IndexEntrySize {
					t.Fatalf("%d blocks from %d bytes", len(ix.Blocks), len(data))
				}
			}
		} else if !errors.Is(err, ErrCorruptObject) {
			t.Fatalf("footer error %v is not ErrCorruptObject", err)
		}
		// The index decoder on its own, with a footer that matches the
		// bytes, so that fuzzing reaches past the checksum.
		ft := Footer{IndexSize: int64(len(data)), IndexChecksum: crc32c(data), Version: FormatVersion}
		for _, pos := range []int64{0, 1 << 20} {
			ft.IndexPosition = pos
			if _, err := DecodeIndex(data, ft); err != nil && !errors.Is(err, ErrCorruptObject) {
				t.Fatalf("index error %v is not ErrCorruptObject", err)
			}
		}
	})
}

func FuzzDecodeBlock(f *testing.F) {
	batches := denseBatches(5, 3, 2, 200, true)
	obj, ix := buildTestObject(f, DefaultBlockSize, []streamBatches{{1, batches}})
	bi := ix.Blocks[0]
	f.Add(obj[bi.Position:bi.Position+bi.StoredSize], bi.Codec, uint32(bi.RawSize), int64(5), int64(11), uint32(3))
	raw := bytes.Join(batches, nil)
	f.Add(raw, CodecRaw, uint32(len(raw)), int64(5), int64(11), uint32(3))
	f.Fuzz(func(t *testing.T, stored []byte, codec uint8, rawSize uint32, start, end int64, n uint32) {
		bi := BlockInfo{
			Stream: 1, StartOffset: start, EndOffset: end, Batches: n, Codec: codec,
			StoredSize: int64(len(stored)), RawSize: int64(rawSize), Checksum: crc32c(stored),
		}
		got, err := DecodeBlock(stored, bi)
		switch {
		case err != nil && !errors.Is(err, ErrCorruptObject):
			t.Fatalf("error %v is not ErrCorruptObject", err)
		case err == nil && int64(len(got)) != bi.RawSize:
			t.Fatalf("decoded %d bytes, index says %d", len(got), bi.RawSize)
		}
	})
}
