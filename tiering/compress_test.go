package tiering

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestCompressSpillsBeyondMemoryBound: a compressed data section larger than compressMemBytes goes to
// a temporary file instead of memory; the object (footer, chunk table, every byte) is the same as
// one built in memory, reads back byte-identical through a store, and Close removes the file.
func TestCompressSpillsBeyondMemoryBound(t *testing.T) {
	var data []byte
	for off := int64(0); len(data) < 1<<20; off += 4 {
		data = append(data, fuzzBatch(off, 4, 1_700_000_000_000+off, 2000)...)
	}
	inMem, err := BuildSegmentObjectWith(bytes.NewReader(data), int64(len(data)), BuildOptions{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inMem.data.(*spillFile); ok {
		t.Fatal("a small compressed section spilled to a file")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	defer func(old int64) { compressMemBytes = old }(compressMemBytes)
	compressMemBytes = 1 << 10
	spilled, err := BuildSegmentObjectWith(bytes.NewReader(data), int64(len(data)), BuildOptions{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := spilled.data.(*spillFile)
	if !ok || filepath.Dir(sf.Name()) != tmp {
		t.Fatalf("a %d-byte compressed section with a %d-byte bound: data %T", spilled.Footer.StoredLen, compressMemBytes, spilled.data)
	}
	if spilled.Footer.StoredLen <= compressMemBytes || spilled.Footer.StoredLen >= int64(len(data)) {
		t.Fatalf("stored %d bytes of %d: the test needs a compressed section above the bound", spilled.Footer.StoredLen, len(data))
	}
	a, err := readObject(inMem)
	if err != nil {
		t.Fatal(err)
	}
	b, err := readObject(spilled)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the spilled object differs from the one built in memory")
	}
	ctx := context.Background()
	s := NewMemStore()
	if err := s.Put(ctx, "k", spilled, spilled.Size()); err != nil {
		t.Fatal(err)
	}
	rr, err := OpenRemote(ctx, s, "k", spilled.Size())
	if err != nil {
		t.Fatal(err)
	}
	res, err := rr.Read(ctx, 0, 1<<30, true)
	if err != nil || !bytes.Equal(res.Data, data) {
		t.Fatalf("read back %d bytes (%v), want the %d segment bytes", len(res.Data), err, len(data))
	}
	if err := spilled.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("Close left %v in the temp dir", ents)
	}
	if err := inMem.Close(); err != nil {
		t.Fatalf("Close of an in-memory object: %v", err)
	}
}

func readObject(o *SegmentObject) ([]byte, error) {
	b := make([]byte, o.Size())
	_, err := o.ReadAt(b, 0)
	return b, err
}
