//go:build !unix

package release

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
