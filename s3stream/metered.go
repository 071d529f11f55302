package s3stream

import (
	"context"
	"io"
	"maps"
	"sync"
	"sync/atomic"
)

// Reason says why an object-store request was made; Metered counts
// requests per reason. Callers attach it to the context with WithReason.
type Reason string

// The reasons Shoal's components give.
const (
	// ReasonUpload: the uploader writing WAL data to objects.
	ReasonUpload Reason = "upload"
	// ReasonCompaction: the compactor reading and writing objects.
	ReasonCompaction Reason = "compaction"
	// ReasonFetch: the reader serving consumers.
	ReasonFetch Reason = "fetch"
	// ReasonGC: retention, garbage collection and the orphan sweep.
	ReasonGC Reason = "gc"
	// ReasonOther: a context without a reason.
	ReasonOther Reason = "other"
)

type reasonKey struct{}

// WithReason returns a context whose object-store requests Metered counts
// under r.
func WithReason(ctx context.Context, r Reason) context.Context {
	return context.WithValue(ctx, reasonKey{}, r)
}

// ReasonFrom returns the reason attached to ctx, or ReasonOther.
func ReasonFrom(ctx context.Context) Reason {
	if r, ok := ctx.Value(reasonKey{}).(Reason); ok && r != "" {
		return r
	}
	return ReasonOther
}

// OpCounts counts object-store requests of one reason. Every call counts as
// one request of its kind, whether it succeeds or not (a Put is one request
// here even when the S3 store splits it into a multipart upload); Errors
// counts the failed ones. PutBytes counts the bytes the store read from Put
// bodies, GetBytes the bytes Get returned.
type OpCounts struct {
	Put, Get, Head, Delete, List int64
	PutBytes, GetBytes           int64
	Errors                       int64
}

// add adds o to c.
func (c OpCounts) add(o OpCounts) OpCounts {
	return OpCounts{
		Put: c.Put + o.Put, Get: c.Get + o.Get, Head: c.Head + o.Head,
		Delete: c.Delete + o.Delete, List: c.List + o.List,
		PutBytes: c.PutBytes + o.PutBytes, GetBytes: c.GetBytes + o.GetBytes,
		Errors: c.Errors + o.Errors,
	}
}

// Metered is an ObjectStore that counts the requests it passes to the
// store it wraps, per Reason (taken from each call's context). It is safe
// for concurrent use.
type Metered struct {
	inner ObjectStore
	mu    struct {
		sync.Mutex
		counts map[Reason]OpCounts
	}
}

var _ ObjectStore = (*Metered)(nil)

// NewMetered wraps inner.
func NewMetered(inner ObjectStore) *Metered {
	m := &Metered{inner: inner}
	m.mu.counts = make(map[Reason]OpCounts)
	return m
}

// Inner returns the wrapped store.
func (m *Metered) Inner() ObjectStore { return m.inner }

// Counts returns a snapshot of the counts, per reason.
func (m *Metered) Counts() map[Reason]OpCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.mu.counts)
}

// Total returns the counts summed over every reason.
func (m *Metered) Total() OpCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t OpCounts
	for _, c := range m.mu.counts {
		t = t.add(c)
	}
	return t
}

// record adds d, plus one error when err is set, to ctx's reason.
func (m *Metered) record(ctx context.Context, d OpCounts, err error) {
	if err != nil {
		d.Errors = 1
	}
	r := ReasonFrom(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.counts[r] = m.mu.counts[r].add(d)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64 // the store may read from another goroutine
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Put implements ObjectStore.
func (m *Metered) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	cr := &countingReader{r: r}
	err := m.inner.Put(ctx, key, cr, size)
	m.record(ctx, OpCounts{Put: 1, PutBytes: cr.n.Load()}, err)
	return err
}

// Get implements ObjectStore.
func (m *Metered) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	b, err := m.inner.Get(ctx, key, off, length)
	m.record(ctx, OpCounts{Get: 1, GetBytes: int64(len(b))}, err)
	return b, err
}

// Head implements ObjectStore.
func (m *Metered) Head(ctx context.Context, key string) (ObjectInfo, error) {
	info, err := m.inner.Head(ctx, key)
	m.record(ctx, OpCounts{Head: 1}, err)
	return info, err
}

// Delete implements ObjectStore.
func (m *Metered) Delete(ctx context.Context, key string) error {
	err := m.inner.Delete(ctx, key)
	m.record(ctx, OpCounts{Delete: 1}, err)
	return err
}

// List implements ObjectStore.
func (m *Metered) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	infos, err := m.inner.List(ctx, prefix)
	m.record(ctx, OpCounts{List: 1}, err)
	return infos, err
}
