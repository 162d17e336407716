package integration

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel SIGKILL a broker when the test binary dies (killed by go test's
// -timeout, or by hand), so no sediment process outlives the run holding ports and data dirs.
// Signals the tests send themselves (kill -9, SIGSTOP, SIGTERM) are unaffected.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
