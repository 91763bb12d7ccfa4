//go:build reliability

// Package reliability_test injects faults into real ferry processes on every
// database and checks, after every trial, that nothing was lost or applied
// twice and that the next run (or the documented repair) finishes the job.
//
// Run it with
//
//	go test -tags reliability -timeout 60m ./internal/reliability/
//
// FERRY_RELIABILITY_TRIALS sets the number of SIGKILL trials per database
// (default 100); FERRY_RELIABILITY_REPORT names a JSON file for the outcome
// counts that docs/reliability.md reports.
package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

var ferryBin string

// report collects outcome counts from every test, written at the end.
var report = &outcomes{Counts: map[string]map[string]int{}}

type outcomes struct {
	mu     sync.Mutex
	Counts map[string]map[string]int `json:"counts"` // "test/dialect" -> outcome -> trials
}

func (o *outcomes) add(key, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Counts[key] == nil {
		o.Counts[key] = map[string]int{}
	}
	o.Counts[key][outcome]++
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-reliability")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBin = filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", ferryBin, "../../cmd/ferry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	if path := os.Getenv("FERRY_RELIABILITY_REPORT"); path != "" {
		data, _ := json.MarshalIndent(report, "", "  ")
		os.WriteFile(path, data, 0o644)
	}
	keys := make([]string, 0, len(report.Counts))
	for k := range report.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%-40s %v\n", k, report.Counts[k])
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func trials(def int) int {
	if v, err := strconv.Atoi(os.Getenv("FERRY_RELIABILITY_TRIALS")); err == nil && v > 0 {
		return v
	}
	return def
}

// workload is a set of migrations whose every effect can be checked: each
// migration k creates table t_k, inserts rows tagged k into big (slow enough
// for a fault to land inside it) and a marker row k into marks. Every other
// migration runs without a transaction.
type workload struct {
	kind  string
	count int
	rows  int // rows each migration inserts into big
}

const firstVersion = 2 // 1 creates the shared tables

func (w workload) noTx(k int) bool { return k%2 == 1 }

// longInsert is a statement that inserts w.rows rows tagged k into big.
func (w workload) longInsert(k int) string {
	switch w.kind {
	case database.Postgres:
		return fmt.Sprintf("INSERT INTO big (k, x) SELECT %d, g FROM generate_series(1, %d) g", k, w.rows)
	case database.MySQL:
		// MariaDB's sequence tables (its recursive CTEs stop at 1000 rows).
		return fmt.Sprintf("INSERT INTO big (k, x) SELECT %d, seq FROM seq_1_to_%d", k, w.rows)
	}
	return fmt.Sprintf("INSERT INTO big (k, x) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) SELECT %d, x FROM c", w.rows, k)
}

func (w workload) files() map[string]string {
	fs := map[string]string{
		"00001_init.sql": "-- +ferry up\nCREATE TABLE marks (v INTEGER NOT NULL);\nCREATE TABLE big (k INTEGER NOT NULL, x INTEGER NOT NULL);\nCREATE INDEX big_k ON big (k);\n",
	}
	for k := firstVersion; k < firstVersion+w.count; k++ {
		var b strings.Builder
		b.WriteString("-- +ferry up\n")
		if w.noTx(k) {
			b.WriteString("-- +ferry no-transaction\n")
		}
		fmt.Fprintf(&b, "CREATE TABLE t_%d (id INTEGER);\n%s;\nINSERT INTO t_%d VALUES (1);\nINSERT INTO marks (v) VALUES (%d);\n", k, w.longInsert(k), k, k)
		fs[fmt.Sprintf("%05d_m%d.sql", k, k)] = b.String()
	}
	return fs
}

