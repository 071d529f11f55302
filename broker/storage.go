package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/wal"
)

// streamRead is what one partition read returns.
type streamRead struct {
	records        []byte
	highWatermark  int64
	logStartOffset int64
}

// readPartitionData reads a partition from offset on: from the WAL while the
// offset is still there, from object storage below the WAL's start. A read
// that starts in object storage returns only object data; the next fetch
// continues from where it ended, seamlessly into the WAL.
func (b *Broker) readPartitionData(ctx context.Context, im *metadata.Image, p partition, offset int64, maxBytes int) (streamRead, error) {
	res, err := p.group.Read(p.stream(), offset, maxBytes)
	out := streamRead{records: res.Records, highWatermark: res.HighWatermark, logStartOffset: b.logStart(im, p)}
	if !errors.Is(err, wal.ErrBelowWAL) {
		return out, err
	}
	// The uploader commits an object to metadata before it trims the WAL,
	// so an image loaded after the WAL said "below" holds the object, even
	// if the caller's image predates the commit.
	im = b.meta.Image()
	out.logStartOffset = b.logStart(im, p)
	if offset < out.logStartOffset {
		return out, wal.ErrOffsetOutOfRange
	}
	loc, ok := im.Locate(p.stream(), offset)
	if !ok {
		// Below the WAL but in no committed object: the offset was
		// deleted (retention) or the image is older than the trim.
		return out, wal.ErrOffsetOutOfRange
	}
	recs, err := b.reader.Read(s3stream.WithReason(ctx, s3stream.ReasonFetch), p.stream(), offset, maxBytes,
		s3stream.ObjectLocation{Key: loc.Key, ObjectSize: loc.ObjectSize, StartOffset: loc.StartOffset, EndOffset: loc.EndOffset})
	if err != nil {
		return out, fmt.Errorf("%w: read stream %d at %d from %s: %v", errStorage, p.stream(), offset, loc.Key, err)
	}
	out.records = recs
	return out, nil
}

// logStart is a partition's log start offset: where its committed objects
// start (retention moves it), or the WAL's start when nothing is uploaded.
func (b *Broker) logStart(im *metadata.Image, p partition) int64 {
	if so := im.StreamObjectsOf(p.stream()); so != nil && (len(so.Ranges) > 0 || so.StartOffset > 0) {
		return so.StartOffset
	}
	start, _ := p.group.Offsets(p.stream())
	return start
}

// startBackground starts the storage tasks (compaction, retention, GC,
// offset expiry: each works on the metadata leader only), owned by the
// broker. The uploaders run with their WAL groups (walgroups.go).
func (b *Broker) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	b.bgCancel = cancel
	b.startStorageTasks(ctx)
}

// stopBackground stops the storage tasks and waits for them.
func (b *Broker) stopBackground() {
	if b.bgCancel != nil {
		b.bgCancel()
	}
	b.bg.Wait()
}

// testHookEnv names the crash point at which a test wants shoald to stop:
// "after-put" (an object is in storage, not yet in metadata) or
// "after-commit" (in metadata, the WAL not yet trimmed). The process then
// logs the point and blocks until it is killed. Never set in production.
const testHookEnv = "SHOAL_TEST_UPLOAD_HANG"

func testHook(point string) func(key string) {
	if os.Getenv(testHookEnv) != point {
		return nil
	}
	return func(key string) {
		fmt.Fprintf(os.Stderr, "shoald: test hook: upload hangs %s of %s\n", point, key)
		for {
			time.Sleep(time.Hour)
		}
	}
}

// eachObjectBlock calls fn for every block of stream in its committed,
// live ranges, in offset order, until fn returns false.
func (b *Broker) eachObjectBlock(ctx context.Context, so *metadata.StreamObjects, fn func(rr metadata.RangeRef, bi s3stream.BlockInfo) (bool, error)) error {
	for _, rr := range so.Ranges {
		ix, err := b.reader.ObjectIndex(ctx, rr.Key, rr.ObjectSize)
		if err != nil {
			return fmt.Errorf("%w: index of %s: %v", errStorage, rr.Key, err)
		}
		for _, bi := range ix.Blocks {
			if bi.Stream != so.Stream || bi.EndOffset <= max(rr.StartOffset, so.StartOffset) || bi.StartOffset >= rr.EndOffset {
				continue
			}
			if more, err := fn(rr, bi); !more || err != nil {
				return err
			}
		}
	}
	return nil
}

// objectTimestampBatch finds, in a stream's committed objects, the first
// batch whose max timestamp is at least ts (ok false: none there).
func (b *Broker) objectTimestampBatch(ctx context.Context, im *metadata.Image, stream uint64, ts int64) (batch []byte, ok bool, err error) {
	so := im.StreamObjectsOf(stream)
	if so == nil {
		return nil, false, nil
	}
	ctx = s3stream.WithReason(ctx, s3stream.ReasonFetch)
	err = b.eachObjectBlock(ctx, so, func(rr metadata.RangeRef, bi s3stream.BlockInfo) (bool, error) {
		if bi.MaxTimestamp < ts {
			return true, nil
		}
		data, err := b.reader.Read(ctx, stream, max(bi.StartOffset, rr.StartOffset, so.StartOffset), int(bi.RawSize),
			s3stream.ObjectLocation{Key: rr.Key, ObjectSize: rr.ObjectSize, StartOffset: rr.StartOffset, EndOffset: rr.EndOffset})
		if err != nil {
			return false, fmt.Errorf("%w: read %s: %v", errStorage, rr.Key, err)
		}
		// Walk by framing only: stored batches were validated on produce, and
		// key-compacted ones hold fewer records than their offset span.
		for pos := 0; pos+protocol.BatchHeaderSize <= len(data); {
			h, err := protocol.ParseBatchHeader(data[pos:])
			size := int(h.BatchLength) + 12
			if err != nil || size < protocol.BatchHeaderSize || pos+size > len(data) {
				return false, fmt.Errorf("%w: %s: bad batch framing at %d: %v", errStorage, rr.Key, pos, err)
			}
			if h.MaxTimestamp >= ts {
				batch, ok = data[pos:pos+size], true
				return false, nil
			}
			pos += size
		}
		return true, nil
	})
	return batch, ok, err
}

// objectMaxTimestampBatch returns the batch with the largest timestamp in a
// stream's committed objects (the first on ties).
func (b *Broker) objectMaxTimestampBatch(ctx context.Context, im *metadata.Image, stream uint64) (batch []byte, ok bool, err error) {
	so := im.StreamObjectsOf(stream)
	if so == nil || len(so.Ranges) == 0 {
		return nil, false, nil
	}
	best, found := int64(0), false
	err = b.eachObjectBlock(s3stream.WithReason(ctx, s3stream.ReasonFetch), so, func(_ metadata.RangeRef, bi s3stream.BlockInfo) (bool, error) {
		if !found || bi.MaxTimestamp > best {
			best, found = bi.MaxTimestamp, true
		}
		return true, nil
	})
	if err != nil || !found {
		return nil, false, err
	}
	// The first batch reaching the best timestamp holds it.
	return b.objectTimestampBatch(ctx, im, stream, best)
}
