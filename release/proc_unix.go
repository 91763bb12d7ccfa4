//go:build unix

package release

import "syscall"

// sysProcAttr starts the child in a process group of its own, so that a
// Ctrl-C in a terminal reaches it once (forwarded by ferry), not twice.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
