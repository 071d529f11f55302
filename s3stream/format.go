package s3stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/pierrec/lz4/v4"

	"github.com/shoal-io/shoal/protocol"
)

// The object format (docs/format/s3-object.md): data blocks, then an index
// block, then a fixed-size footer. All integers are big-endian.
const (
	// DefaultBlockSize is the size at which ObjectWriter closes a data
	// block: at the first batch boundary at or past it.
	DefaultBlockSize = 1 << 20
	// FormatVersion is the object format version this package writes and
	// the newest it reads.
	FormatVersion = 1
	// FooterSize is the size of the footer at the end of every object.
	FooterSize = 36
	// IndexEntrySize is the size of one block's entry in the index block.
	IndexEntrySize = 68
	// indexHeaderSize is the index block's header: the entry count.
	indexHeaderSize = 4
	// maxBlockSize caps NewObjectWriter's block size so that every block's
	// size fits the index's 32-bit fields.
	maxBlockSize = 1 << 30
	// maxIndexSize bounds the index block a footer may announce (4 Mi
	// blocks), so a damaged footer cannot cause a huge read or allocation.
	maxIndexSize = 256 << 20
	// maxLZ4Ratio bounds RawSize/StoredSize of an LZ4 block: the LZ4 block
	// format cannot expand data by more than about 255 times.
	maxLZ4Ratio = 256
	// lz4MinSaving: a block is stored LZ4-compressed only when that saves
	// at least 1/16 (6.25%) of its raw size.
	lz4MinSaving = 16
	// indexTailRead is how many bytes ReadObjectIndex reads from the end
	// of an object first, hoping to get footer and index in one GET.
	indexTailRead = 64 << 10
	// batchLengthOverhead is the part of a batch that BatchLength does not
	// count (base offset and the length field itself).
	batchLengthOverhead = 12
)

// Block codecs (BlockInfo.Codec).
const (
	// CodecRaw stores the block's batches as they are.
	CodecRaw uint8 = 0
	// CodecLZ4 stores them as one LZ4 block (pierrec/lz4/v4 block format,
	// no frame); the decoded size is BlockInfo.RawSize.
	CodecLZ4 uint8 = 1
)

// footerMagic ends every object.
var footerMagic = [8]byte{'S', 'H', 'O', 'A', 'L', 'O', 'B', 'J'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// BlockInfo is one data block's entry in an object's index.
type BlockInfo struct {
	// Stream is the stream whose batches the block holds.
	Stream uint64
	// StartOffset and EndOffset bound the block's offsets, [start, end):
	// the first offset of the first batch, the last offset of the last
	// batch + 1.
	StartOffset, EndOffset int64
	// MinTimestamp and MaxTimestamp are the smallest FirstTimestamp and the
	// largest MaxTimestamp of the block's batches.
	MinTimestamp, MaxTimestamp int64
	// Position is the block's byte offset in the object.
	Position int64
	// StoredSize is the block's size in the object; RawSize is the size of
	// its concatenated batches after decoding.
	StoredSize, RawSize int64
	// Checksum is the CRC-32C (Castagnoli) of the stored bytes.
	Checksum uint32
	// Codec is CodecRaw or CodecLZ4.
	Codec uint8
	// Batches is the number of record batches in the block.
	Batches uint32
}

// ObjectIndex is an object's index: its blocks, sorted by (Stream,
// StartOffset), laid out back to back from byte 0 in that order.
type ObjectIndex struct {
	// Blocks lists every data block of the object.
	Blocks []BlockInfo
}

// StreamRange summarises one stream's blocks in an object.
type StreamRange struct {
	// Stream is the stream id.
	Stream uint64
	// StartOffset and EndOffset bound the stream's offsets in the object,
	// [start, end).
	StartOffset, EndOffset int64
	// Position and Size are the byte span of the stream's blocks.
	Position, Size int64
	// MinTimestamp and MaxTimestamp span the blocks' timestamps.
	MinTimestamp, MaxTimestamp int64
}

// Find returns the index of the block of stream that holds offset, and
// whether there is one.
func (ix *ObjectIndex) Find(stream uint64, offset int64) (int, bool) {
	i := sort.Search(len(ix.Blocks), func(i int) bool {
		b := &ix.Blocks[i]
		return b.Stream > stream || (b.Stream == stream && b.EndOffset > offset)
	})
	if i < len(ix.Blocks) && ix.Blocks[i].Stream == stream && ix.Blocks[i].StartOffset <= offset {
		return i, true
	}
	return 0, false
}

// Streams returns one range per stream in the object, in stream order.
func (ix *ObjectIndex) Streams() []StreamRange {
	var out []StreamRange
	for _, b := range ix.Blocks {
		if n := len(out); n > 0 && out[n-1].Stream == b.Stream {
			r := &out[n-1]
			r.EndOffset = b.EndOffset
			r.Size = b.Position + b.StoredSize - r.Position
			r.MinTimestamp = min(r.MinTimestamp, b.MinTimestamp)
			r.MaxTimestamp = max(r.MaxTimestamp, b.MaxTimestamp)
			continue
		}
		out = append(out, StreamRange{
			Stream: b.Stream, StartOffset: b.StartOffset, EndOffset: b.EndOffset,
			Position: b.Position, Size: b.StoredSize,
			MinTimestamp: b.MinTimestamp, MaxTimestamp: b.MaxTimestamp,
		})
	}
	return out
}

// Footer is the fixed-size end of an object.
type Footer struct {
	// IndexPosition and IndexSize locate the index block.
	IndexPosition, IndexSize int64
	// Version is the format version (FormatVersion).
	Version uint16
	// Flags is reserved; version 1 writes 0 and refuses anything else.
	Flags uint16
	// IndexChecksum is the CRC-32C of the index block.
	IndexChecksum uint32
}

// appendFooter appends the encoded footer to dst.
func appendFooter(dst []byte, f Footer) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = be.AppendUint64(dst, uint64(f.IndexPosition))
	dst = be.AppendUint64(dst, uint64(f.IndexSize))
	dst = be.AppendUint32(dst, f.IndexChecksum)
	dst = be.AppendUint16(dst, f.Version)
	dst = be.AppendUint16(dst, f.Flags)
	dst = be.AppendUint32(dst, crc32c(dst[start:]))
	return append(dst, footerMagic[:]...)
}

