package broker

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// Request metrics, counted as handlers return (conn.call): requests,
// handler errors and latency per API, record bytes per topic for Produce and
// Fetch, and the partition error codes of their responses.

// requestDurationBuckets are the bounds of shoal_request_duration_seconds:
// from a cached metadata answer (sub-millisecond) to a fetch long poll
// (maxFetchWait, 30 s).
var requestDurationBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// requestMetrics are the per-request counters of one broker.
type requestMetrics struct {
	requests  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	produced  *prometheus.CounterVec
	fetched   *prometheus.CounterVec
	partition *prometheus.CounterVec

	byKey [maxAPIKey + 1]*apiMetrics // the children of the dispatch table's APIs
}

// apiMetrics are one API's children of the per-API families, looked up
// once rather than by label on every request. The counters exist from the
// start (at 0); the histogram, with its many series, only once the API
// is used.
type apiMetrics struct {
	requests, errors prometheus.Counter
	duration         func() prometheus.Observer
}

// newRequestMetrics returns the request metrics, with the request and
// error counters of every API of the dispatch table at 0, so that their
// series exist (and rates work) before the first request.
func newRequestMetrics() *requestMetrics {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_requests_total", Help: "Kafka requests handled, by API.",
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_request_errors_total",
			Help: "Kafka requests whose handler failed (the connection is closed), by API.",
		}, []string{"api"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoal_request_duration_seconds",
			Help:    "Time from the start of a request's handler to its response (Fetch includes its long poll), by API.",
			Buckets: requestDurationBuckets,
		}, []string{"api"}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_produce_bytes_total",
			Help: "Record-batch bytes of committed produce partitions, as the producer sent them, by topic.",
		}, []string{"topic"}),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_fetch_bytes_total", Help: "Record-batch bytes returned to fetches, by topic.",
		}, []string{"topic"}),
		partition: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_partition_errors_total",
			Help: "Partitions of Produce and Fetch responses that carry an error code, by API and error.",
		}, []string{"api", "error"}),
	}
	for _, api := range apis {
		if api != nil {
			m.byKey[api.key] = m.forAPI(kmsg.NameForKey(api.key))
		}
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *requestMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *requestMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// forAPI returns the children of one API.
func (m *requestMetrics) forAPI(name string) *apiMetrics {
	return &apiMetrics{
		requests: m.requests.WithLabelValues(name),
		errors:   m.errors.WithLabelValues(name),
		duration: sync.OnceValue(func() prometheus.Observer { return m.duration.WithLabelValues(name) }),
	}
}

func (m *requestMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.errors, m.duration, m.produced, m.fetched, m.partition}
}

// observeRequest counts one handled request: conn.call calls it when the
// handler returns (or panicked: then err is set). A broker without a
// metrics listener counts nothing.
func (b *Broker) observeRequest(key int16, req kmsg.Request, resp kmsg.Response, err error, d time.Duration) {
	if b.metrics == nil {
		return
	}
	m := b.metrics.requests
	var api *apiMetrics
	if key >= 0 && int(key) < len(m.byKey) {
		api = m.byKey[key]
	}
	if api == nil { // not in the dispatch table: never dispatched
		api = m.forAPI(kmsg.NameForKey(key))
	}
	api.requests.Inc()
	api.duration().Observe(d.Seconds())
	if err != nil {
		api.errors.Inc()
		return
	}
	switch req := req.(type) {
	case *kmsg.ProduceRequest:
		resp, _ := resp.(*kmsg.ProduceResponse) // nil for acks=0
		b.countProduce(m, req, resp)
	case *kmsg.FetchRequest:
		if resp, ok := resp.(*kmsg.FetchResponse); ok {
			b.countFetch(m, resp)
		}
	}
}

// countProduce adds the record bytes of the partitions that committed. With
// acks=0 there is no response, and a handler that returned no error
// committed every partition.
func (b *Broker) countProduce(m *requestMetrics, req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) {
	var names topicNames
	for i, rt := range req.Topics {
		var rts *kmsg.ProduceResponseTopic
		if resp != nil {
			if i >= len(resp.Topics) || len(resp.Topics[i].Partitions) != len(rt.Partitions) {
				return // not the response handleProduce builds: count nothing
			}
			rts = &resp.Topics[i]
		}
		n := 0
		for j, rp := range rt.Partitions {
			if rts != nil && rts.Partitions[j].ErrorCode != 0 {
				m.partition.WithLabelValues("Produce", errorName(rts.Partitions[j].ErrorCode)).Inc()
				continue
			}
			n += len(rp.Records)
		}
		if n > 0 {
			m.produced.WithLabelValues(names.of(b, rt.Topic, rt.TopicID)).Add(float64(n))
		}
	}
}

// countFetch adds the record bytes a fetch response returns.
func (b *Broker) countFetch(m *requestMetrics, resp *kmsg.FetchResponse) {
	var names topicNames
	for _, rt := range resp.Topics {
		n := 0
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				m.partition.WithLabelValues("Fetch", errorName(rp.ErrorCode)).Inc()
			}
			n += len(rp.RecordBatches)
		}
		if n > 0 {
			m.fetched.WithLabelValues(names.of(b, rt.Topic, rt.TopicID)).Add(float64(n))
		}
	}
}

// errorName is a non-zero Kafka error code's name (UNKNOWN_SERVER_ERROR for
// codes kerr does not know).
func errorName(code int16) string { return kerr.TypedErrorForCode(code).Message }

// topicNames resolves the topic ids of v13 requests to names, taking the
// metadata image once per request and only when needed.
type topicNames struct{ im *metadata.Image }

func (t *topicNames) of(b *Broker, name string, id [16]byte) string {
	if name != "" {
		return name
	}
	if t.im == nil {
		t.im = b.meta.Image()
	}
	if topic := t.im.TopicsByID[metadata.TopicID(id)]; topic != nil {
		return topic.Name
	}
	return metadata.TopicID(id).String() // deleted since the response was built
}
