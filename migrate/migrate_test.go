package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// threeFormats holds one migration in each file format.
var threeFormats = map[string]string{
	"00001_users.sql": `-- +ferry up
CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);
INSERT INTO users (id, name) VALUES (1, 'ada; lovelace');
-- +ferry down
DROP TABLE users;
`,
	"00002_posts.sql": `-- +goose Up
-- +goose StatementBegin
SELECT 'several statements in one block, as Metaflow writes them';
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title VARCHAR(200));
-- +goose StatementEnd
INSERT INTO posts (id, user_id, title) VALUES (1, 1, 'it''s here');

-- +goose Down
DROP TABLE posts;
`,
	"00003_tags.up.sql":   "CREATE TABLE tags (id INTEGER PRIMARY KEY, name VARCHAR(50));\nCREATE TABLE post_tags (post_id INTEGER, tag_id INTEGER);\n",
	"00003_tags.down.sql": "DROP TABLE post_tags;\nDROP TABLE tags;\n",
}

func TestUpAllFormatsDownRedo(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, threeFormats)
		m := newMigrator(t, db, dir)
		s := status(t, m)
		if s.CurrentVersion != 0 || s.LatestVersion != 3 || s.IsUpToDate {
			t.Fatalf("fresh status: %+v", s)
		}
		wantVersions(t, "pending", s.Pending, []int64{1, 2, 3})
		if tableExists(t, db, "ferry_migrations") {
			t.Fatal("status must not create the history table")
		}

		res, err := m.Up(ctx(t), migrate.UpOptions{})
		if err != nil {
			t.Fatalf("up: %v", err)
		}
		if len(res.Migrations) != 3 || res.From != 0 || res.To != 3 {
			t.Fatalf("up result: %+v", res)
		}
		wantTables(t, db, []string{"users", "posts", "tags", "post_tags"}, nil)
		if n := count(t, db, "SELECT COUNT(*) FROM users WHERE name = 'ada; lovelace'"); n != 1 {
			t.Errorf("semicolon in string broke the insert: %d rows", n)
		}
		s = status(t, m)
		if s.CurrentVersion != 3 || !s.IsUpToDate || len(s.Pending) != 0 || len(s.Applied) != 3 {
			t.Fatalf("status after up: %+v", s)
		}
		if a := s.Applied[0]; a.AppliedBy == "" || a.AppliedAt.IsZero() || a.Checksum == "" || a.Operation != "up" {
			t.Errorf("applied row lacks detail: %+v", a)
		}

		// Up again: nothing to do, and it says who did it.
		res, err = m.Up(ctx(t), migrate.UpOptions{})
		if err != nil || len(res.Migrations) != 0 || res.LastAppliedBy == "" {
			t.Fatalf("second up: %+v, %v", res, err)
		}

		// Down one: golang-migrate's down file.
		if _, err := m.Down(ctx(t), 1); err != nil {
			t.Fatalf("down: %v", err)
		}
		wantTables(t, db, []string{"users", "posts"}, []string{"tags", "post_tags"})
		wantVersions(t, "pending", status(t, m).Pending, []int64{3})

		// Redo the goose migration after re-applying 3... first re-apply.
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err = m.Redo(ctx(t))
		if err != nil {
			t.Fatalf("redo: %v", err)
		}
		if len(res.Migrations) != 2 || res.Migrations[0].Operation != "down" || res.Migrations[1].Operation != "up" || res.Migrations[1].Version != 3 {
			t.Fatalf("redo result: %+v", res.Migrations)
		}

		// Down to 0 reverts everything, newest first.
		res, err = m.DownTo(ctx(t), 0)
		if err != nil {
			t.Fatalf("down --to 0: %v", err)
		}
		if len(res.Migrations) != 3 || res.Migrations[0].Version != 3 || res.Migrations[2].Version != 1 {
			t.Fatalf("down --to 0: %+v", res.Migrations)
		}
		wantTables(t, db, nil, []string{"users", "posts", "tags"})
		s = status(t, m)
		if s.CurrentVersion != 0 || len(s.Pending) != 3 {
			t.Fatalf("after down --to 0: %+v", s)
		}
		// The full history is kept: 3 ups, 1 down, 1 up, 1 down, 1 up, 3 downs.
		hist, err := m.History(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 10 {
			t.Errorf("history has %d rows, want 10", len(hist))
		}
	})
}

