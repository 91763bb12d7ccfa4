//go:build reliability

package reliability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// transferFiles are a service's two migrations, idempotent where the
// engine cannot roll DDL back, so that the documented recovery of a
// killed run (repair --mark pending, run again) works.
func transferFiles(kind string) map[string]string {
	add := "ALTER TABLE child ADD COLUMN IF NOT EXISTS extra INTEGER NOT NULL DEFAULT 7;"
	if kind == database.SQLite {
		add = "ALTER TABLE child ADD COLUMN extra INTEGER NOT NULL DEFAULT 7;"
	}
	return map[string]string{
		"001_tables.sql": "-- +ferry up\nCREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);\n" +
			"CREATE TABLE IF NOT EXISTS child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, body TEXT, FOREIGN KEY (parent_id) REFERENCES parent (id));\n",
		"002_extra.sql": "-- +ferry up\n" + add + "\n",
	}
}

// transferSource is a source at version 1 with rows enough for a fault to
// land inside every phase.
func transferSource(t *testing.T, ctx context.Context, kind string) (*testdb.DB, string) {
	db := testdb.New(t, kind)
	files := transferFiles(kind)
	dir := project(t, map[string]string{"001_tables.sql": files["001_tables.sql"]})
	if out, err := run(dir, db.URLString, "up"); err != nil {
		t.Fatalf("source up: %v\n%s", err, out)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ph := func(n int) string {
		if kind == database.Postgres {
			return "$" + strconv.Itoa(n)
		}
		return "?"
	}
	for p := 1; p <= 500; p++ {
		if _, err := tx.ExecContext(ctx, "INSERT INTO parent (id, name) VALUES ("+ph(1)+", "+ph(2)+")", p, fmt.Sprintf("parent %d ü", p)); err != nil {
			t.Fatal(err)
		}
	}
	body := strings.Repeat("row body with some text\n", 4)
	for c := 1; c <= 20000; c += 100 {
		var vals []string
		var args []any
		for k := c; k < c+100; k++ {
			n := len(args)
			vals = append(vals, "("+ph(n+1)+", "+ph(n+2)+", "+ph(n+3)+")")
			args = append(args, k, 1+k%500, fmt.Sprintf("%d %s", k, body))
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO child (id, parent_id, body) VALUES "+strings.Join(vals, ", "), args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return db, dir
}

type exportList struct {
	Exports []struct {
		ID string `json:"id"`
	} `json:"exports"`
	Broken []struct {
		ID string `json:"id"`
	} `json:"broken"`
}

func listExports(t *testing.T, dir, url, store string) exportList {
	t.Helper()
	out, err := run(dir, url, "export", "list", "--store", store, "--json")
	if err != nil {
		t.Fatalf("export list: %v\n%s", err, out)
	}
	var l exportList
	if err := json.Unmarshal([]byte(out[strings.IndexByte(out, '{'):]), &l); err != nil {
		t.Fatalf("export list JSON: %v\n%s", err, out)
	}
	return l
}

// timed runs ferry to its end and returns how long it took.
func timed(t *testing.T, dir, url string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	if out, err := run(dir, url, args...); err != nil {
		t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}

// killAt starts ferry and kills it with SIGKILL after a random part of
// (a little more than) total.
func killAt(t *testing.T, total time.Duration, dir, url string, args ...string) time.Duration {
	t.Helper()
	cmd := ferry(dir, url, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	delay := time.Duration(rand.Int64N(int64(total) * 11 / 10))
	time.Sleep(delay) // the fault's random moment, not a wait for anything
	cmd.Process.Kill()
	cmd.Wait()
	return delay
}

// TestExportSIGKILL kills `ferry export` at random moments: an export is
// either complete and verifies, or has no manifest and is not listed; the
// next export completes.
func TestExportSIGKILL(t *testing.T) {
	n := trials(20)
	for _, kind := range testdb.Kinds() {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			src, dir := transferSource(t, ctx, kind)
			store := filepath.Join(t.TempDir(), "exports")
			args := []string{"export", "--to", store, "--chunk-size", "65536"}
			total := timed(t, dir, src.URLString, args...)
			t.Logf("an export takes %s; %d trials", total, n)
			for i := 0; i < n; i++ {
				before := len(listExports(t, dir, src.URLString, store).Exports)
				delay := killAt(t, total, dir, src.URLString, args...)
				l := listExports(t, dir, src.URLString, store)
				if len(l.Broken) > 0 {
					t.Fatalf("trial %d (kill after %s): a broken export is listed: %+v", i, delay, l.Broken)
				}
				outcome := "killed: no manifest, not listed"
				if len(l.Exports) > before {
					outcome = "finished before the kill"
				}
				for _, e := range l.Exports {
					if out, err := run(dir, src.URLString, "export", "verify", store+"/"+e.ID); err != nil {
						t.Fatalf("trial %d (kill after %s): listed export %s does not verify: %v\n%s", i, delay, e.ID, err, out)
					}
				}
				report.add("export-sigkill/"+kind, outcome)
				if out, err := run(dir, src.URLString, args...); err != nil {
					t.Fatalf("trial %d (kill after %s): the next export failed: %v\n%s", i, delay, err, out)
				}
			}
		})
	}
}

// TestImportSIGKILL kills `ferry import` at random moments; running the
// same command again (after the documented repair when a MySQL DDL
// statement was cut) finishes the import with every row once.
func TestImportSIGKILL(t *testing.T) {
	n := trials(20)
	for _, kind := range testdb.Kinds() {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			src, srcDir := transferSource(t, ctx, kind)
			store := filepath.Join(t.TempDir(), "exports")
			if out, err := run(srcDir, src.URLString, "export", "--to", store, "--chunk-size", "65536"); err != nil {
				t.Fatalf("export: %v\n%s", err, out)
			}
			id := listExports(t, srcDir, src.URLString, store).Exports[0].ID
			dir := project(t, transferFiles(kind))
			args := []string{"import", "--from", store + "/" + id}
			first := testdb.New(t, kind)
			total := timed(t, dir, first.URLString, args...)
			t.Logf("an import takes %s; %d trials", total, n)
			for i := 0; i < n; i++ {
				target := testdb.New(t, kind)
				delay := killAt(t, total, dir, target.URLString, args...)
				s := settled(t, dir, target.URLString)
				how := "import again"
				for _, f := range s.Failed {
					// A MySQL DDL statement the kill cut: the documented
					// recovery (the migrations are idempotent).
					if out, err := run(dir, target.URLString, "repair", strconv.FormatInt(f.Version, 10), "--mark", "pending"); err != nil {
						t.Fatalf("trial %d (kill after %s): repair %d: %v\n%s", i, delay, f.Version, err, out)
					}
					how = "repair, import again"
				}
				out, err := run(dir, target.URLString, args...)
				if err != nil {
					t.Fatalf("trial %d (kill after %s): the re-run failed: %v\n%s", i, delay, err, out)
				}
				if strings.Contains(out, "went on from where an earlier run stopped") {
					how += " (resumed)"
				}
				report.add("import-sigkill/"+kind, how)
				for q, want := range map[string]int{
					"SELECT count(*) FROM parent":                   500,
					"SELECT count(*) FROM child":                    20000,
					"SELECT count(DISTINCT id) FROM child":          20000,
					"SELECT count(*) FROM child WHERE extra = 7":    20000,
					"SELECT count(*) FROM child WHERE body IS NULL": 0,
				} {
					if got, err := count(ctx, target, q); err != nil || got != want {
						t.Fatalf("trial %d (kill after %s): %s = %d (%v), want %d", i, delay, q, got, err, want)
					}
				}
				if st := settled(t, dir, target.URLString); !st.IsUpToDate || st.CurrentVersion != 2 {
					t.Fatalf("trial %d (kill after %s): target not at version 2: %+v", i, delay, st)
				}
				target.Close()
			}
		})
	}
}
