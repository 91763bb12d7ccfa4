package lint_test

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
)

// traceCase is, per dialect, a schema (migration 1, applied), a pending
// migration 2, and what the trace must see.
var traceCases = map[string]struct {
	setup, pending string
	// want maps a statement's line to what its observation must show.
	want map[int]string
}{
	"postgres": {
		setup: "-- +ferry up\nCREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20), total numeric(10,2));\n",
		pending: `-- +ferry up
CREATE INDEX orders_status ON orders (status);
ALTER TABLE orders ALTER COLUMN status TYPE varchar(40);
ALTER TABLE orders ALTER COLUMN total TYPE bigint;
ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT positive;
`,
		want: map[int]string{
			2: "locks: ShareLock on orders|scanned: orders",
			3: "locks: AccessExclusiveLock on orders",
			4: "rewrote: orders|scanned: orders",
			6: "locks: ShareUpdateExclusiveLock on orders|scanned: orders",
		},
	},
	"mysql": {
		setup: "-- +ferry up\nCREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20), total int);\n",
		pending: `-- +ferry up
ALTER TABLE orders ADD COLUMN note text;
CREATE INDEX orders_status ON orders (status);
ALTER TABLE orders MODIFY total bigint;
`,
		want: map[int]string{
			2: "cheapest accepted: ALGORITHM=INSTANT",
			3: "cheapest accepted: ALGORITHM=INPLACE, LOCK=NONE",
			4: "cheapest accepted: ALGORITHM=COPY",
		},
	},
	"sqlite": {
		setup: "-- +ferry up\nCREATE TABLE orders (id integer PRIMARY KEY, status text, total int);\nCREATE TABLE users (id integer PRIMARY KEY);\n",
		pending: `-- +ferry up
ALTER TABLE users ADD COLUMN name text;
CREATE TABLE orders_new (id integer PRIMARY KEY, status text NOT NULL DEFAULT 'new', total int);
INSERT INTO orders_new SELECT id, coalesce(status, 'new'), total FROM orders;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
`,
		want: map[int]string{
			2: "no lock, rewrite or scan on an existing table",
			6: "rewrote: orders",
		},
	},
}

// TestTrace traces a pending migration on each database and checks what
// the server was seen to do, that the static rules agree with it, and
// that neither the target nor the server keeps anything of the trace.
func TestTrace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		tc := traceCases[db.Kind]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		fsys := fstest.MapFS{"1_setup.sql": {Data: []byte(tc.setup)}, "2_change.sql": {Data: []byte(tc.pending)}}
		m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithFS(fsys, "migrations"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
			t.Fatal(err)
		}
		target, err := lint.ServerTarget(ctx, db.DB, db.Kind)
		if err != nil {
			t.Fatal(err)
		}
		cfg := lint.Config{Dialect: db.Kind, Target: target, Only: map[int64]bool{2: true}}
		rep, err := lint.Check(m.Migrations(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// The trace's scratch database, by the name its log gives (other
		// tests trace on the same server at the same time).
		var log bytes.Buffer
		if err := lint.Trace(ctx, rep, lint.TraceSource{DB: db.DB, Migrations: m.Migrations(), Applied: map[int64]bool{1: true},
			Log: slog.New(slog.NewTextHandler(&log, nil))}, cfg); err != nil {
			t.Fatal(err)
		}
		scratch := regexp.MustCompile(`scratch database created" name=(ferry_lint_[0-9a-f]+)`).FindStringSubmatch(log.String())
		if db.Kind != "sqlite" && scratch == nil {
			t.Fatalf("the trace's log names no scratch database: %s", log.String())
		}
		got := map[int]string{}
		for _, o := range rep.Trace {
			var facts []string
			if len(o.Locks) > 0 {
				var ls []string
				for _, l := range o.Locks {
					ls = append(ls, l.Mode+" on "+l.Table)
				}
				facts = append(facts, "locks: "+strings.Join(ls, ", "))
			}
			if len(o.Rewritten) > 0 {
				facts = append(facts, "rewrote: "+strings.Join(o.Rewritten, ", "))
			}
			if len(o.Scanned) > 0 {
				facts = append(facts, "scanned: "+strings.Join(o.Scanned, ", "))
			}
			if o.Algorithm != "" {
				facts = append(facts, "cheapest accepted: ALGORITHM="+o.Algorithm)
			}
			if len(facts) == 0 {
				facts = append(facts, "no lock, rewrite or scan on an existing table")
			}
			got[o.Line] = strings.Join(facts, "|")
		}
		for line, want := range tc.want {
			if got[line] != want {
				t.Errorf("line %d: trace saw %q, want %q", line, got[line], want)
			}
		}
		for _, f := range rep.Findings {
			if f.Rule == lint.RuleTraceDiffers {
				t.Errorf("static rules and trace disagree: %s:%d: %s", f.File, f.Line, f.Message)
			}
		}
		// The target is untouched: still at version 1.
		st, err := m.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.CurrentVersion != 1 || !slices.Equal(st.Pending, []int64{2}) {
			t.Errorf("after the trace the target is at %d with %v pending, want 1 with [2]", st.CurrentVersion, st.Pending)
		}
		if db.Kind != "sqlite" && scratchLeft(t, db, scratch[1]) {
			t.Errorf("the trace left its scratch database %s on the server", scratch[1])
		}
	})
}

