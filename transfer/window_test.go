package transfer

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// TestWindowedExport exports the service's recent rows only and imports
// them with every constraint on: the children of dropped runs are
// dropped, and an old run a recent task references is kept.
func TestWindowedExport(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.FixedZone("", 2*3600))
	for _, tc := range []struct {
		name    string
		columns map[string]string
		// counts per table after the import
		want map[string]int64
	}{
		{"runs", map[string]string{"runs": "created_at"},
			map[string]int64{"runs": 1, "tasks": 0, "logs": 0, "artifacts": 2, "users": 3, "members": 2, "teams": 1, "variables": 3}},
		{"runs and tasks", map[string]string{"runs": "created_at", "tasks": "started_at"},
			map[string]int64{"runs": 2, "tasks": 1, "logs": 100, "artifacts": 3, "users": 3, "members": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, tdb *testdb.DB) {
				ctx := tctx(t)
				src := tdb.DB
				smig := serviceAt2(t, src, true)
				// A recent task of the oldest run.
				exec(t, src, `UPDATE tasks SET started_at = ? WHERE run_id = 1 AND step = 'start'`, at.Add(3*time.Hour))
				st, err := OpenStore(ctx, t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				// Runs at at, at+1h, at+2h: the window keeps the last.
				w := &Window{Cutoff: at.Add(90 * time.Minute), Columns: tc.columns}
				m, err := Export(ctx, st, src, smig, ExportOptions{Window: w, Jobs: 2, splitRows: 1})
				if err != nil {
					t.Fatal(err)
				}
				if m.Window == nil || !m.Window.Cutoff.Equal(w.Cutoff) || m.table("runs").Filter == "" || m.table("users").Filter != "" {
					t.Fatalf("manifest window %+v, runs filter %q, users filter %q", m.Window, m.table("runs").Filter, m.table("users").Filter)
				}
				target := openURL(t, testdb.Create(t, tdb))
				rep, err := Import(ctx, st, m.ID, target, serviceMigrator(t, target), ImportOptions{})
				if err != nil {
					t.Fatalf("import: %v (%+v)", err, rep)
				}
				for table, n := range tc.want {
					var got int64
					if err := target.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&got); err != nil {
						t.Fatal(err)
					}
					if got != n || m.table(table).Rows != n {
						t.Errorf("%s: %d rows exported, %d after import, want %d (filter %q)", table, m.table(table).Rows, got, n, m.table(table).Filter)
					}
				}
			})
		})
	}
}

func TestParseSince(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour} {
		if d, at, err := ParseSince(in); err != nil || d != want || !at.IsZero() {
			t.Errorf("ParseSince(%q) = %v %v %v, want %v", in, d, at, err, want)
		}
	}
	if d, at, err := ParseSince("2026-10-01"); err != nil || d != 0 || !at.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseSince(date) = %v %v %v", d, at, err)
	}
	for _, bad := range []string{"", "0d", "d", "-3d", "soon", "3x"} {
		if _, _, err := ParseSince(bad); err == nil {
			t.Errorf("ParseSince(%q): no error", bad)
		}
	}
}

// TestWindowEdges: what the review of the first version found: a row in
// the window whose referenced key is NULL is kept; MySQL compares text
// keys as its collation does; a column that is no time is refused.
func TestWindowEdges(t *testing.T) {
	files := map[string]string{"001_t.sql": `-- +ferry up
CREATE TABLE runs (id INTEGER PRIMARY KEY, created_at TIMESTAMP NULL, ext VARCHAR(20) UNIQUE);
CREATE TABLE run_links (id INTEGER PRIMARY KEY, ext VARCHAR(20) NOT NULL, at TIMESTAMP NULL,
    CONSTRAINT run_links_ext_fk FOREIGN KEY (ext) REFERENCES runs (ext));
`}
	seedSQL := []string{
		"INSERT INTO runs VALUES (1, '2026-03-02 00:00:00', 'A'), (2, '2026-03-03 00:00:00', NULL), (3, '2026-01-01 00:00:00', NULL), (4, '2026-01-01 00:00:00', 'D'), (5, '2026-01-01 00:00:00', 'E')",
		"INSERT INTO run_links VALUES (1, 'A', '2026-03-05 00:00:00')",
	}
	testdb.Each(t, func(t *testing.T, tdb *testdb.DB) {
		seeds := seedSQL
		want := map[string]int64{"runs": 2, "run_links": 1}
		if tdb.URL.Kind == database.MySQL {
			// A recent link to 'E' written 'e': the same key to MySQL.
			seeds = append(slices.Clone(seeds), "INSERT INTO run_links VALUES (2, 'e', '2026-03-04 00:00:00')")
			want = map[string]int64{"runs": 3, "run_links": 2}
		}
		w := &Window{Cutoff: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Columns: map[string]string{"runs": "created_at", "run_links": "at"}}
		target, m, err := roundTrip(t, tdb, files, seeds, ExportOptions{Window: w})
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		for table, n := range want {
			if got := m.table(table).Rows; got != n {
				t.Errorf("%s: %d rows exported, want %d", table, got, n)
			}
			var got int64
			if err := target.QueryRowContext(tctx(t), "SELECT count(*) FROM "+table).Scan(&got); err != nil || got != n {
				t.Errorf("%s: %d rows imported, want %d (%v)", table, got, n, err)
			}
		}
		st, _ := OpenStore(tctx(t), t.TempDir())
		smig, _ := migrate.New(tdb.DB.DB, tdb.DB.Dialect, migrate.WithDir(t.TempDir()))
		bad := []map[string]string{{"runs": "nosuch"}, {"nosuch": "at"}}
		if tdb.URL.Kind != database.SQLite {
			// SQLite's text and integers may hold times.
			bad = append(bad, map[string]string{"runs": "ext"}, map[string]string{"runs": "id"})
		}
		for _, cols := range bad {
			_, err := Export(tctx(t), st, tdb.DB, smig, ExportOptions{Window: &Window{Since: time.Hour, Columns: cols}})
			if !errors.Is(err, ErrWindow) {
				t.Errorf("window %v: %v, want ErrWindow", cols, err)
			}
		}
	})
}

