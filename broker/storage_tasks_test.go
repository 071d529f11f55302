package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoal-io/shoal/s3stream"
)

// TestStorageTasksCompactRetainAndCollect runs the broker's own storage
// goroutines with short intervals: several uploads are compacted into one
// object that consumers read exactly, retention.bytes moves the earliest
// offset, and the dead objects leave the bucket after the grace period.
func TestStorageTasksCompactRetainAndCollect(t *testing.T) {
	b := startBroker(t, func(c *Config) {
		c.UploadAge = 20 * time.Millisecond
		c.CompactionInterval = 300 * time.Millisecond
		c.RetentionCheckInterval = 50 * time.Millisecond
		c.ObjectGrace = 100 * time.Millisecond
	})
	createTopic(t, b, "tasks", 2)
	cl := newClient(t, b, kgo.DefaultProduceTopic("tasks"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const rounds, perRound = 6, 10
	for r := range rounds {
		for i := range perRound {
			rec := &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "r%d-%d", r, i)}
			if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 10*time.Second, func() error {
			if p := b.StorageView().WALPending[0]; p != 0 {
				return fmt.Errorf("%d bytes wait for upload", p)
			}
			return nil
		})
	}
	// Uploads became several objects; the compactor merges them into one,
	// and GC removes the inputs from the bucket after the grace period.
	eventually(t, 20*time.Second, func() error {
		v := b.StorageView()
		if v.Objects != 1 || v.PendingDeletes != 0 {
			return fmt.Errorf("%d objects, %d pending deletes", v.Objects, v.PendingDeletes)
		}
		return nil
	})
	v := b.StorageView()
	if c := v.Requests[s3stream.ReasonCompaction]; c.Put == 0 || c.Get == 0 {
		t.Fatalf("compaction requests %+v", c)
	}
	if v.Requests[s3stream.ReasonUpload].Put < 2 {
		t.Fatalf("upload requests %+v: the test needs several uploads", v.Requests[s3stream.ReasonUpload])
	}
	for reason, c := range v.Requests {
		if c.List != 0 {
			t.Fatalf("%d LISTs for %s before the first sweep", c.List, reason)
		}
	}

	// Every record reads back from offset 0, from the compacted object.
	cons := newClient(t, b, kgo.ConsumeTopics("tasks"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < rounds*perRound {
		fs := cons.PollFetches(t.Context())
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}

	// retention.bytes 0 deletes every committed range: earliest = end.
	if err := b.meta.AlterTopicConfigs(t.Context(), "tasks", map[string]string{"retention.bytes": "0"}, nil); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	eventually(t, 10*time.Second, func() error {
		starts, err := adm.ListStartOffsets(t.Context(), "tasks")
		if err != nil {
			return err
		}
		for p := int32(0); p < 2; p++ {
			if o, _ := starts.Lookup("tasks", p); o.Offset != rounds*perRound/2 {
				return fmt.Errorf("partition %d starts at %d", p, o.Offset)
			}
		}
		if v := b.StorageView(); v.Objects != 0 || v.PendingDeletes != 0 {
			return fmt.Errorf("%d objects, %d pending deletes", v.Objects, v.PendingDeletes)
		}
		return nil
	})
	infos, err := b.objects.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 0 {
		t.Fatalf("bucket still holds %d objects: %v", len(infos), infos)
	}
}
