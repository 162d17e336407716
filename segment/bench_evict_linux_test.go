//go:build linux

package segment

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropPoolPages drops the page cache of l's recycle pool files (written and
// synced long ago in a real broker: clean pages, which FADV_DONTNEED drops).
var dropPoolPages = func(l *Log) {
	l.mu.RLock()
	paths := make([]string, 0, len(l.pool))
	for _, p := range l.pool {
		paths = append(paths, p.path)
	}
	l.mu.RUnlock()
	for _, p := range paths {
		if f, err := os.Open(p); err == nil {
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
			f.Close()
		}
	}
}
