package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Op names a MemFS operation for fault injection.
type Op int

const (
	OpOpen Op = iota
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpRemove
	OpRename
	OpSyncDir
	OpMkdir
	OpStat
	OpReadDir
)

var opNames = [...]string{"open", "read", "write", "sync", "truncate", "remove", "rename", "syncdir", "mkdir", "stat", "readdir"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Injector decides whether an operation fails: it returns nil to let it proceed or
// the error to return (syscall.EIO, syscall.ENOSPC, ...). A failed write stores
// the first half of its bytes first (a short write, as a full disk does). It runs
// before the operation without MemFS's lock held, so it may also sleep to model a
// slow disk (a sync then covers writes made while it slept, which a real fsync
// may also do).
type Injector func(op Op, name string) error

// ErrCrashed is returned by file handles opened before MemFS.Crash.
var ErrCrashed = errors.New("vfs: file handle from before a simulated crash")

// MemFS is an in-memory FS whose durability follows the rules in the package doc:
// Crash forgets every byte not covered by a successful Sync/Datasync and every
// directory entry change not covered by a successful SyncDir. Directories
// themselves (MkdirAll) are durable at once. Safe for concurrent use.
type MemFS struct {
	mu       sync.Mutex
	files    map[string]*inode // visible namespace
	durFiles map[string]*inode // namespace as of the last SyncDir of each directory
	dirs     map[string]bool
	inject   Injector
	gen      int // bumped by Crash; handles of older generations fail
	now      func() time.Time
	syncs    int
	locks    map[string]*memLock // held locks; a Crash (process death) drops them
}

type inode struct {
	data      []byte
	synced    []byte // durable contents
	dirtyFrom int    // lowest offset changed since the last sync
	dirtyTo   int    // end of the highest change since the last sync (<= dirtyFrom: none)
	mtime     time.Time
}

// markDirty records that [from, to) changed since the last sync.
func (ino *inode) markDirty(from, to int) {
	if ino.dirtyTo <= ino.dirtyFrom { // clean until now
		ino.dirtyFrom, ino.dirtyTo = from, to
		return
	}
	ino.dirtyFrom = min(ino.dirtyFrom, from)
	ino.dirtyTo = max(ino.dirtyTo, to)
}

// unsynced is the changed region [from, to) of data since the last sync,
// clipped to the current contents.
func (ino *inode) unsynced() (from, to int) {
	to = min(ino.dirtyTo, len(ino.data))
	from = min(ino.dirtyFrom, to)
	return from, to
}

// NewMemFS returns an empty MemFS with the root directory "/" and ".".
func NewMemFS() *MemFS {
	return &MemFS{
		files:    map[string]*inode{},
		durFiles: map[string]*inode{},
		dirs:     map[string]bool{"/": true, ".": true},
		now:      time.Now,
	}
}

// SetInjector installs (or with nil removes) a fault injector.
func (m *MemFS) SetInjector(f Injector) {
	m.mu.Lock()
	m.inject = f
	m.mu.Unlock()
}

// Syncs reports how many file syncs succeeded (for tests of group commit).
func (m *MemFS) Syncs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncs
}

// fault runs the injector, without holding m.mu so that an injector may block
// (slow disk) without stalling other operations. An operation of a process
// that has crashed (gen, of a Session or a file handle, older than m's) fails
// here without reaching the injector: a dead process does nothing, not even
// what the test counts.
func (m *MemFS) fault(gen int, op Op, name string) error {
	m.mu.Lock()
	inject := m.inject
	err := m.alive(gen, op.String(), name)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if inject == nil {
		return nil
	}
	if err := inject(op, name); err != nil {
		return &os.PathError{Op: op.String(), Path: name, Err: err}
	}
	return nil
}

// Crash simulates power loss: every file reverts to its synced contents and the
// namespace to its synced state. Open handles become unusable.
func (m *MemFS) Crash() { m.CrashKeep(nil) }

