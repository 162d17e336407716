package tiering

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// reuseFixture stores an object of n chunks of random bytes (so that a buffer reused for another
// chunk never still looks right) and returns its bytes.
func reuseFixture(t *testing.T, chunk, n int) (Store, []byte) {
	t.Helper()
	data := make([]byte, chunk*n)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(data)
	s := NewMemStore()
	if err := PutBytes(context.Background(), s, "o", data); err != nil {
		t.Fatal(err)
	}
	return s, data
}

// A chunk's buffer is reused only once nothing holds it: the bytes of a held read stay intact while
// later loads go into the buffers of evicted chunks whose reads were released, and once released,
// the held chunks' buffers are the ones kept for reuse.
func TestChunkBufferReusedOnlyOnceReleased(t *testing.T) {
	const chunk = 4096
	s, data := reuseFixture(t, chunk, 40)
	size := int64(len(data))
	c := newChunkCache(4*chunk, chunk, 0, newSlots(8))
	read := func(from, to int64) ([][]byte, *Hold) {
		t.Helper()
		parts, hold, err := c.read(context.Background(), objectRef{s: s, key: "o", size: size}, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.Join(parts, nil), data[from:to]) {
			t.Fatalf("read [%d,%d): wrong bytes", from, to)
		}
		return parts, hold
	}
	held, h0 := read(0, 2*chunk) // chunks 0 and 1, held throughout
	if len(held) != 2 || h0 == nil {
		t.Fatalf("a read over two chunks: %d parts, hold %v", len(held), h0)
	}
	// Backwards, so that chunks 0 and 1 age out of the LRU (a sequential reader's chunks are
	// evicted as it passes them: consumed).
	for i := int64(39); i >= 2; i-- {
		_, h := read(i*chunk, (i+1)*chunk)
		h.Release()
	}
	for _, i := range []int64{0, 1} {
		if c.m[chunkID{"o", i}] != nil {
			t.Fatalf("chunk %d still cached: the test needs it evicted while held", i)
		}
	}
	if !bytes.Equal(bytes.Join(held, nil), data[:2*chunk]) {
		t.Fatal("a held read's bytes changed: its chunk buffer was reused while held")
	}
	st := c.stats()
	if st.Evicted < 30 || st.Reused < 30 {
		t.Fatalf("stats %+v: 38 chunks through a 4-chunk cache should evict and reuse about 34 buffers", st)
	}
	c.spareMu.Lock()
	before := len(c.spare)
	c.spareMu.Unlock()
	h0.Release()
	h0.Release() // a second release counts for nothing
	c.spareMu.Lock()
	spares := slices.Clone(c.spare)
	c.spareMu.Unlock()
	if len(spares) != min(before+2, c.maxSpare()) {
		t.Fatalf("%d spare buffers after releasing two evicted chunks (were %d, at most %d)", len(spares), before, c.maxSpare())
	}
	if !slices.ContainsFunc(spares, func(b []byte) bool { return &b[0] == &held[0][0] || &b[0] == &held[1][0] }) {
		t.Fatal("the released chunks' buffers are not among the spares")
	}
}

// Concurrent readers of random ranges through a small cache, each keeping its last few results
// held: every result is right when read and still right when released, while buffers are reused
// all along. A read that took its reference on a chunk only after loading others (which may evict
// it) saw another chunk's bytes here.
func TestChunkBufferReuseConcurrentHolds(t *testing.T) {
	const chunk = 4096
	s, data := reuseFixture(t, chunk, 64)
	size := int64(len(data))
	c := newChunkCache(3*chunk, chunk, 1, newSlots(8)) // smaller than a read: a read evicts chunks it found
	type result struct {
		from  int64
		parts [][]byte
		hold  *Hold
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			var kept []result
			check := func(r result, when string) bool {
				if !bytes.Equal(bytes.Join(r.parts, nil), data[r.from:r.from+int64(partsLen(r.parts))]) {
					errs <- when
					return false
				}
				return true
			}
			for range 400 {
				from := rng.Int64N(size - 1)
				to := min(size, from+1+rng.Int64N(4*chunk))
				parts, hold, err := c.read(context.Background(), objectRef{s: s, key: "o", size: size}, from, to)
				if err != nil {
					errs <- err.Error()
					return
				}
				r := result{from, parts, hold}
				if partsLen(parts) != int(to-from) || !check(r, "a result was wrong when read") {
					return
				}
				kept = append(kept, r)
				if len(kept) > 3 {
					if !check(kept[0], "a held result changed before its release") {
						return
					}
					kept[0].hold.Release()
					kept = kept[1:]
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if st := c.stats(); st.Reused == 0 {
		t.Fatalf("stats %+v: no buffer reused", st)
	}
}