// undo removes every effect of migration k, as an operator would before
// `ferry repair k --mark pending`.
func (w workload) undo(ctx context.Context, db *testdb.DB, k int) error {
	for _, s := range []string{
		fmt.Sprintf("DROP TABLE IF EXISTS t_%d", k),
		fmt.Sprintf("DELETE FROM big WHERE k = %d", k),
		fmt.Sprintf("DELETE FROM marks WHERE v = %d", k),
	} {
		if _, err := db.ExecContext(ctx, s); err != nil && !strings.Contains(err.Error(), "no such table") && !strings.Contains(err.Error(), "doesn't exist") && !strings.Contains(err.Error(), "does not exist") {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "migrations"), 0o755)
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, "migrations", n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func ferry(dir, url string, args ...string) *exec.Cmd {
	cmd := exec.Command(ferryBin, args...)
	cmd.Dir = dir
	env := []string{"FERRY_DATABASE_URL=" + url, "FERRY_LOCK_TIMEOUT=2m"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	return cmd
}

func run(dir, url string, args ...string) (string, error) {
	cmd := ferry(dir, url, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

type status struct {
	CurrentVersion int64   `json:"current_version"`
	IsUpToDate     bool    `json:"is_up_to_date"`
	Pending        []int64 `json:"pending"`
	Applied        []struct {
		Version int64 `json:"version"`
	} `json:"applied"`
	Failed []struct {
		Version   int64  `json:"version"`
		State     string `json:"state"`
		Statement int    `json:"statement"`
	} `json:"failed"`
	Lock struct {
		Held bool `json:"held"`
	} `json:"lock"`
}

func getStatus(dir, url string) (*status, error) {
	cmd := ferry(dir, url, "status", "--json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("status: %v: %s", err, errb.String())
	}
	var s status
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		return nil, fmt.Errorf("status JSON: %v: %s", err, out.String())
	}
	return &s, nil
}

// settled waits until no process holds the migration lock (on MySQL a killed
// client's statement runs on to its end) and returns the status.
func settled(t *testing.T, dir, url string) *status {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, err := getStatus(dir, url)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Lock.Held {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("the migration lock stayed held for 3 minutes after the fault")
		}
	}
}

func count(ctx context.Context, db *testdb.DB, q string) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, q).Scan(&n)
	return n, err
}

// check verifies the invariants after a fault: no migration applied twice,
// ferry's history agrees with the schema and data, and at most one
// migration is in limbo. It returns the versions whose effects may be
// partial (failed or interrupted, to be repaired).
func check(t *testing.T, ctx context.Context, w workload, db *testdb.DB, s *status) []int64 {
	t.Helper()
	applied := map[int64]bool{}
	for _, a := range s.Applied {
		applied[a.Version] = true
	}
	limbo := map[int64]bool{}
	for _, f := range s.Failed {
		limbo[f.Version] = true
	}
	if len(s.Failed) > 1 {
		t.Errorf("%d migrations in limbo at once: %+v", len(s.Failed), s.Failed)
	}
	if !applied[1] {
		if limbo[1] {
			return []int64{1}
		}
		if ok, _ := db.Dialect.TableExists(ctx, db, "marks"); ok && db.Dialect.TransactionalDDL() {
			t.Errorf("migration 1 is not applied but its table exists")
		}
		return nil
	}
	for k := firstVersion; k < firstVersion+w.count; k++ {
		v := int64(k)
		marks, err := count(ctx, db, fmt.Sprintf("SELECT COUNT(*) FROM marks WHERE v = %d", k))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := count(ctx, db, fmt.Sprintf("SELECT COUNT(*) FROM big WHERE k = %d", k))
		if err != nil {
			t.Fatal(err)
		}
		exists, err := db.Dialect.TableExists(ctx, db, fmt.Sprintf("t_%d", k))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case marks > 1:
			t.Errorf("migration %d ran %d times", k, marks)
		case applied[v]:
			if marks != 1 || rows != w.rows || !exists {
				t.Errorf("migration %d is recorded as applied but its effects are incomplete: marks %d, rows %d/%d, table %v", k, marks, rows, w.rows, exists)
			}
		case limbo[v]:
			// Partial effects are allowed: that is what repair is for.
		default:
			if marks != 0 || rows != 0 || exists {
				t.Errorf("migration %d is not recorded as applied but has effects: marks %d, rows %d, table %v", k, marks, rows, exists)
			}
		}
	}
	var out []int64
	for v := range limbo {
		out = append(out, v)
	}
	return out
}

// recover runs the documented recovery: repair what is in limbo (undo its
// effects, repair --mark pending) and ferry up. It reports which steps were
// needed.
func recoverDB(t *testing.T, ctx context.Context, w workload, db *testdb.DB, dir string, limbo []int64) string {
	t.Helper()
	how := "up"
	for _, v := range limbo {
		if v == 1 {
			for _, s := range []string{"DROP TABLE IF EXISTS marks", "DROP TABLE IF EXISTS big"} {
				db.ExecContext(ctx, s)
			}
		} else if err := w.undo(ctx, db, int(v)); err != nil {
			t.Fatal(err)
		}
		if out, err := run(dir, db.URLString, "repair", strconv.FormatInt(v, 10), "--mark", "pending"); err != nil {
			t.Fatalf("repair %d: %v\n%s", v, err, out)
		}
		how = "repair+up"
	}
	if out, err := run(dir, db.URLString, "up"); err != nil {
		t.Fatalf("recovery up: %v\n%s", err, out)
	}
	s, err := getStatus(dir, db.URLString)
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsUpToDate {
		t.Fatalf("not up to date after recovery: %+v", s)
	}
	if lim := check(t, ctx, w, db, s); len(lim) != 0 {
		t.Fatalf("still in limbo after recovery: %v", lim)
	}
	if out, err := run(dir, db.URLString, "validate"); err != nil {
		t.Fatalf("validate after recovery: %v\n%s", err, out)
	}
	return how
}

