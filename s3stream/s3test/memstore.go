package s3test

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shoal-io/shoal/s3stream"
)

// MemStore is an in-memory s3stream.ObjectStore for unit tests. It follows
// the same key and range rules as the real stores (s3stream.ValidateKey,
// s3stream.CheckRange) and, like S3, lets "a" and "a/b" coexist.
type MemStore struct {
	mu struct {
		sync.RWMutex
		objects map[string]memObject
	}
}

type memObject struct {
	data    []byte // never modified after insertion
	modTime time.Time
}

var _ s3stream.ObjectStore = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	m := &MemStore{}
	m.mu.objects = make(map[string]memObject)
	return m
}

// Put implements s3stream.ObjectStore. The body is read completely before
// the object is replaced, so readers never see a partial object.
func (m *MemStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s3stream.ValidateKey(key); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	data, err := s3stream.ReadBody(ctx, r, size)
	if err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.objects[key] = memObject{data: data, modTime: time.Now()}
	return nil
}

func (m *MemStore) lookup(ctx context.Context, op, key string) (memObject, error) {
	if err := s3stream.ValidateKey(key); err != nil {
		return memObject{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return memObject{}, fmt.Errorf("%s %q: %w", op, key, err)
	}
	m.mu.RLock()
	obj, ok := m.mu.objects[key]
	m.mu.RUnlock()
	if !ok {
		return memObject{}, fmt.Errorf("%s %q: %w", op, key, s3stream.ErrNotFound)
	}
	return obj, nil
}

// Get implements s3stream.ObjectStore; it returns a copy.
func (m *MemStore) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	obj, err := m.lookup(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	start, end, err := s3stream.CheckRange(int64(len(obj.data)), off, length)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	return append([]byte{}, obj.data[start:end]...), nil
}

// Head implements s3stream.ObjectStore.
func (m *MemStore) Head(ctx context.Context, key string) (s3stream.ObjectInfo, error) {
	obj, err := m.lookup(ctx, "head", key)
	if err != nil {
		return s3stream.ObjectInfo{}, err
	}
	return s3stream.ObjectInfo{Key: key, Size: int64(len(obj.data)), LastModified: obj.modTime}, nil
}

// Delete implements s3stream.ObjectStore.
func (m *MemStore) Delete(ctx context.Context, key string) error {
	if err := s3stream.ValidateKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mu.objects, key)
	return nil
}

// List implements s3stream.ObjectStore.
func (m *MemStore) List(ctx context.Context, prefix string) ([]s3stream.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	m.mu.RLock()
	var out []s3stream.ObjectInfo
	for k, obj := range m.mu.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, s3stream.ObjectInfo{Key: k, Size: int64(len(obj.data)), LastModified: obj.modTime})
		}
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Len returns the number of stored objects.
func (m *MemStore) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.mu.objects)
}
