package broker

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoal-io/shoal/metadata"
)

// Client quota enforcement (KIP-13, KIP-124, KIP-219), as Kafka does it:
//
//   - the quota of a request is resolved per key from the metadata image
//     (metadata.Image.ResolveQuota: Kafka's eight-step precedence from
//     /users/<u>/clients/<c> down to /clients/<default>);
//   - clients that resolve to the same entity share one sensor: the
//     entity's named components are filled with the client's user and
//     client id, so /clients/<default> gives every client id its own rate
//     and /users/alice one rate for all of alice's clients;
//   - a sensor measures a rate over quotaSamples samples of
//     quotaSampleWindow (Kafka's quota.window.num 11 and
//     quota.window.size.seconds 1), with Kafka's window arithmetic (at
//     least quotaSamples-1 whole samples), so a client that starts idle may
//     use quotaSamples-1 windows' worth at once;
//   - produce counts the request's record bytes as its handler starts (so
//     its throttle holds back the connection's next request, as Kafka
//     throttles pipelined produces one by one), fetch the response's
//     record bytes, request_percentage the time a request held its
//     connection's reader (the whole handler, except Produce until it
//     submitted to the WAL and Fetch until its long poll began) as a
//     percentage of one thread;
//   - a violated quota gives throttle = (rate - quota) / quota * window,
//     capped at the whole window for the byte rates and at one sample for
//     request_percentage (Kafka's bound); the connection reads no further
//     request until it has passed (KIP-219), so clients that ignore it are
//     slowed too, and responses carry the time left in throttle_time_ms;
//   - a throttled fetch is answered without records and its bytes are not
//     counted (they were not sent).
//
// Sensors idle for a whole window hold no samples that count and are
// dropped; at most maxQuotaSensors exist.

const (
	quotaSamples      = 11
	quotaSampleWindow = time.Second
	quotaWindow       = quotaSamples * quotaSampleWindow
	// maxQuotaSensors bounds the sensors' memory (a few hundred bytes each).
	maxQuotaSensors = 50_000
	// quotaSweepInterval is how often idle sensors are dropped.
	quotaSweepInterval = time.Minute
	// anonymousUser is the user name of unauthenticated clients, as in
	// Kafka's User:ANONYMOUS principal.
	anonymousUser = "ANONYMOUS"
)

// quotaKind is one of the three client quotas.
type quotaKind uint8

const (
	quotaProduce quotaKind = iota
	quotaFetch
	quotaRequest
)

// key returns the quota key of the kind.
func (k quotaKind) key() string {
	switch k {
	case quotaProduce:
		return metadata.QuotaProducerByteRate
	case quotaFetch:
		return metadata.QuotaConsumerByteRate
	}
	return metadata.QuotaRequestPercentage
}

// maxThrottle caps the kind's throttle.
func (k quotaKind) maxThrottle() time.Duration {
	if k == quotaRequest {
		return quotaSampleWindow
	}
	return quotaWindow
}

// quotaSample is the total recorded in one sample window.
type quotaSample struct {
	start time.Time
	value float64
}

// quotaRate is Kafka's Rate over a SampledStat: a ring of samples, each
// open for quotaSampleWindow from its first record, measured over the time
// since the oldest sample began.
type quotaRate struct {
	samples [quotaSamples]quotaSample
	used    int // samples begun, up to quotaSamples
	cur     int
}

// record adds v at now, starting a new sample when the current one is
// complete.
func (r *quotaRate) record(now time.Time, v float64) {
	switch {
	case r.used == 0:
		r.samples[0], r.used = quotaSample{start: now}, 1
	case now.Sub(r.samples[r.cur].start) >= quotaSampleWindow:
		r.cur = (r.cur + 1) % quotaSamples
		if r.cur >= r.used {
			r.used++
		}
		r.samples[r.cur] = quotaSample{start: now}
	}
	r.samples[r.cur].value += v
}

// purge resets the samples that began a whole window before now.
func (r *quotaRate) purge(now time.Time) {
	for i := range r.used {
		if now.Sub(r.samples[i].start) >= quotaWindow {
			r.samples[i] = quotaSample{start: now}
		}
	}
}

// window returns the time the rate is measured over: since the oldest
// sample began, but at least quotaSamples-1 whole samples (plus the part of
// the current one), so a fresh sensor does not read a burst as a huge rate.
func (r *quotaRate) window(now time.Time) time.Duration {
	r.purge(now)
	oldest := now
	for i := range r.used {
		if r.samples[i].start.Before(oldest) {
			oldest = r.samples[i].start
		}
	}
	elapsed := now.Sub(oldest)
	if full := int(elapsed / quotaSampleWindow); full < quotaSamples-1 {
		elapsed += time.Duration(quotaSamples-1-full) * quotaSampleWindow
	}
	return max(elapsed, time.Millisecond)
}

// measure returns the rate per second at now.
func (r *quotaRate) measure(now time.Time) float64 {
	w := r.window(now)
	total := 0.0
	for i := range r.used {
		total += r.samples[i].value
	}
	return total / w.Seconds()
}

