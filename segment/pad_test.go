package segment

import (
	"bytes"
	"os"
	"testing"

	"github.com/sediment-io/sediment/segment/vfs"
)

// An append that does not end on a page boundary is written with zeros up to the
// page's end (Log.writeData): over a recycled file that replaces the stale bytes
// of that page, so the kernel never reads the page to merge. Readers see only the
// data; the next append overwrites the zeros; Close leaves the file exactly its
// data.
func TestAppendPadsToPageBoundary(t *testing.T) {
	fsys := vfs.NewMemFS()
	l := mustOpen(t, "/p", testConfig(fsys))
	path := l.Segments()[0].Path
	stale := bytes.Repeat([]byte{0xEE}, 3*pageSize) // as a recycled file would hold
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(stale, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l.mu.Lock()
	l.active().fileSize = int64(len(stale))
	l.mu.Unlock()

	var data []byte
	for i := 0; i < 3; i++ {
		b := testBatch(2, 333, int64(i))
		mustAppend(t, l, b, 0)
		data = append(data, b...)
		raw, err := vfs.ReadFile(fsys, path)
		if err != nil {
			t.Fatal(err)
		}
		end := len(data)
		padEnd := (end + pageSize - 1) / pageSize * pageSize
		if !bytes.Equal(raw[:end], data) {
			t.Fatalf("append %d: the file does not hold the data", i)
		}
		if !bytes.Equal(raw[end:padEnd], make([]byte, padEnd-end)) {
			t.Fatalf("append %d: bytes %d-%d are not zeros", i, end, padEnd)
		}
		if !bytes.Equal(raw[padEnd:], stale[padEnd:]) {
			t.Fatalf("append %d: the padding went past the page boundary %d", i, padEnd)
		}
		if got := readAll(t, l, 0); !bytes.Equal(got, data) {
			t.Fatalf("append %d: read %d bytes, want the %d of data", i, len(got), len(data))
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, fsys, path); got != int64(len(data)) {
		t.Fatalf("after Close the file is %d bytes, data %d", got, len(data))
	}
}
