package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/s2"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// TestImportAcrossEngines exports the service at version 2 from each
// engine and imports it into an empty database of each other engine,
// which ends at version 6; every table must then hold what the source,
// migrated in place, holds, value for value in the target's types.
func TestImportAcrossEngines(t *testing.T) {
	kinds := testdb.Kinds()
	for _, from := range kinds {
		for _, to := range kinds {
			if from == to {
				continue
			}
			t.Run(from+"_to_"+to, func(t *testing.T) {
				t.Parallel()
				ctx := tctx(t)
				src := testdb.New(t, from).DB
				smig := serviceAt2(t, src, true)
				// SQLite keeps a DECIMAL as a float: a value of 20 digits
				// would be rounded in the source already.
				exec(t, src, `UPDATE runs SET cost = '12.5' WHERE id = 2`)
				st, err := OpenStore(ctx, t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				m, err := Export(ctx, st, src, smig, ExportOptions{ChunkBytes: 4096})
				if err != nil {
					t.Fatal(err)
				}
				target := testdb.New(t, to).DB
				tmig := serviceMigrator(t, target)
				var mp *Mapping
				if to == database.SQLite && from != database.SQLite {
					// A decimal into SQLite's DECIMAL (a float) may round:
					// refused until the mapping allows it, found by the
					// plan too (on a scratch database the target's
					// migrations make), and the target left untouched.
					plan, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Plan: true})
					if !errors.Is(err, ErrMapping) || plan == nil || len(plan.Problems) != 1 || !strings.Contains(plan.Problems[0].Detail, "casts: [runs.cost]") {
						t.Fatalf("plan of a decimal into SQLite without a cast: %v %+v", err, plan)
					}
					_, err = Import(ctx, st, m.ID, target, tmig, ImportOptions{})
					if !errors.Is(err, ErrMapping) || !strings.Contains(err.Error(), "casts: [runs.cost]") || !strings.Contains(err.Error(), "nothing was changed") {
						t.Fatalf("import of a decimal into SQLite without a cast: %v", err)
					}
					if s, err := tmig.Status(ctx); err != nil || s.CurrentVersion != 0 {
						t.Fatalf("the refused import migrated the target to version %d (%v)", s.CurrentVersion, err)
					}
					if _, err := Copy(ctx, src, smig, target, tmig, CopyOptions{}); !errors.Is(err, ErrMapping) || !strings.Contains(err.Error(), "nothing was changed") {
						t.Fatalf("copy of a decimal into SQLite without a cast: %v", err)
					}
					mp = &Mapping{Casts: []string{"runs.cost"}}
				}
				rep, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Mapping: mp})
				if err != nil {
					t.Fatalf("import: %v\n%+v", err, rep.Problems)
				}
				if !rep.Verified || rep.FinalVersion != 6 {
					t.Fatalf("report: %+v", rep)
				}
				if _, err := smig.Up(ctx, migrate.UpOptions{}); err != nil {
					t.Fatal(err)
				}
				sameAcross(t, src, target)
				if to == database.SQLite {
					// Times in a form SQLite's date functions read.
					var n int64
					if err := target.QueryRowContext(ctx, "SELECT count(*) FROM runs WHERE julianday(created_at) IS NULL").Scan(&n); err != nil || n != 0 {
						t.Errorf("%d runs.created_at SQLite cannot read as a time (%v)", n, err)
					}
				}
			})
		}
	}
}

// sameAcross compares every table of src and target (but ferry's own)
// value for value, each value in the canonical form of the target
// column's type.
func sameAcross(t *testing.T, src, target *database.DB) {
	t.Helper()
	ctx := tctx(t)
	own := ownTables("ferry_migrations")
	st, err := catalog(ctx, src, src.URL.Kind, own)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := catalog(ctx, target, target.URL.Kind, own)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != len(tt) {
		t.Fatalf("%d tables in the source, %d in the target", len(st), len(tt))
	}
	for _, s := range st {
		i := slices.IndexFunc(tt, func(x *Table) bool { return x.Name == s.Name })
		if i < 0 {
			t.Errorf("table %s is not in the target", s.Name)
			continue
		}
		d := tt[i]
		var canon []func(any) any
		for _, c := range s.Columns {
			dc := d.column(c.Name)
			if dc == nil {
				t.Fatalf("column %s.%s is not in the target", s.Name, c.Name)
			}
			// The import's own comparison form for the column.
			f := convertColumn(src.URL.Kind, c, target.URL.Kind, *dc).canon
			if f == nil {
				f = canonical(classify(target.URL.Kind, dc.Type))
			}
			canon = append(canon, f)
		}
		// The target's columns in the source's order.
		dt := &Table{Name: d.Name}
		for _, c := range s.Columns {
			dt.Columns = append(dt.Columns, *d.column(c.Name))
		}
		want := canonRows(t, ctx, src, s, canon)
		got := canonRows(t, ctx, target, dt, canon)
		if !slices.Equal(want, got) {
			t.Errorf("table %s differs from %s to %s:\n source %q\n target %q", s.Name, src.URL.Kind, target.URL.Kind, head(want), head(got))
		}
	}
}

func canonRows(t *testing.T, ctx context.Context, db *database.DB, tb *Table, canon []func(any) any) []string {
	t.Helper()
	r, err := readRows(ctx, db, db.URL.Kind, &Table{Name: tb.Name, Columns: tb.Columns})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	var out []string
	for {
		ok, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		for i, c := range canon {
			r.values()[i] = c(r.values()[i])
		}
		out = append(out, string(bytes.TrimSpace(appendRow(nil, r.values()))))
	}
	slices.Sort(out)
	return out
}

