//go:build !linux

package segment

// dropPoolPages is Linux-only (posix_fadvise): no recycled-evicted rows elsewhere.
var dropPoolPages func(*Log)
