package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testdb"
)

// lintProject is a schema (1) and a pending change (2) that lint flags
// on every database: a column rename, an error.
func lintProject(t *testing.T) string {
	return project(t, map[string]string{
		"1_init.sql":   "-- +ferry up\nCREATE TABLE users (id int PRIMARY KEY, name varchar(50));\n",
		"2_rename.sql": "-- +ferry up\nALTER TABLE users RENAME COLUMN name TO full_name;\n",
	})
}

func TestCLILint(t *testing.T) {
	dir := lintProject(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "never-created.db")

	r := runFerry(t, dir, db, "lint")
	if r.code != 1 || !strings.Contains(r.stdout, "migrations/2_rename.sql:2:1: error rename-column: renaming column users.name to full_name breaks the running release") || !strings.Contains(r.stdout, "see: docs/lint/rename-column.md") {
		t.Fatalf("ferry lint: exit %d, want 1 with the finding\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(strings.TrimPrefix(db, "sqlite:")); err == nil {
		t.Error("ferry lint created the SQLite database: a static lint must not touch the database")
	}
	// --fail-on never, and a suppression, exit 0.
	if r := runFerry(t, dir, db, "lint", "--fail-on", "never"); r.code != 0 {
		t.Errorf("--fail-on never: exit %d", r.code)
	}
	// JSON, GitHub and SARIF.
	r = runFerry(t, dir, db, "lint", "--format", "json")
	var doc struct {
		Target   string
		Errors   int
		Findings []struct{ Rule, File string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 1 || doc.Errors != 1 || doc.Findings[0].Rule != "rename-column" || doc.Target != "sqlite 3.35" {
		t.Errorf("--format json: exit %d, %v, %+v\n%s", r.code, err, doc, r.stdout)
	}
	r = runFerry(t, dir, db, "lint", "--format", "github")
	if !strings.HasPrefix(r.stdout, "::error file=migrations/2_rename.sql,line=2,col=1,title=ferry lint rename-column::") {
		t.Errorf("--format github: %q", r.stdout)
	}
	r = runFerry(t, dir, db, "lint", "--format", "sarif")
	if !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, `"ruleId": "rename-column"`) {
		t.Errorf("--format sarif: %s", r.stdout)
	}
	// Usage errors exit 2.
	for _, args := range [][]string{{"lint", "--format", "xml"}, {"lint", "--fail-on", "sometimes"}, {"lint", "--target", "oracle 19"}, {"lint", "--target", "mysql 8.0"}} {
		if r := runFerry(t, dir, db, args...); r.code != 2 {
			t.Errorf("ferry %s: exit %d, want 2 (usage)\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	// ferry.yaml: a rule off, start_after.
	if err := os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("lint:\n  rules:\n    rename-column: warning\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runFerry(t, dir, db, "lint"); r.code != 0 || !strings.Contains(r.stdout, "warning rename-column") {
		t.Errorf("rename-column: warning in ferry.yaml: exit %d\n%s", r.code, r.stdout)
	}
	if err := os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("lint:\n  rules:\n    renamed-column: off\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runFerry(t, dir, db, "lint"); r.code != 2 || !strings.Contains(r.stderr, `"renamed-column" is not a rule`) {
		t.Errorf("unknown rule in ferry.yaml: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("lint:\n  start_after: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runFerry(t, dir, db, "lint"); r.code != 0 || !strings.Contains(r.stdout, "no findings in 0 migrations") {
		t.Errorf("start_after 2: exit %d\n%s", r.code, r.stdout)
	}
	if r := mustRun(t, dir, db, "lint", "--rules"); !strings.Contains(r.stdout, "index-not-concurrent") {
		t.Errorf("--rules:\n%s", r.stdout)
	}
}

// TestCLIUpLint: ferry up lints the pending migrations first; --lint
// error refuses them, applying nothing; warn applies them and says what it
// found; status carries the findings.
func TestCLIUpLint(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := lintProject(t)
		mustRun(t, dir, db.URLString, "up", "--to", "1")

		st := mustRun(t, dir, db.URLString, "status", "--json")
		var doc struct {
			Lint *struct{ Errors int }
		}
		if err := json.Unmarshal([]byte(st.stdout), &doc); err != nil || doc.Lint == nil || doc.Lint.Errors != 1 {
			t.Errorf("status --json: lint %+v, %v; want 1 error\n%s", doc.Lint, err, st.stdout)
		}

		r := runFerry(t, dir, db.URLString, "up", "--lint", "error")
		if r.code != 1 || !strings.Contains(r.stderr, "lint found 1 error-level problem(s) in the pending migrations; nothing was applied") || !strings.Contains(r.stderr, "-- ferry:lint-ignore RULE reason") {
			t.Fatalf("up --lint error: exit %d\n%s", r.code, r.stderr)
		}
		if v := mustRun(t, dir, db.URLString, "status", "--json").stdout; !strings.Contains(v, `"current_version": 1`) {
			t.Fatalf("up --lint error applied something:\n%s", v)
		}
		r = mustRun(t, dir, db.URLString, "up", "--json")
		var up struct {
			OK   bool
			Lint struct {
				Errors   int
				Findings []struct{ Rule string }
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &up); err != nil || !up.OK || up.Lint.Errors != 1 || up.Lint.Findings[0].Rule != "rename-column" {
			t.Errorf("up --json (lint warn): %+v, %v\n%s", up, err, r.stdout)
		}
		if st := mustRun(t, dir, db.URLString, "status", "--json").stdout; strings.Contains(st, `"lint"`) {
			t.Errorf("status with nothing pending still has lint:\n%s", st)
		}
	})
}

// TestCLILintTrace traces the pending migration on a scratch copy.
func TestCLILintTrace(t *testing.T) {
	db := testdb.New(t, "postgres")
	dir := project(t, map[string]string{
		"1_init.sql": "-- +ferry up\nCREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));\n",
		"2_type.sql": "-- +ferry up\nALTER TABLE orders ALTER COLUMN total TYPE bigint;\n",
	})
	mustRun(t, dir, db.URLString, "up", "--to", "1")
	r := runFerry(t, dir, db.URLString, "lint", "--trace")
	if r.code != 1 || !strings.Contains(r.stdout, "error column-type-rewrite") || !strings.Contains(r.stdout, "rewrote: orders") || !strings.Contains(r.stdout, "locks: AccessExclusiveLock on orders") {
		t.Fatalf("lint --trace: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "trace-differs") {
		t.Errorf("static rules and trace disagree:\n%s", r.stdout)
	}
}

// TestCLILintEdges: a file lint cannot read fails it; a target picks the
// dialect when no database is configured; tables an earlier pending
// migration creates are new to the up gate; a trace works in a schema and
// with start_after.
func TestCLILintEdges(t *testing.T) {
	bad := project(t, map[string]string{
		"1_init.sql": "-- +ferry up\nCREATE TABLE users (id int PRIMARY KEY);\n",
		"2_typo.sql": "-- +ferry up\n-- +ferry no-transactoin\nCREATE INDEX i ON users (id);\n",
	})
	if r := runFerry(t, bad, "", "lint"); r.code != 1 || !strings.Contains(r.stderr, "2_typo.sql") || !strings.Contains(r.stderr, "no-transactoin") {
		t.Errorf("lint of an unreadable file: exit %d, want 1 naming it\n%s%s", r.code, r.stdout, r.stderr)
	}

	dir := project(t, map[string]string{
		"1_init.sql": "-- +ferry up\nCREATE TABLE users (id int PRIMARY KEY, name text);\n",
		"2_idx.sql":  "-- +ferry up\nCREATE INDEX users_name ON users (name);\n",
	})
	if r := runFerry(t, dir, "", "lint", "--target", "postgres 12"); r.code != 1 || !strings.Contains(r.stdout, "index-not-concurrent") || !strings.Contains(r.stdout, "for postgres 12") {
		t.Errorf("lint --target 'postgres 12' with no database: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runFerry(t, dir, "", "lint", "--target", "mysql 8.0"); r.code != 0 || !strings.Contains(r.stdout, "for mysql 8.0") {
		t.Errorf("lint --target 'mysql 8.0' with no database (an index is online on MySQL): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	pg := testdb.New(t, "postgres")
	run := project(t, map[string]string{
		"1_init.sql":      "-- +ferry up\nCREATE TABLE users (id int PRIMARY KEY);\n",
		"2_shipments.sql": "-- +ferry up\nCREATE TABLE shipments (id int PRIMARY KEY, ref text);\n",
		"3_index.sql":     "-- +ferry up\nCREATE INDEX shipments_ref ON shipments (ref);\nALTER TABLE shipments ADD COLUMN tracking text NOT NULL;\n",
	})
	mustRun(t, run, pg.URLString, "up", "--to", "1")
	if r := runFerry(t, run, pg.URLString, "up", "--lint", "error"); r.code != 0 {
		t.Errorf("up --lint error refused a table an earlier migration of the same run creates: exit %d\n%s", r.code, r.stderr)
	}

	schemaDB := testdb.New(t, "postgres")
	if _, err := schemaDB.ExecContext(context.Background(), "CREATE SCHEMA app"); err != nil {
		t.Fatal(err)
	}
	sdir := project(t, map[string]string{
		"1_init.sql": "-- +ferry up\nCREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));\n",
		"2_more.sql": "-- +ferry up\nALTER TABLE orders ADD COLUMN note text;\n",
		"3_type.sql": "-- +ferry up\nALTER TABLE orders ALTER COLUMN total TYPE bigint;\n",
	})
	if err := os.WriteFile(filepath.Join(sdir, "ferry.yaml"), []byte("schema: app\nlint:\n  start_after: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, sdir, schemaDB.URLString, "up", "--to", "1")
	r := runFerry(t, sdir, schemaDB.URLString, "lint", "--trace")
	if r.code != 1 || !strings.Contains(r.stdout, "rewrote: orders") || strings.Contains(r.stdout, "trace-failed") {
		t.Errorf("lint --trace in schema app with start_after 2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