func TestUpTo(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMigrator(t, db, files(t, threeFormats))
		res, err := m.Up(ctx(t), migrate.UpOptions{To: 2})
		if err != nil {
			t.Fatal(err)
		}
		if res.To != 2 || len(res.Migrations) != 2 {
			t.Fatalf("up --to 2: %+v", res)
		}
		wantVersions(t, "pending", status(t, m).Pending, []int64{3})
	})
}

func TestGoMigrations(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_t.sql": "-- +ferry up\nCREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(20));\n-- +ferry down\nDROP TABLE t;\n",
		})
		up := func(ctx context.Context, q migrate.Querier) error {
			for i := 1; i <= 3; i++ {
				if _, err := q.ExecContext(ctx, fmt.Sprintf("INSERT INTO t (id, v) VALUES (%d, 'go')", i)); err != nil {
					return err
				}
			}
			return nil
		}
		down := func(ctx context.Context, q migrate.Querier) error {
			_, err := q.ExecContext(ctx, "DELETE FROM t WHERE v = 'go'")
			return err
		}
		m := newMigrator(t, db, dir, migrate.WithGoMigrations(
			&migrate.GoMigration{Version: 2, Name: "seed", Up: up, Down: down},
			&migrate.GoMigration{Version: 3, Name: "seed_no_tx", NoTransaction: true, Up: func(ctx context.Context, q migrate.Querier) error {
				_, err := q.ExecContext(ctx, "INSERT INTO t (id, v) VALUES (10, 'notx')")
				return err
			}},
		))
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM t"); n != 4 {
			t.Fatalf("rows after Go migrations: %d", n)
		}
		if _, err := m.Down(ctx(t), 1); !errors.Is(err, migrate.ErrNoDown) {
			t.Fatalf("down of a Go migration without Down: %v", err)
		}
		if _, err := m.DownTo(ctx(t), 1); !errors.Is(err, migrate.ErrNoDown) {
			t.Fatalf("down --to 1 must refuse before reverting anything: %v", err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM t"); n != 4 {
			t.Fatalf("a refused down changed data: %d rows", n)
		}
	})
}

// failingBatch: 2 fails at its second statement; 3 must not run.
var failingBatch = map[string]string{
	"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n-- +ferry down\nDROP TABLE a;\n",
	"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\nCREATE TABLE b2 (id INTEGER);\n-- +ferry down\nDROP TABLE b;\n",
	"00003_c.sql": "-- +ferry up\nCREATE TABLE c (id INTEGER PRIMARY KEY);\n",
}

