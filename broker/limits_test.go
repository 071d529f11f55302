package broker

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestConnLimits(t *testing.T) {
	l := newConnLimits(3, 2)
	a := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1}
	b := &net.TCPAddr{IP: net.ParseIP("10.0.0.2"), Port: 1}
	r1, err1 := l.admit(a)
	_, err2 := l.admit(a)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := l.admit(a); !errors.Is(err, errTooManyConnections) {
		t.Fatalf("third from one address: %v", err)
	}
	if _, err := l.admit(b); err != nil {
		t.Fatal(err)
	}
	if _, err := l.admit(&net.TCPAddr{IP: net.ParseIP("10.0.0.3")}); !errors.Is(err, errTooManyConnections) {
		t.Fatalf("fourth in all: %v", err)
	}
	r1()
	r1() // idempotent
	if _, err := l.admit(a); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if l.total != 3 || l.perIP["10.0.0.1"] != 2 {
		t.Fatalf("counts %d %v", l.total, l.perIP)
	}
}

// TestByteBudget: large frames wait for memory in order and leave the
// reserve to small frames; a cancelled wait gives nothing away.
func TestByteBudget(t *testing.T) {
	ctx := t.Context()
	b := newByteBudget(800<<10, 400<<10) // reserve 100 KiB
	if b.reserve != 100<<10 {
		t.Fatalf("reserve %d", b.reserve)
	}
	if err := b.acquire(ctx, 400<<10); err != nil {
		t.Fatal(err)
	}
	if err := b.acquire(ctx, 300<<10); err != nil { // 100 KiB left: the reserve
		t.Fatal(err)
	}
	got := make(chan int64, 4)
	go func() {
		if b.acquire(ctx, 200<<10) == nil {
			got <- 200 << 10
		}
	}()
	waitWaiters(t, b, 1)
	// A small frame passes the waiting large one, from the reserve.
	if err := b.acquire(ctx, 60<<10); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() { cancelled <- b.acquire(cctx, 100<<10) }()
	waitWaiters(t, b, 2)
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	select {
	case n := <-got:
		t.Fatalf("granted %d while the budget is full", n)
	case <-time.After(20 * time.Millisecond):
	}
	b.release(300 << 10)
	if n := <-got; n != 200<<10 {
		t.Fatalf("granted %d", n)
	}
	b.release(400<<10 + 200<<10 + 60<<10)
	if b.free != 800<<10 || len(b.waiters) != 0 {
		t.Fatalf("free %d, %d waiters after every release", b.free, len(b.waiters))
	}
}

func waitWaiters(t *testing.T, b *byteBudget, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b.mu.Lock()
		w := len(b.waiters)
		b.mu.Unlock()
		if w == n {
			return
		}
	}
	t.Fatalf("never %d waiters", n)
}
