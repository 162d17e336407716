package tiering

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// eofTrackingStore wraps Get bodies to record whether the caller read them to EOF before Close
// (an S3 body closed earlier loses its keep-alive connection), and can append junk to a body.
type eofTrackingStore struct {
	Store
	extra     []byte // appended to every body
	sawEOF    bool
	closed    bool
	bodyBytes int
}

type trackingBody struct {
	r io.Reader
	s *eofTrackingStore
}

func (b *trackingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.s.bodyBytes += n
	if err == io.EOF {
		b.s.sawEOF = true
	}
	return n, err
}

func (b *trackingBody) Close() error { b.s.closed = true; return nil }

func (s *eofTrackingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	return &trackingBody{r: bytes.NewReader(append(data, s.extra...)), s: s}, nil
}

// TestReadInto: readInto fills the caller's buffer with the object's range (it allocates none of
// its own, so the chunk cache holds exactly the bytes it accounts for), reads the body to EOF and
// closes it (S3 keep-alive), and fails on a body shorter or longer than asked or a missing object.
func TestReadInto(t *testing.T) {
	ctx := context.Background()
	obj := make([]byte, 1<<20+17)
	for i := range obj {
		obj[i] = byte(i*7 + i>>9)
	}
	mem := NewMemStore()
	if err := PutBytes(ctx, mem, "k", obj); err != nil {
		t.Fatal(err)
	}

	st := &eofTrackingStore{Store: mem}
	buf := make([]byte, 1<<19)
	if err := readInto(ctx, st, "k", 1000, buf, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, obj[1000:1000+1<<19]) {
		t.Fatal("bytes differ from the object's range")
	}
	if !st.sawEOF || !st.closed {
		t.Errorf("body read to EOF %v, closed %v: want both (keep-alive)", st.sawEOF, st.closed)
	}

	// A range running past the object's end is cut by the store: a short read is an error.
	st = &eofTrackingStore{Store: mem}
	if err := readInto(ctx, st, "k", int64(len(obj))-10, make([]byte, 20), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: err %v, want io.ErrUnexpectedEOF", err)
	}

	// A store answering more than asked is not silently cut.
	st = &eofTrackingStore{Store: mem, extra: []byte{1}}
	if err := readInto(ctx, st, "k", 0, make([]byte, 100), nil); err == nil {
		t.Error("longer body than asked: no error")
	}

	if err := readInto(ctx, mem, "missing", 0, make([]byte, 10), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing object: err %v, want ErrNotFound", err)
	}
}

// TestReadRangeBuffers: ReadRange reads a plain (HTTP-like) body into one buffer of the asked
// length and to EOF, cuts at the object's end as Get does, and hands out the chunk cache's bytes
// without a copy when the range lies in one chunk (correct bytes across chunks too).
func TestReadRangeBuffers(t *testing.T) {
	ctx := context.Background()
	obj := make([]byte, 3<<20+5)
	for i := range obj {
		obj[i] = byte(i*13 + i>>11)
	}
	mem := NewMemStore()
	if err := PutBytes(ctx, mem, "k", obj); err != nil {
		t.Fatal(err)
	}
	st := &eofTrackingStore{Store: mem}
	got, err := ReadRange(ctx, st, "k", 4096, 1<<20)
	if err != nil || !bytes.Equal(got, obj[4096:4096+1<<20]) {
		t.Fatalf("ReadRange: err %v, bytes equal %v", err, bytes.Equal(got, obj[4096:4096+1<<20]))
	}
	if cap(got) != 1<<20 || !st.sawEOF {
		t.Errorf("capacity %d (want exactly %d), body read to EOF %v", cap(got), 1<<20, st.sawEOF)
	}
	if got, err := ReadRange(ctx, st, "k", int64(len(obj))-10, 100); err != nil || !bytes.Equal(got, obj[len(obj)-10:]) {
		t.Errorf("range past the end: %d bytes, err %v; want the object's last 10", len(got), err)
	}
	if got, err := ReadRange(ctx, st, "k", 0, -1); err != nil || !bytes.Equal(got, obj) {
		t.Errorf("whole object: %d bytes, err %v", len(got), err)
	}

	c := newChunkCache(16<<20, 1<<20, 0, newSlots(4))
	co := &cachedObject{Store: mem, c: c, key: "k", size: int64(len(obj))}
	a, err := ReadRange(ctx, co, "k", 100, 1000)
	if err != nil || !bytes.Equal(a, obj[100:1100]) {
		t.Fatalf("cached, one chunk: err %v, bytes equal %v", err, bytes.Equal(a, obj[100:1100]))
	}
	b, err := ReadRange(ctx, co, "k", 200, 1000)
	if err != nil || !bytes.Equal(b, obj[200:1200]) {
		t.Fatalf("cached, one chunk again: err %v", err)
	}
	if &a[100] != &b[0] {
		t.Error("two reads inside one cached chunk do not share the chunk's memory: a copy was made")
	}
	x, err := ReadRange(ctx, co, "k", 1<<20-10, 2<<20)
	if err != nil || !bytes.Equal(x, obj[1<<20-10:3<<20-10]) {
		t.Fatalf("cached, across three chunks: err %v, bytes equal %v", err, bytes.Equal(x, obj[1<<20-10:3<<20-10]))
	}
}

// makeNoZero's slices have the asked length and capacity, are distinct allocations and are fully
// writable (the race detector and -d=checkptr in -race runs check the unsafe.Slice bounds).
func TestMakeNoZero(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 1 << 20, 8<<20 + 3} {
		a, b := makeNoZero(n), makeNoZero(n)
		if len(a) != n || cap(a) != n {
			t.Fatalf("n=%d: len %d cap %d", n, len(a), cap(a))
		}
		for i := range a {
			a[i] = 0xAA
		}
		for i := range b {
			b[i] = 0x55
		}
		if n > 0 && (a[0] != 0xAA || a[n-1] != 0xAA) {
			t.Fatalf("n=%d: writes to one buffer changed another", n)
		}
		if n >= 4096 {
			if a2 := append(a, 1); &a2[0] == &a[0] {
				t.Fatalf("n=%d: appending to a full buffer did not reallocate (capacity beyond n)", n)
			}
		}
	}
}