func TestFailingMigrationStopsTheBatch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, failingBatch)
		m := newMigrator(t, db, dir)
		_, err := m.Up(ctx(t), migrate.UpOptions{})
		var me *migrate.MigrationError
		if !errors.As(err, &me) {
			t.Fatalf("up error = %v, want a *MigrationError", err)
		}
		if me.Version != 2 || me.Statement != 2 || me.Line != 3 || !strings.HasSuffix(me.File, "00002_b.sql") {
			t.Errorf("error location: version %d statement %d line %d file %s", me.Version, me.Statement, me.Line, me.File)
		}
		if !strings.Contains(err.Error(), "00002_b.sql:3") {
			t.Errorf("message does not name file and line: %v", err)
		}
		wantTables(t, db, []string{"a"}, []string{"c", "b2"})
		if n := appliedRows(t, db, 3); n != 0 {
			t.Fatal("migration 3 ran after 2 failed")
		}
		s := status(t, m)
		if db.Dialect.TransactionalDDL() {
			// PostgreSQL and SQLite: no partial change, no repair needed.
			if !me.RolledBack {
				t.Error("error should say the transaction was rolled back")
			}
			wantTables(t, db, nil, []string{"b"})
			if s.CurrentVersion != 1 || len(s.Failed) != 0 {
				t.Fatalf("status: %+v", s)
			}
			if s.PendingMigrations[0].LastError == "" {
				t.Error("status should show the last error of pending version 2")
			}
			// Fix the file and run again.
			os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte("-- +ferry up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\nCREATE TABLE b2 (id INTEGER);\n"), 0o644)
			m = newMigrator(t, db, dir)
			if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
				t.Fatalf("up after fix: %v", err)
			}
			wantTables(t, db, []string{"b", "b2", "c"}, nil)
			return
		}
		// MySQL: statement 1 took effect; the migration is failed and
		// blocks until repaired.
		if me.RolledBack {
			t.Error("MySQL cannot roll back DDL")
		}
		wantTables(t, db, []string{"b"}, nil)
		if len(s.Failed) != 1 || s.Failed[0].Version != 2 || s.Failed[0].Statement != 2 || s.Failed[0].Line != 3 || s.Failed[0].State != "failed" {
			t.Fatalf("status failed: %+v", s.Failed)
		}
		if d := s.Failed[0].Describe(); !strings.Contains(d, "statement 1 took effect and statement 2 and the ones after it did not") {
			t.Errorf("the failure does not say what took effect: %s", d)
		}
		_, err = m.Up(ctx(t), migrate.UpOptions{})
		if !errors.Is(err, migrate.ErrNeedsRepair) {
			t.Fatalf("up past a failed migration: %v", err)
		}
		if !strings.Contains(err.Error(), "statement 1 took effect") {
			t.Errorf("refusal does not say what to check: %v", err)
		}
		// Operator undoes statement 1 and marks it pending; fixes the file.
		if _, err := db.ExecContext(ctx(t), "DROP TABLE b"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Repair(ctx(t), 2, migrate.MarkPending); err != nil {
			t.Fatalf("repair: %v", err)
		}
		os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte("-- +ferry up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\nCREATE TABLE b2 (id INTEGER);\n"), 0o644)
		m = newMigrator(t, db, dir)
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatalf("up after repair: %v", err)
		}
		wantTables(t, db, []string{"b", "b2", "c"}, nil)
	})
}

func TestRepairMarkApplied(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\n-- +ferry no-transaction\nCREATE TABLE a (id INTEGER);\nINSERT INTO missing VALUES (1);\n",
			"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\n",
		})
		m := newMigrator(t, db, dir)
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err == nil {
			t.Fatal("up should fail")
		}
		if _, err := m.Repair(ctx(t), 2, migrate.MarkApplied); err == nil || !strings.Contains(err.Error(), "nothing to repair") {
			t.Fatalf("repair of a pending version: %v", err)
		}
		if _, err := m.Repair(ctx(t), 1, "yes"); err == nil {
			t.Fatal("repair needs an explicit choice")
		}
		// The operator completes the migration by hand and marks it applied.
		if _, err := m.Repair(ctx(t), 1, migrate.MarkApplied); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		s := status(t, m)
		if !s.IsUpToDate || s.CurrentVersion != 2 || s.Applied[0].Operation != "repair" {
			t.Fatalf("status: %+v", s)
		}
	})
}

func TestValidate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
			"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\n",
			"00005_e.sql": "-- +ferry up\nCREATE TABLE e (id INTEGER);\n",
		})
		m := newMigrator(t, db, dir)
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		if p, err := m.Validate(ctx(t)); err != nil || len(p) != 0 {
			t.Fatalf("clean validate: %v %v", p, err)
		}
		// A cosmetic edit is fine.
		os.WriteFile(filepath.Join(dir, "00001_a.sql"), []byte("-- +ferry up\n-- a comment\nCREATE TABLE a (\n  id INTEGER\n);\n"), 0o644)
		if p, _ := newMigrator(t, db, dir).Validate(ctx(t)); len(p) != 0 {
			t.Fatalf("cosmetic edit flagged: %v", p)
		}
		// A real edit, a deleted file, and an out-of-order file.
		os.WriteFile(filepath.Join(dir, "00001_a.sql"), []byte("-- +ferry up\nCREATE TABLE a (id BIGINT);\n"), 0o644)
		os.Remove(filepath.Join(dir, "00002_b.sql"))
		os.WriteFile(filepath.Join(dir, "00003_late.sql"), []byte("-- +ferry up\nCREATE TABLE late (id INTEGER);\n"), 0o644)
		m = newMigrator(t, db, dir)
		problems, err := m.Validate(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, p := range problems {
			msgs = append(msgs, p.Message)
		}
		all := strings.Join(msgs, "\n")
		if len(problems) != 3 ||
			!strings.Contains(all, "00001_a.sql was edited after it was applied") ||
			!strings.Contains(all, "version 2 (b) is applied but its migration file is missing") ||
			!strings.Contains(all, "00003_late.sql) is pending but older than the newest applied version 5") {
			t.Fatalf("validate problems:\n%s", all)
		}
		// Up refuses the out-of-order file unless allowed.
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); !errors.Is(err, migrate.ErrOutOfOrder) {
			t.Fatalf("up with an out-of-order file: %v", err)
		}
		m = newMigrator(t, db, dir, migrate.WithAllowOutOfOrder(true))
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		wantTables(t, db, []string{"late"}, nil)
	})
}

