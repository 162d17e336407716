package localstack

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel SIGKILL the child when the process that started it dies, so a test
// binary killed by its -timeout (or a bench killed with ^C twice) does not leave MinIO running and
// holding its port and data directory.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
