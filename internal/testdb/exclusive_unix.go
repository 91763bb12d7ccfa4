//go:build unix

package testdb

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Exclusive makes t the only test of any package that holds the
// exclusive slot for kind until t ends. Tests that open dozens of
// connections at once (a fleet of 50 runners) take it so that, with
// packages tested in parallel, they do not exhaust the server's
// max_connections together. It waits on a file lock, not on the database.
func Exclusive(t testing.TB, kind string) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "ferry-test-exclusive-"+kind+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("exclusive test slot: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("exclusive test slot: %v", err)
	}
	t.Cleanup(func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
