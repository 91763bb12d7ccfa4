// Package testdb gives each test a fresh, uniquely named database on every
// configured server, and drops it when the test ends, so that tests run in
// parallel and leave nothing behind.
//
// Servers come from the environment:
//
//	FERRY_TEST_POSTGRES_URL  e.g. postgres://postgres@127.0.0.1:5432/postgres
//	FERRY_TEST_MYSQL_URL     e.g. mysql://root@127.0.0.1:3306/
//
// SQLite always runs, on a file in the test's temporary directory. A server
// whose URL is unset is skipped, unless FERRY_TEST_REQUIRE_DB=1, which CI
// sets: then an unset or unreachable server fails the test.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
)

// Kinds returns the database kinds tests run against, in order.
func Kinds() []string { return []string{database.SQLite, database.Postgres, database.MySQL} }

// DB is a fresh database for one test.
type DB struct {
	*database.DB
	// Kind is database.Postgres, database.MySQL or database.SQLite.
	Kind string
	// URLString is the database's URL, password included, for passing to a
	// ferry process or a client.
	URLString string
}

// Each runs fn as a parallel subtest for every database kind, each with its
// own fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fn(t, New(t, kind))
		})
	}
}

// ServerURL returns the configured admin URL for a server kind, skipping or
// failing the test when it is not configured.
func ServerURL(t testing.TB, kind string) string {
	t.Helper()
	env := map[string]string{database.Postgres: "FERRY_TEST_POSTGRES_URL", database.MySQL: "FERRY_TEST_MYSQL_URL"}[kind]
	u := os.Getenv(env)
	if u == "" {
		if os.Getenv("FERRY_TEST_REQUIRE_DB") == "1" {
			t.Fatalf("%s is not set but FERRY_TEST_REQUIRE_DB=1", env)
		}
		t.Skipf("%s not set: skipping %s", env, kind)
	}
	return u
}

// New creates a fresh database of the given kind for t and drops it when t
// ends.
func New(t testing.TB, kind string) *DB {
	t.Helper()
	if kind == database.SQLite {
		path := filepath.Join(t.TempDir(), "test.db")
		return open(t, kind, "sqlite:"+path)
	}
	admin, err := database.Parse(ServerURL(t, kind))
	if err != nil {
		t.Fatalf("test server URL: %v", err)
	}
	name := UniqueName("ferry_t")
	execAdmin(t, admin, createSQL(kind, name))
	t.Cleanup(func() { execAdmin(t, admin, dropSQL(kind, name)) })
	return open(t, kind, admin.WithDatabase(name).WithPassword())
}

// UniqueName returns prefix followed by 16 random hex digits.
func UniqueName(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Create makes another fresh database on the same server as db (for
// restore and import targets) and returns its URL; it is dropped when t
// ends.
func Create(t testing.TB, db *DB) string {
	t.Helper()
	if db.Kind == database.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), UniqueName("other")+".db")
	}
	name := UniqueName("ferry_t")
	execAdmin(t, db.URL, createSQL(db.Kind, name))
	t.Cleanup(func() { execAdmin(t, db.URL, dropSQL(db.Kind, name)) })
	return db.URL.WithDatabase(name).WithPassword()
}

func createSQL(kind, name string) string {
	if kind == database.MySQL {
		return "CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4"
	}
	return `CREATE DATABASE "` + name + `"`
}

func dropSQL(kind, name string) string {
	if kind == database.MySQL {
		return "DROP DATABASE IF EXISTS `" + name + "`"
	}
	return `DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`
}

func open(t testing.TB, kind, url string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, url, database.Options{})
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &DB{DB: db, Kind: kind, URLString: url}
}

// execAdmin runs one statement on the server's admin database.
func execAdmin(t testing.TB, server *database.URL, stmt string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := database.OpenURL(ctx, server, database.Options{})
	if err != nil {
		t.Fatalf("connect to %s test server: %v", server.Kind, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}
