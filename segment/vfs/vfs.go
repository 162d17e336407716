// Package vfs is the file-system seam under the segment log (and anything else that
// wants crash-testable storage). FS and File are the few operations a log needs; OS
// is the real file system, MemFS an in-memory one that can lose unsynced bytes, tear
// the last write and inject errors (EIO, ENOSPC) so crash safety can be tested.
//
// Durability model shared by both implementations:
//   - bytes written to a File are durable only after File.Sync or File.Datasync
//     returns nil;
//   - a created, renamed or removed directory entry is durable only after SyncDir on
//     its parent directory returns nil.
package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// File is an open file. Implementations must allow concurrent ReadAt calls with one
// writer (Write/WriteAt/Truncate/Sync).
type File interface {
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	// Sync makes the file's data and metadata durable (fsync).
	Sync() error
	// Datasync makes the file's data durable, including the size (fdatasync on
	// Linux, Sync elsewhere). It is what an append-only log needs per commit.
	Datasync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Name() string
}

// FS is a file system.
type FS interface {
	// OpenFile opens name with os.O_* flags, as os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Remove(name string) error
	// RemoveAll removes a directory tree (no error if absent).
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	// ReadDir lists a directory sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	MkdirAll(name string, perm fs.FileMode) error
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the entries of directory name durable (fsync on the directory).
	SyncDir(name string) error
}

// Locker is implemented by file systems that can lock a file exclusively
// (OS: flock(2); MemFS: in memory). Lock does not wait: a lock held by anyone
// else (another process, or another Lock in this one) fails with an error
// wrapping ErrLocked. Closing the returned Closer releases the lock.
type Locker interface {
	Lock(name string) (io.Closer, error)
}

// ErrLocked: the file is locked by another holder.
var ErrLocked = errors.New("vfs: locked by another holder")

// Create creates or truncates name for reading and writing.
func Create(fsys FS, name string) (File, error) {
	return fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

// WriteFileAtomic replaces name with data crash-safely: write name+".tmp", fsync it,
// rename over name, fsync the directory. After a crash name holds either the old or
// the new contents, never a mix.
func WriteFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := Create(fsys, tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		fsys.Remove(tmp)
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		fsys.Remove(tmp)
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// ReadFile reads a whole file.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return nil, err
	}
	return buf[:n], nil
}

// WriteAtv writes bufs back to back at off as one write: pwritev(2) on the
// operating system's file system, so that a caller can add a tail (zeros up to a
// page boundary) to data it does not own without copying it. Files without a
// vectored write get one WriteAt of the buffers joined (MemFS: one write, with
// its crash and fault semantics).
func WriteAtv(f File, bufs [][]byte, off int64) (int, error) {
	if v, ok := f.(interface {
		WriteAtv(bufs [][]byte, off int64) (int, error)
	}); ok {
		return v.WriteAtv(bufs, off)
	}
	return writeJoined(f, bufs, off)
}

func writeJoined(f File, bufs [][]byte, off int64) (int, error) {
	return f.WriteAt(bytes.Join(bufs, nil), off)
}

// advance drops the first n bytes of iov (after a short vectored write) and
// any buffers left empty; it reslices iov's own elements.
func advance(iov [][]byte, n int) [][]byte {
	for len(iov) > 0 && (n > 0 || len(iov[0]) == 0) {
		k := min(n, len(iov[0]))
		iov[0], n = iov[0][k:], n-k
		if len(iov[0]) == 0 {
			iov = iov[1:]
		}
	}
	return iov
}

// OS is the operating system's file system.
var OS FS = osFS{}

type osFS struct{}

type osFile struct {
	*os.File
	fd int
}

func (f *osFile) Datasync() error { return datasync(f.File, f.fd) }

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	// Regular files are never in Go's poller, so taking the descriptor once is
	// harmless; it lets Datasync run without allocating.
	return &osFile{File: f, fd: int(f.Fd())}, nil
}

func (osFS) Remove(name string) error               { return os.Remove(name) }
func (osFS) RemoveAll(name string) error            { return os.RemoveAll(name) }
func (osFS) Rename(o, n string) error               { return os.Rename(o, n) }
func (osFS) MkdirAll(n string, p fs.FileMode) error { return os.MkdirAll(n, p) }
func (osFS) Stat(n string) (fs.FileInfo, error)     { return os.Stat(n) }

func (osFS) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := os.ReadDir(name)
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, err
}

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems do not support fsync on directories; that is not a
	// durability failure we can do anything about.
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}