// throttle returns how long a client must wait for the rate to come back
// to bound: (rate - bound) / bound * window, rounded to milliseconds and
// capped at limit; 0 when the rate is within bound.
func (r *quotaRate) throttle(now time.Time, bound float64, limit time.Duration) time.Duration {
	v := r.measure(now)
	if v <= bound {
		return 0
	}
	t := (v - bound) / bound * float64(r.window(now))
	if t >= float64(limit) || math.IsNaN(t) {
		return limit
	}
	return time.Duration(t).Round(time.Millisecond)
}

// quotaSensorKey names a sensor: the kind and the entity's components
// filled with the client's user and client id ("" where the entity has
// none).
type quotaSensorKey struct {
	kind         quotaKind
	user, client string
}

// quotaSensor is one entity's rate.
type quotaSensor struct {
	rate     quotaRate
	lastUsed time.Time
}

// quotaManager holds the sensors of one broker and computes throttles.
type quotaManager struct {
	image func() *metadata.Image
	now   func() time.Time
	mu    struct {
		sync.Mutex
		sensors   map[quotaSensorKey]*quotaSensor
		nextSweep time.Time
	}
}

// newQuotaManager returns a manager that reads quotas from image and the
// time from now.
func newQuotaManager(image func() *metadata.Image, now func() time.Time) *quotaManager {
	q := &quotaManager{image: image, now: now}
	q.mu.sensors = map[quotaSensorKey]*quotaSensor{}
	return q
}

// quotaFor resolves the quota of kind for a client: its sensor key and
// bound, or false when none applies.
func quotaFor(im *metadata.Image, kind quotaKind, user, client string) (quotaSensorKey, float64, bool) {
	m, ok := im.ResolveQuota(kind.key(), user, client)
	if !ok {
		return quotaSensorKey{}, 0, false
	}
	key := quotaSensorKey{kind: kind}
	if m.Entity.User.IsSet() {
		key.user = user
	}
	if m.Entity.ClientID.IsSet() {
		key.client = client
	}
	return key, m.Value, true
}

// sensorLocked returns the sensor of key, creating it when missing. It
// drops idle sensors every quotaSweepInterval, and makes room when
// maxQuotaSensors exist (idle ones first, else an arbitrary one).
func (q *quotaManager) sensorLocked(key quotaSensorKey, now time.Time) *quotaSensor {
	if now.After(q.mu.nextSweep) {
		q.sweepLocked(now)
		q.mu.nextSweep = now.Add(quotaSweepInterval)
	}
	s := q.mu.sensors[key]
	if s == nil {
		if len(q.mu.sensors) >= maxQuotaSensors {
			q.sweepLocked(now)
		}
		for k := range q.mu.sensors {
			if len(q.mu.sensors) < maxQuotaSensors {
				break
			}
			delete(q.mu.sensors, k)
		}
		s = &quotaSensor{}
		q.mu.sensors[key] = s
	}
	s.lastUsed = now
	return s
}

// sweepLocked drops the sensors idle for a whole window: all their samples
// have expired, so a new sensor measures the same.
func (q *quotaManager) sweepLocked(now time.Time) {
	for k, s := range q.mu.sensors {
		if now.Sub(s.lastUsed) >= quotaWindow {
			delete(q.mu.sensors, k)
		}
	}
}

// record adds v to the client's sensor of kind and returns the throttle
// and the sensor key; ok is false (nothing recorded) when no quota applies.
func (q *quotaManager) record(im *metadata.Image, kind quotaKind, user, client string, v float64, now time.Time) (time.Duration, quotaSensorKey, bool) {
	key, bound, ok := quotaFor(im, kind, user, client)
	if !ok {
		return 0, key, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sensorLocked(key, now)
	s.rate.record(now, v)
	return s.rate.throttle(now, bound, kind.maxThrottle()), key, true
}

// unrecord takes back v from the sensor record returned.
func (q *quotaManager) unrecord(key quotaSensorKey, v float64, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.mu.sensors[key]; s != nil {
		s.rate.record(now, -v)
	}
}

// check returns the client's throttle of kind without recording.
func (q *quotaManager) check(im *metadata.Image, kind quotaKind, user, client string, now time.Time) time.Duration {
	key, bound, ok := quotaFor(im, kind, user, client)
	if !ok {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.mu.sensors[key]
	if s == nil {
		return 0
	}
	return s.rate.throttle(now, bound, kind.maxThrottle())
}

// recordRequestTime counts d of request handling against the client's
// request_percentage quota.
func (q *quotaManager) recordRequestTime(user, client string, d time.Duration) {
	im := q.image()
	if len(im.Quotas) == 0 {
		return
	}
	q.record(im, quotaRequest, user, client, d.Seconds()*100, q.now())
}

// onRequest applies producer_byte_rate to a request as it starts: a
// produce's bytes count at once and its throttle mutes the connection
// before its next request is read, as Kafka, which reads no request of a
// connection while it handles one, throttles pipelined produces one by
// one. It returns the throttle, 0 for none.
func (q *quotaManager) onRequest(user, client string, req kmsg.Request) time.Duration {
	p, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return 0
	}
	im := q.image()
	if len(im.Quotas) == 0 {
		return 0
	}
	t, _, _ := q.record(im, quotaProduce, user, client, float64(produceRecordBytes(p)), q.now())
	return t
}

// onResponse applies consumer_byte_rate and request_percentage to a
// handled request: it records a fetch's bytes, takes the larger throttle
// of the two, and when there is one empties a fetch response of its
// records (and takes back their bytes, as they are not sent). It returns
// the throttle, 0 for none. Requests whose responses have no throttle
// field (SASL) are not subject to quotas.
func (q *quotaManager) onResponse(user, client string, req kmsg.Request, resp kmsg.Response) time.Duration {
	im := q.image()
	if len(im.Quotas) == 0 {
		return 0
	}
	if _, ok := resp.(kmsg.SetThrottleResponse); !ok {
		return 0
	}
	now := q.now()
	throttle := q.check(im, quotaRequest, user, client, now)
	fr, ok := resp.(*kmsg.FetchResponse)
	if _, fetch := req.(*kmsg.FetchRequest); !fetch || !ok {
		return throttle
	}
	n := float64(fetchRecordBytes(fr))
	t, key, recorded := q.record(im, quotaFetch, user, client, n, now)
	throttle = max(throttle, t)
	if throttle > 0 {
		if recorded {
			q.unrecord(key, n, now)
		}
		dropFetchRecords(fr)
	}
	return throttle
}

// produceRecordBytes returns the record bytes of a produce request.
func produceRecordBytes(req *kmsg.ProduceRequest) int {
	n := 0
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			n += len(p.Records)
		}
	}
	return n
}

