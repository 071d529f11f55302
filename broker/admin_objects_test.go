package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestObjectAdmin uploads two partitions' records and reads them back
// through GET /admin/objects and /admin/objects/inspect, then checks the
// error answers.
func TestObjectAdmin(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.UploadAge, c.MetricsListen = 50*time.Millisecond, "127.0.0.1:0" })
	createTopic(t, b, "objs", 2)
	createTopic(t, b, "other", 1)
	cl := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 21 {
		r := &kgo.Record{Topic: "objs", Partition: int32(i % 2), Value: []byte(fmt.Sprint(i))}
		if i == 20 { // the filter below leaves this range out
			r.Topic, r.Partition = "other", 0
		}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, func() error {
		if v := b.StorageView(); v.WALPending[0] != 0 || v.Objects == 0 {
			return fmt.Errorf("wal pending %d bytes, %d objects", v.WALPending[0], v.Objects)
		}
		return nil
	})
	base := "http://" + b.MetricsAddr().String()
	get := func(path string, wantStatus int, into any) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET %s: %s, want %d", path, resp.Status, wantStatus)
		}
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}

	var list ObjectsView
	get("/admin/objects?topic=objs", http.StatusOK, &list)
	ends := map[int32]int64{}
	for _, o := range list.Objects {
		if o.Kind != "SSO" || o.Created == "" || o.Size == 0 {
			t.Errorf("object %+v: want a dated SSO", o)
		}
		for _, r := range o.Ranges {
			if r.Topic != "objs" || !r.Live {
				t.Errorf("range %+v: want a live range of objs", r)
			}
			ends[r.Partition] = max(ends[r.Partition], r.EndOffset)
		}
	}
	if ends[0] != 10 || ends[1] != 10 {
		t.Fatalf("objects hold offsets up to %v, want 10 per partition", ends)
	}

	var ins ObjectInspectView
	get("/admin/objects/inspect?key="+url.QueryEscape(list.Objects[0].Key), http.StatusOK, &ins)
	if ins.Footer.Version != 1 || len(ins.Blocks) == 0 || len(ins.Streams) == 0 || ins.Streams[0].Topic != "objs" {
		t.Fatalf("inspect: %+v", ins)
	}

	var e struct{ Error string }
	get("/admin/objects?topic=nope", http.StatusNotFound, &e)
	get("/admin/objects/inspect?key=nope", http.StatusNotFound, &e)
	get("/admin/objects/inspect", http.StatusBadRequest, &e)
	if e.Error == "" {
		t.Fatal("error answer without a message")
	}
	resp, err := http.Post(base+"/admin/objects", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /admin/objects: %s", resp.Status)
	}
}
