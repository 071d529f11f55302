package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a record batch compression codec, as in attributes bits 0-2.
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's name as Kafka's compression.type spells it.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// xerialHeader starts snappy data in the xerial framing the Java client
// writes: the magic, then a version and a compatible-version int32, then
// blocks of (int32 length, raw snappy block).
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialBlocksStart = 16

// zstdMinMemory is the least memory a zstd decode may use: the 8 MiB window
// of zstd levels up to 19 when the encoder did not know the input size.
const zstdMinMemory = 8 << 20

var (
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	})
	zstdDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return err
		}
		return d
	}}
)

// Compress compresses src with codec c, in the format Kafka clients expect
// inside a batch: gzip, raw (unframed) snappy like librdkafka and franz-go,
// the LZ4 frame format, or a zstd frame. CodecNone returns src itself.
func Compress(c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	case CodecSnappy:
		return snappy.Encode(nil, src), nil
	case CodecLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return buf.Bytes(), nil
	case CodecZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return enc.EncodeAll(src, nil), nil
	}
	return nil, fmt.Errorf("compress with %v: %w", c, ErrUnsupportedCodec)
}

// Decompress decompresses src, which codec c produced, returning at most
// maxSize bytes: larger output stops decoding early and returns
// ErrDecompressedTooLarge, so a small "bomb" cannot make it allocate much
// more than maxSize. Snappy input may be raw or xerial-framed. Undecodable
// input returns ErrCorruptBatch; codecs other than the five Kafka defines
// return ErrUnsupportedCodec. CodecNone returns src itself. A zstd frame
// declaring a window larger than max(maxSize, 8 MiB) is refused with
// ErrDecompressedTooLarge (zstd levels 20-22 with an unknown input size).
func Decompress(c Codec, src []byte, maxSize int) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch c {
	case CodecNone:
		if len(src) > maxSize {
			return nil, fmt.Errorf("%d bytes (max %d): %w", len(src), maxSize, ErrDecompressedTooLarge)
		}
		return src, nil
	case CodecGzip:
		out, err = decompressGzip(src, maxSize)
	case CodecSnappy:
		out, err = decompressSnappy(src, maxSize)
	case CodecLZ4:
		out, err = readBounded(lz4.NewReader(bytes.NewReader(src)), maxSize)
	case CodecZstd:
		out, err = decompressZstd(src, maxSize)
	default:
		return nil, fmt.Errorf("decompress with %v: %w", c, ErrUnsupportedCodec)
	}
	if err != nil {
		return nil, fmt.Errorf("decompress %v: %w", c, err)
	}
	return out, nil
}

// readBounded reads r to its end, failing with ErrDecompressedTooLarge as
// soon as more than maxSize bytes come out, and with ErrCorruptBatch on any
// decoding error.
func readBounded(r io.Reader, maxSize int) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, int64(maxSize)+1))
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorruptBatch)
	}
	if n > int64(maxSize) {
		return nil, fmt.Errorf("more than %d bytes: %w", maxSize, ErrDecompressedTooLarge)
	}
	return buf.Bytes(), nil
}

func decompressGzip(src []byte, maxSize int) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorruptBatch)
	}
	defer r.Close()
	return readBounded(r, maxSize)
}

// decompressSnappy decodes raw snappy or the xerial framing, checking each
// block's declared length against the bound before decoding it.
func decompressSnappy(src []byte, maxSize int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialHeader) {
		return snappyBlock(nil, src, maxSize)
	}
	if len(src) < xerialBlocksStart {
		return nil, fmt.Errorf("xerial header of %d bytes: %w", len(src), ErrCorruptBatch)
	}
	out := []byte{}
	for b := src[xerialBlocksStart:]; len(b) > 0; {
		if len(b) < 4 {
			return nil, fmt.Errorf("xerial block length: %w", ErrCorruptBatch)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("xerial block of %d bytes, %d left: %w", n, len(b), ErrCorruptBatch)
		}
		var err error
		if out, err = snappyBlock(out, b[:n], maxSize); err != nil {
			return nil, err
		}
		b = b[n:]
	}
	return out, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst, keeping
// the total within maxSize.
func snappyBlock(dst, block []byte, maxSize int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("snappy block: %v: %w", err, ErrCorruptBatch)
	}
	if n > maxSize-len(dst) {
		return nil, fmt.Errorf("more than %d bytes: %w", maxSize, ErrDecompressedTooLarge)
	}
	dec, err := snappy.Decode(make([]byte, n), block)
	if err != nil {
		return nil, fmt.Errorf("snappy block: %v: %w", err, ErrCorruptBatch)
	}
	if dst == nil {
		return dec, nil
	}
	return append(dst, dec...), nil
}

func decompressZstd(src []byte, maxSize int) ([]byte, error) {
	v := zstdDecoders.Get()
	d, ok := v.(*zstd.Decoder)
	if !ok {
		return nil, fmt.Errorf("new zstd decoder: %v", v)
	}
	defer zstdDecoders.Put(d)
	// The decoder's memory limit also caps the window a frame may declare,
	// so it cannot be smaller than what zstd levels 1-19 use; the result is
	// checked against maxSize below.
	limit := uint64(max(maxSize, zstdMinMemory))
	if err := d.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(limit)); err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	out, err := d.DecodeAll(src, nil)
	if err != nil {
		if err == zstd.ErrDecoderSizeExceeded || err == zstd.ErrWindowSizeExceeded {
			return nil, fmt.Errorf("more than %d bytes: %w", maxSize, ErrDecompressedTooLarge)
		}
		return nil, fmt.Errorf("%v: %w", err, ErrCorruptBatch)
	}
	if len(out) > maxSize {
		return nil, fmt.Errorf("more than %d bytes: %w", maxSize, ErrDecompressedTooLarge)
	}
	return out, nil
}