// CrashKeep is Crash where keep decides, per file, what part of the unsynced
// changes reached the disk anyway: it receives the bytes of the changed region
// (from the lowest changed offset to the end of the highest change since the
// last sync; for an append, the bytes after the synced length) and returns the
// bytes that survive, written over the synced contents from the region's
// start: a prefix models a torn write, altered bytes garbage. Where the region
// overwrote synced bytes, whatever keep does not return keeps the OLD synced
// contents (an unsynced overwrite of a real file leaves the old blocks, not
// zeros). keep nil keeps nothing. An unsynced truncation is lost.
func (m *MemFS) CrashKeep(keep func(name string, unsynced []byte) []byte) {
	m.crash(func(name string, ino *inode) []byte {
		data := append([]byte(nil), ino.synced...)
		from, to := ino.unsynced()
		if keep == nil || to <= from {
			return data
		}
		kept := keep(name, append([]byte(nil), ino.data[from:to]...))
		if end := from + len(kept); end > len(data) {
			data = append(data, make([]byte, end-len(data))...) // a hole before from reads as zeros
		}
		copy(data[from:], kept)
		return data
	})
}

// CrashPages is Crash where each page (pageSize bytes) of a file's unsynced
// changes reaches the disk or not independently, as a kernel writes dirty
// pages back in any order: keepPage(name, page index) says which survive. In
// the part that overwrote synced bytes each page holds its new or its OLD
// contents; the part past the synced length (an append, which moves the size)
// survives up to its first lost page.
func (m *MemFS) CrashPages(pageSize int, keepPage func(name string, page int) bool) {
	m.crash(func(name string, ino *inode) []byte {
		data := append([]byte(nil), ino.synced...)
		from, to := ino.unsynced()
		for p := from / pageSize; p*pageSize < to; p++ {
			lo, hi := max(p*pageSize, from), min((p+1)*pageSize, to)
			if !keepPage(name, p) {
				if lo >= len(ino.synced) {
					break // appended bytes survive only as a prefix
				}
				continue
			}
			if lo > len(data) {
				break
			}
			if hi > len(data) {
				data = append(data, make([]byte, hi-len(data))...)
			}
			copy(data[lo:hi], ino.data[lo:hi])
		}
		return data
	})
}

// crash reverts every durable file to what survive returns for it.
func (m *MemFS) crash(survive func(name string, ino *inode) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	files := make(map[string]*inode, len(m.durFiles))
	names := make([]string, 0, len(m.durFiles))
	for n := range m.durFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		ino := m.durFiles[name]
		data := survive(name, ino)
		ino.data = data
		ino.synced = append([]byte(nil), data...)
		ino.dirtyFrom, ino.dirtyTo = len(data), 0
		files[name] = ino
	}
	m.files = files
	m.locks = nil // the crashed process held them
	m.durFiles = make(map[string]*inode, len(files))
	for k, v := range files {
		m.durFiles[k] = v
	}
}

// Lock implements Locker: it creates name if missing and fails with ErrLocked
// while another Lock of name is held (until Close or a Crash).
func (m *MemFS) Lock(name string) (io.Closer, error) { return m.lock(anyGen, name) }