func TestBaseline(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		// An existing database already has tables a and b.
		for _, s := range []string{"CREATE TABLE a (id INTEGER)", "CREATE TABLE b (id INTEGER)"} {
			if _, err := db.ExecContext(ctx(t), s); err != nil {
				t.Fatal(err)
			}
		}
		m := newMigrator(t, db, files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
			"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\n",
			"00003_c.sql": "-- +ferry up\nCREATE TABLE c (id INTEGER);\n",
		}))
		res, err := m.Baseline(ctx(t), 2, migrate.BaselineOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Migrations) != 2 || res.To != 2 {
			t.Fatalf("baseline: %+v", res)
		}
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatalf("up after baseline: %v", err)
		}
		s := status(t, m)
		if s.CurrentVersion != 3 || s.Applied[0].Operation != "baseline" || s.Applied[2].Operation != "up" {
			t.Fatalf("status: %+v", s.Applied)
		}
		// Baseline again is a no-op, and an unknown low version is an error.
		if res, err := m.Baseline(ctx(t), 2, migrate.BaselineOptions{}); err != nil || len(res.Migrations) != 0 {
			t.Fatalf("second baseline: %+v %v", res, err)
		}
	})
}

// TestBaselineRefusesAMissingVersion: `ferry baseline 999` with migrations
// up to 3 used to record 1-3 as applied; a version that has no migration is
// refused, naming the nearest ones, and nothing is recorded, unless it is
// allowed on purpose.
func TestBaselineRefusesAMissingVersion(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMigrator(t, db, files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
			"00003_c.sql": "-- +ferry up\nCREATE TABLE c (id INTEGER);\n",
		}))
		for _, v := range []int64{999, 2} {
			_, err := m.Baseline(ctx(t), v, migrate.BaselineOptions{})
			if !errors.Is(err, migrate.ErrUnknownVersion) || !strings.Contains(err.Error(), "3 (c)") {
				t.Fatalf("baseline %d: %v", v, err)
			}
		}
		if s := status(t, m); s.CurrentVersion != 0 || len(s.Applied) != 0 {
			t.Fatalf("a refused baseline recorded %+v", s.Applied)
		}
		res, err := m.Baseline(ctx(t), 2, migrate.BaselineOptions{AllowMissing: true})
		if err != nil || len(res.Migrations) != 1 || res.To != 1 {
			t.Fatalf("baseline 2, allowed: %+v %v", res, err)
		}
	})
}

// TestUpRefusesAnUnknownTarget: a negative target, or one that is not the
// version of a migration, is refused before anything is applied (a script
// passing -1 or a typo used to apply the whole backlog).
func TestUpRefusesAnUnknownTarget(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMigrator(t, db, files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
			"00005_e.sql": "-- +ferry up\nCREATE TABLE e (id INTEGER);\n",
		}))
		for _, to := range []int64{-1, 3, 6} {
			if _, err := m.Up(ctx(t), migrate.UpOptions{To: to}); !errors.Is(err, migrate.ErrUnknownVersion) {
				t.Fatalf("up --to %d: %v", to, err)
			}
			if _, err := m.PlanUp(ctx(t), migrate.UpOptions{To: to}); !errors.Is(err, migrate.ErrUnknownVersion) {
				t.Fatalf("plan up --to %d: %v", to, err)
			}
		}
		_, err := m.Up(ctx(t), migrate.UpOptions{To: 3})
		if msg := err.Error(); !strings.Contains(msg, "1 (a) below") || !strings.Contains(msg, "5 (e) above") {
			t.Errorf("message does not name the nearest versions: %s", msg)
		}
		if s := status(t, m); s.CurrentVersion != 0 {
			t.Fatalf("a refused up applied something: at %d", s.CurrentVersion)
		}
	})
}

func TestDryRunChangesNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMigrator(t, db, files(t, threeFormats))
		plan, err := m.PlanUp(ctx(t), migrate.UpOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := plan.WriteSQL(&b); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"CREATE TABLE ", "INSERT INTO users (id, name) VALUES (1, 'ada; lovelace');", "CREATE TABLE post_tags (post_id INTEGER, tag_id INTEGER);", "ferry_migrations", "ferry takes the migration lock"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry run output lacks %q:\n%s", want, out)
			}
		}
		if strings.Index(out, "users (id INTEGER") > strings.Index(out, "CREATE TABLE posts") {
			t.Error("dry run is not in version order")
		}
		wantTables(t, db, nil, []string{"users", "ferry_migrations", "ferry_migrations_lock"})

		// After applying 1, the plan covers only 2 and 3.
		if _, err := m.Up(ctx(t), migrate.UpOptions{To: 1}); err != nil {
			t.Fatal(err)
		}
		plan, err = m.PlanUp(ctx(t), migrate.UpOptions{})
		if err != nil || len(plan.Migrations) != 2 || plan.CreatesTables {
			t.Fatalf("plan after 1: %+v %v", plan, err)
		}
		wantTables(t, db, []string{"users"}, []string{"posts"})
	})
}

func TestSchemaIsolation(t *testing.T) {
	db := testdb.New(t, database.Postgres)
	dir := files(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
	// A schema name in mixed case is the name as given, not folded.
	schemas := []string{"tenant_one", "tenant_two", "Tenant_Three"}
	for _, schema := range schemas {
		sdb, err := database.Open(ctx(t), db.URLString, database.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		defer sdb.Close()
		m, err := migrate.New(sdb.DB, sdb.Dialect, migrate.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatalf("up in %s: %v", schema, err)
		}
	}
	for _, schema := range schemas {
		if n := count(t, db, `SELECT COUNT(*) FROM "`+schema+`".ferry_migrations`); n != 1 {
			t.Errorf("%s history rows = %d", schema, n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '"+schema+"' AND table_name = 'a'"); n != 1 {
			t.Errorf("table a not created in %s", schema)
		}
	}
	if tableExists(t, db, "ferry_migrations") {
		t.Error("history table leaked into public")
	}
}

// TestStatusWith: a status listing fewer applied migrations still counts
// them all, details the listed ones, and keeps failures and missing files
// complete.
func TestStatusWith(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
			"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\n",
			"00003_c.sql": "-- +ferry up\nCREATE TABLE c (id INTEGER);\n",
			"00004_d.sql": "-- +ferry up\n-- +ferry no-transaction\nCREATE TABLE d (id INTEGER);\nINSERT INTO missing VALUES (1);\n",
		})
		m := newMigrator(t, db, dir)
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err == nil {
			t.Fatal("migration 4 should fail")
		}
		os.Remove(filepath.Join(dir, "00001_a.sql"))
		m = newMigrator(t, db, dir)
		full, err := m.Status(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			applied, listed int
			first           int64
		}{{0, 3, 1}, {1, 1, 3}, {2, 2, 2}, {-1, 0, 0}} {
			s, err := m.StatusWith(ctx(t), migrate.StatusOptions{Applied: tt.applied})
			if err != nil {
				t.Fatal(err)
			}
			if s.AppliedCount != 3 || len(s.Applied) != tt.listed || s.CurrentVersion != 3 {
				t.Fatalf("Applied %d: count %d, listed %d, current %d", tt.applied, s.AppliedCount, len(s.Applied), s.CurrentVersion)
			}
			if tt.listed > 0 {
				a := s.Applied[0]
				if a.Version != tt.first || a.AppliedBy == "" || a.AppliedAt.IsZero() || a.Checksum == "" {
					t.Errorf("Applied %d: first listed %+v", tt.applied, a)
				}
			}
			if len(s.Missing) != 1 || s.Missing[0].Version != 1 {
				t.Errorf("Applied %d: missing %+v", tt.applied, s.Missing)
			}
			if len(s.Failed) != 1 || s.Failed[0].AppliedBy == "" || s.Failed[0].Error == "" || s.Failed[0].At.IsZero() ||
				s.Failed[0].AppliedBy != full.Failed[0].AppliedBy || s.Failed[0].Statement != full.Failed[0].Statement {
				t.Errorf("Applied %d: failures %+v, full %+v", tt.applied, s.Failed, full.Failed)
			}
		}
	})
}

