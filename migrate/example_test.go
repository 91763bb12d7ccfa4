package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing/fstest"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

// Apply migrations from any fs.FS (an embed.FS in a real application) to
// a SQLite database, then report the status.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)

	db, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"), database.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	files := fstest.MapFS{
		"00001_users.sql": {Data: []byte("-- +ferry up\nCREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n-- +ferry down\nDROP TABLE users;\n")},
		"00002_email.sql": {Data: []byte("-- +ferry up\nALTER TABLE users ADD COLUMN email TEXT;\n")},
	}
	m, err := migrate.New(db.DB, db.Dialect, migrate.WithFS(files, "migrations"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := m.Up(ctx, migrate.UpOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range res.Migrations {
		fmt.Println("applied", a.Version, a.Name)
	}
	s, err := m.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", s.CurrentVersion, "up to date:", s.IsUpToDate)
	// Output:
	// applied 1 users
	// applied 2 email
	// version 2 up to date: true
}

// A migration written in Go runs in the migration's transaction.
func ExampleWithGoMigrations() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"), database.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	seed := &migrate.GoMigration{
		Version: 1,
		Name:    "seed",
		Up: func(ctx context.Context, q migrate.Querier) error {
			if _, err := q.ExecContext(ctx, "CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)"); err != nil {
				return err
			}
			_, err := q.ExecContext(ctx, "INSERT INTO settings VALUES ('theme', 'dark')")
			return err
		},
	}
	m, err := migrate.New(db.DB, db.Dialect, migrate.WithGoMigrations(seed))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
		log.Fatal(err)
	}
	var v string
	db.QueryRowContext(ctx, "SELECT v FROM settings WHERE k = 'theme'").Scan(&v)
	fmt.Println(v)
	// Output: dark
}

// Bound how long each migration may wait for a table lock, and how it is
// retried, before a run that must not stall a busy table. (PostgreSQL and
// MySQL apply it; the embedded SQLite here has no table locks.)
func ExampleWithLockWait() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"), database.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	w := migrate.DefaultLockWait()
	w.Timeout = 2 * time.Second // each statement waits at most 2s for a lock
	w.Retries = 10              // then the migration is rolled back and tried again, 10 more times
	w.Preflight = migrate.PreflightRefuse
	files := fstest.MapFS{"00001_users.sql": {Data: []byte("-- +ferry up\nCREATE TABLE users (id INTEGER PRIMARY KEY);\n")}}
	m, err := migrate.New(db.DB, db.Dialect, migrate.WithFS(files, "migrations"), migrate.WithLockWait(w))
	if err != nil {
		log.Fatal(err)
	}
	res, err := m.Up(ctx, migrate.UpOptions{})
	var lwe *migrate.LockWaitError
	switch {
	case errors.As(err, &lwe):
		fmt.Println("held up by", len(lwe.Sessions), "sessions; try again later")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("now at version", res.To)
	}
	// Output: now at version 1
}
