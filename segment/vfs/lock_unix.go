//go:build unix

package vfs

import (
	"io"
	"os"
	"syscall"
)

// Lock takes an exclusive flock(2) on name (created if missing) without
// blocking. flock locks belong to the open file description, so a second Lock
// of the same file fails within one process as well as across processes; the
// kernel releases the lock when the holder closes it or its process dies.
func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			err = ErrLocked
		}
		return nil, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	return f, nil
}
