package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shoal-io/shoal/metadata"
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

// startUploaders runs one uploader per WAL group, owned by the broker.
func (b *Broker) startUploaders() {
	ctx, cancel := context.WithCancel(context.Background())
	b.bgCancel = cancel
	for i, g := range b.wals {
		u := s3stream.NewUploader(b.objects, g, b.meta, s3stream.UploaderConfig{
			Group:       uint32(i),
			UploadBytes: b.cfg.UploadBytes,
			UploadAge:   b.cfg.UploadAge,
			Logger:      b.logger,
			AfterPut:    testHook("after-put"),
			AfterCommit: testHook("after-commit"),
		})
		b.bg.Add(1)
		go func() {
			defer b.bg.Done()
			u.Run(ctx)
		}()
	}
}

// stopBackground stops the uploaders and waits for them.
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
