package s3stream

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"time"

	"github.com/shoal-io/shoal/metadata"
	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/wal"
)

// UploadSource is the WAL group an uploader drains (a *wal.Group).
type UploadSource interface {
	IsLeader() bool
	PendingBytes() int64
	Pending(maxBytes int64) []wal.PendingRange
	ReadPending(r wal.PendingRange, fn func(batch []byte) error) error
	Trim(ctx context.Context, ranges []wal.PendingRange) error
}

// uploadRequester is an UploadSource that can ask for an upload ahead of
// the schedule (*wal.Group: a partition move waits for its stream's data).
type uploadRequester interface {
	UploadRequested() <-chan struct{}
}

// ObjectCommitter is the metadata the uploader commits objects to (a *metadata.Store).
type ObjectCommitter interface {
	Image() *metadata.Image
	CommitObject(ctx context.Context, obj metadata.Object) error
}

// UploaderConfig configures one WAL group's uploader.
type UploaderConfig struct {
	Group        uint32        // WAL group id, part of every object key
	UploadBytes  int64         // upload once this much is pending (default 64 MiB)
	UploadAge    time.Duration // or once the oldest pending data is this old (default 10 s)
	MaxObject    int64         // the most data one object takes (default 512 MiB)
	BlockSize    int           // data block size (default DefaultBlockSize)
	PollInterval time.Duration // how often pending data is checked (default 100 ms)
	MinBackoff   time.Duration // first retry delay after a storage error (default 100 ms)
	MaxBackoff   time.Duration // retry delay cap (default 5 s)
	Logger       *slog.Logger

	// AfterPut and AfterCommit, when set, run after an object's PUT and after
	// its metadata commit. Crash tests use them to stop the process there.
	AfterPut, AfterCommit func(key string)
}

func (c *UploaderConfig) applyDefaults() {
	if c.UploadBytes <= 0 {
		c.UploadBytes = 64 << 20
	}
	if c.UploadAge <= 0 {
		c.UploadAge = 10 * time.Second
	}
	if c.MaxObject <= 0 {
		c.MaxObject = 512 << 20
	}
	if c.BlockSize <= 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Uploader moves one WAL group's committed data into stream set objects:
// build an object, PUT it, commit it to metadata, then trim the WAL. Only the
// group's Raft leader uploads; a new leader resumes from what metadata says
// was committed, so no range is lost or stored twice.
type Uploader struct {
	store ObjectStore
	src   UploadSource
	index ObjectCommitter
	cfg   UploaderConfig

	pendingSince time.Time // when pending data was first seen since the last upload
}

// NewUploader returns an uploader; Run drives it.
func NewUploader(store ObjectStore, src UploadSource, index ObjectCommitter, cfg UploaderConfig) *Uploader {
	cfg.applyDefaults()
	return &Uploader{store: store, src: src, index: index, cfg: cfg}
}

// Run uploads until ctx ends. Storage errors are retried with backoff and
// jitter; the data stays in the WAL meanwhile. A source that can request
// an upload (UploadRequested) gets one at once, whatever is pending.
func (u *Uploader) Run(ctx context.Context) {
	t := time.NewTicker(u.cfg.PollInterval)
	defer t.Stop()
	var requested <-chan struct{}
	if r, ok := u.src.(uploadRequester); ok {
		requested = r.UploadRequested()
	}
	failures := 0
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-requested:
			forced = true
		}
		if due := u.due(); !due && !(forced && u.src.IsLeader()) {
			continue
		}
		if err := u.UploadOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			d := backoff(u.cfg.MinBackoff, u.cfg.MaxBackoff, failures)
			u.cfg.Logger.Warn("upload failed; retrying", "group", u.cfg.Group, "retry_in", d, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			continue
		}
		failures = 0
	}
}

// due reports whether enough data, or old enough data, is pending.
func (u *Uploader) due() bool {
	if !u.src.IsLeader() {
		u.pendingSince = time.Time{}
		return false
	}
	pending := u.src.PendingBytes()
	if pending == 0 {
		u.pendingSince = time.Time{}
		return false
	}
	now := time.Now()
	if u.pendingSince.IsZero() {
		u.pendingSince = now
	}
	return pending >= u.cfg.UploadBytes || now.Sub(u.pendingSince) >= u.cfg.UploadAge
}

