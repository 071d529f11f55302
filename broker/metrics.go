package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/shoal-io/shoal/s3stream"
)

// metricsServer serves the health endpoints: /healthz answers 200 while the
// process runs, /readyz 200 while the broker serves Kafka requests and 503
// before and during shutdown.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup
}

func startMetrics(addr string, b *Broker) (*metricsServer, error) {
	ln, err := listen("metrics-listen", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !b.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/admin/storage", b.serveStorageView)
	b.registerObjectAdmin(mux)
	b.registerClusterAdmin(mux)
	mux.HandleFunc("/metrics", b.serveMetrics)
	m := &metricsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.logger.Warn("metrics listener stopped", "err", err)
		}
	}()
	return m, nil
}

func (m *metricsServer) addr() net.Addr { return m.ln.Addr() }

func (m *metricsServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	m.wg.Wait()
	return err
}

// StorageView is the admin view of object storage: the requests made per
// reason (what the bill is made of), the block cache, the WAL backlog and
// the object index. GET /admin/storage serves it as JSON.
type StorageView struct {
	Requests       map[s3stream.Reason]s3stream.OpCounts `json:"requests"`
	Total          s3stream.OpCounts                     `json:"total"`
	Reader         s3stream.ReaderStats                  `json:"reader"`
	WALPending     []int64                               `json:"wal_pending_bytes"` // per WAL group
	Objects        int                                   `json:"objects"`
	ObjectBytes    int64                                 `json:"object_bytes"`
	PendingDeletes int                                   `json:"pending_deletes"`
}

// StorageView returns the current admin view of object storage.
func (b *Broker) StorageView() StorageView {
	v := StorageView{Requests: b.objects.Counts(), Total: b.objects.Total(), Reader: b.reader.Stats()}
	for _, ws := range b.localWALs() {
		v.WALPending = append(v.WALPending, ws.g.PendingBytes())
	}
	im := b.meta.Image()
	v.Objects, v.PendingDeletes = len(im.Objects), len(im.PendingDeletes)
	for _, o := range im.Objects {
		v.ObjectBytes += o.Size
	}
	return v
}

func (b *Broker) serveStorageView(w http.ResponseWriter, _ *http.Request) {
	if !b.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b.StorageView()); err != nil {
		b.logger.Debug("write storage view", "err", err)
	}
}

// serveMetrics writes the object-storage counters in the Prometheus text
// format. (The full metrics set, with client_golang, comes with the
// operations work; these are the numbers the bill is made of.)
func (b *Broker) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	if b.objects == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	counts := b.objects.Counts()
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, string(r))
	}
	slices.Sort(reasons)
	fmt.Fprintln(w, "# HELP shoal_object_requests_total Object-store requests by reason and operation.")
	fmt.Fprintln(w, "# TYPE shoal_object_requests_total counter")
	for _, r := range reasons {
		c := counts[s3stream.Reason(r)]
		for _, op := range []struct {
			name string
			n    int64
		}{{"put", c.Put}, {"get", c.Get}, {"head", c.Head}, {"delete", c.Delete}, {"list", c.List}} {
			fmt.Fprintf(w, "shoal_object_requests_total{reason=%q,op=%q} %d\n", r, op.name, op.n)
		}
	}
	fmt.Fprintln(w, "# HELP shoal_object_bytes_total Object-store bytes by reason and direction.")
	fmt.Fprintln(w, "# TYPE shoal_object_bytes_total counter")
	for _, r := range reasons {
		c := counts[s3stream.Reason(r)]
		fmt.Fprintf(w, "shoal_object_bytes_total{reason=%q,direction=\"put\"} %d\n", r, c.PutBytes)
		fmt.Fprintf(w, "shoal_object_bytes_total{reason=%q,direction=\"get\"} %d\n", r, c.GetBytes)
	}
	fmt.Fprintln(w, "# HELP shoal_object_request_errors_total Object-store requests that failed, by reason.")
	fmt.Fprintln(w, "# TYPE shoal_object_request_errors_total counter")
	for _, r := range reasons {
		fmt.Fprintf(w, "shoal_object_request_errors_total{reason=%q} %d\n", r, counts[s3stream.Reason(r)].Errors)
	}
	fmt.Fprintln(w, "# HELP shoal_wal_pending_bytes Committed WAL data waiting for upload, per WAL group.")
	fmt.Fprintln(w, "# TYPE shoal_wal_pending_bytes gauge")
	for _, ws := range b.localWALs() {
		fmt.Fprintf(w, "shoal_wal_pending_bytes{group=\"%d\"} %d\n", ws.id, ws.g.PendingBytes())
	}
}