// DecodeFooter decodes the footer from the last FooterSize bytes of b. It
// checks the magic, the footer's own checksum, the version, the flags and
// that the index fits before the footer; failures wrap ErrCorruptObject.
func DecodeFooter(b []byte) (Footer, error) {
	if len(b) < FooterSize {
		return Footer{}, fmt.Errorf("footer needs %d bytes, have %d: %w", FooterSize, len(b), ErrCorruptObject)
	}
	b = b[len(b)-FooterSize:]
	if [8]byte(b[28:36]) != footerMagic {
		return Footer{}, fmt.Errorf("footer magic %q: %w", b[28:36], ErrCorruptObject)
	}
	be := binary.BigEndian
	if got, want := be.Uint32(b[24:]), crc32c(b[:24]); got != want {
		return Footer{}, fmt.Errorf("footer checksum %08x, computed %08x: %w", got, want, ErrCorruptObject)
	}
	f := Footer{
		IndexPosition: int64(be.Uint64(b[0:])),
		IndexSize:     int64(be.Uint64(b[8:])),
		IndexChecksum: be.Uint32(b[16:]),
		Version:       be.Uint16(b[20:]),
		Flags:         be.Uint16(b[22:]),
	}
	switch {
	case f.Version == 0 || f.Version > FormatVersion:
		return Footer{}, fmt.Errorf("unsupported format version %d (know 1..%d): %w", f.Version, FormatVersion, ErrCorruptObject)
	case f.Flags != 0:
		return Footer{}, fmt.Errorf("footer flags %#x: %w", f.Flags, ErrCorruptObject)
	case f.IndexPosition < 0 || f.IndexSize < indexHeaderSize || f.IndexSize > maxIndexSize ||
		f.IndexPosition > 1<<62:
		return Footer{}, fmt.Errorf("index at %d of %d bytes: %w", f.IndexPosition, f.IndexSize, ErrCorruptObject)
	case (f.IndexSize-indexHeaderSize)%IndexEntrySize != 0:
		return Footer{}, fmt.Errorf("index size %d is not a whole number of entries: %w", f.IndexSize, ErrCorruptObject)
	}
	return f, nil
}

// ObjectSize returns the size of the object the footer describes.
func (f Footer) ObjectSize() int64 { return f.IndexPosition + f.IndexSize + FooterSize }

