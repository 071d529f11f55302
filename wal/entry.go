package wal

import (
	"encoding/binary"
	"fmt"
)

// Entry kinds: the first byte of every WAL Raft entry.
const (
	// entryKindAppend: batches of many streams, packed by group commit.
	entryKindAppend byte = 1
	// entryKindTrim: the streams' data below given offsets is in object
	// storage; the WAL drops it from its index.
	entryKindTrim byte = 2
)

// trimSize is stream (8) + end offset (8).
const trimSize = 16

// entryHeaderSize is kind (1) + request count (4).
const entryHeaderSize = 5

// requestHeaderSize is stream (8) + batch count (4); each batch adds a 4-byte length.
const requestHeaderSize = 12

// request is one partition's record set inside an entry: the unit the FSM
// accepts or refuses as a whole.
type request struct {
	stream  uint64
	batches [][]byte
}

// encodedSize is the number of bytes r takes in an entry.
func (r *request) encodedSize() int {
	n := requestHeaderSize
	for _, b := range r.batches {
		n += 4 + len(b)
	}
	return n
}

// encodeEntry packs requests into one Raft entry; size is a capacity hint.
func encodeEntry(reqs []*request, size int) []byte {
	buf := make([]byte, entryHeaderSize, max(size, entryHeaderSize))
	buf[0] = entryKindAppend
	binary.BigEndian.PutUint32(buf[1:], uint32(len(reqs)))
	for _, r := range reqs {
		buf = binary.BigEndian.AppendUint64(buf, r.stream)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.batches)))
		for _, b := range r.batches {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
			buf = append(buf, b...)
		}
	}
	return buf
}

// decodeEntry parses an append entry. The returned batches alias data.
func decodeEntry(data []byte) ([]request, error) {
	if len(data) < entryHeaderSize {
		return nil, fmt.Errorf("%w: entry of %d bytes", ErrCorrupt, len(data))
	}
	if data[0] != entryKindAppend {
		return nil, fmt.Errorf("%w: unknown entry kind %d", ErrCorrupt, data[0])
	}
	n := binary.BigEndian.Uint32(data[1:])
	rest := data[entryHeaderSize:]
	// Every request needs at least its header: bound the allocation by what is there.
	if uint64(n)*requestHeaderSize > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: entry claims %d requests in %d bytes", ErrCorrupt, n, len(rest))
	}
	reqs := make([]request, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(rest) < requestHeaderSize {
			return nil, fmt.Errorf("%w: request %d truncated", ErrCorrupt, i)
		}
		r := request{stream: binary.BigEndian.Uint64(rest)}
		nb := binary.BigEndian.Uint32(rest[8:])
		rest = rest[requestHeaderSize:]
		if uint64(nb)*4 > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: request %d claims %d batches", ErrCorrupt, i, nb)
		}
		r.batches = make([][]byte, 0, nb)
		for j := uint32(0); j < nb; j++ {
			if len(rest) < 4 {
				return nil, fmt.Errorf("%w: batch %d/%d truncated", ErrCorrupt, i, j)
			}
			l := binary.BigEndian.Uint32(rest)
			rest = rest[4:]
			if uint64(l) > uint64(len(rest)) {
				return nil, fmt.Errorf("%w: batch %d/%d claims %d bytes, %d left", ErrCorrupt, i, j, l, len(rest))
			}
			r.batches = append(r.batches, rest[:l:l])
			rest = rest[l:]
		}
		reqs = append(reqs, r)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(rest))
	}
	return reqs, nil
}

// trim is one stream's part of a trim entry: everything below End is uploaded.
type trim struct {
	Stream uint64
	End    int64
}

// encodeTrim builds a trim entry.
func encodeTrim(trims []trim) []byte {
	buf := make([]byte, entryHeaderSize, entryHeaderSize+len(trims)*trimSize)
	buf[0] = entryKindTrim
	binary.BigEndian.PutUint32(buf[1:], uint32(len(trims)))
	for _, t := range trims {
		buf = binary.BigEndian.AppendUint64(buf, t.Stream)
		buf = binary.BigEndian.AppendUint64(buf, uint64(t.End))
	}
	return buf
}

// decodeTrim parses a trim entry.
func decodeTrim(data []byte) ([]trim, error) {
	if len(data) < entryHeaderSize || data[0] != entryKindTrim {
		return nil, fmt.Errorf("%w: not a trim entry", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(data[1:])
	rest := data[entryHeaderSize:]
	if uint64(n)*trimSize != uint64(len(rest)) {
		return nil, fmt.Errorf("%w: trim entry claims %d streams in %d bytes", ErrCorrupt, n, len(rest))
	}
	trims := make([]trim, n)
	for i := range trims {
		trims[i] = trim{Stream: binary.BigEndian.Uint64(rest), End: int64(binary.BigEndian.Uint64(rest[8:]))}
		rest = rest[trimSize:]
	}
	return trims, nil
}
