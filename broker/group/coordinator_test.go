package group

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when a coordinator goroutine outlives Close.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(3 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "group.(*Coordinator)") {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "leaked coordinator goroutines:\n", stacks)
				code = 1
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	os.Exit(code)
}

func newCoordinator(t *testing.T, edit func(*Config)) *Coordinator {
	t.Helper()
	cfg := *testCfg()
	cfg.MinSessionTimeout = 100 * time.Millisecond
	cfg.InitialRebalanceDelay = 20 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCoordinatorTimersAndClose(t *testing.T) {
	c := newCoordinator(t, nil)
	ctx := t.Context()
	req := joinReq("")
	req.RequireKnownMemberID = false
	req.SessionTimeout, req.RebalanceTimeout = 200*time.Millisecond, time.Second
	start := time.Now()
	r := c.Join(ctx, req) // completes after the initial delay, driven by the timer goroutine
	if r.Err != nil || r.Generation != 1 || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("join: %+v after %v", r, time.Since(start))
	}
	if s := c.Sync(ctx, SyncRequest{Group: "g", MemberID: r.MemberID, Generation: 1,
		Assignments: map[string][]byte{r.MemberID: []byte("x")}}); s.Err != nil || string(s.Assignment) != "x" {
		t.Fatalf("sync: %+v", s)
	}
	if st, members := c.GroupState("g"); st != StateStable || !members {
		t.Fatalf("state %s %v", st, members)
	}
	if err := c.Delete("g"); !errors.Is(err, ErrGroupNotEmpty) {
		t.Fatalf("delete non-empty: %v", err)
	}
	// No heartbeats: the session expires and the group empties.
	deadline := time.Now().Add(3 * time.Second)
	for st, _ := c.GroupState("g"); st != StateEmpty; st, _ = c.GroupState("g") {
		if time.Now().After(deadline) {
			t.Fatalf("session did not expire: %s", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.ValidateOffsetCommit("g", "", nil, -1); err != nil {
		t.Fatalf("admin commit: %v", err)
	}
	// Type conflicts: an empty classic group may become a consumer group;
	// a consumer group with members refuses classic joins.
	if _, err := c.ConsumerHeartbeat(cjoin("m")); err != nil {
		t.Fatal(err)
	}
	if r := c.Join(ctx, req); !errors.Is(r.Err, ErrInconsistentProtocol) {
		t.Fatalf("classic join of a consumer group: %+v", r)
	}
	if err := c.Heartbeat(HeartbeatRequest{Group: "g", MemberID: "m", Generation: 1}); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("classic heartbeat of a consumer group: %v", err)
	}
	if err := c.ValidateOffsetCommit("g", "m", nil, 9); !errors.Is(err, ErrStaleMemberEpoch) {
		t.Fatalf("stale epoch commit: %v", err)
	}
	if l := c.List(); len(l) != 1 || l[0].Type != TypeConsumer {
		t.Fatalf("list: %+v", l)
	}
	// Bad input.
	if r := c.Join(ctx, JoinRequest{}); !errors.Is(r.Err, ErrInvalidGroupID) {
		t.Fatalf("empty group id: %+v", r)
	}
	short := req
	short.Group, short.SessionTimeout = "h", time.Millisecond
	if r := c.Join(ctx, short); !errors.Is(r.Err, ErrInvalidSessionTimeout) {
		t.Fatalf("short session: %+v", r)
	}
	if st, _ := c.GroupState("nope"); st != StateDead {
		t.Fatalf("unknown group state %s", st)
	}
	if err := c.ValidateOffsetCommit("nope", "x", nil, 3); !errors.Is(err, ErrIllegalGeneration) {
		t.Fatalf("commit to unknown group with a generation: %v", err)
	}
	// Close answers a waiting join.
	long := req
	long.Group, long.RebalanceTimeout = "w", time.Minute
	first := c.Join(ctx, long) // alone: completes after the initial delay
	long.MemberID = ""
	done := make(chan JoinResult, 1)
	go func() { done <- c.Join(ctx, long) }() // waits for the first member to rejoin
	time.Sleep(50 * time.Millisecond)
	_ = first
	c.Close()
	select {
	case r := <-done:
		if !errors.Is(r.Err, ErrCoordinatorNotAvailable) {
			t.Fatalf("waiting join after close: %+v", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close left a join waiting")
	}
}