// scratchLeft reports whether database name is still on db's server.
func scratchLeft(t *testing.T, db *testdb.DB, name string) bool {
	t.Helper()
	q := `SELECT count(*) FROM pg_database WHERE datname = $1`
	if db.Kind == "mysql" {
		q = `SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?`
	}
	var n int
	if err := db.QueryRowContext(context.Background(), q, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestTraceStaysInside: statements that reach outside the database (a
// role, the real database's settings, a name qualified with the real
// database) are not run on the scratch copy, which shares the server.
func TestTraceStaysInside(t *testing.T) {
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, kind)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			role := testdb.UniqueName("ferry_t_role")
			var pending, check string
			switch kind {
			case "postgres":
				pending = "-- +ferry up\nCREATE ROLE " + role + " NOLOGIN;\nALTER DATABASE \"" + db.URL.Database + "\" SET statement_timeout = '5s';\nALTER TABLE items ADD COLUMN note text;\n"
				check = `SELECT (SELECT count(*) FROM pg_roles WHERE rolname = '` + role + `') + (SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database())`
			default:
				pending = "-- +ferry up\nCREATE USER '" + role + "'@'localhost';\nALTER TABLE `" + db.URL.Database + "`.items ADD COLUMN leak int;\nALTER TABLE items ADD COLUMN note text;\n"
				check = `SELECT (SELECT count(*) FROM mysql.user WHERE user = '` + role + `') + (SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND column_name IN ('leak', 'note'))`
			}
			fsys := fstest.MapFS{"1_setup.sql": {Data: []byte("-- +ferry up\nCREATE TABLE items (id int PRIMARY KEY);\n")}, "2_outside.sql": {Data: []byte(pending)}}
			m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithFS(fsys, "migrations"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
				t.Fatal(err)
			}
			target, err := lint.ServerTarget(ctx, db.DB, kind)
			if err != nil {
				t.Fatal(err)
			}
			cfg := lint.Config{Dialect: kind, Target: target, Only: map[int64]bool{2: true}}
			rep, err := lint.Check(m.Migrations(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := lint.Trace(ctx, rep, lint.TraceSource{DB: db.DB, Migrations: m.Migrations(), Applied: map[int64]bool{1: true}}, cfg); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRowContext(ctx, check).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("the trace changed the server outside its scratch copy (%d roles, settings or columns)", n)
			}
			notRun := 0
			for _, o := range rep.Trace {
				if strings.HasPrefix(o.Note, "not run on the scratch copy") {
					notRun++
				}
			}
			if notRun != 2 {
				t.Errorf("%d statements reported as not run, want 2: %+v", notRun, rep.Trace)
			}
		})
	}
}

// TestTraceFailure: a statement that fails on the copy is a finding, and
// the report keeps what came before.
func TestTraceFailure(t *testing.T) {
	db := testdb.New(t, "sqlite")
	ctx := context.Background()
	fsys := fstest.MapFS{
		"1_setup.sql": {Data: []byte("-- +ferry up\nCREATE TABLE items (id int PRIMARY KEY);\n")},
		"2_bad.sql":   {Data: []byte("-- +ferry up\nALTER TABLE items ADD COLUMN a int;\nALTER TABLE items ADD COLUMN a int;\n")},
		"3_next.sql":  {Data: []byte("-- +ferry up\nALTER TABLE items DROP COLUMN a;\n")},
	}
	m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithFS(fsys, "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := lint.Config{Dialect: "sqlite", Only: map[int64]bool{2: true, 3: true}}
	rep, err := lint.Check(m.Migrations(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	static := len(rep.Findings)
	if err := lint.Trace(ctx, rep, lint.TraceSource{DB: db.DB, Migrations: m.Migrations(), Applied: map[int64]bool{1: true}}, cfg); err != nil {
		t.Fatalf("a failing statement must be a finding, not an error: %v", err)
	}
	var failed []lint.Finding
	for _, f := range rep.Findings {
		if f.Rule == lint.RuleTraceFailed {
			failed = append(failed, f)
		}
	}
	if len(failed) != 1 || failed[0].Line != 3 || failed[0].Version != 2 || !strings.Contains(failed[0].Message, "duplicate column") {
		t.Fatalf("trace-failed findings %+v, want one at 2_bad.sql:3 naming the duplicate column", failed)
	}
	if len(rep.Findings) != static+1 {
		t.Errorf("%d findings after the trace, want the %d static ones kept plus trace-failed", len(rep.Findings), static)
	}
	for _, o := range rep.Trace {
		if o.Version == 3 {
			t.Errorf("migration 3 was traced after migration 2 failed: %+v", o)
		}
	}
}
