package broker

import (
	"context"
	"time"

	"github.com/shoal-io/shoal/s3stream"
)

// startStorageTasks starts the object-storage housekeeping, owned by the
// broker: started with the uploaders' ctx, counted in b.bg, stopped by
// stopBackground. Each task checks b.meta.IsLeader() on every tick and
// works only while this broker leads the metadata group (on the embedded
// default: always), so exactly one broker of a cluster does it. Their
// object-store requests go through b.objects, counted by reason.
//
//   - compactor (s3stream.Compactor.Run): every CompactionInterval, merges
//     small stream set objects, splits big streams into stream objects,
//     merges small stream objects; swaps them in metadata atomically.
//     Requests: ReasonCompaction.
//   - retention (s3stream.Retention.Run): every RetentionCheckInterval,
//     advances log start offsets past whole ranges out of retention.ms or
//     retention.bytes. Requests (index reads): ReasonGC.
//   - garbage collector (s3stream.GC.Run): every 30 s (or half the
//     ObjectGrace when that is shorter) deletes the pending deletes whose
//     ObjectGrace has passed; a minute after start and then
//     every OrphanSweepInterval, LISTs "sso/" and "so/" and deletes objects
//     no metadata refers to that are older than ObjectGrace. Requests:
//     ReasonGC.
func (b *Broker) startStorageTasks(ctx context.Context) {
	cfg := b.cfg
	compactor := s3stream.NewCompactor(b.objects, b.meta, s3stream.CompactorConfig{
		Interval: cfg.CompactionInterval, Grace: cfg.ObjectGrace, Logger: b.logger,
	})
	retention := s3stream.NewRetention(b.objects, b.meta, s3stream.RetentionConfig{
		Interval: cfg.RetentionCheckInterval, Grace: cfg.ObjectGrace, Logger: b.logger,
	})
	gc := s3stream.NewGC(b.objects, b.meta, s3stream.GCConfig{
		Interval:      gcInterval(cfg.ObjectGrace),
		SweepInterval: cfg.OrphanSweepInterval, Grace: cfg.ObjectGrace, Logger: b.logger,
		// The first sweep comes a minute after start, or sooner when sweeps are more frequent.
		SweepDelay: min(time.Minute, cfg.OrphanSweepInterval),
	})
	for _, run := range []func(context.Context){compactor.Run, retention.Run, gc.Run, b.runOffsetExpiry} {
		b.bg.Add(1)
		go func() {
			defer b.bg.Done()
			run(ctx)
		}()
	}
}

// gcInterval is how often due deletes are collected: every 30 s, or half
// the grace period when that is shorter, so that a dead object stays at
// most about 1.5 grace periods.
func gcInterval(grace time.Duration) time.Duration {
	if grace <= 0 {
		return 0 // the GC's default
	}
	return max(min(30*time.Second, grace/2), 10*time.Millisecond)
}
