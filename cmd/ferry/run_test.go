package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testdb"
)

// importGuardMigrations: 1 and 2 create a table each and can be reverted;
// 3 is left pending.
var importGuardMigrations = map[string]string{
	"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n-- +ferry down\nDROP TABLE a;\n",
	"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\n-- +ferry down\nDROP TABLE b;\n",
	"00003_c.sql": "-- +ferry up\nCREATE TABLE c (id INTEGER PRIMARY KEY);\n-- +ferry down\nDROP TABLE c;\n",
}

// TestSchemaChangesRefusedDuringImport: while an import into the
// database has not finished, every command that would change its schema
// or its history refuses, as ferry up does, naming itself and the
// import, and changes nothing: a ferry down once dropped the tables an
// import cut short had half loaded. What only reads (a dry run, status,
// history) still answers.
func TestSchemaChangesRefusedDuringImport(t *testing.T) {
	const id = "20261130T000000Z-abcdef"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := project(t, importGuardMigrations)
		mustRun(t, dir, db.URLString, "up", "--to", "2")
		cutShort(t, db.DB, id, "started", "table:a", "from:/exports/"+id)
		// What adopt would record: golang-migrate's table at version 3.
		for _, q := range []string{"CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)", "INSERT INTO schema_migrations VALUES (3, false)"} {
			if _, err := db.DB.ExecContext(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}
		// Each command must leave the schema and the history as the import
		// left them, so that one that is not refused fails the test by
		// itself, whatever the others do.
		unchanged := func(after string) {
			t.Helper()
			if s := statusOf(t, dir, db.URLString); s.CurrentVersion != 2 || len(s.Pending) != 1 || s.Pending[0] != 3 {
				t.Errorf("status after %s: %+v", after, s)
			}
			var recs []json.RawMessage
			if r := mustRun(t, dir, db.URLString, "history", "--json"); json.Unmarshal([]byte(r.stdout), &recs) != nil || len(recs) != 2 {
				t.Errorf("history after %s: %s", after, r.stdout)
			}
			for _, table := range []string{"a", "b"} {
				if _, err := db.DB.ExecContext(context.Background(), "SELECT count(*) FROM "+table); err != nil {
					t.Errorf("table %s after %s: %v", table, after, err)
				}
			}
		}
		for _, args := range [][]string{
			{"redo"},
			{"baseline", "3"},
			{"adopt", "--from", "golang-migrate"},
			{"down", "--to", "0"},
			{"down"},
		} {
			what := strings.Join(args, " ")
			command := "ferry " + args[0]
			r := runFerry(t, dir, db.URLString, args...)
			if r.code != 1 || !strings.Contains(r.stderr, "the import of export "+id+" into ") ||
				!strings.Contains(r.stderr, "has not finished: "+command+" would change the ") ||
				!strings.Contains(r.stderr, "if it was cut short, run `ferry import --from /exports/"+id+"` again to finish it") {
				t.Errorf("%s during an import: exit %d\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
			}
			unchanged(what)
		}
		// What changes nothing still answers.
		if r := mustRun(t, dir, db.URLString, "down", "--dry-run"); !strings.Contains(r.stdout, "DROP TABLE b") {
			t.Errorf("down --dry-run during an import: %s", r.stdout)
		}
		if r := mustRun(t, dir, db.URLString, "status"); !strings.Contains(r.stdout, "Import in progress") {
			t.Errorf("status during an import: %s", r.stdout)
		}
	})
}

// TestRepairDuringImport: ferry repair still works while an import has
// not finished. It changes no schema, only resolves a migration that
// failed, and it is the step the import's own advice gives when one of
// its final migrations failed part way (fix by hand, repair, run the
// import again); refusing it would leave the verified data no way on.
func TestRepairDuringImport(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := project(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n",
			// The second statement fails: a is there.
			"00002_b.sql": "-- +ferry no-transaction\n-- +ferry up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n",
		})
		if r := runFerry(t, dir, db.URLString, "up"); r.code != 1 {
			t.Fatalf("up of the failing migration: exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		cutShort(t, db.DB, "20261130T000000Z-abcdef", "started", "verified")
		if r := mustRun(t, dir, db.URLString, "repair", "2", "--mark", "applied"); !strings.Contains(r.stdout, "repaired 2 b") {
			t.Errorf("repair during an import: %s", r.stdout)
		}
		if s := statusOf(t, dir, db.URLString); s.CurrentVersion != 2 || len(s.Failed) != 0 {
			t.Errorf("status after the repair: %+v", s)
		}
	})
}
