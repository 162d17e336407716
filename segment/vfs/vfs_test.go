package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// conformance runs the FS contract against an implementation; root is an
// existing empty directory in it.
func conformance(t *testing.T, fsys FS, root string) {
	dir := filepath.Join(root, "a", "b")
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "f")
	f, err := Create(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("world"), 6); err != nil {
		t.Fatal(err)
	}
	if err := f.Datasync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if n, err := f.ReadAt(buf, 0); n != 11 || (err != nil && err != io.EOF) || string(buf) != "hello world" {
		t.Fatalf("ReadAt = %d %v %q", n, err, buf)
	}
	if n, err := f.ReadAt(buf, 6); n != 5 || err != io.EOF {
		t.Fatalf("short ReadAt = %d %v, want 5 EOF", n, err)
	}
	// Overwriting inside the file changes those bytes only; the size stays.
	if _, err := f.WriteAt([]byte("OR"), 7); err != nil {
		t.Fatal(err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != 11 {
		t.Fatalf("Stat after overwrite: %v %v", st, err)
	}
	if n, err := f.ReadAt(buf, 0); n != 11 || (err != nil && err != io.EOF) || string(buf) != "hello wORld" {
		t.Fatalf("ReadAt after overwrite = %d %v %q", n, err, buf)
	}
	// A vectored write: the buffers back to back, inside the file and past its end.
	if n, err := WriteAtv(f, [][]byte{[]byte("W"), nil, []byte("xyz"), []byte("!!")}, 6); n != 6 || err != nil {
		t.Fatalf("WriteAtv = %d %v", n, err)
	}
	buf = make([]byte, 12)
	if n, err := f.ReadAt(buf, 0); n != 12 || (err != nil && err != io.EOF) || string(buf) != "hello Wxyz!!" {
		t.Fatalf("ReadAt after WriteAtv = %d %v %q", n, err, buf)
	}
	if _, err := f.WriteAt([]byte("world"), 6); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(11); err != nil {
		t.Fatal(err)
	}
	buf = buf[:11]
	if err := f.Datasync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != 5 {
		t.Fatalf("Stat after truncate: %v %v", st, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := fsys.Stat(name); err != nil || st.Size() != 5 || st.IsDir() {
		t.Fatalf("FS.Stat: %v %v", st, err)
	}
	if b, err := ReadFile(fsys, name); err != nil || string(b) != "hello" {
		t.Fatalf("ReadFile = %q %v", b, err)
	}
	if err := WriteFileAtomic(fsys, filepath.Join(dir, "ck"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(fsys, filepath.Join(dir, "ck"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if b, _ := ReadFile(fsys, filepath.Join(dir, "ck")); string(b) != "v2" {
		t.Fatalf("atomic replace read %q", b)
	}
	if err := fsys.Rename(name, filepath.Join(dir, "g")); err != nil {
		t.Fatal(err)
	}
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "ck" || names[1] != "g" {
		t.Fatalf("ReadDir = %v (sorted, no temp files)", names)
	}
	if err := fsys.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.OpenFile(filepath.Join(dir, "missing"), os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
	if _, err := fsys.OpenFile(filepath.Join(dir, "g"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL on existing: %v", err)
	}
	if err := fsys.Remove(filepath.Join(dir, "g")); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat(filepath.Join(dir, "g")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat removed: %v", err)
	}
	// Locker: exclusive, not waiting, released by Close.
	lk := fsys.(Locker)
	lockPath := filepath.Join(dir, ".lock")
	c1, err := lk.Lock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lk.Lock(lockPath); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	c2, err := lk.Lock(lockPath)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	c2.Close()
	if err := fsys.RemoveAll(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat after RemoveAll: %v", err)
	}
}

func TestConformanceOS(t *testing.T)  { conformance(t, OS, t.TempDir()) }
func TestConformanceMem(t *testing.T) { conformance(t, NewMemFS(), "/") }

func TestMemCrashDropsUnsynced(t *testing.T) {
	m := NewMemFS()
	m.MkdirAll("/d", 0o755)
	f, _ := Create(m, "/d/f")
	f.Write([]byte("synced"))
	f.Sync()
	m.SyncDir("/d")
	f.Write([]byte("-lost"))
	g, _ := Create(m, "/d/new") // entry never synced
	g.Write([]byte("x"))
	g.Sync()
	m.Crash()
	if b, _ := ReadFile(m, "/d/f"); string(b) != "synced" {
		t.Fatalf("after crash %q", b)
	}
	if _, err := m.Stat("/d/new"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file whose directory entry was never synced survived: %v", err)
	}
	if _, err := f.Write([]byte("z")); !errors.Is(err, ErrCrashed) {
		t.Fatalf("old handle after crash: %v", err)
	}
	// A removal not followed by SyncDir is undone by a crash.
	m.Remove("/d/f")
	m.Crash()
	if _, err := m.Stat("/d/f"); err != nil {
		t.Fatalf("unsynced removal survived the crash: %v", err)
	}
}

func TestMemTearAndInject(t *testing.T) {
	m := NewMemFS()
	m.MkdirAll("/d", 0o755)
	f, _ := Create(m, "/d/f")
	m.SyncDir("/d")
	f.Write([]byte("AAAA"))
	f.Sync()
	f.Write([]byte("BBBBBBBB"))
	m.CrashKeep(TearLast(3))
	if b, _ := ReadFile(m, "/d/f"); string(b) != "AAAABBBBB" {
		t.Fatalf("torn write left %q", b)
	}
	f, _ = m.OpenFile("/d/f", os.O_RDWR, 0)
	m.SetInjector(func(op Op, name string) error {
		if op == OpWrite {
			return syscall.ENOSPC
		}
		if op == OpSync {
			return syscall.EIO
		}
		return nil
	})
	n, err := f.WriteAt([]byte("CCCC"), 9)
	if !errors.Is(err, syscall.ENOSPC) || n != 2 {
		t.Fatalf("injected write = %d %v, want a short write and ENOSPC", n, err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("injected sync: %v", err)
	}
	m.SetInjector(nil)
	m.Crash()
	if b, _ := ReadFile(m, "/d/f"); !bytes.Equal(b, []byte("AAAABBBBB")) {
		t.Fatalf("a failed sync made data durable: %q", b)
	}
}

// TestMemCrashOverwrite: an unsynced overwrite of synced bytes leaves the OLD
// bytes after a crash (not zeros, not the new ones); CrashKeep can tear it
// (a prefix of the new bytes over the old), CrashPages can land any subset of
// its pages; appended pages survive only as a prefix.
func TestMemCrashOverwrite(t *testing.T) {
	setup := func() (*MemFS, File) {
		m := NewMemFS()
		m.MkdirAll("/d", 0o755)
		f, _ := Create(m, "/d/f")
		m.SyncDir("/d")
		f.Write(bytes.Repeat([]byte("o"), 16))
		f.Sync()
		return m, f
	}
	m, f := setup()
	f.WriteAt([]byte("NNNNNNNN"), 4)
	m.Crash()
	if b, _ := ReadFile(m, "/d/f"); string(b) != "oooooooooooooooo" {
		t.Fatalf("unsynced overwrite after crash: %q, want the old bytes", b)
	}

	m, f = setup()
	f.WriteAt([]byte("NNNNNNNN"), 4)
	m.CrashKeep(TearLast(5))
	if b, _ := ReadFile(m, "/d/f"); string(b) != "ooooNNNooooooooo" {
		t.Fatalf("torn overwrite: %q", b)
	}

	// An overwrite that runs past the end: the keep sees the whole changed region.
	m, f = setup()
	f.WriteAt([]byte("NNNNNNNN"), 12)
	var saw string
	m.CrashKeep(func(_ string, b []byte) []byte { saw = string(b); return b[:6] })
	if b, _ := ReadFile(m, "/d/f"); saw != "NNNNNNNN" || string(b) != "ooooooooooooNNNNNN" {
		t.Fatalf("overwrite+append torn: keep saw %q, file %q", saw, b)
	}

	// Synced overwrites are durable.
	m, f = setup()
	f.WriteAt([]byte("SS"), 0)
	f.Datasync()
	f.WriteAt([]byte("NN"), 14)
	m.Crash()
	if b, _ := ReadFile(m, "/d/f"); string(b) != "SSoooooooooooooo" {
		t.Fatalf("synced overwrite lost: %q", b)
	}

	// Pages: 4-byte pages over [4, 24): page 1 and 3 land, 2 does not; of the
	// appended pages 4 and 5, 5 lands but 4 does not, so neither survives.
	m, f = setup()
	f.WriteAt(bytes.Repeat([]byte("N"), 20), 4)
	m.CrashPages(4, func(_ string, p int) bool { return p != 2 && p != 4 })
	if b, _ := ReadFile(m, "/d/f"); string(b) != "ooooNNNNooooNNNN" {
		t.Fatalf("page crash: %q", b)
	}
	m, f = setup()
	f.WriteAt(bytes.Repeat([]byte("N"), 20), 4)
	m.CrashPages(4, func(_ string, p int) bool { return p != 5 })
	if b, _ := ReadFile(m, "/d/f"); string(b) != "ooooNNNNNNNNNNNNNNNN" {
		t.Fatalf("page crash with appended prefix: %q", b)
	}

	// An unsynced truncation is lost; a synced one is not.
	m, f = setup()
	f.Truncate(3)
	m.Crash()
	if b, _ := ReadFile(m, "/d/f"); len(b) != 16 {
		t.Fatalf("unsynced truncation survived: %q", b)
	}
	m, f = setup()
	f.Truncate(3)
	f.Datasync()
	m.Crash()
	if b, _ := ReadFile(m, "/d/f"); string(b) != "ooo" {
		t.Fatalf("synced truncation: %q", b)
	}
}

// advance, after a short pwritev, leaves exactly the bytes not yet written.
func TestAdvanceIovecs(t *testing.T) {
	for n := 0; n <= 9; n++ {
		iov := advance([][]byte{[]byte("ab"), nil, []byte("cde"), []byte("fghi")}, n)
		if got := string(bytes.Join(iov, nil)); got != "abcdefghi"[n:] {
			t.Fatalf("advance %d: %q", n, got)
		}
		if len(iov) > 0 && len(iov[0]) == 0 {
			t.Fatalf("advance %d left an empty first buffer: %q", n, iov)
		}
	}
}

// TestMemSessionDiesWithCrash: a Session is a process; after a Crash every
// operation through it fails, while the MemFS itself (the next process) and a
// new Session go on.
func TestMemSessionDiesWithCrash(t *testing.T) {
	m := NewMemFS()
	old := m.Session()
	if err := old.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(old, "/d/before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := old.(Locker).Lock("/d/lock"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	ops := map[string]func() error{
		"open":      func() error { _, err := old.OpenFile("/d/after", os.O_CREATE|os.O_RDWR, 0o644); return err },
		"remove":    func() error { return old.Remove("/d/before") },
		"rename":    func() error { return old.Rename("/d/before", "/d/moved") },
		"readdir":   func() error { _, err := old.ReadDir("/d"); return err },
		"mkdir":     func() error { return old.MkdirAll("/d/sub", 0o755) },
		"stat":      func() error { _, err := old.Stat("/d/before"); return err },
		"syncdir":   func() error { return old.SyncDir("/d") },
		"lock":      func() error { _, err := old.(Locker).Lock("/d/lock"); return err },
		"removeall": func() error { return old.RemoveAll("/d") },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ErrCrashed) {
			t.Errorf("%s through a crashed session: %v, want ErrCrashed", name, err)
		}
	}
	if b, err := ReadFile(m, "/d/before"); err != nil || string(b) != "x" {
		t.Fatalf("the crashed session changed the file system: %q, %v", b, err)
	}
	next := m.Session()
	if err := WriteFileAtomic(next, "/d/after", []byte("y")); err != nil {
		t.Fatalf("a new session after the crash: %v", err)
	}
	if _, err := next.(Locker).Lock("/d/lock"); err != nil {
		t.Fatalf("the crash dropped the dead session's lock, but: %v", err)
	}
}
