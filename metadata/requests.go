package metadata

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Every write a Store proposes travels in a RequestCmd: the command and a
// random id its proposer drew. The FSM remembers the outcome of the last
// maxRequests ids, so a proposal retried after a lost answer or a leader
// change (same id) gets the first outcome instead of applying twice.

// maxRequestID bounds the length of a request id.
const maxRequestID = 64

// maxRequests is the number of request outcomes the FSM remembers. A retry
// must reach the leader within that many later requests; retries come
// within seconds, so this covers hundreds of writes per second.
const maxRequests = 4096

// RequestCmd carries Cmd with the id its proposer gave it. Applying a
// RequestCmd whose id was applied before changes nothing and returns the
// first outcome.
type RequestCmd struct {
	ID  string
	Cmd Command
}

// requestJSON is the log form of a RequestCmd: the inner command's type and
// JSON object.
type requestJSON struct {
	ID   string          `json:"id"`
	Type CommandType     `json:"type"`
	Cmd  json.RawMessage `json:"cmd"`
}

// Type implements Command.
func (RequestCmd) Type() CommandType { return CmdRequest }

func (c RequestCmd) check() error {
	switch {
	case c.ID == "" || len(c.ID) > maxRequestID:
		return fmt.Errorf("%w: request id of %d bytes", ErrInvalidCommand, len(c.ID))
	case c.Cmd == nil:
		return fmt.Errorf("%w: request %s without command", ErrInvalidCommand, c.ID)
	case c.Cmd.Type() == CmdRequest:
		return fmt.Errorf("%w: nested request %s", ErrInvalidCommand, c.ID)
	}
	return c.Cmd.check()
}

// MarshalJSON encodes the inner command by EncodeCommand's rules.
func (c RequestCmd) MarshalJSON() ([]byte, error) {
	if c.Cmd == nil {
		return nil, fmt.Errorf("%w: request %s without command", ErrInvalidCommand, c.ID)
	}
	inner, err := EncodeCommand(c.Cmd)
	if err != nil {
		return nil, err
	}
	return json.Marshal(requestJSON{ID: c.ID, Type: c.Cmd.Type(), Cmd: inner[1:]})
}

// UnmarshalJSON decodes and checks the inner command by DecodeCommand's rules.
func (c *RequestCmd) UnmarshalJSON(b []byte) error {
	var r requestJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return err
	}
	if r.Type == CmdRequest {
		return fmt.Errorf("%w: nested request %s", ErrInvalidCommand, r.ID)
	}
	inner, err := DecodeCommand(append([]byte{byte(r.Type)}, r.Cmd...))
	if err != nil {
		return err
	}
	c.ID, c.Cmd = r.ID, inner
	return nil
}