func head(rows []string) string {
	var b strings.Builder
	for i, r := range rows {
		if i == 4 {
			fmt.Fprintf(&b, "... (%d rows)", len(rows))
			break
		}
		if len(r) > 200 {
			r = r[:200] + "..."
		}
		b.WriteString(r + "\n")
	}
	return b.String()
}

// TestCopyAcrossEngines: a production PostgreSQL database onto a laptop's
// SQLite file, and a SQLite database into MySQL, in one command each.
func TestCopyAcrossEngines(t *testing.T) {
	for _, pair := range [][2]string{{database.Postgres, database.SQLite}, {database.SQLite, database.MySQL}} {
		t.Run(pair[0]+"_to_"+pair[1], func(t *testing.T) {
			ctx := tctx(t)
			src := testdb.New(t, pair[0]).DB
			smig := serviceAt2(t, src, true)
			exec(t, src, `UPDATE runs SET cost = '12.5' WHERE id = 2`)
			target := testdb.New(t, pair[1]).DB
			tmig := serviceMigrator(t, target)
			rep, err := Copy(ctx, src, smig, target, tmig, CopyOptions{Mapping: &Mapping{Casts: []string{"runs.cost"}}})
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if !rep.Verified || rep.FinalVersion != 6 {
				t.Fatalf("report %+v", rep)
			}
			if _, err := smig.Up(ctx, migrate.UpOptions{}); err != nil {
				t.Fatal(err)
			}
			sameAcross(t, src, target)
		})
	}
}

// copyAcross makes a source database of engine from with the migration
// srcDDL and the rows of seed, copies it into a new database of engine to
// whose migration is dstDDL (the same version), and returns the target.
func copyAcross(t *testing.T, from, srcDDL, seed, to, dstDDL string) *database.DB {
	t.Helper()
	ctx := tctx(t)
	src := testdb.New(t, from).DB
	smig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\n" + srcDDL + ";\n"})(src)
	if _, err := smig.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	exec(t, src, seed)
	target := testdb.New(t, to).DB
	tmig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\n" + dstDDL + ";\n"})(target)
	if _, err := Copy(ctx, src, smig, target, tmig, CopyOptions{}); err != nil {
		t.Fatalf("copy: %v", err)
	}
	return target
}

// TestTargetMigrationsLackColumn: across engines into an empty target
// whose own migrations do not create a column the source's did, the
// error says to fix those migrations, not to write a mapping (which an
// import into an empty database refuses): found on a scratch database
// before anything changes (SQLite), or once the target is migrated.
func TestTargetMigrationsLackColumn(t *testing.T) {
	ctx := tctx(t)
	src := testdb.New(t, database.Postgres).DB
	smig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE s (id int PRIMARY KEY, note text);\n"})(src)
	if _, err := smig.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	exec(t, src, "INSERT INTO s VALUES (1, 'a')")
	st, _ := OpenStore(ctx, t.TempDir())
	m, err := Export(ctx, st, src, smig, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{database.SQLite, database.MySQL} {
		target := testdb.New(t, kind).DB
		tmig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE s (id INTEGER PRIMARY KEY);\n"})(target)
		if kind == database.SQLite {
			// Found before anything changes: --plan shows it, and the plan.
			rep, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Plan: true})
			if !errors.Is(err, ErrMapping) || rep == nil || !rep.Planned || len(rep.Tables) != 1 {
				t.Errorf("plan: %v %+v", err, rep)
			}
		}
		_, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{})
		if !errors.Is(err, ErrMapping) || !strings.Contains(err.Error(), "do not create column s.note") || strings.Contains(err.Error(), "mapping file") {
			t.Errorf("%s: %v", kind, err)
		}
	}
}

// TestCopyMySQLFloats: a MySQL FLOAT goes into PostgreSQL's real and
// numeric as the number it holds (19.99, not 19.989999771118164), and
// back.
func TestCopyMySQLFloats(t *testing.T) {
	target := copyAcross(t, database.MySQL, "CREATE TABLE f (id INT PRIMARY KEY, v FLOAT, price FLOAT NOT NULL)",
		"INSERT INTO f VALUES (1, 0.1, 19.99), (2, 16777216, 0.5), (3, NULL, 1234.56)",
		database.Postgres, "CREATE TABLE f (id int PRIMARY KEY, v real, price numeric(10, 2) NOT NULL)")
	if got := queryString(t, target, "SELECT string_agg(concat_ws('|', id, v, price), ';' ORDER BY id) FROM f"); got != "1|0.1|19.99;2|1.6777216e+07|0.50;3|1234.56" {
		t.Errorf("rows in PostgreSQL: %s", got)
	}
}

// TestCopyMidnightsIntoDates: PostgreSQL times at midnight go into MySQL
// DATE columns and verify; a big numeric's whole number into an unsigned
// BIGINT too.
func TestCopyMidnightsIntoDates(t *testing.T) {
	target := copyAcross(t, database.Postgres, "CREATE TABLE n (id int PRIMARY KEY, t timestamp, tz timestamptz, big numeric(22, 2))",
		"INSERT INTO n VALUES (1, '2024-01-01 00:00:00', '2024-01-01 00:00:00+00', 18446744073709551615.00), (2, '1999-12-31', NULL, 5)",
		database.MySQL, "CREATE TABLE n (id INT PRIMARY KEY, t DATE, tz DATE, big BIGINT UNSIGNED)")
	if got := queryString(t, target, "SELECT GROUP_CONCAT(CONCAT_WS('|', id, t, COALESCE(tz, 'NULL'), big) ORDER BY id SEPARATOR ';') FROM n"); got != "1|2024-01-01|2024-01-01|18446744073709551615;2|1999-12-31|NULL|5" {
		t.Errorf("rows in MySQL: %s", got)
	}
}