// appendIndex appends the encoded index block to dst.
func appendIndex(dst []byte, blocks []BlockInfo) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(len(blocks)))
	for _, b := range blocks {
		dst = be.AppendUint64(dst, b.Stream)
		dst = be.AppendUint64(dst, uint64(b.StartOffset))
		dst = be.AppendUint64(dst, uint64(b.EndOffset))
		dst = be.AppendUint64(dst, uint64(b.MinTimestamp))
		dst = be.AppendUint64(dst, uint64(b.MaxTimestamp))
		dst = be.AppendUint64(dst, uint64(b.Position))
		dst = be.AppendUint32(dst, uint32(b.StoredSize))
		dst = be.AppendUint32(dst, uint32(b.RawSize))
		dst = be.AppendUint32(dst, b.Batches)
		dst = be.AppendUint32(dst, b.Checksum)
		dst = append(dst, b.Codec, 0, 0, 0)
	}
	return dst
}

// DecodeIndex decodes the index block b (exactly f.IndexSize bytes) of the
// object whose footer is f. It checks the checksum, the entry count against
// the size (so allocations are bounded by len(b)), and every entry: blocks
// back to back from byte 0 up to the index, sorted by (Stream,
// StartOffset), non-overlapping within a stream, sizes consistent with the
// codec. Failures wrap ErrCorruptObject.
func DecodeIndex(b []byte, f Footer) (*ObjectIndex, error) {
	if int64(len(b)) != f.IndexSize {
		return nil, fmt.Errorf("index of %d bytes, footer says %d: %w", len(b), f.IndexSize, ErrCorruptObject)
	}
	if len(b) < indexHeaderSize {
		return nil, fmt.Errorf("index of %d bytes: %w", len(b), ErrCorruptObject)
	}
	if got := crc32c(b); got != f.IndexChecksum {
		return nil, fmt.Errorf("index checksum %08x, footer says %08x: %w", got, f.IndexChecksum, ErrCorruptObject)
	}
	be := binary.BigEndian
	count := int64(be.Uint32(b))
	if indexHeaderSize+count*IndexEntrySize != int64(len(b)) {
		return nil, fmt.Errorf("index of %d bytes with %d entries: %w", len(b), count, ErrCorruptObject)
	}
	ix := &ObjectIndex{Blocks: make([]BlockInfo, count)}
	pos := int64(0)
	for i := range ix.Blocks {
		e := b[indexHeaderSize+i*IndexEntrySize:]
		bi := BlockInfo{
			Stream:       be.Uint64(e[0:]),
			StartOffset:  int64(be.Uint64(e[8:])),
			EndOffset:    int64(be.Uint64(e[16:])),
			MinTimestamp: int64(be.Uint64(e[24:])),
			MaxTimestamp: int64(be.Uint64(e[32:])),
			Position:     int64(be.Uint64(e[40:])),
			StoredSize:   int64(be.Uint32(e[48:])),
			RawSize:      int64(be.Uint32(e[52:])),
			Batches:      be.Uint32(e[56:]),
			Checksum:     be.Uint32(e[60:]),
			Codec:        e[64],
		}
		if e[65] != 0 || e[66] != 0 || e[67] != 0 {
			return nil, fmt.Errorf("index entry %d: reserved bytes set: %w", i, ErrCorruptObject)
		}
		if bi.Position != pos {
			return nil, fmt.Errorf("index entry %d at byte %d, expected %d: %w", i, bi.Position, pos, ErrCorruptObject)
		}
		if err := checkBlockInfo(bi); err != nil {
			return nil, fmt.Errorf("index entry %d: %w", i, err)
		}
		if i > 0 {
			p := &ix.Blocks[i-1]
			if bi.Stream < p.Stream || (bi.Stream == p.Stream && bi.StartOffset < p.EndOffset) {
				return nil, fmt.Errorf("index entry %d (stream %d, offset %d) out of order: %w",
					i, bi.Stream, bi.StartOffset, ErrCorruptObject)
			}
		}
		ix.Blocks[i] = bi
		pos += bi.StoredSize
	}
	if pos != f.IndexPosition {
		return nil, fmt.Errorf("blocks end at byte %d, index at %d: %w", pos, f.IndexPosition, ErrCorruptObject)
	}
	return ix, nil
}

