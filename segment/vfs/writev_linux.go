//go:build linux

package vfs

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// WriteAtv writes bufs back to back at off with pwritev(2), retrying after a short write or
// EINTR. At most 4 buffers (what the segment log needs: data and a zero tail), so the retry's
// iovec list lives on the stack.
func (f *osFile) WriteAtv(bufs [][]byte, off int64) (int, error) {
	if len(bufs) > 4 {
		return writeJoined(f, bufs, off)
	}
	var rest [4][]byte
	iov := rest[:copy(rest[:], bufs)]
	done := 0
	for len(iov) > 0 {
		n, err := unix.Pwritev(f.fd, iov, off+int64(done))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return done, &os.PathError{Op: "pwritev", Path: f.Name(), Err: err}
		}
		if n == 0 {
			return done, &os.PathError{Op: "pwritev", Path: f.Name(), Err: syscall.EIO}
		}
		done += n
		iov = advance(iov, n)
	}
	return done, nil
}
