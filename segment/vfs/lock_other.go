//go:build !unix

package vfs

import (
	"io"
	"os"
)

// Lock on systems without flock(2) only creates the file: no exclusion (a
// documented gap; Sediment is deployed on Linux).
func (osFS) Lock(name string) (io.Closer, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
}