// checkBlockInfo checks one index entry on its own.
func checkBlockInfo(bi BlockInfo) error {
	bad := func(why string) error {
		return fmt.Errorf("block at byte %d: %s: %w", bi.Position, why, ErrCorruptObject)
	}
	switch {
	case bi.StartOffset < 0 || bi.EndOffset <= bi.StartOffset:
		return bad(fmt.Sprintf("offsets [%d, %d)", bi.StartOffset, bi.EndOffset))
	case bi.Batches == 0 || int64(bi.Batches) > bi.EndOffset-bi.StartOffset:
		return bad(fmt.Sprintf("%d batches for offsets [%d, %d)", bi.Batches, bi.StartOffset, bi.EndOffset))
	case bi.StoredSize <= 0 || bi.RawSize < int64(bi.Batches)*protocol.BatchHeaderSize:
		return bad(fmt.Sprintf("stored %d, raw %d bytes for %d batches", bi.StoredSize, bi.RawSize, bi.Batches))
	}
	switch bi.Codec {
	case CodecRaw:
		if bi.RawSize != bi.StoredSize {
			return bad(fmt.Sprintf("raw block with stored size %d and raw size %d", bi.StoredSize, bi.RawSize))
		}
	case CodecLZ4:
		if bi.RawSize > maxLZ4Ratio*bi.StoredSize {
			return bad(fmt.Sprintf("lz4 block of %d bytes cannot decode to %d", bi.StoredSize, bi.RawSize))
		}
	default:
		return bad(fmt.Sprintf("unknown codec %d", bi.Codec))
	}
	return nil
}

// DecodeBlock returns the concatenated batches of the block bi, given its
// stored bytes. It checks the size and checksum of the stored bytes, decodes
// LZ4, and walks the batch framing: magic 2, lengths, offsets dense from
// bi.StartOffset to bi.EndOffset, bi.Batches batches filling exactly
// bi.RawSize bytes. Batch CRCs are not recomputed (the block checksum
// covers the bytes). The result may alias stored (raw blocks). Failures wrap
// ErrCorruptObject; allocations are bounded by maxLZ4Ratio*len(stored).
func DecodeBlock(stored []byte, bi BlockInfo) ([]byte, error) {
	if err := checkBlockInfo(bi); err != nil {
		return nil, err
	}
	if int64(len(stored)) != bi.StoredSize {
		return nil, fmt.Errorf("block at byte %d: %d bytes, index says %d: %w", bi.Position, len(stored), bi.StoredSize, ErrCorruptObject)
	}
	if got := crc32c(stored); got != bi.Checksum {
		return nil, fmt.Errorf("block at byte %d: checksum %08x, index says %08x: %w", bi.Position, got, bi.Checksum, ErrCorruptObject)
	}
	raw := stored
	if bi.Codec == CodecLZ4 {
		raw = make([]byte, bi.RawSize)
		n, err := lz4.UncompressBlock(stored, raw)
		if err != nil || int64(n) != bi.RawSize {
			return nil, fmt.Errorf("block at byte %d: lz4 decoded %d of %d bytes (%v): %w", bi.Position, n, bi.RawSize, err, ErrCorruptObject)
		}
	}
	if err := checkBlockBatches(raw, bi); err != nil {
		return nil, fmt.Errorf("block at byte %d: %w", bi.Position, err)
	}
	return raw, nil
}

// checkBlockBatches walks the batch framing of a decoded block.
func checkBlockBatches(raw []byte, bi BlockInfo) error {
	next, n := bi.StartOffset, uint32(0)
	for pos := 0; pos < len(raw); n++ {
		h, size, err := batchFrame(raw[pos:])
		if err != nil {
			return fmt.Errorf("batch %d at byte %d: %w", n, pos, err)
		}
		if h.BaseOffset != next {
			return fmt.Errorf("batch %d has base offset %d, expected %d: %w", n, h.BaseOffset, next, ErrCorruptObject)
		}
		next = h.LastOffset() + 1
		pos += size
	}
	if n != bi.Batches || next != bi.EndOffset {
		return fmt.Errorf("%d batches ending at offset %d, index says %d ending at %d: %w",
			n, next, bi.Batches, bi.EndOffset, ErrCorruptObject)
	}
	return nil
}

