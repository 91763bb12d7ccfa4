package migrate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// files writes migration files into a new directory and returns it.
func files(t *testing.T, fs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range fs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newMigrator(t *testing.T, db *testdb.DB, dir string, opts ...migrate.Option) *migrate.Migrator {
	t.Helper()
	m, err := migrate.New(db.DB.DB, db.Dialect, append([]migrate.Option{migrate.WithDir(dir), migrate.WithLockTimeout(2 * time.Minute)}, opts...)...)
	if err != nil {
		t.Fatalf("migrate.New: %v", err)
	}
	return m
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func tableExists(t *testing.T, db *testdb.DB, name string) bool {
	t.Helper()
	ok, err := db.Dialect.TableExists(context.Background(), db, name)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func wantTables(t *testing.T, db *testdb.DB, present []string, absent []string) {
	t.Helper()
	for _, n := range present {
		if !tableExists(t, db, n) {
			t.Errorf("table %s should exist", n)
		}
	}
	for _, n := range absent {
		if tableExists(t, db, n) {
			t.Errorf("table %s should not exist", n)
		}
	}
}

func count(t *testing.T, db *testdb.DB, query string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func status(t *testing.T, m *migrate.Migrator) *migrate.Status {
	t.Helper()
	s, err := m.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return s
}

func wantVersions(t *testing.T, what string, got, want []int64) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func appliedVersions(s *migrate.Status) []int64 {
	var vs []int64
	for _, a := range s.Applied {
		vs = append(vs, a.Version)
	}
	return vs
}

// appliedRows counts history rows that applied version v with operation up.
func appliedRows(t *testing.T, db *testdb.DB, v int64) int {
	return count(t, db, fmt.Sprintf("SELECT COUNT(*) FROM ferry_migrations WHERE version = %d AND operation = 'up' AND state = 'applied'", v))
}
