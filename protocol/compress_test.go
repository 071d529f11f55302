package protocol_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/shoal-io/shoal/protocol"
)

// oracleDecompress decompresses with a reader independent of
// protocol.Decompress (the standard library for gzip, the codec libraries'
// plain APIs for the rest).
func oracleDecompress(t *testing.T, c protocol.Codec, src []byte) []byte {
	t.Helper()
	var (
		out []byte
		err error
	)
	switch c {
	case protocol.CodecNone:
		return src
	case protocol.CodecGzip:
		var r *stdgzip.Reader
		if r, err = stdgzip.NewReader(bytes.NewReader(src)); err == nil {
			out, err = io.ReadAll(r)
		}
	case protocol.CodecSnappy:
		out, err = xerial.Decode(src)
	case protocol.CodecLZ4:
		out, err = io.ReadAll(lz4.NewReader(bytes.NewReader(src)))
	case protocol.CodecZstd:
		var d *zstd.Decoder
		if d, err = zstd.NewReader(nil); err == nil {
			out, err = d.DecodeAll(src, nil)
			d.Close()
		}
	}
	if err != nil {
		t.Fatalf("oracle %v: %v", c, err)
	}
	return out
}

func TestCodecRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty":  {},
		"short":  []byte("hello"),
		"repeat": bytes.Repeat([]byte("kafka "), 50_000),
		"binary": func() []byte {
			b := make([]byte, 200_000)
			for i := range b {
				b[i] = byte(i*7919 ^ i>>5)
			}
			return b
		}(),
	}
	for _, c := range allCodecs {
		for name, in := range inputs {
			comp, err := protocol.Compress(c, in)
			if err != nil {
				t.Fatalf("%v %s: compress: %v", c, name, err)
			}
			out, err := protocol.Decompress(c, comp, len(in))
			if err != nil {
				t.Fatalf("%v %s: decompress: %v", c, name, err)
			}
			if !bytes.Equal(out, in) {
				t.Errorf("%v %s: round trip differs", c, name)
			}
			if c != protocol.CodecNone && len(in) > 0 {
				if !bytes.Equal(oracleDecompress(t, c, comp), in) {
					t.Errorf("%v %s: independent decoder disagrees", c, name)
				}
			}
		}
	}
	if _, err := protocol.Compress(protocol.Codec(5), nil); !errors.Is(err, protocol.ErrUnsupportedCodec) {
		t.Errorf("codec 5 compress: %v", err)
	}
	if _, err := protocol.Decompress(protocol.Codec(7), nil, 10); !errors.Is(err, protocol.ErrUnsupportedCodec) {
		t.Errorf("codec 7 decompress: %v", err)
	}
}

// TestSnappyXerial decodes the xerial framing the Java client writes, both
// as produced by the xerial package and as built by hand in small blocks.
func TestSnappyXerial(t *testing.T) {
	in := bytes.Repeat([]byte("java client snappy "), 10_000)
	out, err := protocol.Decompress(protocol.CodecSnappy, xerial.Encode(nil, in), len(in))
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("xerial.Encode input: %v", err)
	}
	// Hand-built: header, version 1, compatible 1, then 3 blocks.
	framed := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	var want []byte
	for _, part := range []string{"first block,", "second,", "third"} {
		blk := snappy.Encode(nil, []byte(part))
		framed = binary.BigEndian.AppendUint32(framed, uint32(len(blk)))
		framed = append(framed, blk...)
		want = append(want, part...)
	}
	if out, err := protocol.Decompress(protocol.CodecSnappy, framed, 100); err != nil || !bytes.Equal(out, want) {
		t.Errorf("hand-built xerial = %q, %v", out, err)
	}
	if _, err := protocol.Decompress(protocol.CodecSnappy, framed, len(want)-1); !errors.Is(err, protocol.ErrDecompressedTooLarge) {
		t.Errorf("xerial over bound: %v", err)
	}
	if _, err := protocol.Decompress(protocol.CodecSnappy, framed[:len(framed)-2], 100); !errors.Is(err, protocol.ErrCorruptBatch) {
		t.Errorf("truncated xerial: %v", err)
	}
}

func TestDecompressBound(t *testing.T) {
	// A 64 MiB run of zeros compresses to a few KiB: each codec must stop at
	// the bound rather than inflate it all.
	bomb := make([]byte, 64<<20)
	const bound = 1 << 20
	for _, c := range allCodecs[1:] {
		comp, err := protocol.Compress(c, bomb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := protocol.Decompress(c, comp, bound); !errors.Is(err, protocol.ErrDecompressedTooLarge) {
			t.Errorf("%v (%d compressed bytes): err = %v, want ErrDecompressedTooLarge", c, len(comp), err)
		}
		// Exactly at the bound is fine.
		exact, _ := protocol.Compress(c, bomb[:bound])
		if out, err := protocol.Decompress(c, exact, bound); err != nil || len(out) != bound {
			t.Errorf("%v at bound: %d bytes, %v", c, len(out), err)
		}
	}
	if _, err := protocol.Decompress(protocol.CodecNone, []byte("abc"), 2); !errors.Is(err, protocol.ErrDecompressedTooLarge) {
		t.Errorf("none over bound: %v", err)
	}
}

func TestDecompressGarbage(t *testing.T) {
	garbage := []byte("this is not compressed data at all, honest")
	for _, c := range allCodecs[1:] {
		if _, err := protocol.Decompress(c, garbage, 1<<20); !errors.Is(err, protocol.ErrCorruptBatch) {
			t.Errorf("%v: err = %v, want ErrCorruptBatch", c, err)
		}
	}
}