// batchFrame parses the header of the batch at the start of b and returns it
// with the batch's size, checking magic, length and offset range (not the
// CRC). Errors wrap ErrCorruptObject.
func batchFrame(b []byte) (protocol.BatchHeader, int, error) {
	h, err := protocol.ParseBatchHeader(b)
	if err != nil {
		return h, 0, fmt.Errorf("%v: %w", err, ErrCorruptObject)
	}
	size := int64(h.BatchLength) + batchLengthOverhead
	switch {
	case h.Magic != 2:
		return h, 0, fmt.Errorf("magic %d: %w", h.Magic, ErrCorruptObject)
	case size < protocol.BatchHeaderSize || size > int64(len(b)):
		return h, 0, fmt.Errorf("batch length %d with %d bytes left: %w", h.BatchLength, len(b), ErrCorruptObject)
	case h.BaseOffset < 0 || h.LastOffsetDelta < 0 || h.BaseOffset > 1<<62:
		return h, 0, fmt.Errorf("base offset %d, last offset delta %d: %w", h.BaseOffset, h.LastOffsetDelta, ErrCorruptObject)
	}
	return h, int(size), nil
}

// ReadObjectIndex fetches and decodes the index of the object key of size
// bytes in at most two ranged GETs: the last min(size, 64 KiB) bytes first,
// which usually hold footer and index, then the index alone if it starts
// earlier. A footer that does not match size wraps ErrCorruptObject.
func ReadObjectIndex(ctx context.Context, store ObjectStore, key string, size int64) (*ObjectIndex, error) {
	if size < FooterSize {
		return nil, fmt.Errorf("read index of %q: object of %d bytes: %w", key, size, ErrCorruptObject)
	}
	tailLen := min(size, indexTailRead)
	tail, err := store.Get(ctx, key, size-tailLen, tailLen)
	if err != nil {
		return nil, fmt.Errorf("read index of %q: %w", key, err)
	}
	if int64(len(tail)) != tailLen {
		return nil, fmt.Errorf("read index of %q: got %d of %d tail bytes: %w", key, len(tail), tailLen, ErrCorruptObject)
	}
	f, err := DecodeFooter(tail)
	if err != nil {
		return nil, fmt.Errorf("read index of %q: %w", key, err)
	}
	if f.ObjectSize() != size {
		return nil, fmt.Errorf("read index of %q: footer describes %d bytes, object has %d: %w", key, f.ObjectSize(), size, ErrCorruptObject)
	}
	var ib []byte
	if tailStart := size - tailLen; f.IndexPosition >= tailStart {
		ib = tail[f.IndexPosition-tailStart : f.IndexPosition-tailStart+f.IndexSize]
	} else {
		ib, err = store.Get(ctx, key, f.IndexPosition, f.IndexSize)
		if err != nil {
			return nil, fmt.Errorf("read index of %q: %w", key, err)
		}
	}
	ix, err := DecodeIndex(ib, f)
	if err != nil {
		return nil, fmt.Errorf("read index of %q: %w", key, err)
	}
	return ix, nil
}

// ObjectWriter builds one object in memory from batches appended in
// (stream, offset) order. It is not safe for concurrent use.
type ObjectWriter struct {
	blockSize int
	buf       []byte      // finished blocks
	blocks    []BlockInfo // their index entries
	cur       struct {
		open         bool
		raw          []byte
		info         BlockInfo
		compressible bool // every batch uncompressed
	}
	started    bool
	lastStream uint64
	nextOffset int64
	finished   bool
	comp       lz4.Compressor
	scratch    []byte
}

// NewObjectWriter returns a writer that closes blocks at the first batch
// boundary at or past blockSize bytes (DefaultBlockSize when <= 0; at most
// 1 GiB).
func NewObjectWriter(blockSize int) *ObjectWriter {
	if blockSize <= 0 {
		blockSize = DefaultBlockSize
	}
	return &ObjectWriter{blockSize: min(blockSize, maxBlockSize)}
}