func (m *MemFS) lock(gen int, name string) (io.Closer, error) {
	f, err := m.openFile(gen, name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	f.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	if err := m.alive(gen, "flock", name); err != nil {
		return nil, err
	}
	if m.locks[name] != nil {
		return nil, &os.PathError{Op: "flock", Path: name, Err: ErrLocked}
	}
	if m.locks == nil {
		m.locks = map[string]*memLock{}
	}
	lk := &memLock{fs: m, name: name}
	m.locks[name] = lk
	return lk, nil
}

type memLock struct {
	fs   *MemFS
	name string
}

func (lk *memLock) Close() error {
	lk.fs.mu.Lock()
	defer lk.fs.mu.Unlock()
	if lk.fs.locks[lk.name] == lk {
		delete(lk.fs.locks, lk.name)
	}
	return nil
}

// TearLast is a CrashKeep policy: the whole unsynced tail survives except its last
// n bytes (a write torn part-way).
func TearLast(n int) func(string, []byte) []byte {
	return func(_ string, b []byte) []byte {
		if n >= len(b) {
			return nil
		}
		return b[:len(b)-n]
	}
}

func clean(name string) string { return filepath.Clean(name) }

// anyGen marks an operation through the MemFS itself, which outlives crashes
// (the test, or the next process); a Session's operations carry its generation.
const anyGen = -1

// alive fails an operation of a process that a Crash has since killed (m.mu held).
func (m *MemFS) alive(gen int, op, name string) error {
	if gen != anyGen && gen != m.gen {
		return &os.PathError{Op: op, Path: name, Err: ErrCrashed}
	}
	return nil
}

// Session returns m as one simulated process sees it: every operation through
// it fails with ErrCrashed once m has crashed, as a killed process can do
// nothing more. File handles already behave so; a Session extends it to the
// operations on names, so that a goroutine the crashed process left running
// (a background checkpoint, a timer) cannot write into the next process's
// file system. segment.Open uses it when its FS offers it.
func (m *MemFS) Session() FS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return memSession{m: m, gen: m.gen}
}

// memSession is a Session: m's operations tagged with the generation it began in.
type memSession struct {
	m   *MemFS
	gen int
}

func (s memSession) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	return s.m.openFile(s.gen, name, flag, perm)
}
func (s memSession) Remove(name string) error                   { return s.m.remove(s.gen, name) }
func (s memSession) RemoveAll(name string) error                { return s.m.removeAll(s.gen, name) }
func (s memSession) Rename(oldname, newname string) error       { return s.m.rename(s.gen, oldname, newname) }
func (s memSession) ReadDir(name string) ([]fs.DirEntry, error) { return s.m.readDir(s.gen, name) }
func (s memSession) MkdirAll(name string, perm fs.FileMode) error {
	return s.m.mkdirAll(s.gen, name, perm)
}
func (s memSession) Stat(name string) (fs.FileInfo, error) { return s.m.stat(s.gen, name) }
func (s memSession) SyncDir(name string) error             { return s.m.syncDir(s.gen, name) }
func (s memSession) Lock(name string) (io.Closer, error)   { return s.m.lock(s.gen, name) }

func (m *MemFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	return m.openFile(anyGen, name, flag, perm)
}

