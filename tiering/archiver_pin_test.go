package tiering_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/sediment-io/sediment/tiering"
)

// pinningLog is testLog with segment.Log's PinSegment, as the broker's partition view forwards it.
type pinningLog struct{ *testLog }

func (p pinningLog) PinSegment(base int64) (func(), bool) { return p.l.PinSegment(base) }

// putHookStore runs hook once, at the first Put, before the object's bytes are read.
type putHookStore struct {
	tiering.Store
	hook func()
}

func (s *putHookStore) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	if h := s.hook; h != nil {
		s.hook = nil
		h()
	}
	return s.Store.Put(ctx, key, body, size)
}

// TestArchiverPinsTheSegmentItUploads: a segment dropped by retention while its upload is under
// way (after the object was built, before Put read it) and the log rolling on meanwhile must not
// hand the archiver a new segment's bytes: the archiver pins the segment, so its file is unlinked
// (the upload's open file keeps the old bytes) instead of being recycled for the new segments.
// Without the pin the object uploaded holds the bytes of the segment that reused the file.
func TestArchiverPinsTheSegmentItUploads(t *testing.T) {
	for _, pin := range []bool{true, false} {
		r := newArchiverRig(t)
		r.produce(40)
		closed := r.closed()
		if len(closed) < 4 {
			t.Fatalf("only %d closed segments", len(closed))
		}
		first := closed[0]
		want, err := readFile(first.Path, first.Size)
		if err != nil {
			t.Fatal(err)
		}
		var view tiering.LogView = r.view
		if pin {
			view = pinningLog{r.view}
		}
		r.view.limit = first.NextOffset // only the first segment is eligible
		store := &putHookStore{Store: r.mem, hook: func() {
			// Retention drops the first two segments; the log rolls on into recycled files.
			if err := r.log.SetStartOffset(closed[2].BaseOffset); err != nil {
				t.Fatal(err)
			}
			r.produce(30)
		}}
		arch := tiering.NewPartitionArchiver(store, r.topic, 7, view, r.manifest, tiering.ArchiverConfig{})
		if _, err := arch.RunOnce(context.Background()); err != nil && pin {
			t.Fatalf("pin=%v: RunOnce: %v", pin, err)
		}
		segs := r.manifest.RemoteSegments()
		if len(segs) != 1 {
			t.Fatalf("pin=%v: manifest %+v, want the first segment's entry", pin, segs)
		}
		b, err := tiering.ReadRange(context.Background(), r.mem, segs[0].ObjectKey, 0, first.Size)
		if err != nil {
			t.Fatal(err)
		}
		same := bytes.Equal(b, want)
		if pin && !same {
			t.Fatal("pinned upload: the object does not hold the segment's bytes")
		}
		if !pin && same {
			// The hazard the pin exists for must be real in this setup, or the test proves nothing.
			t.Fatal("unpinned upload kept the segment's bytes: the file was not recycled under it")
		}
	}
}
