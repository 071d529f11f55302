package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-io/shoal/s3stream"
)

// metricsServer serves the health endpoints, the admin endpoints and the
// Prometheus metrics: /healthz answers 200 while the process runs, /readyz
// 200 while the broker serves Kafka requests and 503 before and during
// shutdown, /metrics the broker's own registry (a registry per broker, not
// the global one, so that several brokers can run in one process). The
// metrics are listed in docs/metrics.md.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup

	reg      *prometheus.Registry
	requests *requestMetrics // counted by conn.call (metrics_requests.go)
}

func startMetrics(addr string, b *Broker) (*metricsServer, error) {
	ln, err := listen("metrics-listen", addr)
	if err != nil {
		return nil, err
	}
	m := &metricsServer{ln: ln, reg: prometheus.NewRegistry(), requests: newRequestMetrics()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		&brokerCollector{b: b},
	)
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
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(b.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError, // a failed collector leaves the others
		Registry:      m.reg,                    // promhttp_metric_handler_errors_total
	}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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
