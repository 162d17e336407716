// Package objstoretest is the conformance suite every tiering.Store backend must pass:
// memory, local directory and S3 (against a real MinIO) run the same assertions, so behaviour
// that tiering relies on (not-found sentinels, range rules, atomic replacement, sorted prefix
// listing, idempotent deletes, conditional puts) is the same everywhere. It also holds RateStore,
// a model of a remote store's GET latency and bandwidth that benchmarks of cold reads (tiering's
// and the broker's) share, and MeetStore, which tells tests whether GETs overlap.
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sediment-io/sediment/tiering"
)

// Options tunes the suite for a backend.
type Options struct {
	// LargeSize is the size of the "large object" case; S3 backends configured with a small multipart
	// threshold use it to exercise multipart uploads. 0 = 3 MiB + 17 bytes.
	LargeSize int
}

// Run runs the suite. newStore must return a fresh, empty store for each subtest (a new directory,
// a new key prefix in a bucket...); the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) tiering.Store, opts ...Options) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.LargeSize == 0 {
		o.LargeSize = 3<<20 + 17
	}
	open := func(t *testing.T) tiering.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, s tiering.Store)
	}{
		{"PutGet", testPutGet},
		{"Ranges", testRanges},
		{"EmptyObject", testEmpty},
		{"Overwrite", testOverwrite},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"List", testList},
		{"KeyCharacters", testKeyCharacters},
		{"InvalidKeys", testInvalidKeys},
		{"ShortBody", testShortBody},
		{"Cancelled", testCancelled},
		{"ConditionalPut", testConditionalPut},
		{"ConcurrentReplace", testConcurrentReplace},
		{"Large", func(t *testing.T, s tiering.Store) { testLarge(t, s, o.LargeSize) }},
		{"Closed", testClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustPut(t *testing.T, s tiering.Store, key string, b []byte) {
	t.Helper()
	if err := tiering.PutBytes(ctx(t), s, key, b); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(b), err)
	}
}

func mustRead(t *testing.T, s tiering.Store, key string, off, n int64) []byte {
	t.Helper()
	b, err := tiering.ReadRange(ctx(t), s, key, off, n)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, n, err)
	}
	return b
}

func testPutGet(t *testing.T, s tiering.Store) {
	data := pattern(10000, 1)
	mustPut(t, s, "t/p/obj", data)
	if got := mustRead(t, s, "t/p/obj", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("whole read: got %d bytes, differs from the %d put", len(got), len(data))
	}
	info, err := s.Head(ctx(t), "t/p/obj")
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != "t/p/obj" || info.Size != int64(len(data)) {
		t.Fatalf("Head = %+v, want key t/p/obj size %d", info, len(data))
	}
	if info.ModTime.IsZero() || time.Since(info.ModTime) > time.Hour || time.Until(info.ModTime) > time.Hour {
		t.Fatalf("Head ModTime %v is not about now", info.ModTime)
	}
}

func testRanges(t *testing.T, s tiering.Store) {
	data := pattern(4096, 2)
	mustPut(t, s, "r", data)
	for _, c := range []struct{ off, n, wantFrom, wantTo int64 }{
		{0, 1, 0, 1},
		{100, 200, 100, 300},
		{4000, -1, 4000, 4096},
		{4000, 500, 4000, 4096}, // past the end: cut
		{4095, 1, 4095, 4096},
		{0, 4096, 0, 4096},
		{1, -1, 1, 4096},
		{17, 0, 17, 17}, // zero length within the object
	} {
		got := mustRead(t, s, "r", c.off, c.n)
		if !bytes.Equal(got, data[c.wantFrom:c.wantTo]) {
			t.Errorf("Get(off %d, n %d): got %d bytes, want bytes [%d,%d)", c.off, c.n, len(got), c.wantFrom, c.wantTo)
		}
	}
	for _, c := range []struct{ off, n int64 }{{4096, 1}, {4096, -1}, {5000, 10}, {-1, 10}, {0, -2}} {
		rc, err := s.Get(ctx(t), "r", c.off, c.n)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, tiering.ErrInvalidRange) {
			t.Errorf("Get(off %d, n %d) = %v, want ErrInvalidRange", c.off, c.n, err)
		}
	}
}

func testEmpty(t *testing.T, s tiering.Store) {
	mustPut(t, s, "empty", nil)
	if got := mustRead(t, s, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("empty object read %d bytes", len(got))
	}
	info, err := s.Head(ctx(t), "empty")
	if err != nil || info.Size != 0 {
		t.Fatalf("Head(empty) = %+v, %v", info, err)
	}
	if _, err := s.Get(ctx(t), "empty", 0, 1); !errors.Is(err, tiering.ErrInvalidRange) {
		t.Fatalf("ranged Get of an empty object = %v, want ErrInvalidRange", err)
	}
}

