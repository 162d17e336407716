package localstack

import "syscall"

var sigterm = syscall.SIGTERM
