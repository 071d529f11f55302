package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-io/shoal/internal/raftgroup"
)

// Writes from any member: propose wraps the command in a RequestCmd with a
// fresh id, then applies it through Raft on the leader, or forwards it to the
// leader's cluster listener (RPC channel RPCChannel) from a follower. A
// failure that leaves the outcome unknown (no leader, the leader moved or
// went away, the answer was lost) is retried with the same request id, so the
// FSM applies the command at most once and a retry gets the first outcome.
// The caller's replica then waits until it has applied the command's index,
// so that its own image shows the write.

// RPCChannel is the name of the metadata write channel on the cluster
// listener.
const RPCChannel = "rpc/metadata"

// DefaultVoters is the number of metadata voters VoterPeers keeps when asked
// for 0.
const DefaultVoters = 3

const (
	// maxProposeAttempts bounds the tries of one write; the apply timeout
	// and the caller's context bound it too.
	maxProposeAttempts = 30
	minProposeBackoff  = 10 * time.Millisecond
	maxProposeBackoff  = 200 * time.Millisecond
)

// VoterPeers returns a copy of peers in which the first voters peers (in the
// given order, DefaultVoters when voters <= 0) vote in the metadata group and
// the others follow it as non-voters. Every broker must pass the same list
// in the same order.
func VoterPeers(peers []raftgroup.Peer, voters int) []raftgroup.Peer {
	if voters <= 0 {
		voters = DefaultVoters
	}
	out := make([]raftgroup.Peer, len(peers))
	for i, p := range peers {
		p.NonVoter = i >= voters
		out[i] = p
	}
	return out
}

// forwardReply is the leader's answer to a forwarded write.
type forwardReply struct {
	// Index is the log index the command applied at (0 when it did not).
	Index uint64 `json:"index"`
	// Retry says that the leader could not take the write (it is no longer
	// the leader, or is closing): the outcome is unknown, try again.
	Retry  bool   `json:"retry,omitempty"`
	Result result `json:"result"`
}

// propose replicates c and returns the FSM's result, from any member. The
// wait is bounded by the apply timeout and ctx. It returns ErrNotLeader
// (wrapping the last failure) when no leader took the write in time, and an
// error wrapping context.DeadlineExceeded when the write committed but this
// replica did not apply it in time (its image may not show it yet).
func (s *Store) propose(ctx context.Context, c Command) (any, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := EncodeCommand(RequestCmd{ID: newRequestID(), Cmd: c})
	if err != nil {
		return nil, err
	}
	timeout := s.applyTimeout(ctx)
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for attempt := range maxProposeAttempts {
		if attempt > 0 && !s.backoff(ctx, attempt) {
			break
		}
		if s.closed.Load() {
			return nil, ErrClosed
		}
		resp, index, err := s.proposeOnce(ctx, c.Type(), data)
		if err == nil {
			if err := s.waitApplied(ctx, index); err != nil {
				return nil, fmt.Errorf("%s: committed at index %d, not yet applied by this replica: %w", c.Type(), index, err)
			}
			if err, ok := resp.(error); ok {
				return nil, err
			}
			return resp, nil
		}
		if !errors.Is(err, ErrNotLeader) {
			return nil, fmt.Errorf("%s: %w", c.Type(), err)
		}
		last = err
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.Type(), last, err)
	}
	return nil, fmt.Errorf("%s: %w", c.Type(), last)
}

// proposeOnce applies data on this node if it leads, else forwards it to the
// leader. It returns the FSM's response (which may be an error value: a
// rejection, final) and its index, or an error: wrapping ErrNotLeader when
// the outcome is unknown and the write may be retried.
func (s *Store) proposeOnce(ctx context.Context, t CommandType, data []byte) (any, uint64, error) {
	if s.IsLeader() {
		return s.applyLocal(ctx, data)
	}
	addr, id := s.raft.LeaderWithID()
	if addr == "" || string(id) == s.cfg.NodeID {
		return nil, 0, fmt.Errorf("%w: no leader known", ErrNotLeader)
	}
	return s.forward(ctx, t, string(addr), data)
}

// applyLocal applies data through Raft on this node.
func (s *Store) applyLocal(ctx context.Context, data []byte) (any, uint64, error) {
	timeout := s.applyTimeout(ctx)
	if timeout <= 0 {
		return nil, 0, context.DeadlineExceeded
	}
	f := s.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return nil, 0, mapRaftError(err)
	}
	return f.Response(), f.Index(), nil
}

// forward sends data to the leader at addr and decodes its answer.
func (s *Store) forward(ctx context.Context, t CommandType, addr string, data []byte) (any, uint64, error) {
	b, err := s.rpc.Call(ctx, addr, data)
	if h := s.hooks.afterForward; h != nil {
		b, err = h(addr, b, err)
	}
	switch {
	case errors.Is(err, raftgroup.ErrFrameTooLarge), errors.Is(err, raftgroup.ErrRemote):
		// Trying again cannot help (serveForward itself never fails).
		return nil, 0, fmt.Errorf("%w: forward to the leader at %s: %w", ErrInvalidRequest, addr, err)
	case err != nil:
		return nil, 0, fmt.Errorf("%w: forward to the leader at %s: %w", ErrNotLeader, addr, err)
	}
	rep, err := decodeValue[forwardReply](b)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: reply of the leader at %s: %w", ErrInvalidCommand, addr, err)
	}
	if rep.Retry {
		return nil, 0, fmt.Errorf("%w: leader at %s: %w", ErrNotLeader, addr, rep.Result.err())
	}
	if rep.Result.Failed {
		return rep.Result.err(), rep.Index, nil
	}
	v, err := rep.Result.decode(t)
	if err != nil {
		return nil, 0, err
	}
	return v, rep.Index, nil
}

// serveForward applies a write forwarded by another member. Only request
// commands are taken, so that every forwarded write can be retried safely.
func (s *Store) serveForward(ctx context.Context, req []byte) ([]byte, error) {
	var rep forwardReply
	c, err := DecodeCommand(req)
	if err == nil {
		if _, ok := c.(RequestCmd); !ok {
			err = fmt.Errorf("%w: forwarded %s is not a request", ErrInvalidCommand, c.Type())
		}
	}
	switch {
	case err != nil:
		rep.Result = encodeResult(err)
	case s.closed.Load():
		rep.Retry, rep.Result = true, encodeResult(ErrClosed)
	default:
		resp, index, err := s.applyLocal(ctx, req)
		if err != nil {
			resp = err
			rep.Retry = errors.Is(err, ErrNotLeader) || errors.Is(err, ErrClosed)
		}
		rep.Index, rep.Result = index, encodeResult(resp)
	}
	return json.Marshal(rep)
}

// backoff waits before retry attempt n, or returns false when ctx ends or
// the store closes first.
func (s *Store) backoff(ctx context.Context, n int) bool {
	d := min(minProposeBackoff<<min(n-1, 10), maxProposeBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// waitApplied waits until this replica has applied the log up to index.
func (s *Store) waitApplied(ctx context.Context, index uint64) error {
	for {
		ch := s.fsm.progress()
		if s.fsm.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrClosed
		}
	}
}
