package tiering_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sediment-io/sediment/tiering"
)

// gatedBody is a Put body whose reads past gateAt block until release is closed, standing for a
// broker that dies (or stalls) halfway through an upload. reached is closed by the first such read.
type gatedBody struct {
	r       *bytes.Reader
	gateAt  int64
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func newGatedBody(data []byte, gateAt int64) *gatedBody {
	return &gatedBody{r: bytes.NewReader(data), gateAt: gateAt, reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedBody) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > g.gateAt {
		g.once.Do(func() { close(g.reached) })
		<-g.release
	}
	return g.r.ReadAt(p, off)
}

// startGatedPut runs Put with a gated body in the background and waits until it is halfway.
func startGatedPut(t *testing.T, s tiering.Store, key string, data []byte) (*gatedBody, <-chan error) {
	t.Helper()
	body := newGatedBody(data, int64(len(data)/2))
	done := make(chan error, 1)
	go func() { done <- s.Put(context.Background(), key, body, int64(len(data))) }()
	select {
	case <-body.reached:
	case err := <-done:
		t.Fatalf("Put of %s returned %v before reaching its gate", key, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("Put of %s never reached its gate", key)
	}
	return body, done
}

func listKeys(t *testing.T, s tiering.Store) []string {
	t.Helper()
	objs, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

// TestFileStoreAbortStaleUploads: temp files of Puts that never finished (a crash) are removed once
// older than the cutoff and only under the prefix; objects are never touched; a Put whose temp
// file is removed while it runs fails instead of leaving a partial object.
func TestFileStoreAbortStaleUploads(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := tiering.NewFileStore(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"segments/t/0/done", "other/done"} {
		if err := tiering.PutBytes(ctx, s, k, []byte("finished object")); err != nil {
			t.Fatal(err)
		}
	}
	objects := listKeys(t, s)
	// Left by a crash an hour ago: under the prefix (two directory levels) and outside it.
	old := time.Now().Add(-time.Hour)
	crashed := map[string]bool{ // path → under the prefix "segments/"
		filepath.Join(root, "segments", "t", "0", ".tmp-crashed1"): true,
		filepath.Join(root, "segments", ".tmp-crashed2"):           true,
		filepath.Join(root, "other", ".tmp-crashed3"):              false,
		filepath.Join(root, ".tmp-crashed4"):                       false, // the root: its key could be anything
	}
	for p := range crashed {
		if err := os.WriteFile(p, []byte("half a segment"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	// A Put in progress, halfway through its body.
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: several copy rounds
	body, putDone := startGatedPut(t, s, "segments/t/1/live", data)
	temps := func() []string {
		var out []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && filepath.Base(p)[0] == '.' {
				out = append(out, p)
			}
			return nil
		})
		sort.Strings(out)
		return out
	}
	if got := len(temps()); got != len(crashed)+1 {
		t.Fatalf("%d temp files before the sweep, want %d: %v", got, len(crashed)+1, temps())
	}

	// Cutoff ten minutes ago: the crashed ones under the prefix go, the running Put's stays.
	n, err := s.AbortStaleUploads(ctx, "segments/", time.Now().Add(-10*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("AbortStaleUploads = %d, %v; want the 2 stale temp files under segments/", n, err)
	}
	for p, under := range crashed {
		if _, err := os.Stat(p); under != errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: exists=%v after the sweep (under the prefix: %v)", p, err == nil, under)
		}
	}
	if got := listKeys(t, s); !slices.Equal(got, objects) {
		t.Fatalf("objects after the sweep %v, want %v", got, objects)
	}

	// A cutoff after the running Put began: its temp file goes, and the Put must fail, not publish.
	n, err = s.AbortStaleUploads(ctx, "segments/", time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("AbortStaleUploads with a future cutoff = %d, %v; want 1 (the running Put's)", n, err)
	}
	close(body.release)
	if err := <-putDone; err == nil {
		t.Fatal("a Put whose temp file was swept succeeded")
	}
	if _, err := s.Head(ctx, "segments/t/1/live"); !errors.Is(err, tiering.ErrNotFound) {
		t.Fatalf("Head of the aborted Put's key: %v, want ErrNotFound", err)
	}
	if got := listKeys(t, s); !slices.Equal(got, objects) {
		t.Fatalf("objects after the second sweep %v, want %v", got, objects)
	}
	if got := temps(); len(got) != 2 {
		t.Fatalf("temp files left %v, want only the two outside segments/", got)
	}

	// A prefix ending inside a component: only directories whose keys start with it count.
	for _, p := range []string{"segments/.tmp-a", "segments/u/.tmp-b", "segments/t/0/.tmp-c", "segments/tt/.tmp-d"} {
		p = filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n, err = s.AbortStaleUploads(ctx, "segments/t", time.Now().Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("AbortStaleUploads(segments/t) = %d, %v; want 2 (segments/t/0 and segments/tt)", n, err)
	}
	for p, gone := range map[string]bool{"segments/.tmp-a": false, "segments/u/.tmp-b": false, "segments/t/0/.tmp-c": true, "segments/tt/.tmp-d": true} {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
		if removed := errors.Is(err, os.ErrNotExist); removed != gone {
			t.Errorf("%s: removed=%v, want %v", p, removed, gone)
		}
	}
}

// TestS3AbortStaleUploadsMinIO: a multipart upload left open by a broker that died (planted with
// minio-go, as a crashed process leaves it) is aborted once older than the cutoff; one under another
// cluster's prefix in the same bucket is not; a running Put whose upload is aborted fails without
// leaving an object; finished objects are untouched. MeteredStore finds the capability underneath.
func TestS3AbortStaleUploadsMinIO(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	prefix, foreign := uniquePrefix(t), uniquePrefix(t)
	s3 := newS3(t, srv, srv.Endpoint, prefix, func(c *tiering.S3Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 })
	s := tiering.NewMeteredStore(s3)
	if err := tiering.PutBytes(ctx, s, "segments/t/0/done", []byte("finished object")); err != nil {
		t.Fatal(err)
	}
	core := minio.Core{Client: inspect(t, srv)}
	plant := func(key string) string {
		id, err := core.NewMultipartUpload(ctx, srv.Bucket, key, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		part := bytes.Repeat([]byte{'p'}, 5<<20)
		if _, err := core.PutObjectPart(ctx, srv.Bucket, key, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ours, theirs := prefix+"/segments/t/0/crashed", foreign+"/segments/t/0/crashed"
	plant(ours)
	plant(theirs)
	open := func(key string) int { // open uploads of exactly key (MinIO lists by whole object name)
		n := 0
		for u := range core.ListIncompleteUploads(ctx, srv.Bucket, key, true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			if u.Key == key {
				n++
			}
		}
		return n
	}
	if open(ours) != 1 || open(theirs) != 1 {
		t.Fatalf("planted uploads not listed: ours %d, theirs %d", open(ours), open(theirs))
	}

	// Younger than the cutoff: nothing goes.
	if n, err := tiering.SweepStaleUploads(ctx, s, "segments/", time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("sweep with a cutoff an hour ago = %d, %v; want 0", n, err)
	}
	if open(ours) != 1 {
		t.Fatal("a young upload was aborted")
	}

	// A Put running (its second part blocked) and a cutoff after everything began: our crashed
	// upload and the running one are aborted; the other cluster's is not.
	data := bytes.Repeat([]byte("0123456789abcdef"), (10<<20)/16)
	body, putDone := startGatedPut(t, s, "segments/t/1/live", data)
	n, err := tiering.SweepStaleUploads(ctx, s, "segments/", time.Now().Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("sweep = %d, %v; want 2 (the crashed upload and the running Put's)", n, err)
	}
	if open(ours) != 0 || open(prefix+"/segments/t/1/live") != 0 {
		t.Fatalf("uploads left under our prefix: crashed %d, live %d", open(ours), open(prefix+"/segments/t/1/live"))
	}
	if open(theirs) != 1 {
		t.Fatal("another prefix's upload was aborted")
	}
	close(body.release)
	if err := <-putDone; err == nil {
		t.Fatal("a Put whose upload was aborted succeeded")
	}
	if _, err := s.Head(ctx, "segments/t/1/live"); !errors.Is(err, tiering.ErrNotFound) {
		t.Fatalf("Head of the aborted Put's key: %v, want ErrNotFound", err)
	}
	if got := listKeys(t, s); !slices.Equal(got, []string{"segments/t/0/done"}) {
		t.Fatalf("objects after the sweep %v, want only the finished one", got)
	}
	if c := s3.RequestCounts()["AbortMultipartUpload"]; c.Requests < 2 {
		t.Errorf("AbortMultipartUpload requests %d, want at least 2", c.Requests)
	}
	if c := s3.RequestCounts()["ListMultipartUploads"]; c.Requests < 2 {
		t.Errorf("ListMultipartUploads requests %d, want at least 2 (one per sweep)", c.Requests)
	}
}