func testOverwrite(t *testing.T, s tiering.Store) {
	mustPut(t, s, "k", []byte("first version, longer"))
	mustPut(t, s, "k", []byte("second"))
	if got := mustRead(t, s, "k", 0, -1); string(got) != "second" {
		t.Fatalf("after overwrite read %q", got)
	}
	if info, err := s.Head(ctx(t), "k"); err != nil || info.Size != 6 {
		t.Fatalf("Head after overwrite = %+v, %v", info, err)
	}
}

func testNotFound(t *testing.T, s tiering.Store) {
	mustPut(t, s, "a/b", []byte("x"))
	for _, k := range []string{"missing", "a/missing", "a", "a/b/c", "zz/yy/xx"} {
		if _, err := s.Get(ctx(t), k, 0, -1); !errors.Is(err, tiering.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", k, err)
		}
		if _, err := s.Get(ctx(t), k, 5, 10); !errors.Is(err, tiering.ErrNotFound) {
			t.Errorf("ranged Get(%q) = %v, want ErrNotFound", k, err)
		}
		if _, err := s.Head(ctx(t), k); !errors.Is(err, tiering.ErrNotFound) {
			t.Errorf("Head(%q) = %v, want ErrNotFound", k, err)
		}
	}
}

func testDelete(t *testing.T, s tiering.Store) {
	mustPut(t, s, "d/1", []byte("one"))
	mustPut(t, s, "d/2", []byte("two"))
	if err := s.Delete(ctx(t), "d/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(ctx(t), "d/1"); !errors.Is(err, tiering.ErrNotFound) {
		t.Fatalf("Head after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx(t), "d/1"); err != nil {
		t.Fatalf("second Delete = %v, want nil (idempotent)", err)
	}
	if err := s.Delete(ctx(t), "never/was"); err != nil {
		t.Fatalf("Delete of a missing key = %v, want nil", err)
	}
	if got := mustRead(t, s, "d/2", 0, -1); string(got) != "two" {
		t.Fatalf("sibling damaged: %q", got)
	}
	// A deleted key can be written again.
	mustPut(t, s, "d/1", []byte("again"))
	if got := mustRead(t, s, "d/1", 0, -1); string(got) != "again" {
		t.Fatalf("re-put after delete read %q", got)
	}
}

func keysOf(infos []tiering.ObjectInfo) []string {
	var ks []string
	for _, i := range infos {
		ks = append(ks, i.Key)
	}
	return ks
}

func testList(t *testing.T, s tiering.Store) {
	// No key is a '/'-prefix of another ("a" and "a/b"): MinIO's file-backed layout cannot hold both,
	// so tiering never creates such pairs and the suite does not demand them.
	keys := []string{"topic-1/0/a", "topic-1/0/b", "topic-1/1/a", "topic-10/0/a", "topic-1x", "x", "topic-1/0/ab"}
	for i, k := range keys {
		mustPut(t, s, k, pattern(i+1, uint64(i)))
	}
	for _, c := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"topic-1/0/a", "topic-1/0/ab", "topic-1/0/b", "topic-1/1/a", "topic-10/0/a", "topic-1x", "x"}},
		{"topic-1/", []string{"topic-1/0/a", "topic-1/0/ab", "topic-1/0/b", "topic-1/1/a"}},
		{"topic-1", []string{"topic-1/0/a", "topic-1/0/ab", "topic-1/0/b", "topic-1/1/a", "topic-10/0/a", "topic-1x"}},
		{"topic-1/0/", []string{"topic-1/0/a", "topic-1/0/ab", "topic-1/0/b"}},
		{"topic-1/0/a", []string{"topic-1/0/a", "topic-1/0/ab"}},
		{"topic-1/0/ab", []string{"topic-1/0/ab"}},
		{"topic-2", nil},
		{"nothing/here/", nil},
	} {
		got, err := s.List(ctx(t), c.prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", c.prefix, err)
		}
		if ks := keysOf(got); !slices.Equal(ks, c.want) {
			t.Errorf("List(%q) = %q, want %q", c.prefix, ks, c.want)
		}
		for _, i := range got {
			if n := slices.Index(keys, i.Key); i.Size != int64(n+1) {
				t.Errorf("List size of %q = %d, want %d", i.Key, i.Size, n+1)
			}
		}
	}
	if err := s.Delete(ctx(t), "topic-1/0/b"); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx(t), "topic-1/0/")
	if err != nil {
		t.Fatal(err)
	}
	if ks := keysOf(got); !slices.Equal(ks, []string{"topic-1/0/a", "topic-1/0/ab"}) {
		t.Errorf("List after Delete = %q", ks)
	}
}