// TestLoadDataWarnings: a value MySQL's LOAD DATA would clip (a TIMESTAMP
// past 2038) fails the load, naming MySQL's first warning.
func TestLoadDataWarnings(t *testing.T) {
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE ev (id INTEGER PRIMARY KEY, ts TIMESTAMP NULL);\n"}
	ctx := tctx(t)
	src := testdb.New(t, database.SQLite)
	st, m, mig := exportOf(t, src.DB, files, []string{"INSERT INTO ev VALUES (1, '2026-03-04 00:00:00'), (2, '2040-01-01 00:00:00')"}, ExportOptions{})
	target := testdb.New(t, database.MySQL).DB
	_, err := Import(ctx, st, m.ID, target, mig(target), ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "warnings") || !strings.Contains(err.Error(), "ts") {
		t.Fatalf("import of a TIMESTAMP past 2038 into MySQL: %v", err)
	}
}

// TestLoadDataDuplicateKey: keys distinct in SQLite that MySQL's
// case-insensitive collation finds equal fail the load, whether the table
// loads as a small one or as a large one (with unique_checks off where
// the server sorts its keys: see sortsKeys), and leave it empty.
func TestLoadDataDuplicateKey(t *testing.T) {
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE ev (id VARCHAR(10) PRIMARY KEY, n INTEGER NOT NULL);\nCREATE INDEX ev_n ON ev (n);\n"}
	ctx := tctx(t)
	src := testdb.New(t, database.SQLite)
	st, m, mig := exportOf(t, src.DB, files, []string{"INSERT INTO ev VALUES ('a', 1), ('b', 2), ('A', 3)"}, ExportOptions{})
	for _, bulk := range []int64{0, 1} {
		target := testdb.New(t, database.MySQL).DB
		_, err := Import(ctx, st, m.ID, target, mig(target), ImportOptions{bulkRows: bulk})
		if err == nil || !strings.Contains(err.Error(), "Duplicate entry") || !strings.Contains(err.Error(), "table ev") ||
			!strings.Contains(err.Error(), "and SQLite, where these rows were exported from, compares them exactly") ||
			!strings.Contains(err.Error(), "if they are the same key, the source holds it twice") {
			t.Fatalf("import (bulkRows %d) of keys MySQL finds equal: %v", bulk, err)
		}
		var n int
		if err := target.QueryRowContext(ctx, "SELECT COUNT(*) FROM ev").Scan(&n); err != nil || n != 0 {
			t.Fatalf("ev after the failed load (bulkRows %d): %d rows (%v)", bulk, n, err)
		}
	}
}

// TestKeysMySQLMatchedByCollation: a child whose text key MySQL matched
// to its parent's only by the collation (case, trailing spaces) has no
// parent in PostgreSQL or SQLite: the import fails and says why.
func TestKeysMySQLMatchedByCollation(t *testing.T) {
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE p (code VARCHAR(10) PRIMARY KEY);\nCREATE TABLE c (id INTEGER PRIMARY KEY, code VARCHAR(10) NOT NULL REFERENCES p (code));\n"}
	ctx := tctx(t)
	src := testdb.New(t, database.MySQL)
	st, m, mig := exportOf(t, src.DB, files, []string{"INSERT INTO p VALUES ('ABC'), ('b ')", "INSERT INTO c VALUES (1, 'abc'), (2, 'b'), (3, 'ABC')"}, ExportOptions{})
	for _, kind := range []string{database.Postgres, database.SQLite} {
		target := testdb.New(t, kind).DB
		_, err := Import(ctx, st, m.ID, target, mig(target), ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "table c") ||
			!strings.Contains(err.Error(), "MySQL, where these rows were exported from, matched these text keys by the column's collation") {
			t.Errorf("import into %s of keys MySQL matched by collation: %v", kind, err)
		}
		// SQLite's verification finds it (PostgreSQL's load does), and
		// says at once that no run finishes it.
		if kind == database.SQLite && (!errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "so it cannot be finished: drop the database, create it empty, and import again")) {
			t.Errorf("a failed verification does not say what to do: %v", err)
		}
		if kind != database.SQLite {
			continue
		}
		// Found by the verification: running the import again cannot
		// help, and says so, as ferry status does; it changes nothing,
		// as for a target that is not empty (exit 2).
		_, err = Import(ctx, st, m.ID, target, mig(target), ImportOptions{})
		if !errors.Is(err, ErrMismatch) || !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "drop this database, create it empty, and import again") {
			t.Errorf("a re-run of an import whose verification failed: %v", err)
		}
		if u, err := UnfinishedImports(ctx, target, "ferry_migrations"); err != nil || len(u) != 1 || !u[0].Mismatch || u[0].Command() != "" || !strings.Contains(u[0].Finish(), "cannot be finished: drop the database") || strings.Contains(u[0].IfCutShort(), "cut short") {
			t.Errorf("unfinished imports after a failed verification: %+v %v", u, err)
		}
	}
}

