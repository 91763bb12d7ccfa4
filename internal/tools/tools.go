// Package tools builds pinned versions of the migration tools ferry is
// compared with and interoperates with (goose, golang-migrate), from the Go
// module proxy, once per machine. Tests use them to create databases the
// way those tools do; the benchmarks run them side by side with ferry.
package tools

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// A Tool is a command built with `go install`.
type Tool struct {
	Name    string // binary name
	Package string // package path of the command
	Version string // module version
	Tags    string // build tags (leaving out drivers ferry does not need)
}

// Goose is pressly/goose's CLI, with PostgreSQL, MySQL and SQLite drivers.
func Goose() Tool {
	return Tool{
		Name: "goose", Package: "github.com/pressly/goose/v3/cmd/goose", Version: "v3.29.0",
		Tags: "no_clickhouse no_libsql no_mssql no_vertica no_ydb no_duckdb no_spanner no_starrocks no_turso",
	}
}

// GolangMigrate is golang-migrate's CLI, with PostgreSQL, MySQL and SQLite
// (modernc, no cgo) drivers.
func GolangMigrate() Tool {
	return Tool{Name: "migrate", Package: "github.com/golang-migrate/migrate/v4/cmd/migrate", Version: "v4.20.1", Tags: "postgres mysql sqlite"}
}

// Path returns the tool's binary, building it first if this machine has not
// yet. Binaries live in the user cache directory, one per version.
func (t Tool) Path(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "ferry-tools", t.Name+"@"+t.Version)
	bin := filepath.Join(dir, t.Name)
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Build into a fresh directory and rename into place, so that two test
	// processes building at once never see a half-written binary.
	tmp, err := os.MkdirTemp(dir, "build")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "-tags", t.Tags, t.Package+"@"+t.Version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", t.Package, t.Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, filepath.Base(bin)), bin); err != nil {
		if _, statErr := os.Stat(bin); statErr == nil {
			return bin, nil // another process won the race
		}
		return "", err
	}
	return bin, nil
}
