package tiering

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// gatedStore serves Get bodies whose first open bytes flow at once; the rest waits for release to
// be closed, then flows (fail nil) or fails with fail.
type gatedStore struct {
	Store
	open    int64
	release chan struct{}
	fail    error
	gets    atomic.Int64
}

type gatedBody struct {
	r    io.Reader
	pos  int64
	s    *gatedStore
	done bool
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.pos >= b.s.open && !b.done {
		<-b.s.release
		b.done = true
		if b.s.fail != nil {
			return 0, b.s.fail
		}
	}
	if !b.done {
		p = p[:min(int64(len(p)), b.s.open-b.pos)]
	}
	n, err := b.r.Read(p)
	b.pos += int64(n)
	return n, err
}

func (b *gatedBody) Close() error { return nil }

func (s *gatedStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	rc, err := s.Store.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return &gatedBody{r: rc, s: s}, nil
}

// patternObject is a memory store holding key "k": n bytes that depend on their position (over
// any KiB, a read from the wrong position does not compare equal).
func patternObject(t *testing.T, n int) (Store, []byte) {
	t.Helper()
	obj := make([]byte, n)
	for i := range obj {
		obj[i] = byte(i*31 + i>>10)
	}
	mem := NewMemStore()
	if err := PutBytes(context.Background(), mem, "k", obj); err != nil {
		t.Fatal(err)
	}
	return mem, obj
}

// readAsync runs c.read in the background; the result arrives on the returned channel.
func readAsync(c *chunkCache, s Store, key string, size, from, to int64) chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		parts, _, err := c.read(context.Background(), objectRef{s: s, key: key, size: size}, from, to)
		ch <- readResult{joinParts(parts), err}
	}()
	return ch
}

type readResult struct {
	data []byte
	err  error
}

func waitResult(t *testing.T, ch chan readResult, what string) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no result after 10 s", what)
		return readResult{}
	}
}

// TestChunkCacheServesLoadingPrefix: a read that needs only the front of a chunk returns as soon as
// those bytes have arrived, while the rest of the chunk is still loading (before this, it waited
// for the whole chunk: a 1 MiB fetch waited for 16 MiB); a read reaching further waits for its
// bytes; both share the one GET, and the bytes are the object's.
func TestChunkCacheServesLoadingPrefix(t *testing.T) {
	mem, obj := patternObject(t, 4<<20)
	gs := &gatedStore{Store: mem, open: 1 << 20, release: make(chan struct{})}
	c := newChunkCache(64<<20, 4<<20, 0, newSlots(4))
	size := int64(len(obj))

	front := readAsync(c, gs, "k", size, 1000, 1000+300<<10)
	r := waitResult(t, front, "read of the first 300 KiB while the chunk's first MiB has arrived")
	if r.err != nil || !bytes.Equal(r.data, obj[1000:1000+300<<10]) {
		t.Fatalf("prefix read: err %v, bytes equal %v", r.err, bytes.Equal(r.data, obj[1000:1000+300<<10]))
	}

	far := readAsync(c, gs, "k", size, 2<<20, 3<<20)
	select {
	case r := <-far:
		t.Fatalf("read of bytes not yet arrived returned (err %v, %d bytes)", r.err, len(r.data))
	case <-time.After(50 * time.Millisecond):
	}
	close(gs.release)
	if r := waitResult(t, far, "read beyond the prefix after the body resumed"); r.err != nil || !bytes.Equal(r.data, obj[2<<20:3<<20]) {
		t.Fatalf("far read: err %v, bytes equal %v", r.err, bytes.Equal(r.data, obj[2<<20:3<<20]))
	}
	if n := gs.gets.Load(); n != 1 {
		t.Errorf("%d GETs for two reads of one chunk, want 1", n)
	}
	if st := c.stats(); st.Misses != 1 || st.Hits != 1 || st.Bytes != size {
		t.Errorf("cache stats %+v: want 1 miss, 1 hit, %d bytes held", st, size)
	}
}

// TestChunkCacheLoadingPrefixThenFailure: a GET that fails after part of the chunk arrived has
// already served the reads inside that part (their bytes were right); a read waiting beyond it gets
// the error; the chunk is not cached, so the next read fetches it again and gets every byte.
func TestChunkCacheLoadingPrefixThenFailure(t *testing.T) {
	mem, obj := patternObject(t, 2<<20)
	injected := errors.New("connection reset mid-body")
	gs := &gatedStore{Store: mem, open: 512 << 10, release: make(chan struct{}), fail: injected}
	c := newChunkCache(64<<20, 2<<20, 0, newSlots(4))
	size := int64(len(obj))

	if r := waitResult(t, readAsync(c, gs, "k", size, 0, 256<<10), "prefix read"); r.err != nil || !bytes.Equal(r.data, obj[:256<<10]) {
		t.Fatalf("prefix read: err %v", r.err)
	}
	far := readAsync(c, gs, "k", size, 1<<20, 2<<20)
	time.Sleep(20 * time.Millisecond) // let it wait on the loading chunk (it fails either way)
	close(gs.release)
	if r := waitResult(t, far, "read beyond the failure point"); !errors.Is(r.err, injected) {
		t.Fatalf("read beyond the failure point: err %v, want the injected one", r.err)
	}
	if st := c.stats(); st.Bytes != 0 {
		t.Fatalf("failed chunk still held: %+v", st)
	}
	r := waitResult(t, readAsync(c, mem, "k", size, 1<<20, 2<<20), "read after the failure")
	if r.err != nil || !bytes.Equal(r.data, obj[1<<20:]) {
		t.Fatalf("read after the failure: err %v, bytes equal %v", r.err, bytes.Equal(r.data, obj[1<<20:]))
	}
}

// TestReadIntoProgress: progress reports grow in readStep steps to the whole length, and at each
// report the reported prefix already holds the object's bytes.
func TestReadIntoProgress(t *testing.T) {
	ctx := context.Background()
	mem, obj := patternObject(t, 3*readStep+100)
	buf := make([]byte, len(obj)-50)
	var reports []int64
	err := readInto(ctx, mem, "k", 50, buf, func(got int64) {
		if !bytes.Equal(buf[:got], obj[50:50+got]) {
			t.Errorf("at report %d the prefix differs from the object", got)
		}
		reports = append(reports, got)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{readStep, 2 * readStep, 3 * readStep, int64(len(buf))}
	if len(reports) != len(want) {
		t.Fatalf("reports %v, want %v", reports, want)
	}
	for i := range want {
		if reports[i] != want[i] {
			t.Fatalf("reports %v, want %v", reports, want)
		}
	}
}