// newRequestID returns 16 random bytes in URL-safe base64.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// result is a command's outcome in a form that crosses the network and
// snapshots: an error as its sentinel codes and text, or the result value
// as JSON.
type result struct {
	Failed bool            `json:"failed,omitempty"`
	Codes  []string        `json:"codes,omitempty"` // sentinels the error wraps
	Error  string          `json:"error,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
}

// sentinels are the errors whose identity survives encoding, by code. The
// codes are part of the snapshot and RPC formats: never change them.
var sentinels = []struct {
	code string
	err  error
}{
	{"topic_exists", ErrTopicExists},
	{"unknown_topic", ErrUnknownTopic},
	{"invalid_topic_name", ErrInvalidTopicName},
	{"invalid_partitions", ErrInvalidPartitions},
	{"invalid_replication_factor", ErrInvalidReplicationFactor},
	{"invalid_config", ErrInvalidConfig},
	{"invalid_request", ErrInvalidRequest},
	{"invalid_command", ErrInvalidCommand},
	{"not_leader", ErrNotLeader},
	{"closed", ErrClosed},
	{"range_conflict", ErrRangeConflict},
	{"unknown_object", ErrUnknownObject},
	{"object_exists", ErrObjectExists},
	{"member_exists", ErrMemberExists},
	{"member_removed", ErrMemberRemoved},
	{"unknown_member", ErrUnknownMember},
	{"invalid_replica_assignment", ErrInvalidReplicaAssignment},
	{"no_reassignment", ErrNoReassignment},
	{"reassignment_in_progress", ErrReassignmentInProgress},
	{"unknown_scram_credential", ErrUnknownScramCredential},
	{"unacceptable_credential", ErrUnacceptableCredential},
	{"unsupported_scram_mechanism", ErrUnsupportedScramMechanism},
}

// encodeResult encodes an FSM response (an error or a JSON-able value).
func encodeResult(resp any) result {
	if err, ok := resp.(error); ok {
		r := result{Failed: true, Error: err.Error()}
		for _, s := range sentinels {
			if errors.Is(err, s.err) {
				r.Codes = append(r.Codes, s.code)
			}
		}
		return r
	}
	if resp == nil {
		return result{}
	}
	v, err := json.Marshal(resp)
	if err != nil {
		// Every result type marshals; a failure is a broken invariant, and
		// the caller learns it as an error rather than a wrong value.
		return encodeResult(fmt.Errorf("%w: encode result %T: %w", ErrInvalidCommand, resp, err))
	}
	return result{Value: v}
}

// decode returns the outcome r encodes for a command of type t: the value
// (nil, *Topic, int64 or int, as the FSM returns them) or an error that
// wraps the sentinels r names.
func (r result) decode(t CommandType) (any, error) {
	if r.Failed {
		return nil, r.err()
	}
	if len(r.Value) == 0 {
		return nil, nil
	}
	var (
		v   any
		err error
	)
	switch t {
	case CmdCreateTopic, CmdDeleteTopic, CmdCreatePartitions:
		v, err = decodeValue[*Topic](r.Value)
	case CmdAllocateProducerIDs:
		v, err = decodeValue[int64](r.Value)
	case CmdDeleteGroupOffsets, CmdExpireGroupOffsets:
		v, err = decodeValue[int](r.Value)
	case CmdDeleteACLs:
		v, err = decodeValue[[][]ACLBinding](r.Value)
	default:
		err = fmt.Errorf("%s has no result value", t)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: result of %s: %w", ErrInvalidCommand, t, err)
	}
	return v, nil
}

func decodeValue[T any](b []byte) (T, error) {
	var v T
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		return v, err
	}
	if _, err := d.Token(); err != io.EOF {
		return v, errors.New("trailing data")
	}
	return v, nil
}

// err rebuilds a failed outcome: its text, and errors.Is matches the
// sentinels it named.
func (r result) err() error {
	e := &remoteError{msg: r.Error}
	for _, code := range r.Codes {
		for _, s := range sentinels {
			if s.code == code {
				e.sentinels = append(e.sentinels, s.err)
			}
		}
	}
	return e
}

// remoteError is an error decoded from a result: the original text, wrapping
// the original's sentinels.
type remoteError struct {
	msg       string
	sentinels []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.sentinels }

// requestRecord is one remembered request outcome.
type requestRecord struct {
	ID     string `json:"id"`
	Result result `json:"result"`
}

// requestTable remembers the outcomes of the last maxRequests request ids,
// in apply order. Only the FSM goroutine uses it (Apply, Snapshot and
// Restore run there), so it needs no lock; every replica holds the same
// table at the same index.
type requestTable struct {
	byID  map[string]result
	order []string // ring of ids, oldest at head
	head  int
}

func newRequestTable() *requestTable {
	return &requestTable{byID: make(map[string]result)}
}

func (t *requestTable) get(id string) (result, bool) {
	r, ok := t.byID[id]
	return r, ok
}

// put records id's outcome, forgetting the oldest id when full.
func (t *requestTable) put(id string, r result) {
	if _, ok := t.byID[id]; ok {
		return
	}
	if len(t.order) < maxRequests {
		t.order = append(t.order, id)
	} else {
		delete(t.byID, t.order[t.head])
		t.order[t.head] = id
		t.head = (t.head + 1) % maxRequests
	}
	t.byID[id] = r
}

// records lists the remembered outcomes, oldest first.
func (t *requestTable) records() []requestRecord {
	out := make([]requestRecord, 0, len(t.order))
	for i := range t.order {
		id := t.order[(t.head+i)%len(t.order)]
		out = append(out, requestRecord{ID: id, Result: t.byID[id]})
	}
	return out
}

// restoreRequestTable rebuilds a table from a snapshot's records.
func restoreRequestTable(recs []requestRecord) (*requestTable, error) {
	if len(recs) > maxRequests {
		return nil, fmt.Errorf("%w: snapshot holds %d requests, at most %d", ErrInvalidCommand, len(recs), maxRequests)
	}
	t := newRequestTable()
	for _, r := range recs {
		if r.ID == "" || len(r.ID) > maxRequestID {
			return nil, fmt.Errorf("%w: snapshot request id of %d bytes", ErrInvalidCommand, len(r.ID))
		}
		if _, dup := t.byID[r.ID]; dup {
			return nil, fmt.Errorf("%w: snapshot holds request %s twice", ErrInvalidCommand, r.ID)
		}
		t.put(r.ID, r.Result)
	}
	return t, nil
}
