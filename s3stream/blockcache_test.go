package s3stream

import (
	"errors"
	"sync"
	"testing"
)

func TestLRUEvictsLeastRecentlyUsedByCost(t *testing.T) {
	c := newLRU[string](10, func(v []byte) int64 { return int64(len(v)) })
	c.add("a", make([]byte, 4))
	c.add("b", make([]byte, 4))
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.add("c", make([]byte, 4)) // 12 > 10: evicts b
	if c.contains("b") || !c.contains("a") || !c.contains("c") {
		t.Fatalf("after adding c: a %v b %v c %v", c.contains("a"), c.contains("b"), c.contains("c"))
	}
	c.add("big", make([]byte, 11)) // larger than the cache: not kept, nothing evicted
	c.add("a", make([]byte, 1))    // replacement updates the cost
	s := c.stats()
	if c.contains("big") || s.used != 5 || s.entries != 2 || s.evictions != 1 || s.hits != 1 {
		t.Fatalf("stats %+v", s)
	}
	if _, ok := c.get("b"); ok || c.stats().misses != 1 {
		t.Fatalf("b should miss once")
	}
}

func TestFlightGroupOneLeader(t *testing.T) {
	g := newFlightGroup[int, int]()
	lead, ok := g.join(1)
	if !ok || !g.inFlight(1) {
		t.Fatal("first join must lead")
	}
	var wg sync.WaitGroup
	results := make([]int, 8)
	for i := range results {
		f, leader := g.join(1)
		if leader {
			t.Fatal("second leader")
		}
		wg.Go(func() {
			<-f.done
			results[i] = f.val
		})
	}
	g.finish(1, lead, 42, nil)
	wg.Wait()
	for i, v := range results {
		if v != 42 {
			t.Fatalf("waiter %d got %d", i, v)
		}
	}
	if g.inFlight(1) {
		t.Fatal("flight not removed")
	}
	f, ok := g.join(1)
	if !ok {
		t.Fatal("a finished flight must not be joined again")
	}
	g.finish(1, f, 0, errors.New("x"))
}