// TestPostgresBatch: on PostgreSQL a transactional migration goes to the
// server as one batch, a goose block of several commands does not, and a
// failure in a batch still names its statement.
func TestPostgresBatch(t *testing.T) {
	db := testdb.New(t, database.Postgres)
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := files(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\nINSERT INTO a VALUES (1);\n",
		"00002_b.sql": "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE b (id INTEGER);\nINSERT INTO b VALUES (1);\n-- +goose StatementEnd\n",
		"00003_c.sql": "-- +ferry up\nCREATE TABLE c (id INTEGER);\nINSERT INTO c VALUES ('not a number');\nCREATE TABLE c2 (id INTEGER);\n",
	})
	m := newMigrator(t, db, dir, migrate.WithLogger(logger))
	_, err := m.Up(ctx(t), migrate.UpOptions{})
	var me *migrate.MigrationError
	if !errors.As(err, &me) || me.Version != 3 || me.Statement != 2 || me.Line != 3 || !me.RolledBack {
		t.Fatalf("failing batch: %v", err)
	}
	wantTables(t, db, []string{"a", "b"}, []string{"c", "c2"})
	out := logs.String()
	if !strings.Contains(out, "one batch") || !strings.Contains(out, "version=1") || !strings.Contains(out, "version=3") || strings.Contains(out, "batch\" version=2") {
		t.Fatalf("batch use:\n%s", out)
	}
	if strings.Count(out, "sending the migration as one batch") != 2 {
		t.Fatalf("want batches for versions 1 and 3 only:\n%s", out)
	}
	s := status(t, m)
	if s.CurrentVersion != 2 || s.Applied[0].AppliedBy == "" || s.Applied[0].Checksum == "" || s.Applied[0].AppliedAt.IsZero() {
		t.Fatalf("history written by the batch: %+v", s.Applied[0])
	}
}

// TestStatusCache: brief statuses reuse the history they read while it is
// unchanged, and see every change: rows appended by another process, a
// running row updated in place, a table rewritten (a restore), the table
// dropped. Concurrent callers are safe (run with -race).
func TestStatusCache(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
			"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\n",
			"00003_c.sql": "-- +ferry up\n-- +ferry no-transaction\nCREATE TABLE c (id INTEGER);\nINSERT INTO missing VALUES (1);\n",
		})
		watcher := newMigrator(t, db, dir)
		brief := func() *migrate.Status {
			t.Helper()
			s, err := watcher.StatusWith(ctx(t), migrate.StatusOptions{Applied: -1})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		if s := brief(); s.CurrentVersion != 0 || len(s.Pending) != 3 {
			t.Fatalf("empty: %+v", s)
		}
		// Another migrator (process) applies 1 and 2.
		if _, err := newMigrator(t, db, dir).Up(ctx(t), migrate.UpOptions{To: 2}); err != nil {
			t.Fatal(err)
		}
		if s := brief(); s.CurrentVersion != 2 || s.AppliedCount != 2 {
			t.Fatalf("after appended rows: %+v", s)
		}
		// 3 fails part-way: a row written as running, then updated in place.
		if _, err := newMigrator(t, db, dir).Up(ctx(t), migrate.UpOptions{}); err == nil {
			t.Fatal("3 should fail")
		}
		if s := brief(); len(s.Failed) != 1 || s.Failed[0].State != "failed" || s.Failed[0].Error == "" {
			t.Fatalf("after an in-place update: %+v", s.Failed)
		}
		// Concurrent readers.
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := watcher.StatusWith(context.Background(), migrate.StatusOptions{Applied: 2}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		// A rewrite, as a restore does: fewer rows, a lower highest id.
		if _, err := db.ExecContext(ctx(t), "DELETE FROM ferry_migrations WHERE version >= 2"); err != nil {
			t.Fatal(err)
		}
		if s := brief(); s.CurrentVersion != 1 || len(s.Failed) != 0 || len(s.Pending) != 2 {
			t.Fatalf("after a rewrite: %+v", s)
		}
		if _, err := db.ExecContext(ctx(t), "DROP TABLE ferry_migrations"); err != nil {
			t.Fatal(err)
		}
		if s := brief(); s.CurrentVersion != 0 || len(s.Pending) != 3 {
			t.Fatalf("after the table went: %+v", s)
		}
	})
}

