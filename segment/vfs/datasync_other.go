//go:build !linux

package vfs

import "os"

func datasync(f *os.File, _ int) error { return f.Sync() }