// TestImportAcrossEnginesRefusesValues: a value the target's type cannot
// carry stops the load, naming table, column, row and value; nothing of
// the table is loaded.
func TestImportAcrossEnginesRefusesValues(t *testing.T) {
	ctx := tctx(t)
	src := testdb.New(t, database.SQLite).DB
	smig := serviceAt2(t, src, true)
	exec(t, src, `UPDATE runs SET cost = '12.5' WHERE id = 2`)
	exec(t, src, `UPDATE runs SET created_at = 'yesterday' WHERE id = 3`)
	st, err := OpenStore(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := Export(ctx, st, src, smig, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := testdb.New(t, database.Postgres).DB
	rep, err := Import(ctx, st, m.ID, target, serviceMigrator(t, target), ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "tables/runs/") || !strings.Contains(err.Error(), "(id 3): column created_at") || !strings.Contains(err.Error(), `"yesterday" is not a time`) {
		t.Fatalf("import of a text that is no time into timestamptz: %v", err)
	}
	if ps := rep.Problems; len(ps) != 1 || ps[0].Table != "runs" || ps[0].Chunk != m.table("runs").Chunks[0].Name || ps[0].What != "value" {
		t.Errorf("the report's problems: %+v, want one value problem in runs' chunk", ps)
	}
	// No run goes past the value: status and the release gate say so.
	if u, err := UnfinishedImports(ctx, target, serviceMigrator(t, target).Table()); err != nil || len(u) != 1 || !u[0].Refused || !u[0].Stuck() || u[0].Command() != "" {
		t.Errorf("unfinished after a load stopped at a value: %+v %v", u, err)
	}
	// A plan of a run again says where the last one stopped.
	plan, err := Import(ctx, st, m.ID, target, serviceMigrator(t, target), ImportOptions{Plan: true})
	if err != nil || !slices.ContainsFunc(plan.Steps, func(s string) bool {
		return strings.Contains(s, "an earlier run that stopped at a value the target cannot take")
	}) {
		t.Errorf("a plan after a load stopped at a value: %v %q", err, plan.Steps)
	}
	var n int64
	if err := target.QueryRowContext(ctx, "SELECT count(*) FROM runs").Scan(&n); err != nil || n != 0 {
		t.Fatalf("runs after the failed load: %d (%v)", n, err)
	}
}

func TestConverters(t *testing.T) {
	for _, c := range []struct {
		kind, typ string
		in        value
		want      string // the converted value's text, or the error's
	}{
		{database.Postgres, "integer", value{kind: kText, s: "42"}, "42"},
		{database.Postgres, "smallint", value{kind: kInt, s: "70000"}, "error: does not fit a 16-bit integer"},
		{database.Postgres, "bigint", value{kind: kText, s: "4x"}, `error: "4x" is not an integer`},
		{database.Postgres, "numeric(5,2)", value{kind: kFloat, s: "1.5"}, "1.50"},
		{database.Postgres, "numeric(5,2)", value{kind: kText, s: "1.005"}, "error: more than 2 digits after the point"},
		{database.Postgres, "numeric(5,2)", value{kind: kText, s: "1234.5"}, "error: more than 3 digits before the point"},
		{database.MySQL, "varchar(3)", value{kind: kText, s: "日本語"}, "日本語"},
		{database.Postgres, "jsonb", value{kind: kText, s: `{"a":1,"b":{"c":[{"a":2}],"c2":3},"a":2}`}, `error: has the key "a" twice in one object`},
		{database.Postgres, "jsonb", value{kind: kText, s: `{"a":1,"b":[{"a":2},{"a":3}],"c":{"a":{"a":4}}}`}, `{"a":1,"b":[{"a":2},{"a":3}],"c":{"a":{"a":4}}}`},
		{database.Postgres, "json", value{kind: kText, s: `{"a":1,"a":2}`}, `{"a":1,"a":2}`},
		{database.MySQL, "json", value{kind: kText, s: `[{"x":1,"y":{"x":2},"x":3}]`}, `error: has the key "x" twice`},
		{database.MySQL, "varchar(3)", value{kind: kText, s: "abcd"}, "error: longer than 3 characters"},
		{database.MySQL, "datetime(6)", value{kind: kText, s: "2026-03-04 05:06:07.5+02:00"}, "2026-03-04 03:06:07.5"},
		{database.MySQL, "datetime", value{kind: kText, s: "2026-03-04 05:06:07.5"}, "error: more than 0 digits of a second"},
		{database.MySQL, "tinyint(1)", value{kind: kInt, s: "2"}, "error: not a boolean"},
		{database.Postgres, "jsonb", value{kind: kText, s: "{"}, "error: is not JSON"},
		{database.Postgres, "text", value{kind: kBytes, b: []byte{0xff}}, "error: not UTF-8"},
		{database.SQLite, "TEXT", value{kind: kBool, t: true}, "true"},
		{database.Postgres, "timestamp with time zone", value{kind: kText, s: "2026-03-04 05:06:07"}, "2026-03-04 05:06:07+00:00"},
		{database.SQLite, "DATETIME", value{kind: kText, s: "2026-03-04 05:06:07.5+00"}, "2026-03-04 05:06:07.5+00:00"},
		{database.MySQL, "tinyint(3) unsigned", value{kind: kInt, s: "200"}, "200"},
		{database.MySQL, "int(10) unsigned", value{kind: kInt, s: "-1"}, "error: does not fit a 32-bit unsigned integer"},
		{database.MySQL, "bigint(20) unsigned", value{kind: kText, s: "18446744073709551615"}, "18446744073709551615"},
		{database.SQLite, "REAL", value{kind: kFloat, s: "NaN"}, "error: has no value in sqlite's floats"},
		{database.Postgres, "double precision", value{kind: kFloat, s: "NaN"}, "NaN"},
		{database.Postgres, "text", value{kind: kText, s: "a\x00b"}, "error: NUL character"},
		{database.MySQL, "text", value{kind: kText, s: "a\xffb"}, "error: not UTF-8 text"},
		// A float must be the number itself: the canonical forms would
		// round both sides alike.
		{database.Postgres, "real", value{kind: kInt, s: "16777217"}, "error: 16777217 is not exactly a single-precision float (the nearest is 1.6777216e+07)"},
		{database.Postgres, "real", value{kind: kInt, s: "16777216"}, "1.6777216e+07"},
		{database.Postgres, "real", value{kind: kText, s: "0.1"}, "0.10000000149011612"},
		{database.Postgres, "real", value{kind: kText, s: "0.1234567891"}, "error: not exactly a single-precision float"},
		{database.Postgres, "double precision", value{kind: kText, s: "18446744073709551615"}, "error: not exactly a double"},
		{database.Postgres, "double precision", value{kind: kText, s: "9007199254740993"}, "error: not exactly a double"},
		{database.Postgres, "double precision", value{kind: kInt, s: "9007199254740992"}, "9.007199254740992e+15"},
		{database.MySQL, "double", value{kind: kFloat, s: "0.12345670163631439"}, "0.12345670163631439"},
		{database.Postgres, "real", value{kind: kFloat, s: "0.12345670163631439"}, "0.12345670163631439"},
		{database.Postgres, "real", value{kind: kText, s: "19.99"}, "19.989999771118164"},
		{database.Postgres, "double precision", value{kind: kInt, s: "1152921504606846976"}, "1.152921504606847e+18"},
		{database.Postgres, "bigint", value{kind: kText, s: "12345678901234567.00"}, "12345678901234567"},
		{database.Postgres, "bigint", value{kind: kText, s: "99999999999999999999.00"}, "error: does not fit a 64-bit integer"},
		{database.MySQL, "bigint(20) unsigned", value{kind: kText, s: "18446744073709551615.0"}, "18446744073709551615"},
		{database.Postgres, "date", value{kind: kText, s: "2026-01-01 00:00:00"}, "2026-01-01"},
		{database.Postgres, "date", value{kind: kText, s: "2026-01-01 00:00:00+00"}, "2026-01-01"},
		{database.Postgres, "date", value{kind: kText, s: "2026-01-01 10:00:00"}, "error: is not a date"},
		{database.Postgres, "real", value{kind: kText, s: "3.4028234663852886e+38"}, "3.4028234663852886e+38"},
		{database.MySQL, "float", value{kind: kFloat, s: "1e39"}, "error: 1e39 is past a single-precision float's range"},
		{database.MySQL, "double", value{kind: kFloat, s: "-0"}, "0"},
		{database.Postgres, "double precision", value{kind: kFloat, s: "-0"}, "-0"},
		{database.SQLite, "REAL", value{kind: kFloat, s: "-0"}, "0"},
		{database.MySQL, "datetime(6)", value{kind: kText, s: "0001-12-31 19:00:00+00 BC"}, "error: is before the year 1 (in UTC)"},
		{database.Postgres, "timestamp with time zone", value{kind: kText, s: "0000-00-00 00:00:00.000000"}, "error: is a MySQL zero date"},
		{database.Postgres, "timestamp with time zone", value{kind: kText, s: "2020-00-00 00:00:00"}, "error: is a MySQL zero date"},
		{database.Postgres, "date", value{kind: kText, s: "0000-00-00"}, "error: is a MySQL zero date"},
		{database.MySQL, "date", value{kind: kText, s: "0100-01-01 BC"}, "error: is before the year 1 (in UTC), which mysql's dates"},
		{database.Postgres, "date", value{kind: kText, s: "2020-13-01"}, "error: is not a date"},
	} {
		f := converterTo(classify(c.kind, c.typ), false)
		got, err := f(c.in)
		if want, fails := strings.CutPrefix(c.want, "error: "); fails {
			if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, errValue) {
				t.Errorf("%s %s <- %+v: got %q, %v; want an errValue saying %q", c.kind, c.typ, c.in, got.s, err, want)
			}
		} else if err != nil || got.s != want {
			t.Errorf("%s %s <- %+v: got %q, %v; want %q", c.kind, c.typ, c.in, got.s, err, want)
		}
	}
	if got := convertColumn(database.Postgres, Column{Type: "numeric(20,6)"}, database.SQLite, Column{Type: "DECIMAL(20, 6)"}); got.lossy == "" {
		t.Errorf("numeric into SQLite's DECIMAL is not lossy: %+v", got)
	}
	if got := convertColumn(database.MySQL, Column{Type: "bigint(20)"}, database.Postgres, Column{Type: "bigint"}); got.lossy != "" {
		t.Errorf("bigint into bigint is lossy: %+v", got)
	}
	for in, want := range map[string]string{"12.345600": "12.3456", "1e2": "100", "-0.50": "-0.5", "007": "7", "1.25e-1": "0.125"} {
		if got, ok := canonDecimal(in); !ok || got != want {
			t.Errorf("canonDecimal(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCanonicalTimesAndUUIDs: the verification across engines compares
// a time of day and a UUID as values, not as each engine prints them
// (MySQL's TIME(3) keeps trailing zeros PostgreSQL drops; PostgreSQL
// prints a uuid in lower case).
func TestCanonicalTimesAndUUIDs(t *testing.T) {
	for _, c := range []struct{ kind, typ, in, want string }{
		{database.Postgres, "time(3) without time zone", "00:00:00", "00:00:00"},
		{database.Postgres, "time(3) without time zone", "12:34:56.78", "12:34:56.78"},
		{database.MySQL, "time(3)", "00:00:00.000", "00:00:00"},
		{database.MySQL, "time(3)", "12:34:56.780", "12:34:56.78"},
		{database.MySQL, "time", "100:00:00", "100:00:00"},
		{database.Postgres, "uuid", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{database.Postgres, "text", "ABC 0.500", "ABC 0.500"}, // other text as it is
	} {
		if got := canonicalOf(classify(c.kind, c.typ))(c.in); got != c.want {
			t.Errorf("%s %s: canonical %q = %v, want %q", c.kind, c.typ, c.in, got, c.want)
		}
	}
	// A decimal's whole number, loaded into an integer column as 5; one
	// past int64, into an unsigned BIGINT; a time at midnight, into a
	// date; a negative zero, into MySQL and SQLite (which keep none).
	for _, c := range []struct {
		kind, typ string
		in, want  any
	}{
		{database.Postgres, "integer", "5.00", int64(5)},
		{database.MySQL, "bigint(20) unsigned", "18446744073709551615.00", "18446744073709551615"},
		{database.MySQL, "bigint(20) unsigned", "18446744073709551615", "18446744073709551615"},
		{database.MySQL, "date", "2024-01-01 00:00:00+00", "2024-01-01"},
		{database.MySQL, "date", "2024-01-01", "2024-01-01"},
		{database.MySQL, "date", "2024-01-01 10:00:00", "2024-01-01 10:00:00"},
		{database.MySQL, "float", "-0", float64(0)},
		{database.SQLite, "REAL", "-0", float64(0)},
	} {
		if got := canonicalOf(classify(c.kind, c.typ))(c.in); got != c.want {
			t.Errorf("canonical %s %s of %v: %#v, want %#v", c.kind, c.typ, c.in, got, c.want)
		}
	}
}

// TestScratchSkipsFileWriters: a SQLite target migration that writes a
// file (VACUUM INTO) is not run on the scratch database that finds lossy
// casts first, so neither --plan nor the import runs it twice.
func TestScratchSkipsFileWriters(t *testing.T) {
	ctx := tctx(t)
	src := testdb.New(t, database.Postgres).DB
	side := filepath.Join(t.TempDir(), "before_v2.db")
	table := "-- +ferry up\nCREATE TABLE t (id INTEGER PRIMARY KEY, amount NUMERIC(10,2));\n"
	migs := map[string]func(*database.DB) *migrate.Migrator{
		database.Postgres: migratorOf(t, map[string]string{"001_t.sql": table, "002_side.sql": "-- +ferry up\nSELECT 1;\n"}),
		database.SQLite:   migratorOf(t, map[string]string{"001_t.sql": table, "002_side.sql": "-- +ferry up\n-- +ferry no-transaction\nVACUUM INTO '" + side + "';\n"}),
	}
	mig := func(db *database.DB) *migrate.Migrator { return migs[db.URL.Kind](db) }
	smig := mig(src)
	if _, err := smig.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	exec(t, src, "INSERT INTO t VALUES (1, 12.5)")
	st, _ := OpenStore(ctx, t.TempDir())
	m, err := Export(ctx, st, src, smig, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := testdb.New(t, database.SQLite).DB
	tmig := mig(target)
	if _, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Plan: true}); err != nil {
		t.Fatalf("plan: %v", err)
	}
	if _, err := os.Stat(side); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the plan ran the migration that writes a file: %v", err)
	}
	// Checked once migrated, as into PostgreSQL or MySQL.
	if _, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{}); !errors.Is(err, ErrMapping) || !strings.Contains(err.Error(), "casts: [t.amount]") {
		t.Fatalf("import without the cast: %v", err)
	}
	if rep, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Mapping: &Mapping{Casts: []string{"t.amount"}}}); err != nil || !rep.Verified {
		t.Fatalf("import: %v", err)
	}
	if _, err := os.Stat(side); err != nil {
		t.Errorf("the migration's file: %v", err)
	}
}

// forgeChunk rewrites the first chunk of table in export m with edit, and
// the chunk's size and sha256 in the manifest to match: an export changed
// by someone who could write to the store.
func forgeChunk(t *testing.T, st *Store, m *Manifest, table string, edit func([]byte) []byte) {
	t.Helper()
	dir := filepath.Join(strings.TrimPrefix(st.String(), "file://"), m.ID)
	var c Chunk
	for _, te := range m.Tables {
		if te.Name == table {
			c = te.Chunks[0]
		}
	}
	stored, err := os.ReadFile(filepath.Join(dir, c.Name))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(s2.NewReader(bytes.NewReader(stored)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := s2.NewWriter(&out)
	if _, err := w.Write(edit(plain)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, c.Name), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out.Bytes())
	editManifest(t, st, m.ID, func(doc map[string]any) {
		for _, te := range doc["tables"].([]any) {
			for _, ch := range te.(map[string]any)["chunks"].([]any) {
				if ch := ch.(map[string]any); ch["name"] == c.Name {
					ch["sha256"], ch["size"], ch["raw_size"] = hex.EncodeToString(sum[:]), out.Len(), len(edit(plain))
				}
			}
		}
	})
}

// TestImportRefusesEditedChunks: rows changed in a chunk whose sha256 was
// changed to match fail an import that compares the loaded rows with the
// chunks' (across engines) against the manifest's row checksum, and a
// chunk holding more rows than the manifest says fails any import; the
// table is not loaded.
func TestImportRefusesEditedChunks(t *testing.T) {
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE ev (id INTEGER PRIMARY KEY, v VARCHAR(10) NOT NULL);\n"}
	ctx := tctx(t)
	for _, c := range []struct {
		target string
		edit   func([]byte) []byte
		want   string
	}{
		{database.MySQL, func(b []byte) []byte { return bytes.Replace(b, []byte(`"b"`), []byte(`"x"`), 1) }, "add up to row checksum"},
		{database.SQLite, func(b []byte) []byte { return append(b, "[3,\"c\"]\n"...) }, "holds more than the 2 rows the manifest says"},
		{database.Postgres, func(b []byte) []byte { return append(b, "[3,\"c\"]\n"...) }, "holds more than the 2 rows the manifest says"},
	} {
		src := testdb.New(t, database.SQLite)
		st, m, mig := exportOf(t, src.DB, files, []string{"INSERT INTO ev VALUES (1, 'a'), (2, 'b')"}, ExportOptions{})
		forgeChunk(t, st, m, "ev", c.edit)
		target := testdb.New(t, c.target).DB
		_, err := Import(ctx, st, m.ID, target, mig(target), ImportOptions{})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("import into %s of an edited chunk: %v", c.target, err)
		}
		if got := queryString(t, target, "SELECT COUNT(*) FROM ev"); got != "0" {
			t.Errorf("%s: %s rows of the edited table loaded", c.target, got)
		}
	}
}

// TestConversionErrorHidesEncryptedValues: a value of an encrypted table
// that does not fit the target's column is not printed in the error.
func TestConversionErrorHidesEncryptedValues(t *testing.T) {
	ctx := tctx(t)
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE s (id INTEGER PRIMARY KEY, secret TEXT NOT NULL);\n"}
	tmig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE s (id int PRIMARY KEY, secret varchar(5) NOT NULL);\n"})
	for _, encrypt := range []string{"", EncryptAll} {
		src := testdb.New(t, database.SQLite).DB
		st, m, _ := exportOf(t, src, files, []string{"INSERT INTO s VALUES (1, 'hunter2-and-more')"}, ExportOptions{Encrypt: encrypt, Recipients: []age.Recipient{key.Recipient()}})
		target := testdb.New(t, database.Postgres).DB
		_, err = Import(ctx, st, m.ID, target, tmig(target), ImportOptions{Identities: []age.Identity{key}})
		if err == nil || !strings.Contains(err.Error(), "column secret") || strings.Contains(err.Error(), "hunter2") != (encrypt == "") {
			t.Errorf("import (encrypt %q) of a value too long: %v", encrypt, err)
		}
	}
}

// TestDatabaseErrorHidesEncryptedValues: a row of an encrypted table that
// the target refuses (a CHECK in PostgreSQL, a duplicate key in MySQL) is
// named without its values, which PostgreSQL's detail and MySQL's message
// would quote.
func TestDatabaseErrorHidesEncryptedValues(t *testing.T) {
	ctx := tctx(t)
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	st, m, _ := exportOf(t, testdb.New(t, database.SQLite).DB, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE s (id INTEGER PRIMARY KEY, secret TEXT NOT NULL);\n"},
		[]string{"INSERT INTO s VALUES (1, 'x''hunter2-x'), (2, 'X''HUNTER2-X')"}, ExportOptions{Encrypt: EncryptAll, Recipients: []age.Recipient{key.Recipient()}})
	for _, c := range []struct{ kind, ddl, also string }{
		{database.Postgres, "CREATE TABLE s (id int PRIMARY KEY, secret text NOT NULL CHECK (secret NOT LIKE 'x%'))", "violates check constraint"},
		{database.Postgres, "CREATE TABLE s (id int PRIMARY KEY, secret uuid NOT NULL)", "invalid input syntax for type uuid: (the value is not shown)"},
		// MySQL quotes the value without escaping its apostrophe; that
		// the keys differ only by case is still said.
		{database.MySQL, "CREATE TABLE s (id int PRIMARY KEY, secret varchar(20) NOT NULL UNIQUE)", "collation"},
	} {
		target := testdb.New(t, c.kind).DB
		tmig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\n" + c.ddl + ";\n"})
		_, err := Import(ctx, st, m.ID, target, tmig(target), ImportOptions{Identities: []age.Identity{key}})
		if err == nil || !strings.Contains(err.Error(), "table s") || !strings.Contains(err.Error(), c.also) || strings.Contains(strings.ToLower(err.Error()), "hunter2") {
			t.Errorf("import into %s (%s) of a row it refuses: %v", c.kind, c.ddl, err)
		}
	}
}

// TestNumericKeyNoCollationHint: a duplicate number is no matter of
// collation, and the error does not say it is.
func TestNumericKeyNoCollationHint(t *testing.T) {
	st, m, _ := exportOf(t, testdb.New(t, database.SQLite).DB, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE s (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);\n"},
		[]string{"INSERT INTO s VALUES (1, 5), (2, 5)"}, ExportOptions{})
	target := testdb.New(t, database.MySQL).DB
	tmig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE s (id int PRIMARY KEY, n int NOT NULL UNIQUE);\n"})
	_, err := Import(tctx(t), st, m.ID, target, tmig(target), ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "Duplicate entry '5'") || strings.Contains(err.Error(), "collation") {
		t.Errorf("import of a duplicate number: %v", err)
	}
}

// TestTextualKey: which key values in a database's error could have
// matched another only by a collation.
func TestTextualKey(t *testing.T) {
	for msg, want := range map[string]bool{
		`Key (code)=(abc) is not present in table "p".`:               true,
		`Key (a, b)=(1, 2) is not present in table "p".`:              false,
		`Key (at)=(2024-01-01 10:00:00) is not present in table "p".`: false,
	} {
		if got := textual(between(msg, ")=(", ") is not present")); got != want {
			t.Errorf("%s: textual %v", msg, got)
		}
	}
	for msg, want := range map[string]bool{
		"Duplicate entry 'x'HUNTER2' for key 'secret'":       true,
		"Duplicate entry '2024-01-01 10:00:00' for key 'at'": false,
		"Duplicate entry '1-2' for key 'PRIMARY'":            false,
	} {
		if got := textual(between(msg, "entry '", "' for key")); got != want {
			t.Errorf("%s: textual %v", msg, got)
		}
	}
}

// TestUnownedSequenceAcross: a PostgreSQL sequence no column owns has no
// place in MySQL or SQLite; the import says which it leaves behind.
func TestUnownedSequenceAcross(t *testing.T) {
	ctx := tctx(t)
	src := testdb.New(t, database.Postgres).DB
	st, m, _ := exportOf(t, src, map[string]string{"001_t.sql": "-- +ferry up\nCREATE SEQUENCE ticket_seq START 1371;\nCREATE TABLE tickets (id serial PRIMARY KEY, n bigint);\n"},
		[]string{"INSERT INTO tickets (n) VALUES (nextval('ticket_seq'))"}, ExportOptions{})
	target := testdb.New(t, database.SQLite).DB
	tmig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE tickets (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER);\n"})(target)
	var log bytes.Buffer
	if _, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Options: Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "the source's sequences that no column owns are not carried") || !strings.Contains(log.String(), "ticket_seq (next 1372)") || strings.Contains(log.String(), "tickets_id_seq") {
		t.Errorf("the import's log does not name the sequence it left behind (and only it):\n%s", log.String())
	}
}