// backoff is the delay before retry n (1-based): exponential, capped, with
// full jitter in its upper half.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := float64(lo) * math.Pow(2, float64(min(n-1, 20)))
	d = min(d, float64(hi))
	return time.Duration(d/2 + mrand.Float64()*d/2)
}

// UploadOnce uploads what is pending now (at most MaxObject bytes) as one
// object. It is Run's step, exported for tests and for a clean shutdown.
func (u *Uploader) UploadOnce(ctx context.Context) error {
	ranges := u.src.Pending(u.cfg.MaxObject)
	if len(ranges) == 0 {
		return nil
	}
	u.pendingSince = time.Time{}
	w := NewObjectWriter(u.cfg.BlockSize)
	im := u.index.Image()
	for _, r := range ranges {
		// What metadata already holds of this range (a crash or leader
		// change between commit and trim) is not uploaded again.
		from := r.StartOffset
		if so := im.StreamObjectsOf(r.Stream); so != nil && len(so.Ranges) > 0 {
			if so.EndOffset < r.StartOffset {
				return fmt.Errorf("s3stream: stream %d: metadata ends at %d but the WAL starts at %d: %w",
					r.Stream, so.EndOffset, r.StartOffset, ErrHistoryGap)
			}
			from = max(from, so.EndOffset)
		}
		if from >= r.EndOffset {
			continue
		}
		err := u.src.ReadPending(r, func(batch []byte) error {
			if batchLastOffset(batch) < from {
				return nil
			}
			return w.Append(r.Stream, batch)
		})
		if err != nil {
			return fmt.Errorf("s3stream: read pending stream %d: %w", r.Stream, err)
		}
	}
	if w.Len() > 0 {
		if err := u.putAndCommit(ctx, w); err != nil {
			return err
		}
	}
	if err := u.src.Trim(ctx, ranges); err != nil {
		return fmt.Errorf("s3stream: trim wal after upload: %w", err)
	}
	return nil
}

// putAndCommit finishes the object, PUTs it and commits it to metadata.
func (u *Uploader) putAndCommit(ctx context.Context, w *ObjectWriter) error {
	data, index, err := w.Finish()
	if err != nil {
		return fmt.Errorf("s3stream: build object: %w", err)
	}
	key := u.newKey()
	obj := metadata.Object{Key: key, Size: int64(len(data)), Kind: metadata.KindStreamSet, CreatedMs: time.Now().UnixMilli()}
	for _, sr := range index.Streams() {
		obj.Ranges = append(obj.Ranges, metadata.ObjectRange{
			Stream: sr.Stream, StartOffset: sr.StartOffset, EndOffset: sr.EndOffset, Position: sr.Position, Size: sr.Size,
		})
	}
	pctx := WithReason(ctx, ReasonUpload)
	if err := u.store.Put(pctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("s3stream: put %s: %w", key, err)
	}
	if u.cfg.AfterPut != nil {
		u.cfg.AfterPut(key)
	}
	if err := u.index.CommitObject(ctx, obj); err != nil {
		// The object is unreferenced now; the orphan sweep removes it.
		return fmt.Errorf("s3stream: commit %s: %w", key, err)
	}
	if u.cfg.AfterCommit != nil {
		u.cfg.AfterCommit(key)
	}
	u.cfg.Logger.Debug("uploaded object", "key", key, "bytes", len(data), "streams", len(obj.Ranges))
	return nil
}

// newKey names a new stream set object: the group, the time, and random
// bytes so that two uploads never share a key.
func (u *Uploader) newKey() string {
	var r [8]byte
	rand.Read(r[:])
	return fmt.Sprintf("sso/g%d/%d-%s", u.cfg.Group, time.Now().UnixMilli(), hex.EncodeToString(r[:]))
}

// batchLastOffset reads a patched batch's last offset from its header.
func batchLastOffset(b []byte) int64 {
	h, err := protocol.ParseBatchHeader(b)
	if err != nil {
		return -1
	}
	return h.LastOffset()
}
