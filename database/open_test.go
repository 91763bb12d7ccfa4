package database_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/database"
)

// TestSQLiteBusyIsNotUnreachable: a SQLite file that another connection is
// writing to (here: holding an exclusive lock, as a long migration does)
// opens; only a file that cannot be opened is unreachable. A second
// `ferry up` used to exit with "cannot connect" after the busy timeout
// instead of waiting for the migration lock.
func TestSQLiteBusyIsNotUnreachable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	writer, err := database.Open(ctx, "sqlite:"+path, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	conn, err := writer.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE TABLE t (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")

	// A short busy timeout, so the test does not wait ferry's default 10 s.
	db, err := database.Open(ctx, "sqlite:"+path+"?_pragma=busy_timeout(50)", database.Options{})
	if err != nil {
		t.Fatalf("open while another connection writes: %v", err)
	}
	defer db.Close()
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("ping while another connection writes: %v", err)
	}
	// The busy database is reported busy when used, not unreachable.
	var n int
	err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n)
	if err == nil || errors.Is(err, database.ErrUnreachable) {
		t.Fatalf("query while another connection writes: %v", err)
	}

	// A file that cannot be opened is still unreachable.
	if _, err := database.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "no", "such", "dir.db"), database.Options{}); !errors.Is(err, database.ErrUnreachable) {
		t.Fatalf("open in a missing directory: %v", err)
	}
}