func (m *MemFS) openFile(gen int, name string, flag int, perm fs.FileMode) (File, error) {
	name = clean(name)
	if err := m.fault(gen, OpOpen, name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.alive(gen, "open", name); err != nil {
		return nil, err
	}
	if m.dirs[name] {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	ino, ok := m.files[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		if !m.dirs[filepath.Dir(name)] {
			return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		ino = &inode{mtime: m.now()}
		m.files[name] = ino
	}
	if flag&os.O_TRUNC != 0 && len(ino.data) > 0 {
		ino.data = ino.data[:0]
		ino.markDirty(0, 0)
	}
	f := &memFile{fs: m, ino: ino, name: name, flag: flag, gen: m.gen}
	return f, nil
}

func (m *MemFS) Remove(name string) error { return m.remove(anyGen, name) }

func (m *MemFS) remove(gen int, name string) error {
	name = clean(name)
	if err := m.fault(gen, OpRemove, name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.alive(gen, "remove", name); err != nil {
		return err
	}
	if _, ok := m.files[name]; ok {
		delete(m.files, name)
		return nil
	}
	if m.dirs[name] {
		prefix := name + string(filepath.Separator)
		for n := range m.files {
			if strings.HasPrefix(n, prefix) {
				return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
			}
		}
		for d := range m.dirs {
			if strings.HasPrefix(d, prefix) {
				return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
			}
		}
		delete(m.dirs, name)
		return nil
	}
	return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
}

// RemoveAll removes name and everything below it. Removal of files is durable at
// once (a simplification: directory removal is not modelled as losable).
func (m *MemFS) RemoveAll(name string) error { return m.removeAll(anyGen, name) }

func (m *MemFS) removeAll(gen int, name string) error {
	name = clean(name)
	if err := m.fault(gen, OpRemove, name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.alive(gen, "remove", name); err != nil {
		return err
	}
	prefix := name + string(filepath.Separator)
	for _, set := range []map[string]*inode{m.files, m.durFiles} {
		for n := range set {
			if n == name || strings.HasPrefix(n, prefix) {
				delete(set, n)
			}
		}
	}
	for d := range m.dirs {
		if d == name || strings.HasPrefix(d, prefix) {
			delete(m.dirs, d)
		}
	}
	return nil
}

func (m *MemFS) Rename(oldname, newname string) error { return m.rename(anyGen, oldname, newname) }

func (m *MemFS) rename(gen int, oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	if err := m.fault(gen, OpRename, oldname); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.alive(gen, "rename", oldname); err != nil {
		return err
	}
	ino, ok := m.files[oldname]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	if !m.dirs[filepath.Dir(newname)] {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	delete(m.files, oldname)
	m.files[newname] = ino
	return nil
}

func (m *MemFS) ReadDir(name string) ([]fs.DirEntry, error) { return m.readDir(anyGen, name) }

func (m *MemFS) readDir(gen int, name string) ([]fs.DirEntry, error) {
	name = clean(name)
	if err := m.fault(gen, OpReadDir, name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.alive(gen, "readdir", name); err != nil {
		return nil, err
	}
	if !m.dirs[name] {
		return nil, &os.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var out []fs.DirEntry
	for n, ino := range m.files {
		if filepath.Dir(n) == name {
			out = append(out, memInfo{name: filepath.Base(n), size: int64(len(ino.data)), mtime: ino.mtime})
		}
	}
	for d := range m.dirs {
		if d != name && filepath.Dir(d) == name {
			out = append(out, memInfo{name: filepath.Base(d), dir: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (m *MemFS) MkdirAll(name string, perm fs.FileMode) error { return m.mkdirAll(anyGen, name, perm) }

func (m *MemFS) mkdirAll(gen int, name string, perm fs.FileMode) error {
	name = clean(name)
	if err := m.fault(gen, OpMkdir, name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.alive(gen, "mkdir", name); err != nil {
		return err
	}
	for d := name; ; d = filepath.Dir(d) {
		if _, ok := m.files[d]; ok {
			return &os.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
		}
		m.dirs[d] = true
		if p := filepath.Dir(d); p == d {
			break
		}
	}
	return nil
}

func (m *MemFS) Stat(name string) (fs.FileInfo, error) { return m.stat(anyGen, name) }

func (m *MemFS) stat(gen int, name string) (fs.FileInfo, error) {
	name = clean(name)
	if err := m.fault(gen, OpStat, name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.alive(gen, "stat", name); err != nil {
		return nil, err
	}
	if ino, ok := m.files[name]; ok {
		return memInfo{name: filepath.Base(name), size: int64(len(ino.data)), mtime: ino.mtime}, nil
	}
	if m.dirs[name] {
		return memInfo{name: filepath.Base(name), dir: true}, nil
	}
	return nil, &os.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

func (m *MemFS) SyncDir(name string) error { return m.syncDir(anyGen, name) }

func (m *MemFS) syncDir(gen int, name string) error {
	name = clean(name)
	if err := m.fault(gen, OpSyncDir, name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.alive(gen, "syncdir", name); err != nil {
		return err
	}
	if !m.dirs[name] {
		return &os.PathError{Op: "syncdir", Path: name, Err: fs.ErrNotExist}
	}
	for n := range m.durFiles {
		if filepath.Dir(n) == name {
			if _, ok := m.files[n]; !ok {
				delete(m.durFiles, n)
			}
		}
	}
	for n, ino := range m.files {
		if filepath.Dir(n) == name {
			m.durFiles[n] = ino
		}
	}
	return nil
}

type memFile struct {
	fs     *MemFS
	ino    *inode
	name   string
	flag   int
	gen    int
	off    int64
	closed bool
}

func (f *memFile) Name() string { return f.name }

// check must be called with f.fs.mu held.
func (f *memFile) check(op string) error {
	if f.closed {
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	if f.gen != f.fs.gen {
		return &os.PathError{Op: op, Path: f.name, Err: ErrCrashed}
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.fault(f.gen, OpRead, f.name); err != nil {
		return 0, err
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: syscall.EINVAL}
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	ferr := f.fs.fault(f.gen, OpWrite, f.name)
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.flag&os.O_APPEND != 0 {
		f.off = int64(len(f.ino.data))
	}
	n, err := f.writeAtLocked(p, f.off, ferr)
	f.off += int64(n)
	return n, err
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	ferr := f.fs.fault(f.gen, OpWrite, f.name)
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.writeAtLocked(p, off, ferr)
}

// WriteAtv is one write of the buffers joined. An injected failure tears it
// inside the first buffer: the data a caller pads (segment.Log adds zeros to a
// page boundary) is where a real ENOSPC or EIO lands, the padding sharing the
// data's last block.
func (f *memFile) WriteAtv(bufs [][]byte, off int64) (int, error) {
	ferr := f.fs.fault(f.gen, OpWrite, f.name)
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if ferr != nil && len(bufs) > 0 {
		return f.writeAtLocked(bufs[0], off, ferr)
	}
	return f.writeAtLocked(bytes.Join(bufs, nil), off, nil)
}

func (f *memFile) writeAtLocked(p []byte, off int64, ferr error) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	if ferr != nil {
		p = p[:len(p)/2] // a short write before the failure
	}
	ino := f.ino
	end := int(off) + len(p)
	if end > len(ino.data) {
		if end > cap(ino.data) {
			nd := make([]byte, len(ino.data), 2*end)
			copy(nd, ino.data)
			ino.data = nd
		}
		old := len(ino.data)
		ino.data = ino.data[:end]
		clear(ino.data[old:])
		if old < int(off) {
			ino.markDirty(old, int(off)) // the hole reads as zeros
		}
	}
	copy(ino.data[off:], p)
	ino.markDirty(int(off), end)
	ino.mtime = f.fs.now()
	if ferr != nil {
		return len(p), ferr
	}
	return len(p), nil
}

func (f *memFile) Sync() error     { return f.sync() }
func (f *memFile) Datasync() error { return f.sync() }

func (f *memFile) sync() error {
	if err := f.fs.fault(f.gen, OpSync, f.name); err != nil {
		return err
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync"); err != nil {
		return err
	}
	ino := f.ino
	from := min(ino.dirtyFrom, len(ino.synced), len(ino.data))
	ino.synced = append(ino.synced[:from], ino.data[from:]...)
	ino.dirtyFrom, ino.dirtyTo = len(ino.data), 0
	f.fs.syncs++
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.fs.fault(f.gen, OpTruncate, f.name); err != nil {
		return err
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate"); err != nil {
		return err
	}
	ino := f.ino
	if int(size) < len(ino.data) {
		ino.data = ino.data[:size]
		ino.markDirty(int(size), int(size))
	} else {
		old := len(ino.data)
		ino.data = append(ino.data, make([]byte, int(size)-old)...)
		ino.markDirty(old, int(size))
	}
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return nil, err
	}
	return memInfo{name: filepath.Base(f.name), size: int64(len(f.ino.data)), mtime: f.ino.mtime}, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &os.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	f.closed = true
	return nil
}

type memInfo struct {
	name  string
	size  int64
	mtime time.Time
	dir   bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time         { return i.mtime }
func (i memInfo) IsDir() bool                { return i.dir }
func (i memInfo) Sys() any                   { return nil }
func (i memInfo) Type() fs.FileMode          { return i.Mode().Type() }
func (i memInfo) Info() (fs.FileInfo, error) { return i, nil }
