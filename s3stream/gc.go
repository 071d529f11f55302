package s3stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-io/shoal/metadata"
)

// GCMetadata is the metadata the garbage collector reads references and
// pending deletes from (a *metadata.Store).
type GCMetadata interface {
	Image() *metadata.Image
	IsLeader() bool
	ObjectsDeleted(ctx context.Context, keys []string) error
}

// GCConfig configures the garbage collector. Zero fields take the defaults.
type GCConfig struct {
	// Interval is how often due pending deletes are deleted (default 30 s).
	Interval time.Duration
	// SweepInterval is how often the orphan sweep LISTs the bucket
	// (default 10 min); SweepDelay is when the first sweep runs after Run
	// starts (default 1 min).
	SweepInterval, SweepDelay time.Duration
	// Grace is the age (by the store's LastModified) an unreferenced
	// object must reach before the sweep deletes it, so that an object
	// being uploaded and committed right now is never touched (default
	// metadata.DefaultObjectGrace). It must exceed the time between an
	// object's PUT and its metadata commit, and the clock skew between
	// this node and the store.
	Grace time.Duration
	// Prefixes are the key prefixes the sweep lists (default "so/" and
	// "sso/": what the uploader and the compactor write).
	Prefixes []string
	// Logger receives warnings and debug lines (default slog.Default()).
	Logger *slog.Logger
}

func (c *GCConfig) applyDefaults() {
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 10 * time.Minute
	}
	if c.SweepDelay <= 0 {
		c.SweepDelay = time.Minute
	}
	if c.Grace <= 0 {
		c.Grace = metadata.DefaultObjectGrace
	}
	if len(c.Prefixes) == 0 {
		c.Prefixes = []string{"so/", "sso/"}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// gcBatch bounds the keys of one ObjectsDeleted command.
const gcBatch = 1000

// GC removes objects from storage that metadata no longer needs: the
// pending deletes once their grace has passed (then removed from metadata
// with ObjectsDeleted), and, in a slow orphan sweep, objects that no
// metadata refers to at all (a crash between an object's PUT and its
// commit leaves them). The sweep is the only LIST Shoal issues in steady
// state. Every request is counted under ReasonGC. Only the metadata leader
// collects.
type GC struct {
	store ObjectStore
	meta  GCMetadata
	cfg   GCConfig
}

// NewGC returns a garbage collector; Run drives it.
func NewGC(store ObjectStore, meta GCMetadata, cfg GCConfig) *GC {
	cfg.applyDefaults()
	return &GC{store: store, meta: meta, cfg: cfg}
}

// Run deletes due objects every Interval and sweeps orphans SweepDelay
// after it starts and then every SweepInterval, while this node leads the
// metadata group, until ctx ends. Both run on this goroutine.
func (g *GC) Run(ctx context.Context) {
	deletes := time.NewTicker(g.cfg.Interval)
	defer deletes.Stop()
	sweep := time.NewTimer(g.cfg.SweepDelay)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deletes.C:
			if g.meta.IsLeader() {
				if _, err := g.DeleteDue(ctx, time.Now()); err != nil && ctx.Err() == nil {
					g.cfg.Logger.Warn("deleting unreferenced objects failed; retrying later", "err", err)
				}
			}
		case <-sweep.C:
			if g.meta.IsLeader() {
				if n, err := g.Sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
					g.cfg.Logger.Warn("orphan sweep failed", "err", err)
				} else if n > 0 {
					g.cfg.Logger.Info("orphan sweep deleted unreferenced objects", "objects", n)
				}
			}
			sweep.Reset(g.cfg.SweepInterval)
		}
	}
}

// DeleteDue deletes the pending deletes due at now from storage and then
// from metadata. It returns how many it deleted; keys whose DELETE failed
// stay pending for the next call.
func (g *GC) DeleteDue(ctx context.Context, now time.Time) (int, error) {
	ctx = WithReason(ctx, ReasonGC)
	due := g.meta.Image().DueDeletes(now.UnixMilli())
	deleted := 0
	var errs []error
	for len(due) > 0 {
		n := min(len(due), gcBatch)
		var keys []string
		for _, p := range due[:n] {
			if err := g.store.Delete(ctx, p.Key); err != nil {
				if ctx.Err() != nil {
					return deleted, err
				}
				errs = append(errs, err)
				continue
			}
			keys = append(keys, p.Key)
		}
		due = due[n:]
		if len(keys) == 0 {
			continue
		}
		if err := g.meta.ObjectsDeleted(ctx, keys); err != nil {
			// Deleted from storage but still pending: the next call deletes
			// them again (a no-op) and retries the metadata update.
			return deleted, errors.Join(append(errs, fmt.Errorf("s3stream: record %d deleted objects: %w", len(keys), err))...)
		}
		deleted += len(keys)
	}
	return deleted, errors.Join(errs...)
}

// Sweep LISTs the configured prefixes and deletes every object that
// metadata neither refers to nor holds as a pending delete and whose
// LastModified is more than Grace before now. It returns how many it
// deleted.
func (g *GC) Sweep(ctx context.Context, now time.Time) (int, error) {
	ctx = WithReason(ctx, ReasonGC)
	var listed []ObjectInfo
	for _, p := range g.cfg.Prefixes {
		infos, err := g.store.List(ctx, p)
		if err != nil {
			return 0, fmt.Errorf("s3stream: orphan sweep: %w", err)
		}
		listed = append(listed, infos...)
	}
	// The image is taken after the LIST: an object committed while the
	// LIST ran is then seen as referenced.
	im := g.meta.Image()
	pending := make(map[string]bool, len(im.PendingDeletes))
	for _, p := range im.PendingDeletes {
		pending[p.Key] = true
	}
	cutoff := now.Add(-g.cfg.Grace)
	deleted := 0
	var errs []error
	for _, info := range listed {
		if im.Objects[info.Key] != nil || pending[info.Key] || !info.LastModified.Before(cutoff) {
			continue
		}
		if err := g.store.Delete(ctx, info.Key); err != nil {
			if ctx.Err() != nil {
				return deleted, err
			}
			errs = append(errs, err)
			continue
		}
		g.cfg.Logger.Debug("orphan sweep deleted object", "key", info.Key, "last_modified", info.LastModified)
		deleted++
	}
	return deleted, errors.Join(errs...)
}