// TestCopyWindow: ferry copy --since, into another engine: the same rows
// as a windowed export.
func TestCopyWindow(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.FixedZone("", 2*3600))
	ctx := tctx(t)
	src := testdb.New(t, database.Postgres).DB
	smig := serviceAt2(t, src, true)
	target := testdb.New(t, database.SQLite).DB
	w := &Window{Cutoff: at.Add(90 * time.Minute), Columns: map[string]string{"runs": "created_at"}}
	rep, err := Copy(ctx, src, smig, target, serviceMigrator(t, target), CopyOptions{Window: w, Mapping: &Mapping{Casts: []string{"runs.cost"}}})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if !rep.Verified {
		t.Fatalf("report %+v", rep)
	}
	for table, n := range map[string]int64{"runs": 1, "tasks": 0, "logs": 0, "artifacts": 2, "users": 3} {
		var got int64
		if err := target.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&got); err != nil || got != n {
			t.Errorf("%s: %d rows copied, want %d (%v)", table, got, n, err)
		}
	}
}

// TestWindowOnALeafTable: the window's only table references a table the
// window leaves whole, and nothing references it. Its condition alone
// decides which rows go (this read no columns and failed on MySQL and
// SQLite, which have no SELECT of nothing).
func TestWindowOnALeafTable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, tdb *testdb.DB) {
		at := map[string]string{database.Postgres: "TIMESTAMPTZ", database.MySQL: "DATETIME(6)", database.SQLite: "TEXT"}[tdb.Kind]
		files := map[string]string{"001_t.sql": "-- +ferry up\n" +
			"CREATE TABLE accounts (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL);\n" +
			"CREATE TABLE transfers (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id), at " + at + " NOT NULL);\n"}
		seed := []string{
			"INSERT INTO accounts (id, name) VALUES (1, 'a'), (2, 'b')",
			"INSERT INTO transfers (id, account_id, at) VALUES (1, 1, '2026-01-01 00:00:00'), (2, 2, '2026-07-01 00:00:00')",
		}
		w := &Window{Cutoff: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), Columns: map[string]string{"transfers": "at"}}
		target, _, err := roundTrip(t, tdb, files, seed, ExportOptions{Window: w})
		if err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, target, "SELECT CAST(COUNT(*) AS CHAR) FROM transfers WHERE id = 2"); got != "1" {
			t.Errorf("the recent transfer: %s rows", got)
		}
		if got := queryString(t, target, "SELECT CAST(COUNT(*) AS CHAR) FROM transfers"); got != "1" {
			t.Errorf("transfers: %s rows, want the recent one only", got)
		}
		if got := queryString(t, target, "SELECT CAST(COUNT(*) AS CHAR) FROM accounts"); got != "2" {
			t.Errorf("accounts: %s rows, want both (the window leaves the table whole)", got)
		}
	})
}

// TestWindowSQLiteTimes: a SQLite time column holds text in SQLite's time
// forms, Unix seconds or Julian day numbers, whatever its declared type,
// and each is windowed by its time; a value that is no time is refused,
// not left out without a word.
func TestWindowSQLiteTimes(t *testing.T) {
	var tdb *testdb.DB
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE events (id INTEGER PRIMARY KEY, at DATETIME, n INTEGER);\n"}
	cutoff := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	seed := []string{"INSERT INTO events VALUES " +
		"(1, 1795000000, 1795000000), " + // 2026-11-18 in Unix seconds: kept
		"(2, 1700000000, 1700000000), " + // 2023: left out
		"(3, '2026-11-18T11:06:40.5+00:00', '2026-11-18 11:06:40'), " + // kept
		"(4, '2023-11-14 22:13:20', '2023-11-14 22:13:20'), " +
		"(5, 2461362.5, 2461362.5), " + // 2026-11-18 as a Julian day: kept
		"(6, NULL, NULL)"}
	for _, col := range []string{"at", "n"} {
		tdb = testdb.New(t, database.SQLite)
		w := &Window{Cutoff: cutoff, Columns: map[string]string{"events": col}}
		target, m, err := roundTrip(t, tdb, files, seed, ExportOptions{Window: w})
		if err != nil {
			t.Fatalf("window on %s: %v", col, err)
		}
		if got := queryString(t, target, "SELECT group_concat(id) FROM (SELECT id FROM events ORDER BY id)"); got != "1,3,5" || m.table("events").Rows != 3 {
			t.Errorf("window on %s kept rows %s (%d exported), want 1,3,5", col, got, m.table("events").Rows)
		}
	}
	exec(t, tdb.DB, "INSERT INTO events VALUES (7, 'yesterday', 'yesterday')")
	st, _ := OpenStore(tctx(t), t.TempDir())
	smig, _ := migrate.New(tdb.DB.DB, tdb.DB.Dialect, migrate.WithDir(t.TempDir()))
	_, err := Export(tctx(t), st, tdb.DB, smig, ExportOptions{Window: &Window{Cutoff: cutoff, Columns: map[string]string{"events": "at"}}})
	if !errors.Is(err, ErrWindow) || !strings.Contains(err.Error(), `events.at holds values that are not times (1 of them, "yesterday" among them)`) {
		t.Errorf("a value that is no time: %v", err)
	}
}
