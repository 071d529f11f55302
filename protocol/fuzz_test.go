package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime/metrics"
	"testing"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var sentinels = []error{
	protocol.ErrFrameTooLarge, protocol.ErrTruncated, protocol.ErrMalformed, protocol.ErrUnknownAPIKey,
	protocol.ErrUnsupportedVersion, protocol.ErrCorruptBatch, protocol.ErrUnsupportedMagic,
	protocol.ErrInvalidBatch, protocol.ErrUnsupportedCodec, protocol.ErrDecompressedTooLarge,
}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %v wraps no sentinel", err)
}

// heapAllocs returns the bytes allocated on the heap so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// seedRequests returns frame bodies for every request kmsg knows, at a
// spread of versions, plus a produce request carrying real batches.
func seedRequests() [][]byte {
	var seeds [][]byte
	for key := int16(0); key < 100; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		for _, v := range []int16{0, req.MaxVersion() / 2, req.MaxVersion()} {
			req.SetVersion(v)
			seeds = append(seeds, prototest.Frame(req, 1, "seed")[4:])
		}
	}
	p := kmsg.NewPtrProduceRequest()
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = prototest.Batch(prototest.Values("a", "b"), prototest.WithCodec(protocol.CodecLZ4))
	t.Partitions = append(t.Partitions, pp)
	p.Topics = append(p.Topics, t)
	for _, v := range []int16{3, 9} {
		p.SetVersion(v)
		seeds = append(seeds, prototest.Frame(p, 2, "seed")[4:])
	}
	return seeds
}

// FuzzParseRequest feeds arbitrary frame bodies to ParseRequest: it must not
// panic, must wrap a sentinel on error, and must not allocate far more than
// the frame's size whatever its length fields claim.
func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		before := heapAllocs()
		h, req, err := protocol.ParseRequest(frame)
		allocated := heapAllocs() - before
		if limit := uint64(1<<20 + 256*len(frame)); allocated > limit {
			t.Fatalf("%d-byte frame (key %d v%d) allocated %d bytes", len(frame), h.APIKey, h.APIVersion, allocated)
		}
		if err != nil {
			checkSentinel(t, err)
			if req != nil {
				t.Fatal("request returned with an error")
			}
			return
		}
		if req.Key() != h.APIKey || req.GetVersion() != h.APIVersion {
			t.Fatalf("request key %d v%d, header %d v%d", req.Key(), req.GetVersion(), h.APIKey, h.APIVersion)
		}
		_ = req.AppendTo(nil) // re-encoding a decoded request must not panic
	})
}

// fixCRC recomputes the CRC of data when it is long enough, so that the fuzzer
// can reach the checks behind the CRC.
func fixCRC(data []byte) []byte {
	if len(data) >= protocol.BatchHeaderSize {
		data = append([]byte(nil), data...)
		prototest.FixCRC(data)
	}
	return data
}

func seedBatches() [][]byte {
	var seeds [][]byte
	for _, c := range allCodecs {
		seeds = append(seeds,
			prototest.Batch(prototest.Values("a"), prototest.WithCodec(c)),
			prototest.Batch(sampleRecords()[:3], prototest.WithCodec(c), prototest.WithProducer(3, 1, 9)))
	}
	return seeds
}

// FuzzValidateBatch checks ValidateBatch against kmsg's decoder and
// DecodeRecords: an accepted batch must decode, with the promised count.
func FuzzValidateBatch(f *testing.F) {
	for _, s := range seedBatches() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, recomputeCRC bool) {
		if recomputeCRC {
			data = fixCRC(data)
		}
		h, err := protocol.ValidateBatch(data)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(data); err != nil || kb.NumRecords != h.NumRecords || kb.FirstOffset != h.BaseOffset {
			t.Fatalf("kmsg disagrees: %v, %+v vs %+v", err, kb, h)
		}
		recs, err := protocol.DecodeRecords(data, 1<<20)
		if h.Codec() == protocol.CodecNone && err != nil {
			t.Fatalf("validated uncompressed batch does not decode: %v", err)
		}
		if err == nil && len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records decoded, header says %d", len(recs), h.NumRecords)
		}
		b := append([]byte(nil), data...)
		protocol.SetBaseOffset(b, 12345)
		protocol.SetPartitionLeaderEpoch(b, 6)
		if _, err := protocol.ValidateBatch(b); err != nil {
			t.Fatalf("patched batch invalid: %v", err)
		}
	})
}