// Append adds one batch of stream. batch must be one valid magic-2 batch
// (framing and CRC are checked: ErrInvalidBatch) whose base offset is
// already assigned. Streams must come in ascending order and, within a
// stream, batch's base offset must be the previous batch's last offset + 1;
// otherwise ErrOutOfOrder. The writer copies batch.
func (w *ObjectWriter) Append(stream uint64, batch []byte) error {
	if w.finished {
		return ErrWriterFinished
	}
	h, err := checkAppendBatch(batch)
	if err != nil {
		return fmt.Errorf("append to stream %d: %w", stream, err)
	}
	if w.started {
		if stream < w.lastStream {
			return fmt.Errorf("append stream %d after stream %d: %w", stream, w.lastStream, ErrOutOfOrder)
		}
		if stream == w.lastStream && h.BaseOffset != w.nextOffset {
			return fmt.Errorf("append to stream %d at offset %d, expected %d: %w", stream, h.BaseOffset, w.nextOffset, ErrOutOfOrder)
		}
	}
	if w.cur.open && (w.cur.info.Stream != stream || len(batch) >= w.blockSize) {
		w.closeBlock()
	}
	if !w.cur.open {
		w.cur.open, w.cur.compressible = true, true
		w.cur.raw = w.cur.raw[:0]
		w.cur.info = BlockInfo{
			Stream: stream, StartOffset: h.BaseOffset,
			MinTimestamp: h.FirstTimestamp, MaxTimestamp: h.MaxTimestamp,
		}
	}
	c := &w.cur
	c.raw = append(c.raw, batch...)
	c.info.EndOffset = h.LastOffset() + 1
	c.info.MinTimestamp = min(c.info.MinTimestamp, h.FirstTimestamp)
	c.info.MaxTimestamp = max(c.info.MaxTimestamp, h.MaxTimestamp)
	c.info.Batches++
	c.compressible = c.compressible && h.Codec() == protocol.CodecNone
	w.started, w.lastStream, w.nextOffset = true, stream, h.LastOffset()+1
	if len(c.raw) >= w.blockSize {
		w.closeBlock()
	}
	return nil
}

// checkAppendBatch checks one batch given to Append.
func checkAppendBatch(b []byte) (protocol.BatchHeader, error) {
	h, size, err := batchFrame(b)
	if err != nil || size != len(b) {
		return h, fmt.Errorf("batch of %d bytes: bad framing: %w", len(b), ErrInvalidBatch)
	}
	if crc := crc32c(b[21:]); crc != h.CRC {
		return h, fmt.Errorf("batch crc %08x, computed %08x: %w", h.CRC, crc, ErrInvalidBatch)
	}
	// Key compaction (keycompact.go) leaves batches with fewer records than
	// offsets, even none, as Kafka's cleaner does; never more.
	if h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%d records with last offset delta %d: %w", h.NumRecords, h.LastOffsetDelta, ErrInvalidBatch)
	}
	return h, nil
}

// closeBlock stores the open block, LZ4-compressed when its batches are
// uncompressed and compression saves at least 1/lz4MinSaving of its size
// (below that, decoding costs more than the bytes saved).
func (w *ObjectWriter) closeBlock() {
	c := &w.cur
	info := c.info
	info.Position = int64(len(w.buf))
	info.RawSize = int64(len(c.raw))
	stored := c.raw
	if c.compressible {
		if bound := lz4.CompressBlockBound(len(c.raw)); cap(w.scratch) < bound {
			w.scratch = make([]byte, bound)
		}
		dst := w.scratch[:cap(w.scratch)]
		n, err := w.comp.CompressBlock(c.raw, dst)
		if err == nil && n > 0 && n <= len(c.raw)-len(c.raw)/lz4MinSaving {
			stored, info.Codec = dst[:n], CodecLZ4
		}
	}
	info.StoredSize = int64(len(stored))
	info.Checksum = crc32c(stored)
	w.buf = append(w.buf, stored...)
	w.blocks = append(w.blocks, info)
	c.open = false
}

// Len returns the object's approximate size so far: the stored blocks plus
// the open block's raw bytes (index and footer not counted).
func (w *ObjectWriter) Len() int {
	return len(w.buf) + len(w.cur.raw)*boolInt(w.cur.open)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Finish closes the open block, appends the index block and the footer and
// returns the complete object with its index. The writer cannot be used
// afterwards (ErrWriterFinished). An object without batches is valid: an
// empty index and the footer.
func (w *ObjectWriter) Finish() ([]byte, *ObjectIndex, error) {
	if w.finished {
		return nil, nil, ErrWriterFinished
	}
	w.finished = true
	if w.cur.open {
		w.closeBlock()
	}
	obj := w.buf
	indexPos := int64(len(obj))
	obj = appendIndex(obj, w.blocks)
	f := Footer{
		IndexPosition: indexPos,
		IndexSize:     int64(len(obj)) - indexPos,
		Version:       FormatVersion,
		IndexChecksum: crc32c(obj[indexPos:]),
	}
	if f.IndexSize > maxIndexSize {
		return nil, nil, fmt.Errorf("finish object: %d blocks make an index of %d bytes, limit %d: %w",
			len(w.blocks), f.IndexSize, maxIndexSize, ErrInvalidBatch)
	}
	obj = appendFooter(obj, f)
	w.buf, w.cur.raw, w.scratch = nil, nil, nil
	return obj, &ObjectIndex{Blocks: w.blocks}, nil
}