// TestMySQLDMLGroups: on MySQL, consecutive DML statements run in one
// transaction with ferry's bookkeeping. A migration whose first statements
// are DML and fail leaves nothing behind, so it needs no repair; a DML
// group after DDL fails as before, naming the first statement not in the
// database.
func TestMySQLDMLGroups(t *testing.T) {
	db := testdb.New(t, database.MySQL)
	dir := files(t, map[string]string{
		"00001_t.sql":   "-- +ferry up\nCREATE TABLE t (id INTEGER PRIMARY KEY);\n",
		"00002_dml.sql": "-- +ferry up\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\nINSERT INTO t VALUES (1);\n",
	})
	m := newMigrator(t, db, dir)
	_, err := m.Up(ctx(t), migrate.UpOptions{})
	var me *migrate.MigrationError
	if !errors.As(err, &me) || me.Version != 2 || me.Statement != 3 || !me.RolledBack {
		t.Fatalf("failing DML group: %v", err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM t"); n != 0 {
		t.Fatalf("the rolled-back group left %d rows", n)
	}
	s := status(t, m)
	if len(s.Failed) != 0 || len(s.Pending) != 1 || s.PendingMigrations[0].LastError == "" {
		t.Fatalf("status after a rolled-back group: %+v", s)
	}
	// Fixed, it applies in one go; the row is applied, not left running.
	os.WriteFile(filepath.Join(dir, "00002_dml.sql"), []byte("-- +ferry up\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "00003_mixed.sql"), []byte("-- +ferry up\nINSERT INTO t VALUES (3);\nALTER TABLE t ADD COLUMN v INTEGER;\nUPDATE t SET v = id;\nCREATE TABLE u (id INTEGER);\n"), 0o644)
	m = newMigrator(t, db, dir)
	if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM t WHERE v = id"); n != 3 {
		t.Fatalf("mixed migration: %d rows updated", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM ferry_migrations WHERE state <> 'applied' AND state <> 'rolled_back'"); n != 0 {
		t.Fatalf("%d history rows not settled", n)
	}
	if s := status(t, m); !s.IsUpToDate || s.CurrentVersion != 3 {
		t.Fatalf("final status: %+v", s)
	}
}

// TestDurationRecorded: the history row of a migration carries how long it
// ran, also when the migration and its row went to the server as one batch
// (PostgreSQL), where the row is written before the client knows.
func TestDurationRecorded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		slow := map[string]string{
			database.Postgres: "SELECT pg_sleep(0.3);",
			database.MySQL:    "DO SLEEP(0.3);",
			// SQLite has no sleep: count to three million instead.
			database.SQLite: "CREATE TABLE n AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT COUNT(*) AS x FROM c;",
		}[db.Kind]
		m := newMigrator(t, db, files(t, map[string]string{
			"00001_slow.sql": "-- +ferry up\nCREATE TABLE d (id INTEGER);\n" + slow + "\n",
		}))
		start := time.Now()
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		recs, err := m.History(ctx(t))
		if err != nil || len(recs) != 1 {
			t.Fatalf("history: %v %v", recs, err)
		}
		d := recs[0].Duration
		min := 250 * time.Millisecond
		if db.Kind == database.SQLite {
			min = time.Millisecond
		}
		if d < min || d > took {
			t.Fatalf("recorded duration %s; the run took %s", d, took)
		}
	})
}