// FuzzSplitBatches checks that an accepted record set is exactly the
// concatenation of valid batches.
func FuzzSplitBatches(f *testing.F) {
	seeds := seedBatches()
	f.Add(prototest.RecordSet(seeds...))
	f.Add(prototest.RecordSet(seeds[0], seeds[3]))
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, set []byte) {
		batches, headers, err := protocol.SplitBatches(set)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		if len(batches) != len(headers) {
			t.Fatalf("%d batches, %d headers", len(batches), len(headers))
		}
		if !bytes.Equal(bytes.Join(batches, nil), set) {
			t.Fatal("batches do not reassemble the record set")
		}
		for i, b := range batches {
			if h, err := protocol.ValidateBatch(b); err != nil || h != headers[i] {
				t.Fatalf("batch %d: %v", i, err)
			}
		}
	})
}

// FuzzDecodeRecords decodes arbitrary batches (the CRC is not checked by
// DecodeRecords) and the timestamp lookups over them.
func FuzzDecodeRecords(f *testing.F) {
	for _, s := range seedBatches() {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, ts int64) {
		recs, err := protocol.DecodeRecords(data, 1<<20)
		if err != nil {
			checkSentinel(t, err)
		} else {
			h, _ := protocol.ParseBatchHeader(data)
			if len(recs) != int(h.NumRecords) {
				t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
			}
		}
		if _, _, err := protocol.OffsetForTimestamp(data, ts); err != nil {
			checkSentinel(t, err)
		}
		if _, _, err := protocol.MaxTimestampOffset(data); err != nil {
			checkSentinel(t, err)
		}
	})
}

// FuzzDecompress feeds arbitrary input to every codec's bounded decoder.
func FuzzDecompress(f *testing.F) {
	for _, c := range allCodecs {
		comp, _ := protocol.Compress(c, bytes.Repeat([]byte("abc"), 100))
		f.Add(int8(c), comp)
	}
	f.Fuzz(func(t *testing.T, c int8, src []byte) {
		const bound = 1 << 16
		out, err := protocol.Decompress(protocol.Codec(c), src, bound)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		if len(out) > bound {
			t.Fatalf("%d bytes out, bound %d", len(out), bound)
		}
	})
}

// FuzzReadFrame feeds arbitrary bytes to ReadFrame, the first decoder a
// connection meets: it must not panic, must not allocate beyond the size
// cap whatever the prefix claims, and must return a frame of exactly the
// claimed size or a sentinel (or io.EOF on an empty stream).
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c'}, int32(1024))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff}, int32(1<<20))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, int32(16))
	f.Add([]byte{0, 0}, int32(16))
	f.Fuzz(func(t *testing.T, data []byte, maxSize int32) {
		maxSize = max(min(maxSize, 1<<20), 0)
		before := heapAllocs()
		frame, err := protocol.ReadFrame(bytes.NewReader(data), maxSize)
		if allocated := heapAllocs() - before; allocated > uint64(maxSize)+4<<20 { // the counter is process-wide: leave room for the fuzzing engine
			t.Fatalf("allocated %d bytes with a cap of %d", allocated, maxSize)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				checkSentinel(t, err)
			}
			return
		}
		if len(data) < 4 || int(binary.BigEndian.Uint32(data)) != len(frame) || len(frame) > int(maxSize) {
			t.Fatalf("frame of %d bytes from %d bytes of input (cap %d)", len(frame), len(data), maxSize)
		}
	})
}
