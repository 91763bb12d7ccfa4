package testdb

import (
	"context"
	"sync"
	"testing"

	"github.com/ferrydb/ferry/database"
)

// Hold opens a transaction on a connection of its own, named application
// on PostgreSQL, that runs query (a read of a table, say) and keeps its
// locks: the long transaction a migration waits behind. It returns the
// connection's session id; release commits and closes it (also done when
// the test ends).
func Hold(t testing.TB, db *DB, application, query string) (session int64, release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := "SELECT CONNECTION_ID()"
	if db.Kind == database.Postgres {
		if _, err := conn.ExecContext(ctx, "SET application_name = '"+application+"'"); err != nil {
			t.Fatal(err)
		}
		id = "SELECT pg_backend_pid()"
	}
	if err := conn.QueryRowContext(ctx, id).Scan(&session); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Commit()
			conn.Close()
		})
	}
	t.Cleanup(release)
	return session, release
}