// where describes the state a fault left, for the outcome counts.
func where(w workload, s *status) string {
	switch {
	case len(s.Failed) > 0:
		if w.noTx(int(s.Failed[0].Version)) || !transactional(w.kind) {
			return "inside a non-transactional migration (interrupted)"
		}
		return "inside a migration (interrupted)"
	case s.CurrentVersion == 0:
		return "before the first migration"
	case s.IsUpToDate:
		return "after the last migration"
	}
	return "between migrations, or inside a transactional one (rolled back)"
}

func transactional(kind string) bool { return kind != database.MySQL }

func newWorkload(kind string) workload {
	rows := map[string]int{database.Postgres: 60000, database.MySQL: 20000, database.SQLite: 60000}[kind]
	return workload{kind: kind, count: 6, rows: rows}
}

// calibrate measures how long a full ferry up of the workload takes.
func calibrate(t *testing.T, ctx context.Context, kind string, w workload) time.Duration {
	t.Helper()
	db := testdb.New(t, kind)
	dir := project(t, w.files())
	start := time.Now()
	if out, err := run(dir, db.URLString, "up"); err != nil {
		t.Fatalf("calibration: %v\n%s", err, out)
	}
	return time.Since(start)
}

// TestSIGKILL kills `ferry up` with SIGKILL at a random moment, over and
// over, on every database.
func TestSIGKILL(t *testing.T) {
	n := trials(100)
	for _, kind := range testdb.Kinds() {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			w := newWorkload(kind)
			total := calibrate(t, ctx, kind, w)
			t.Logf("a full run takes %s; %d trials", total, n)
			for i := 0; i < n; i++ {
				db := testdb.New(t, kind)
				dir := project(t, w.files())
				cmd := ferry(dir, db.URLString, "up")
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// A random moment within (and a little beyond) a full run.
				delay := time.Duration(rand.Int64N(int64(total) * 11 / 10))
				time.Sleep(delay)
				cmd.Process.Kill()
				cmd.Wait()
				s := settled(t, dir, db.URLString)
				limbo := check(t, ctx, w, db, s)
				report.add("sigkill/"+kind, where(w, s))
				report.add("sigkill/"+kind, "recovered by "+recoverDB(t, ctx, w, db, dir, limbo))
				if t.Failed() {
					t.Fatalf("trial %d (kill after %s) broke an invariant", i, delay)
				}
				db.Close()
			}
		})
	}
}

// backendsOf returns the server's ids of the connections ferry opened to
// db (all but the test's own).
func backendsOf(ctx context.Context, db *testdb.DB) ([]string, error) {
	var q string
	switch db.Kind {
	case database.Postgres:
		q = "SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'ferry' AND pid <> pg_backend_pid()"
	case database.MySQL:
		q = "SELECT CAST(id AS CHAR) FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		out = append(out, id)
	}
	return out, rows.Err()
}

// TestServerKillsConnection terminates ferry's connections from the
// server side (pg_terminate_backend, KILL) in the middle of a run.
func TestServerKillsConnection(t *testing.T) {
	n := trials(100) / 2
	for _, kind := range []string{database.Postgres, database.MySQL} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			w := newWorkload(kind)
			// The test's own pool must not hold the connection it kills.
			for i := 0; i < n; i++ {
				db := testdb.New(t, kind)
				db.SetMaxOpenConns(1)
				dir := project(t, w.files())
				cmd := ferry(dir, db.URLString, "up")
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				// Wait until ferry has a connection in use, then kill it.
				var killed bool
			wait:
				for {
					select {
					case err := <-done:
						done <- err
						break wait
					default:
					}
					ids, err := backendsOf(ctx, db)
					if err != nil {
						t.Fatal(err)
					}
					if len(ids) > 0 {
						time.Sleep(time.Duration(rand.Int64N(int64(300 * time.Millisecond))))
						for _, id := range ids {
							kill := "SELECT pg_terminate_backend(" + id + ")"
							if kind == database.MySQL {
								kill = "KILL " + id
							}
							db.ExecContext(ctx, kill)
						}
						killed = true
						break
					}
				}
				err := <-done
				outcome := "ferry finished before the kill"
				if killed {
					outcome = "ferry exited 0 (kill landed between uses)"
					if err != nil {
						outcome = "ferry exited with an error"
						if !strings.Contains(out.String(), "ferry:") {
							t.Errorf("ferry failed without saying why:\n%s", out.String())
						}
					}
				}
				s := settled(t, dir, db.URLString)
				limbo := check(t, ctx, w, db, s)
				report.add("server-kill/"+kind, outcome)
				report.add("server-kill/"+kind, "recovered by "+recoverDB(t, ctx, w, db, dir, limbo))
				if t.Failed() {
					t.Fatalf("trial %d broke an invariant; ferry said:\n%s", i, out.String())
				}
				db.Close()
			}
		})
	}
}