// TestDamagedChunkMetByVerification: across engines the verification of a
// table an earlier run loaded reads its chunks again; one damaged since
// stops the import as a damaged chunk met by the load does: named in the
// problems, with what to do, and shown by status as stopped.
func TestDamagedChunkMetByVerification(t *testing.T) {
	ctx := tctx(t)
	src := testdb.New(t, database.SQLite).DB
	smig := serviceAt2(t, src, true)
	exec(t, src, `UPDATE runs SET cost = '12.5' WHERE id = 2`) // fits numeric(14, x)
	dir := t.TempDir()
	st, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := Export(ctx, st, src, smig, ExportOptions{ChunkBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	flip := func(table string) (restore func()) {
		t.Helper()
		path := filepath.Join(dir, m.ID, filepath.FromSlash(m.table(table).Chunks[0].Name))
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(orig)
		bad[len(bad)/2] ^= 0x40
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		return func() { os.WriteFile(path, orig, 0o600) }
	}
	target := testdb.New(t, database.Postgres).DB
	tmig := serviceMigrator(t, target)
	restore := flip("logs") // loaded late: it references runs
	if _, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Jobs: 1}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("import of a damaged logs chunk: %v", err)
	}
	restore()
	u, err := UnfinishedImports(ctx, target, tmig.Table())
	if err != nil || len(u) != 1 || len(u[0].Tables) == 0 {
		t.Fatalf("unfinished after the first run: %+v %v", u, err)
	}
	loaded := u[0].Tables[0]
	defer flip(loaded)()
	rep, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Jobs: 1})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "restore the export's objects from a copy of the store and run the same import again") {
		t.Fatalf("a run again, %s's chunk damaged since it was loaded: %v", loaded, err)
	}
	if ps := rep.Problems; len(ps) != 1 || ps[0].Table != loaded || ps[0].What != "chunk" || ps[0].Chunk != m.table(loaded).Chunks[0].Name {
		t.Errorf("problems: %+v, want the chunk of %s", ps, loaded)
	}
	if u, err := UnfinishedImports(ctx, target, tmig.Table()); err != nil || len(u) != 1 || !u[0].Damaged {
		t.Errorf("unfinished after the verification met the chunk: %+v %v", u, err)
	}
}

// TestMappedValueRefused: into a target that has its schema already, a
// value its narrower column cannot take stops the load, and the advice
// says that a migration after the narrowing one would not help a fresh
// import (which runs the narrowing one too).
func TestMappedValueRefused(t *testing.T) {
	ctx := tctx(t)
	tdb := testdb.New(t, database.Postgres)
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE t (id int PRIMARY KEY, note varchar(20));\n"}
	st, m, _ := exportOf(t, tdb.DB, files, []string{"INSERT INTO t VALUES (1, 'a note too long')"}, ExportOptions{})
	files["002_narrow.sql"] = "-- +ferry up\nALTER TABLE t ALTER COLUMN note TYPE varchar(5);\n"
	target := openURL(t, testdb.Create(t, tdb))
	tmig := migratorOf(t, files)(target)
	if _, err := tmig.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Import(ctx, st, m.ID, target, tmig, ImportOptions{Mapping: &Mapping{Casts: []string{"t.note"}}})
	if !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), "the target had its schema, at version 2, before this import") || !strings.Contains(err.Error(), "change the value at the source and export again") {
		t.Errorf("a value the mapped target's narrower column cannot take: %v", err)
	}
}
