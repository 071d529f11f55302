package raftgroup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// countFSM counts applied entries.
type countFSM struct {
	mu sync.Mutex
	n  int
}

func (f *countFSM) Apply(*raft.Log) interface{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return f.n
}
func (f *countFSM) count() int                          { f.mu.Lock(); defer f.mu.Unlock(); return f.n }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return snap{}, nil }
func (f *countFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type snap struct{}

func (snap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (snap) Release()                          {}

// TestTwoGroupsShareOneListenerPerNode runs two 3-voter groups over three
// muxes: every group's traffic crosses the same three listeners.
func TestTwoGroupsShareOneListenerPerNode(t *testing.T) {
	var muxes []*Mux
	var peers []Peer
	for i := 1; i <= 3; i++ {
		m, err := Listen("127.0.0.1:0", quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		muxes = append(muxes, m)
		peers = append(peers, Peer{ID: fmt.Sprint(i), Address: m.Addr().String()})
	}
	fsms := map[string][]*countFSM{}
	var leaders []*Group
	for _, name := range []string{"alpha", "beta"} {
		var groups []*Group
		for i, m := range muxes {
			f := &countFSM{}
			fsms[name] = append(fsms[name], f)
			g, err := Open(Config{Name: name, Dir: t.TempDir(), NodeID: peers[i].ID, Mux: m, Peers: peers, Logger: quiet}, f)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			groups = append(groups, g)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		if err := groups[0].WaitLeader(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
		for _, g := range groups {
			if g.IsLeader() {
				leaders = append(leaders, g)
			}
		}
	}
	if len(leaders) != 2 {
		t.Fatalf("found %d leaders for 2 groups", len(leaders))
	}
	for i, name := range []string{"alpha", "beta"} {
		for j := 0; j < 3+i; j++ {
			if err := leaders[i].Raft.Apply([]byte("x"), 5*time.Second).Error(); err != nil {
				t.Fatalf("%s apply: %v", name, err)
			}
		}
	}
	// Every replica of each group applies exactly that group's entries.
	deadline := time.Now().Add(10 * time.Second)
	for i, name := range []string{"alpha", "beta"} {
		for _, f := range fsms[name] {
			for f.count() != 3+i {
				if time.Now().After(deadline) {
					t.Fatalf("group %s replica applied %d entries, want %d", name, f.count(), 3+i)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

func TestMuxRefusesBadPreambleAndUnknownGroup(t *testing.T) {
	m, err := Listen("127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Transport("known", quiet); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Transport("known", quiet); err == nil {
		t.Fatal("a group registered twice")
	}
	for name, preamble := range map[string][]byte{
		"bad magic":     []byte("HTTP/1.1 GET /\r\n"),
		"unknown group": append([]byte(preambleMagic+"\x07"), "unknown"...),
	} {
		c, err := net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(preamble); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s: connection not closed by the mux: %v", name, err)
		}
		c.Close()
	}
}

// TestClosingATransportClosesItsInboundConnections: raft's transport does
// not close accepted connections itself; the stream layer does, so a
// closed group leaves no connection (or handler goroutine) behind.
func TestClosingATransportClosesItsInboundConnections(t *testing.T) {
	m, err := Listen("127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tr, err := m.Transport("g", quiet)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append([]byte(preambleMagic+"\x01"), 'g')); err != nil {
		t.Fatal(err)
	}
	// Accepted or still queued for the transport: either way the layer
	// tracks the connection and closes it.
	if err := tr.(interface{ Close() error }).Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("inbound connection still open after the transport closed: %v", err)
	}
}
