package lint_test

import (
	"context"
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
		before := scratchDatabases(t, db)
		if err := lint.Trace(ctx, rep, lint.TraceSource{DB: db.DB, Migrations: m.Migrations(), Applied: map[int64]bool{1: true}}, cfg); err != nil {
			t.Fatal(err)
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
		if after := scratchDatabases(t, db); after != before {
			t.Errorf("scratch databases on the server: %d before the trace, %d after", before, after)
		}
	})
}

// scratchDatabases counts the trace's scratch databases on db's server.
func scratchDatabases(t *testing.T, db *testdb.DB) int {
	t.Helper()
	var q string
	switch db.Kind {
	case "postgres":
		q = `SELECT count(*) FROM pg_database WHERE datname LIKE 'ferry\_lint\_%'`
	case "mysql":
		q = `SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'ferry\_lint\_%'`
	default:
		return 0
	}
	var n int
	if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
