package backup

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/dbcompare"
	"github.com/ferrydb/ferry/migrate"
)

func tctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "backups")
	s, err := OpenStore(tctx(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func openURL(t *testing.T, url string) *database.DB {
	t.Helper()
	db, err := database.Open(tctx(t), url, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// schemaMigrations create a small schema with the kinds of objects a
// migration makes: tables with keys, an index, a view, and data with
// quotes, backslashes, newlines, parentheses, NULLs and non-ASCII text.
func schemaMigrations(kind string) map[string]string {
	blob := "BLOB"
	serial := "INTEGER PRIMARY KEY"
	switch kind {
	case database.Postgres:
		blob, serial = "BYTEA", "SERIAL PRIMARY KEY"
	case database.MySQL:
		serial = "INTEGER AUTO_INCREMENT PRIMARY KEY"
	}
	return map[string]string{
		"00001_accounts.sql": "-- +ferry up\nCREATE TABLE accounts (id " + serial + ", name VARCHAR(100) NOT NULL, balance INTEGER NOT NULL, note TEXT, raw " + blob + ");\nCREATE INDEX accounts_name_idx ON accounts (name);\n",
		"00002_orders.sql":   "-- +ferry up\nCREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id), amount INTEGER NOT NULL);\nCREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 50;\n",
		"00003_empty.sql":    "-- +ferry up\nCREATE TABLE empty_one (id INTEGER PRIMARY KEY);\n",
	}
}

func migrationsDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newMigrator(t *testing.T, db *database.DB, dir string, opts ...migrate.Option) *migrate.Migrator {
	t.Helper()
	m, err := migrate.New(db.DB, db.Dialect, append([]migrate.Option{migrate.WithDir(dir), migrate.WithLockTimeout(2 * time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// seed applies schemaMigrations and inserts awkward data.
func seed(t *testing.T, db *database.DB) {
	t.Helper()
	ctx := tctx(t)
	m := newMigrator(t, db, migrationsDir(t, schemaMigrations(db.URL.Kind)))
	if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	ph := db.Dialect.Placeholder
	notes := []any{"plain", "it's (quoted) \"twice\"", `back\slash \' and \\`, "new\nline\ttab", nil, "ünïcødé ✓ 日本", "),(", "; DROP TABLE accounts; --"}
	for i := 1; i <= 40; i++ {
		raw := []byte{0, byte(i), 0xff, '\'', '\\', '\n'}
		if _, err := db.ExecContext(ctx, "INSERT INTO accounts (name, balance, note, raw) VALUES ("+ph(1)+", "+ph(2)+", "+ph(3)+", "+ph(4)+")",
			fmt.Sprintf("acct-%02d", i), 100, notes[i%len(notes)], raw); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 25; i++ {
		if _, err := db.ExecContext(ctx, "INSERT INTO orders (id, account_id, amount) VALUES ("+ph(1)+", "+ph(2)+", "+ph(3)+")", i, 1+i%40, i*4); err != nil {
			t.Fatal(err)
		}
	}
}

// schemaDump is the schema of db as its own tools print it.
func schemaDump(t *testing.T, db *database.DB) string {
	t.Helper()
	s, err := dbcompare.Schema(tctx(t), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tableChecksums checksums every table but ferry's lock table, which
// holds who runs an upgrade right now, not schema state.
func tableChecksums(t *testing.T, db *database.DB) map[string]string {
	t.Helper()
	c, err := dbcompare.Checksums(tctx(t), db, migrate.DefaultTable+"_lock")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameDatabase fails t unless a and b have the same schema dump and the
// same rows in every table.
func sameDatabase(t *testing.T, a, b *database.DB) {
	t.Helper()
	if sa, sb := schemaDump(t, a), schemaDump(t, b); sa != sb {
		t.Errorf("schema differs:\n--- original\n%s\n--- restored\n%s", sa, sb)
	}
	ca, cb := tableChecksums(t, a), tableChecksums(t, b)
	if fmt.Sprint(ca) != fmt.Sprint(cb) {
		t.Errorf("table contents differ:\noriginal %v\nrestored %v", ca, cb)
	}
	if len(ca) == 0 {
		t.Error("no tables compared")
	}
}

// lockHolder returns the holder recorded in ferry's lock table.
func lockHolder(t *testing.T, db *database.DB) string {
	t.Helper()
	var h string
	err := db.QueryRowContext(tctx(t), "SELECT holder FROM "+db.Dialect.Table(migrate.DefaultTable+"_lock")+" WHERE id = 1").Scan(&h)
	if err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	return h
}
