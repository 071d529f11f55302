package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReadsAcrossUpload produces, lets the uploader move everything to
// object storage, and checks that fetches from offset 0 and offset lookups
// are answered from the objects, then continue seamlessly into the WAL.
func TestReadsAcrossUpload(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.UploadAge, c.MetricsListen = 50*time.Millisecond, "127.0.0.1:0" })
	createTopic(t, b, "up", 2)
	cl := newClient(t, b, kgo.DefaultProduceTopic("up"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base := time.UnixMilli(1_700_000_000_000)
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			r := &kgo.Record{Partition: int32(i % 2), Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
			if i == 10 {
				r.Timestamp = base.Add(1000 * time.Hour) // the max timestamp of partition 0, uploaded below
			}
			if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 200)
	eventually(t, 20*time.Second, func() error {
		if v := b.StorageView(); v.WALPending[0] != 0 || v.Objects == 0 {
			return fmt.Errorf("wal pending %d bytes, %d objects", v.WALPending[0], v.Objects)
		}
		return nil
	})
	produce(200, 220) // these stay in the WAL for now

	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(t.Context(), "up")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("up", 0); o.Offset != 110 {
		t.Fatalf("end offset of partition 0: %d, want 110", o.Offset)
	}
	// Record i sits in partition i%2 at offset i/2 with timestamp base+i s.
	byTime, err := adm.ListOffsetsAfterMilli(t.Context(), base.Add(102*time.Second).UnixMilli(), "up")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := byTime.Lookup("up", 1); o.Offset != 51 { // record 103
		t.Fatalf("offset for timestamp in objects: %d, want 51", o.Offset)
	}
	byTime, err = adm.ListOffsetsAfterMilli(t.Context(), base.Add(210*time.Second).UnixMilli(), "up")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := byTime.Lookup("up", 1); o.Offset != 105 { // record 211, still in the WAL
		t.Fatalf("offset for timestamp in the WAL: %d, want 105", o.Offset)
	}

	// The max timestamp (-3) of partition 0 is record 10 at offset 5, in an object.
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 7
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "up"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -3
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	lo := dialRaw(t, b).do(req).(*kmsg.ListOffsetsResponse)
	if p := lo.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != 5 || p.Timestamp != base.Add(1000*time.Hour).UnixMilli() {
		t.Fatalf("max timestamp: error %d offset %d timestamp %d; want offset 5", p.ErrorCode, p.Offset, p.Timestamp)
	}

	// A consumer from the start reads everything, in order.
	cons := newClient(t, b, kgo.ConsumeTopics("up"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[int32]int64{}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for seen[0]+seen[1] < 220 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %v of 220: %v", seen, err)
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("partition %d: %v", p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != seen[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, seen[r.Partition])
			}
			if want := fmt.Sprintf("v%d", 2*r.Offset+int64(r.Partition)); string(r.Value) != want {
				t.Fatalf("partition %d offset %d holds %q, want %q", r.Partition, r.Offset, r.Value, want)
			}
			seen[r.Partition]++
		})
	}
	v := b.StorageView()
	if v.Requests["fetch"].Get == 0 || v.Requests["upload"].Put == 0 {
		t.Fatalf("requests counted: %+v", v.Requests)
	}
	// The same counters in the metrics exposition.
	resp, err := http.Get("http://" + b.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		fmt.Sprintf(`shoal_object_requests_total{op="put",reason="upload"} %d`, v.Requests["upload"].Put),
		`shoal_object_requests_total{op="get",reason="fetch"} `,
		`shoal_wal_pending_bytes{group="0"} `,
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
