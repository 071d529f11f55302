package s3test

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/shoal-io/shoal/s3stream"
)

// Op names an ObjectStore operation for FaultStore.
type Op string

// The operations a FaultStore can fail.
const (
	OpPut    Op = "put"
	OpGet    Op = "get"
	OpHead   Op = "head"
	OpDelete Op = "delete"
	OpList   Op = "list"
)

// FaultRule decides whether an operation fails: it returns the error to
// report (typically wrapping s3stream.ErrUnreachable) or nil to let the
// operation through. key is the prefix for OpList.
type FaultRule func(op Op, key string) error

// FaultStore wraps an ObjectStore and fails the operations its rule picks,
// before they reach the inner store (a failed Put stores nothing). It counts
// every call, failed or not. It is safe for concurrent use.
type FaultStore struct {
	inner s3stream.ObjectStore
	mu    struct {
		sync.Mutex
		rule  FaultRule
		calls map[Op]int
	}
}

var _ s3stream.ObjectStore = (*FaultStore)(nil)

// NewFaultStore wraps inner, initially without faults.
func NewFaultStore(inner s3stream.ObjectStore) *FaultStore {
	f := &FaultStore{inner: inner}
	f.mu.calls = make(map[Op]int)
	return f
}

// SetFault installs rule; nil removes every fault.
func (f *FaultStore) SetFault(rule FaultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.rule = rule
}

// FailAll makes every operation fail with err (nil removes the fault).
func (f *FaultStore) FailAll(err error) {
	if err == nil {
		f.SetFault(nil)
		return
	}
	f.SetFault(func(Op, string) error { return err })
}

// Calls returns how many times op was called.
func (f *FaultStore) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.calls[op]
}

// check counts the call and applies the rule.
func (f *FaultStore) check(op Op, key string) error {
	f.mu.Lock()
	f.mu.calls[op]++
	rule := f.mu.rule
	f.mu.Unlock()
	if rule == nil {
		return nil
	}
	if err := rule(op, key); err != nil {
		return fmt.Errorf("%s %q: injected fault: %w", op, key, err)
	}
	return nil
}

// Put implements s3stream.ObjectStore.
func (f *FaultStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.check(OpPut, key); err != nil {
		return err
	}
	return f.inner.Put(ctx, key, r, size)
}

// Get implements s3stream.ObjectStore.
func (f *FaultStore) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := f.check(OpGet, key); err != nil {
		return nil, err
	}
	return f.inner.Get(ctx, key, off, length)
}

// Head implements s3stream.ObjectStore.
func (f *FaultStore) Head(ctx context.Context, key string) (s3stream.ObjectInfo, error) {
	if err := f.check(OpHead, key); err != nil {
		return s3stream.ObjectInfo{}, err
	}
	return f.inner.Head(ctx, key)
}

// Delete implements s3stream.ObjectStore.
func (f *FaultStore) Delete(ctx context.Context, key string) error {
	if err := f.check(OpDelete, key); err != nil {
		return err
	}
	return f.inner.Delete(ctx, key)
}

// List implements s3stream.ObjectStore.
func (f *FaultStore) List(ctx context.Context, prefix string) ([]s3stream.ObjectInfo, error) {
	if err := f.check(OpList, prefix); err != nil {
		return nil, err
	}
	return f.inner.List(ctx, prefix)
}
