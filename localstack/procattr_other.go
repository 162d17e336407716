//go:build !linux

package localstack

import "os/exec"

// dieWithParent: only Linux has a parent-death signal; elsewhere a killed parent leaves the child.
func dieWithParent(*exec.Cmd) {}
