package tiering

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemStore is an in-memory Store for tests (mem://). Objects are immutable byte slices replaced
// wholesale by Put, so readers never observe a partial write. One mutex guards the map.
type MemStore struct {
	mu     sync.Mutex
	objs   map[string]memObject
	closed bool
	now    func() time.Time
}

type memObject struct {
	data []byte
	mod  time.Time
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{objs: map[string]memObject{}, now: time.Now}
}

var (
	_ Store             = (*MemStore)(nil)
	_ ConditionalPutter = (*MemStore)(nil)
)

func readAll(ctx context.Context, body io.ReaderAt, size int64) ([]byte, error) {
	if size < 0 {
		return nil, fmt.Errorf("tiering: negative size %d", size)
	}
	b := make([]byte, size)
	n, err := body.ReadAt(b, 0)
	if int64(n) == size {
		return b, ctx.Err()
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("tiering: reading body (%d of %d bytes): %w", n, size, err)
}

func (m *MemStore) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	return m.put(ctx, key, body, size, false)
}

func (m *MemStore) PutIfAbsent(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	return m.put(ctx, key, body, size, true)
}

func (m *MemStore) put(ctx context.Context, key string, body io.ReaderAt, size int64, ifAbsent bool) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	b, err := readAll(ctx, body, size)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, ok := m.objs[key]; ok && ifAbsent {
		return fmt.Errorf("%w: %s", ErrExists, key)
	}
	m.objs[key] = memObject{data: b, mod: m.now()}
	return nil
}

func (m *MemStore) lookup(key string) (memObject, error) {
	if err := ValidKey(key); err != nil {
		return memObject{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return memObject{}, ErrClosed
	}
	o, ok := m.objs[key]
	if !ok {
		return memObject{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return o, nil
}

func (m *MemStore) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o, err := m.lookup(key)
	if err != nil {
		return nil, err
	}
	end, err := checkRange(key, off, length, int64(len(o.data)))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(o.data[off:end])), nil
}

func (m *MemStore) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	o, err := m.lookup(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.mod}, nil
}

func (m *MemStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var out []ObjectInfo
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, ObjectInfo{Key: k, Size: int64(len(o.data)), ModTime: o.mod})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *MemStore) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.objs, key)
	return nil
}

func (m *MemStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
