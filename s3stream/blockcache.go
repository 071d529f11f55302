package s3stream

import (
	"container/list"
	"sync"
)

// lru is a cost-bounded least-recently-used map. The cost of an entry is
// fixed when it is added; adding evicts the least recently used entries
// until the total cost fits the capacity. An entry costing more than the
// whole capacity is not kept. It is safe for concurrent use.
type lru[K comparable, V any] struct {
	capacity int64
	cost     func(V) int64

	mu struct {
		sync.Mutex
		order     *list.List // front: most recently used; values are *lruEntry
		items     map[K]*list.Element
		used      int64
		hits      int64
		misses    int64
		evictions int64
	}
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int64
}

func newLRU[K comparable, V any](capacity int64, cost func(V) int64) *lru[K, V] {
	c := &lru[K, V]{capacity: capacity, cost: cost}
	c.mu.order = list.New()
	c.mu.items = make(map[K]*list.Element)
	return c
}

// get returns the value of key and marks it most recently used.
func (c *lru[K, V]) get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(key)
}

func (c *lru[K, V]) getLocked(key K) (V, bool) {
	if el, ok := c.mu.items[key]; ok {
		c.mu.order.MoveToFront(el)
		c.mu.hits++
		return el.Value.(*lruEntry[K, V]).val, true
	}
	c.mu.misses++
	var zero V
	return zero, false
}

// peek returns the value of key without touching its recency or the hit
// counters.
func (c *lru[K, V]) peek(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.items[key]; ok {
		return el.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// contains reports whether key is cached, without touching its recency or
// the hit counters.
func (c *lru[K, V]) contains(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.mu.items[key]
	return ok
}

// add inserts or replaces key and evicts what no longer fits.
func (c *lru[K, V]) add(key K, val V) {
	cost := c.cost(val)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.items[key]; ok {
		c.removeLocked(el)
	}
	if cost > c.capacity {
		return
	}
	c.mu.items[key] = c.mu.order.PushFront(&lruEntry[K, V]{key: key, val: val, cost: cost})
	c.mu.used += cost
	for c.mu.used > c.capacity {
		c.removeLocked(c.mu.order.Back())
		c.mu.evictions++
	}
}

func (c *lru[K, V]) removeLocked(el *list.Element) {
	e := c.mu.order.Remove(el).(*lruEntry[K, V])
	delete(c.mu.items, e.key)
	c.mu.used -= e.cost
}

// lruStats is a snapshot of an lru's counters.
type lruStats struct {
	entries                 int
	used                    int64
	hits, misses, evictions int64
}

func (c *lru[K, V]) stats() lruStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return lruStats{
		entries: len(c.mu.items), used: c.mu.used,
		hits: c.mu.hits, misses: c.mu.misses, evictions: c.mu.evictions,
	}
}

// flight is one in-progress load that concurrent callers wait on.
type flight[V any] struct {
	done chan struct{} // closed when val and err are set
	val  V
	err  error
}

// flightGroup de-duplicates concurrent loads of the same key: the first
// caller (the leader) loads, later callers wait for its result.
type flightGroup[K comparable, V any] struct {
	mu struct {
		sync.Mutex
		flights map[K]*flight[V]
	}
}

func newFlightGroup[K comparable, V any]() *flightGroup[K, V] {
	g := &flightGroup[K, V]{}
	g.mu.flights = make(map[K]*flight[V])
	return g
}

// join returns the flight for key and whether the caller leads it (and
// must call finish).
func (g *flightGroup[K, V]) join(key K) (*flight[V], bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.mu.flights[key]; ok {
		return f, false
	}
	f := &flight[V]{done: make(chan struct{})}
	g.mu.flights[key] = f
	return f, true
}

// inFlight reports whether a load of key is under way.
func (g *flightGroup[K, V]) inFlight(key K) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.mu.flights[key]
	return ok
}

// finish publishes the leader's result and ends the flight.
func (g *flightGroup[K, V]) finish(key K, f *flight[V], val V, err error) {
	f.val, f.err = val, err
	g.mu.Lock()
	delete(g.mu.flights, key)
	g.mu.Unlock()
	close(f.done)
}
