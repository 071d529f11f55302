package broker

import (
	"context"
	"time"
)

// offsetsRetention is Kafka's offsets.retention.minutes default: the
// offsets of a group without members expire this long after their commit
// (Kafka counts from when the group became empty; Shoal from the commit,
// which is never later).
const offsetsRetention = 7 * 24 * time.Hour

// expireOffsets removes the expired offsets of groups without members and
// returns how many it removed. Only the metadata leader proposes; elsewhere
// it does nothing. An offset committed with an explicit retention (OffsetCommit
// v2-4) expires at its own time, once its group has no members. Meant to run
// periodically (every few minutes, like Kafka's
// offsets.retention.check.interval.ms of 10 minutes).
func (b *Broker) expireOffsets(ctx context.Context, now time.Time) (int, error) {
	if !b.meta.IsLeader() {
		return 0, nil
	}
	groups := b.offsetGroups()
	removed := 0
	for _, g := range b.meta.Image().GroupNames() {
		if groups != nil {
			if _, hasMembers := groups.GroupState(g); hasMembers {
				continue
			}
		}
		n, err := b.meta.ExpireGroupOffsets(ctx, g, now.UnixMilli(), offsetsRetention.Milliseconds())
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// offsetsRetentionCheck is how often runOffsetExpiry looks for expired
// offsets (Kafka's offsets.retention.check.interval.ms default).
const offsetsRetentionCheck = 10 * time.Minute

// runOffsetExpiry calls expireOffsets every offsetsRetentionCheck until ctx
// ends; failures are logged and retried at the next tick. It is a
// background task of the broker (started with the storage tasks, counted in
// b.bg).
func (b *Broker) runOffsetExpiry(ctx context.Context) {
	tick := time.NewTicker(offsetsRetentionCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			n, err := b.expireOffsets(ctx, now)
			if err != nil && ctx.Err() == nil {
				b.logger.Warn("offset expiry failed", "err", err)
			}
			if n > 0 {
				b.logger.Info("expired committed offsets", "count", n)
			}
		}
	}
}
