package broker

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// DescribeLogDirs: v0-5
//
// Behavior:
// * Shoal keeps a partition in two places, reported as two "log dirs":
//   - the WAL directory of each WAL group this broker holds a replica of,
//     <data-dir>/wal-N (absolute path): per partition, the bytes of its
//     batches still in the WAL (committed, not yet uploaded). Every
//     replica of the group reports them, as Kafka replicas do. v4+:
//     TotalBytes and UsableBytes of the volume (statfs)
//   - object storage, named by the object-store URL without credentials
//     or parameters (e.g. s3://bucket, file:///var/lib/shoal/objects): per
//     partition, the bytes of its live ranges in objects (from the
//     metadata object index; a range straddling the log start counts
//     whole, since its bytes are still stored). Only the partition's leader
//     reports it, so that a sum over brokers counts shared objects once;
//     TotalBytes and UsableBytes are -1 (unbounded)
// * Topics null: every partition; otherwise the requested ones that exist
//   (unknown ones are left out, as Kafka does)
// * OffsetLag is 0 and IsFuture false (no AlterReplicaLogDirs)
// * DESCRIBE on the cluster is needed: without it no dirs, and (v3+) the
//   top-level CLUSTER_AUTHORIZATION_FAILED
//
// Version notes:
// * v1: ThrottleMillis after the response; v2: flexible
// * v3: top-level ErrorCode (always 0); v4: TotalBytes, UsableBytes
// * v5: IsCordoned (always false)

func (b *Broker) handleDescribeLogDirs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.req.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if err := b.clusterDenied(r, opDescribe); err != nil { // authz.go
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	im := b.meta.Image()
	parts := logDirPartitions(im, req.Topics)
	for _, ws := range b.localWALs() {
		i, g := ws.id, ws.g
		d := kmsg.NewDescribeLogDirsResponseDir()
		d.Dir = absPath(filepath.Join(b.cfg.DataDir, groupName(i)))
		d.TotalBytes, d.UsableBytes = volumeBytes(d.Dir)
		d.Topics = logDirTopics(parts, func(p metadata.Partition) (int64, bool) {
			if p.WALGroup != uint32(i) {
				return 0, false
			}
			return g.StreamBytes(p.Stream), true
		})
		resp.Dirs = append(resp.Dirs, d)
	}
	obj := kmsg.NewDescribeLogDirsResponseDir()
	obj.Dir = redactURL(b.objectStoreURL())
	obj.Topics = logDirTopics(parts, func(p metadata.Partition) (int64, bool) {
		if ws := b.localGroup(p.WALGroup); ws == nil || !ws.g.IsLeader() {
			return 0, false
		}
		return objectBytes(im, p.Stream), true
	})
	resp.Dirs = append(resp.Dirs, obj)
	return resp, nil
}

// logDirPartition is one partition a DescribeLogDirs answer may include.
type logDirPartition struct {
	topic string
	p     metadata.Partition
}

// logDirPartitions lists the requested partitions that exist (nil topics:
// all), by topic name and partition index.
func logDirPartitions(im *metadata.Image, topics []kmsg.DescribeLogDirsRequestTopic) []logDirPartition {
	var out []logDirPartition
	if topics == nil {
		for _, name := range im.SortedTopicNames() {
			for _, p := range im.Topics[name].Partitions {
				out = append(out, logDirPartition{name, p})
			}
		}
		return out
	}
	seen := map[logDirPartition]bool{}
	for _, rt := range topics {
		t := im.Topics[rt.Topic]
		if t == nil {
			continue
		}
		for _, idx := range rt.Partitions {
			if idx < 0 || int(idx) >= len(t.Partitions) {
				continue
			}
			lp := logDirPartition{t.Name, t.Partitions[idx]}
			if !seen[lp] {
				seen[lp] = true
				out = append(out, lp)
			}
		}
	}
	slices.SortFunc(out, func(a, b logDirPartition) int {
		if a.topic != b.topic {
			return strings.Compare(a.topic, b.topic)
		}
		return int(a.p.Index) - int(b.p.Index)
	})
	return out
}

// logDirTopics groups the partitions for which size reports a size (ok)
// into response topics, keeping the order of parts.
func logDirTopics(parts []logDirPartition, size func(metadata.Partition) (int64, bool)) []kmsg.DescribeLogDirsResponseDirTopic {
	var out []kmsg.DescribeLogDirsResponseDirTopic
	for _, lp := range parts {
		n, ok := size(lp.p)
		if !ok {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Topic != lp.topic {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = lp.topic
			out = append(out, t)
		}
		sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		sp.Partition, sp.Size = lp.p.Index, n
		t := &out[len(out)-1]
		t.Partitions = append(t.Partitions, sp)
	}
	return out
}

// objectBytes is the size of a stream's live ranges in object storage.
func objectBytes(im *metadata.Image, stream uint64) int64 {
	so := im.StreamObjectsOf(stream)
	if so == nil {
		return 0
	}
	total := int64(0)
	for _, rr := range so.Ranges {
		o := im.Objects[rr.Key]
		if o == nil {
			continue
		}
		for _, r := range o.Ranges {
			if r.Stream == stream && r.StartOffset == rr.StartOffset {
				total += r.Size
				break
			}
		}
	}
	return total
}

// volumeBytes returns the total and available bytes of the volume holding
// dir, or -1, -1 when they cannot be read.
func volumeBytes(dir string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	bs := int64(st.Bsize)
	return int64(st.Blocks) * bs, int64(st.Bavail) * bs
}