// TestMySQLGroupFailureNamesTheFailingStatement: when the third statement
// of a group fails, the error names it (and its line), not the first of
// its group, which is where a repaired run resumes and what the history
// row records.
func TestMySQLGroupFailureNamesTheFailingStatement(t *testing.T) {
	db := testdb.New(t, database.MySQL)
	m := newMigrator(t, db, files(t, map[string]string{
		"00001_w.sql": "-- +ferry up\nCREATE TABLE w (id INTEGER, s VARCHAR(5));\nINSERT INTO w VALUES (1, 'a');\nINSERT INTO w VALUES (3, `x`);\n",
	}))
	_, err := m.Up(ctx(t), migrate.UpOptions{})
	var me *migrate.MigrationError
	if !errors.As(err, &me) || me.Statement != 2 || me.Failed != 3 || me.FailedLine != 4 || me.RolledBack {
		t.Fatalf("failure: %+v (%v)", me, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "at statement 3 (") || !strings.Contains(msg, ".sql:4), which ran in one transaction with statement 2") ||
		!strings.Contains(msg, "statement 1 took effect and statement 2 and the ones after it did not") {
		t.Fatalf("message: %s", msg)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM w"); n != 0 {
		t.Fatalf("statement 2 was rolled back with 3, yet w has %d rows", n)
	}
	s := status(t, m)
	if len(s.Failed) != 1 || s.Failed[0].Statement != 2 || !strings.Contains(s.Failed[0].Error, "statement 3 (line 4) failed") {
		t.Fatalf("status: %+v", s.Failed)
	}
}

// TestEnvsubDownOnlyVariable: a goose ENVSUB variable that only the down
// part uses is needed only to revert, as with goose; reverting without it
// fails before anything is reverted, naming file, line and variable.
func TestEnvsubDownOnlyVariable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_t.sql": "-- +goose ENVSUB ON\n-- +goose Up\nCREATE TABLE ${TABLE} (id INTEGER);\n-- +goose Down\nDROP TABLE ${TABLE}${DROP_SUFFIX};\n",
		})
		env := map[string]string{"TABLE": "envsub_t"}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		m := newMigrator(t, db, dir, migrate.WithEnv(lookup))
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatalf("up without the down part's variable: %v", err)
		}
		_, err := m.Down(ctx(t), 1)
		if !migrate.IsLoadError(err) || !strings.Contains(err.Error(), "00001_t.sql:5: ENVSUB: environment variable DROP_SUFFIX is not set") {
			t.Fatalf("down without DROP_SUFFIX: %v", err)
		}
		if s := status(t, m); s.CurrentVersion != 1 {
			t.Fatalf("a refused down reverted something: at %d", s.CurrentVersion)
		}
		env["DROP_SUFFIX"] = ""
		m = newMigrator(t, db, dir, migrate.WithEnv(lookup))
		if _, err := m.Down(ctx(t), 1); err != nil {
			t.Fatalf("down with DROP_SUFFIX set: %v", err)
		}
	})
}

// TestStopBetweenMigrations: a run stopped (its context cancelled) after a
// migration leaves the next one pending, with nothing to repair, on every
// database, even where the last script wrote the next migration's running
// row ahead (MySQL): that row is recorded as never started.
func TestStopBetweenMigrations(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\nINSERT INTO a (id) VALUES (1);\n",
			// no-transaction: not in migration 1's script on MySQL (see
			// TestChunkStopsWhole).
			"00002_b.sql": "-- +ferry up\n-- +ferry no-transaction\nCREATE TABLE b (id INTEGER);\n",
		})
		c, cancel := context.WithCancel(ctx(t))
		defer cancel()
		m := newMigrator(t, db, dir, migrate.WithHooks(migrate.Hooks{MigrationDone: func(e migrate.Event) {
			if e.Version == 1 {
				cancel()
			}
		}}))
		_, err := m.Up(c, migrate.UpOptions{})
		if !errors.Is(err, migrate.ErrInterrupted) {
			t.Fatalf("up cancelled after migration 1: %v", err)
		}
		s := status(t, m)
		if s.CurrentVersion != 1 || len(s.Failed) != 0 || len(s.Pending) != 1 || s.Pending[0] != 2 {
			t.Fatalf("after the stop: version %d, failed %+v, pending %v", s.CurrentVersion, s.Failed, s.Pending)
		}
		if tableExists(t, db, "b") {
			t.Fatal("migration 2 ran after the stop")
		}
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatalf("up again: %v", err)
		}
		if s := status(t, m); s.CurrentVersion != 2 || !s.IsUpToDate {
			t.Fatalf("after up again: %+v", s)
		}
	})
}
