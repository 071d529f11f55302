package raftgroup

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitGoroutines waits until no more than want goroutines run.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func listen(t *testing.T) *Mux {
	t.Helper()
	m, err := Listen("127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestRPCCallsAndErrors runs concurrent calls over pooled connections,
// handler errors, and a channel registered next to a Raft group name.
func TestRPCCallsAndErrors(t *testing.T) {
	before := runtime.NumGoroutine()
	m := listen(t)
	var served atomic.Int64
	srv, err := ServeRPC(m, "rpc/echo", func(ctx context.Context, req []byte) ([]byte, error) {
		served.Add(1)
		if bytes.HasPrefix(req, []byte("fail:")) {
			return nil, errors.New(string(req[5:]))
		}
		return append([]byte("echo:"), req...), nil
	}, RPCConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ServeRPC(m, "rpc/echo", nil, RPCConfig{Logger: quiet}); err == nil {
		t.Fatal("a channel registered twice")
	}
	if _, err := m.Transport("rpc/echo", quiet); err == nil {
		t.Fatal("a Raft group took an RPC channel's name")
	}
	c := NewRPCClient("rpc/echo", RPCConfig{Logger: quiet})
	addr := m.Addr().String()

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				msg := fmt.Sprintf("g%d-%d", g, i)
				resp, err := c.Call(t.Context(), addr, []byte(msg))
				if err != nil || string(resp) != "echo:"+msg {
					t.Errorf("call %s = %q, %v", msg, resp, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if served.Load() != 400 {
		t.Fatalf("served %d requests, want 400", served.Load())
	}
	if n := len(c.mu.idle[addr]); n == 0 || n > 2 {
		t.Errorf("%d idle pooled connections, want 1 or 2", n)
	}
	_, err = c.Call(t.Context(), addr, []byte("fail:no luck"))
	if !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), "no luck") {
		t.Fatalf("handler error = %v", err)
	}
	// The connection survives a handler error.
	if resp, err := c.Call(t.Context(), addr, []byte("again")); err != nil || string(resp) != "echo:again" {
		t.Fatalf("after handler error: %q, %v", resp, err)
	}
	// A channel nobody serves: the mux closes the connection.
	other := NewRPCClient("rpc/nobody", RPCConfig{Logger: quiet})
	if _, err := other.Call(t.Context(), addr, []byte("x")); err == nil {
		t.Fatal("call to an unknown channel succeeded")
	}
	other.Close()

	c.Close()
	if _, err := c.Call(t.Context(), addr, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close = %v", err)
	}
	srv.Close()
	srv.Close()
	// The name is free again.
	srv2, err := ServeRPC(m, "rpc/echo", func(context.Context, []byte) ([]byte, error) { return nil, nil }, RPCConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv2.Close()
	m.Close()
	waitGoroutines(t, before)
}

// TestRPCFrameLimits checks that both ends refuse frames over the limit.
func TestRPCFrameLimits(t *testing.T) {
	before := runtime.NumGoroutine()
	m := listen(t)
	const limit = 1 << 10
	srv, err := ServeRPC(m, "rpc/limits", func(_ context.Context, req []byte) ([]byte, error) {
		return bytes.Repeat([]byte("r"), len(req)*4), nil // responses grow
	}, RPCConfig{MaxFrame: 4 * limit, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := m.Addr().String()
	c := NewRPCClient("rpc/limits", RPCConfig{MaxFrame: limit, Logger: quiet})
	defer c.Close()

	if resp, err := c.Call(t.Context(), addr, make([]byte, limit/4)); err != nil || len(resp) != limit {
		t.Fatalf("call at the limit: %d bytes, %v", len(resp), err)
	}
	if _, err := c.Call(t.Context(), addr, make([]byte, limit+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized request: %v", err)
	}
	if _, err := c.Call(t.Context(), addr, make([]byte, limit/4+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized response: %v", err)
	}
	// The server's own limit: a response over it becomes a handler error.
	big := NewRPCClient("rpc/limits", RPCConfig{MaxFrame: 64 * limit, Logger: quiet})
	defer big.Close()
	if _, err := big.Call(t.Context(), addr, make([]byte, 2*limit)); !errors.Is(err, ErrRemote) ||
		!strings.Contains(err.Error(), ErrFrameTooLarge.Error()) {
		t.Fatalf("response over the server's limit: %v", err)
	}

	// A raw frame header announcing more than the server's limit: the
	// server closes the connection without reading the payload.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame := append([]byte(preambleMagic), byte(len("rpc/limits")))
	frame = append(frame, "rpc/limits"...)
	frame = binary.BigEndian.AppendUint32(frame, 16<<20)
	frame = binary.BigEndian.AppendUint32(frame, 1000)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 16)); err != io.EOF {
		t.Fatalf("oversized frame: read %d bytes, %v; want the connection closed", n, err)
	}
	conn.Close()
	srv.Close()
	c.Close()
	big.Close()
	m.Close()
	waitGoroutines(t, before)
}

// TestRPCTimeoutsAndClose checks that the caller's deadline reaches the
// handler, that cancellation interrupts a call, and that closing the server
// ends blocked handlers.
func TestRPCTimeoutsAndClose(t *testing.T) {
	before := runtime.NumGoroutine()
	m := listen(t)
	handlerDone := make(chan error, 8)
	srv, err := ServeRPC(m, "rpc/slow", func(ctx context.Context, req []byte) ([]byte, error) {
		<-ctx.Done()
		handlerDone <- ctx.Err()
		return nil, ctx.Err()
	}, RPCConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	addr := m.Addr().String()
	c := NewRPCClient("rpc/slow", RPCConfig{Logger: quiet})

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	start := time.Now()
	_, err = c.Call(ctx, addr, []byte("x"))
	cancel()
	// Either the handler's deadline error arrives first or the caller's own.
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) ||
		time.Since(start) > 3*time.Second {
		t.Fatalf("call past its deadline = %v after %v", err, time.Since(start))
	}
	select {
	case err := <-handlerDone:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("handler context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context did not end at the caller's deadline")
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := c.Call(ctx, addr, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call = %v", err)
	}

	// A call in flight when the server closes fails; the handler ends.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), addr, []byte("x"))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	srv.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("call succeeded across server Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("call did not end when the server closed")
	}
	c.Close()
	m.Close()
	waitGoroutines(t, before)
}
