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

func TestReadExact(t *testing.T) {
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
	got, err := readExact(ctx, st, "k", 1000, 1<<19)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, obj[1000:1000+1<<19]) {
		t.Fatal("bytes differ from the object's range")
	}
	if cap(got) != 1<<19 {
		t.Errorf("buffer capacity %d, want exactly the %d bytes asked (no doubling)", cap(got), 1<<19)
	}
	if !st.sawEOF || !st.closed {
		t.Errorf("body read to EOF %v, closed %v: want both (keep-alive)", st.sawEOF, st.closed)
	}

	// A range running past the object's end is cut by the store: a short read is an error.
	st = &eofTrackingStore{Store: mem}
	if _, err := readExact(ctx, st, "k", int64(len(obj))-10, 20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: err %v, want io.ErrUnexpectedEOF", err)
	}

	// A store answering more than asked is not silently cut.
	st = &eofTrackingStore{Store: mem, extra: []byte{1}}
	if _, err := readExact(ctx, st, "k", 0, 100); err == nil {
		t.Error("longer body than asked: no error")
	}

	if _, err := readExact(ctx, mem, "missing", 0, 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing object: err %v, want ErrNotFound", err)
	}
}