func testKeyCharacters(t *testing.T, s tiering.Store) {
	keys := []string{"sp ace/x", "plus+and&amp/é~%41.seg", "..dots/.hidden", "a%2Fb", "ünï/çødé", "q?x=1#frag", "tilde~/x~"}
	for i, k := range keys {
		mustPut(t, s, k, []byte(fmt.Sprint(i)))
	}
	for i, k := range keys {
		if got := mustRead(t, s, k, 0, -1); string(got) != fmt.Sprint(i) {
			t.Errorf("key %q read %q", k, got)
		}
	}
	got, err := s.List(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if ks := keysOf(got); !slices.Equal(ks, want) {
		t.Errorf("List = %q, want %q", ks, want)
	}
}

func testInvalidKeys(t *testing.T, s tiering.Store) {
	long := string(bytes.Repeat([]byte("k"), tiering.MaxKeyLen+1))
	for _, k := range []string{"", "/abs", "a//b", "a/", "a/../b", "./a", "a\x00b", "back\\slash", long, "\xff\xfe"} {
		if err := tiering.PutBytes(ctx(t), s, k, []byte("x")); !errors.Is(err, tiering.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(ctx(t), k, 0, -1); !errors.Is(err, tiering.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Head(ctx(t), k); !errors.Is(err, tiering.ErrInvalidKey) {
			t.Errorf("Head(%q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx(t), k); !errors.Is(err, tiering.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	got, err := s.List(ctx(t), "")
	if err != nil || len(got) != 0 {
		t.Fatalf("invalid puts left objects: %v %v", keysOf(got), err)
	}
}

// shortReader claims size bytes but holds fewer.
type shortReader struct{ b []byte }

func (r shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.b)) {
		return 0, io.EOF
	}
	n := copy(p, r.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func testShortBody(t *testing.T, s tiering.Store) {
	err := s.Put(ctx(t), "short", shortReader{[]byte("only ten b")}, 100)
	if err == nil {
		t.Fatal("Put with a body shorter than size succeeded")
	}
	if _, err := s.Head(ctx(t), "short"); !errors.Is(err, tiering.ErrNotFound) {
		t.Fatalf("failed Put left an object: Head = %v", err)
	}
}

func testCancelled(t *testing.T, s tiering.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tiering.PutBytes(c, s, "c", []byte("x")); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	if _, err := s.Head(ctx(t), "c"); !errors.Is(err, tiering.ErrNotFound) {
		t.Errorf("cancelled Put left an object: Head = %v", err)
	}
	if _, err := s.List(c, ""); err == nil {
		t.Error("List with a cancelled context succeeded")
	}
}

func testConditionalPut(t *testing.T, s tiering.Store) {
	cp, ok := s.(tiering.ConditionalPutter)
	if !ok {
		t.Skip("backend has no conditional put (capability absent by design)")
	}
	if err := cp.PutIfAbsent(ctx(t), "once", bytes.NewReader([]byte("first")), 5); err != nil {
		t.Fatal(err)
	}
	err := cp.PutIfAbsent(ctx(t), "once", bytes.NewReader([]byte("second")), 6)
	if !errors.Is(err, tiering.ErrExists) {
		t.Fatalf("second PutIfAbsent = %v, want ErrExists", err)
	}
	if got := mustRead(t, s, "once", 0, -1); string(got) != "first" {
		t.Fatalf("PutIfAbsent overwrote: %q", got)
	}
	// Racing creators: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 4 {
		wg.Go(func() {
			err := cp.PutIfAbsent(ctx(t), "race", bytes.NewReader([]byte{byte(i)}), 1)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, tiering.ErrExists) {
				t.Errorf("racing PutIfAbsent: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d racing PutIfAbsent calls succeeded, want exactly 1", wins)
	}
}

// testConcurrentReplace checks atomic replacement: readers see one whole version, never a mix.
func testConcurrentReplace(t *testing.T, s tiering.Store) {
	const size = 64 << 10
	a, b := bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)
	mustPut(t, s, "swap", a)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; i < 20; i++ {
			v := a
			if i%2 == 0 {
				v = b
			}
			if err := tiering.PutBytes(ctx(t), s, "swap", v); err != nil {
				t.Errorf("Put: %v", err)
			}
		}
		close(stop)
	})
	for r := 0; r < 2; r++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := tiering.ReadRange(ctx(t), s, "swap", 0, -1)
				if err != nil {
					t.Errorf("Get during replace: %v", err)
					return
				}
				if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
					t.Errorf("read a torn object: %d bytes", len(got))
					return
				}
			}
		})
	}
	wg.Wait()
}

func testLarge(t *testing.T, s tiering.Store, size int) {
	data := pattern(size, 7)
	mustPut(t, s, "big/obj", data)
	info, err := s.Head(ctx(t), "big/obj")
	if err != nil || info.Size != int64(size) {
		t.Fatalf("Head = %+v, %v; want size %d", info, err, size)
	}
	if got := mustRead(t, s, "big/obj", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("large whole read differs (%d bytes)", len(got))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 8; i++ {
		off := r.Int64N(int64(size))
		n := r.Int64N(1 << 20)
		end := min(off+n, int64(size))
		if got := mustRead(t, s, "big/obj", off, n); !bytes.Equal(got, data[off:end]) {
			t.Fatalf("large range [%d,+%d) differs", off, n)
		}
	}
}

func testClosed(t *testing.T, s tiering.Store) {
	mustPut(t, s, "k", []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tiering.PutBytes(ctx(t), s, "k2", []byte("v")); !errors.Is(err, tiering.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx(t), "k", 0, -1); !errors.Is(err, tiering.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
}