// fetchRecordBytes returns the record bytes of a fetch response.
func fetchRecordBytes(resp *kmsg.FetchResponse) int {
	n := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			n += len(p.RecordBatches)
		}
	}
	return n
}

// dropFetchRecords removes the records of a throttled fetch response; the
// partitions keep their offsets, so the client fetches them again later.
func dropFetchRecords(resp *kmsg.FetchResponse) {
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			resp.Topics[i].Partitions[j].RecordBatches = nil
		}
	}
}

// quotaUser is the user name the connection's quotas are resolved with:
// the name of its principal (after its type, "User:"), so unauthenticated
// clients are ANONYMOUS, matched by /users/ANONYMOUS and /users/<default>.
func (c *conn) quotaUser() string {
	if c.auth == nil {
		return anonymousUser
	}
	p := c.auth.principal()
	if _, name, ok := strings.Cut(p, ":"); ok {
		return name
	}
	return p
}

// quotaClientID is the request's client id ("" for a null one).
func quotaClientID(r *request) string {
	if r.hdr.ClientID == nil {
		return ""
	}
	return *r.hdr.ClientID
}

// startRequest is conn.dispatch's hook as a request's handler starts: a
// produce's throttle mutes the connection. It returns the start time.
func (c *conn) startRequest(r *request) time.Time {
	now := time.Now()
	if c.b.quotas != nil {
		if d := c.b.quotas.onRequest(c.quotaUser(), quotaClientID(r), r.req); d > 0 {
			c.mute.extend(now.Add(d))
		}
	}
	return now
}

// recordRequestTime is conn.dispatch's hook as a request releases the
// reader: it held it for d.
func (c *conn) recordRequestTime(r *request, d time.Duration) {
	if c.b.quotas != nil {
		c.b.quotas.recordRequestTime(c.quotaUser(), quotaClientID(r), d)
	}
}

// applyQuotas is conn.call's hook: it applies the quotas to the handled
// request, mutes the connection for the throttle, and tells the client in
// throttle_time_ms how long the connection stays muted.
func (c *conn) applyQuotas(r *request, resp kmsg.Response, err error) {
	if err != nil || c.b.quotas == nil {
		return
	}
	now := time.Now()
	if d := c.b.quotas.onResponse(c.quotaUser(), quotaClientID(r), r.req, resp); d > 0 {
		c.mute.extend(now.Add(d))
	}
	if tr, ok := resp.(kmsg.SetThrottleResponse); ok {
		if left := c.mute.left(now); left > 0 {
			tr.SetThrottle(int32(min(left, time.Duration(math.MaxInt32)*time.Millisecond).Milliseconds()))
		}
	}
}

// connMute is the time before which a connection reads no request.
type connMute struct {
	until atomic.Int64 // Unix nanoseconds
}

// extend mutes the connection until t, unless it is muted longer.
func (m *connMute) extend(t time.Time) {
	until := t.UnixNano()
	for {
		old := m.until.Load()
		if old >= until || m.until.CompareAndSwap(old, until) {
			return
		}
	}
}

// left returns how long the connection stays muted after now.
func (m *connMute) left(now time.Time) time.Duration {
	return time.Unix(0, m.until.Load()).Sub(now)
}

// awaitThrottle waits until the connection's throttle has passed: a
// throttled client's next request is not started before (KIP-219). It
// returns at once when the broker drains, and false when the connection
// closes.
func (c *conn) awaitThrottle() bool {
	d := c.mute.left(time.Now())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.draining:
		return true
	case <-c.ctx.Done():
		return false
	}
}