// TestLockHolderDies kills the process holding the migration lock while
// others wait for it.
func TestLockHolderDies(t *testing.T) {
	n := max(trials(100)/10, 3)
	for _, kind := range testdb.Kinds() {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			w := newWorkload(kind)
			for i := 0; i < n; i++ {
				db := testdb.New(t, kind)
				dir := project(t, w.files())
				holder := ferry(dir, db.URLString, "up")
				if err := holder.Start(); err != nil {
					t.Fatal(err)
				}
				holderDone := make(chan struct{})
				go func() { holder.Wait(); close(holderDone) }()
				// Wait until the holder holds the lock (or already finished),
				// then start the waiters.
			wait:
				for {
					select {
					case <-holderDone:
						break wait
					default:
					}
					if s, err := getStatus(dir, db.URLString); err == nil && s.Lock.Held {
						break
					}
				}
				var waiters []*exec.Cmd
				var outs []*bytes.Buffer
				for j := 0; j < 5; j++ {
					c := ferry(dir, db.URLString, "up")
					var b bytes.Buffer
					c.Stdout, c.Stderr = &b, &b
					if err := c.Start(); err != nil {
						t.Fatal(err)
					}
					waiters, outs = append(waiters, c), append(outs, &b)
				}
				holder.Process.Kill()
				<-holderDone
				failed := 0
				for j, c := range waiters {
					if err := c.Wait(); err != nil {
						failed++
						// Only a documented refusal is acceptable: the dead
						// holder left a non-transactional migration in limbo.
						if !strings.Contains(outs[j].String(), "ferry repair") {
							t.Errorf("waiter %d failed without naming the repair:\n%s", j, outs[j])
						}
					}
				}
				s := settled(t, dir, db.URLString)
				limbo := check(t, ctx, w, db, s)
				switch {
				case failed == 0:
					report.add("holder-dies/"+kind, "all 5 waiters finished the job")
				case len(limbo) > 0:
					report.add("holder-dies/"+kind, "waiters refused: a non-transactional migration needs repair")
				default:
					t.Errorf("%d waiters failed but nothing needs repair", failed)
				}
				report.add("holder-dies/"+kind, "recovered by "+recoverDB(t, ctx, w, db, dir, limbo))
				if t.Failed() {
					t.Fatalf("trial %d broke an invariant", i)
				}
				db.Close()
			}
		})
	}
}

// TestSQLiteDiskFull fills the database (SQLite's max_page_count stands in
// for a full disk) in the middle of a migration.
func TestSQLiteDiskFull(t *testing.T) {
	ctx := context.Background()
	w := newWorkload(database.SQLite)
	for _, pages := range []int{200, 600, 1200, 2000} {
		db := testdb.New(t, database.SQLite)
		dir := project(t, w.files())
		full := db.URLString + "?_pragma=max_page_count(" + strconv.Itoa(pages) + ")"
		out, err := run(dir, full, "up")
		if err == nil {
			report.add("disk-full/sqlite", "enough room")
		} else {
			if !strings.Contains(out, "full") {
				t.Errorf("disk full with %d pages: the error does not say so:\n%s", pages, out)
			}
			report.add("disk-full/sqlite", "failed cleanly: database or disk is full")
		}
		s := settled(t, dir, db.URLString)
		limbo := check(t, ctx, w, db, s)
		report.add("disk-full/sqlite", "recovered by "+recoverDB(t, ctx, w, db, dir, limbo))
		if errors.Is(err, context.Canceled) || t.Failed() {
			t.Fatalf("max_page_count %d broke an invariant", pages)
		}
	}
}
