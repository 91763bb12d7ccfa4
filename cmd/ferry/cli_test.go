package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
)

// ferryBin is the ferry binary built once for these tests.
var ferryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBin = filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", ferryBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cleanEnv is the test's environment without FERRY_* settings, so that a
// ferry process sees only what a test gives it.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// ferryCmd prepares `ferry args...` in dir against dbURL ("" for none).
func ferryCmd(dir, dbURL string, args ...string) *exec.Cmd {
	cmd := exec.Command(ferryBin, args...)
	cmd.Dir = dir
	if dbURL != "" {
		cmd.Env = cleanEnv("FERRY_DATABASE_URL=" + dbURL)
	} else {
		cmd.Env = cleanEnv()
	}
	return cmd
}

type result struct {
	stdout, stderr string
	code           int
}

func runFerry(t *testing.T, dir, dbURL string, args ...string) result {
	t.Helper()
	cmd := ferryCmd(dir, dbURL, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("run ferry %v: %v", args, err)
	}
	// A command that should end but hangs fails the test instead of
	// stalling the whole run.
	hung := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	hung.Stop()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run ferry %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func mustRun(t *testing.T, dir, dbURL string, args ...string) result {
	t.Helper()
	r := runFerry(t, dir, dbURL, args...)
	if r.code != 0 {
		t.Fatalf("ferry %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// project makes a directory with a migrations subdirectory.
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	mdir := filepath.Join(dir, "migrations")
	if err := os.Mkdir(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(mdir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type statusJSON struct {
	CurrentVersion int64   `json:"current_version"`
	LatestVersion  int64   `json:"latest_version"`
	IsUpToDate     bool    `json:"is_up_to_date"`
	Pending        []int64 `json:"pending"`
	Applied        []struct {
		Version   int64  `json:"version"`
		AppliedBy string `json:"applied_by"`
	} `json:"applied"`
	Failed []struct {
		Version   int64  `json:"version"`
		State     string `json:"state"`
		Statement int    `json:"statement"`
		Line      int    `json:"line"`
		Hint      string `json:"hint"`
	} `json:"failed"`
	Lock struct {
		Held   bool   `json:"held"`
		Holder string `json:"holder"`
	} `json:"lock"`
	Database string `json:"database"`
}

func statusOf(t *testing.T, dir, dbURL string) statusJSON {
	t.Helper()
	r := runFerry(t, dir, dbURL, "status", "--json")
	if r.code != 0 && r.code != exitPending {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	}
	var s statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, r.stdout)
	}
	return s
}

func TestCLIInitNewUpStatus(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "", "init")
	if r := mustRun(t, dir, "", "init"); !strings.Contains(r.stdout, "already holds 1 migrations") {
		t.Errorf("second init: %q", r.stdout)
	}
	r := mustRun(t, dir, "", "new", "Add Email!")
	if strings.TrimSpace(r.stdout) != filepath.Join("migrations", "00002_add_email.sql") {
		t.Fatalf("new printed %q", r.stdout)
	}
	os.WriteFile(filepath.Join(dir, "migrations", "00002_add_email.sql"), []byte("-- +ferry up\nALTER TABLE example ADD COLUMN email TEXT;\n-- +ferry down\nALTER TABLE example DROP COLUMN email;\n"), 0o644)
	if r := runFerry(t, dir, "", "status", "--exit-code"); r.code != exitPending {
		t.Fatalf("status --exit-code with pending migrations: exit %d", r.code)
	}
	s := statusOf(t, dir, "")
	if s.CurrentVersion != 0 || s.LatestVersion != 2 || s.IsUpToDate || len(s.Pending) != 2 || s.Database != "sqlite:ferry.db" {
		t.Fatalf("status before up: %+v", s)
	}
	if r := mustRun(t, dir, "", "up", "--dry-run"); !strings.Contains(r.stdout, "ALTER TABLE example ADD COLUMN email TEXT;") {
		t.Fatalf("dry run: %s", r.stdout)
	}
	if s := statusOf(t, dir, ""); s.CurrentVersion != 0 {
		t.Fatal("dry run applied something")
	}
	r = mustRun(t, dir, "", "up")
	if !strings.Contains(r.stdout, "applying 2 add_email ... ok") || !strings.Contains(r.stdout, "now at version 2") {
		t.Errorf("up output: %s", r.stdout)
	}
	mustRun(t, dir, "", "status", "--exit-code")
	if _, err := os.Stat(filepath.Join(dir, "ferry.db")); err != nil {
		t.Fatal("the default database ./ferry.db was not created")
	}
	r = mustRun(t, dir, "", "new", "--timestamp", "later")
	if v := strings.TrimSuffix(filepath.Base(strings.TrimSpace(r.stdout)), "_later.sql"); len(v) != 14 {
		t.Errorf("timestamp version %q", v)
	}
}

// TestCLIFiftyProcesses starts 50 ferry processes at once against each
// server: all exit 0 and each migration is applied exactly once.
func TestCLIFiftyProcesses(t *testing.T) {
	files := map[string]string{}
	for i := 1; i <= 6; i++ {
		files[fmt.Sprintf("%05d_m%d.sql", i, i)] = fmt.Sprintf("-- +ferry up\nCREATE TABLE t%d (id INTEGER);\nCREATE TABLE IF NOT EXISTS runs (v INTEGER);\nINSERT INTO runs (v) VALUES (%d);\n", i, i)
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		testdb.Exclusive(t, db.Kind)
		dir := project(t, files)
		const n = 50
		cmds := make([]*exec.Cmd, n)
		outs := make([]*bytes.Buffer, n)
		for i := range cmds {
			cmds[i] = ferryCmd(dir, db.URLString, "up")
			outs[i] = &bytes.Buffer{}
			cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		}
		for _, c := range cmds {
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Errorf("process %d: %v\n%s", i, err, outs[i])
			}
		}
		var runs int
		if err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM runs").Scan(&runs); err != nil || runs != 6 {
			t.Fatalf("migrations ran %d times (err %v), want 6", runs, err)
		}
		s := statusOf(t, dir, db.URLString)
		if !s.IsUpToDate || s.CurrentVersion != 6 || len(s.Applied) != 6 || s.Lock.Held {
			t.Fatalf("status: %+v", s)
		}
	})
}

// TestCLIKilledMidMigration kills `ferry up` with SIGKILL during a long
// migration, then checks that status explains the state and that the next
// up (PostgreSQL, SQLite) or repair + up (MySQL) recovers without loss.
func TestCLIKilledMidMigration(t *testing.T) {
	long := map[string]string{
		"postgres": "SELECT pg_sleep(30)",
		"mysql":    "SELECT SLEEP(3)",
		"sqlite":   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 30000000) SELECT count(*) FROM c",
	}
	running := map[string]string{
		"postgres": "SELECT COUNT(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
		"mysql":    "SELECT COUNT(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(3)'",
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := context.Background()
		dir := project(t, map[string]string{
			"00001_keep.sql":  "-- +ferry up\nCREATE TABLE keep (id INTEGER PRIMARY KEY, v VARCHAR(20));\nINSERT INTO keep VALUES (1, 'precious');\n",
			"00002_long.sql":  "-- +ferry up\nCREATE TABLE k1 (id INTEGER);\n" + long[db.Kind] + ";\nCREATE TABLE k2 (id INTEGER);\n",
			"00003_after.sql": "-- +ferry up\nCREATE TABLE after_long (id INTEGER);\n",
		})
		mustRun(t, dir, db.URLString, "up", "--to", "1")

		cmd := ferryCmd(dir, db.URLString, "up")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the migration has started: ferry prints its progress
		// line before the first statement...
		rd := bufio.NewReader(stdout)
		for {
			s, err := rd.ReadString(' ')
			if err != nil {
				t.Fatalf("ferry exited before migration 2 started: %v", err)
			}
			if strings.Contains(s, "long") {
				break
			}
		}
		// ...and on a server, until the long statement is running there;
		// on SQLite, until the migration's write transaction has a journal.
		if q := running[db.Kind]; q != "" {
			for n := 0; n == 0; {
				if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			for _, err := os.Stat(db.URL.Database + "-journal"); err != nil; _, err = os.Stat(db.URL.Database + "-journal") {
			}
		}
		if db.Kind == "mysql" {
			// While it runs, status says so, and asks for no repair.
			human := mustRun(t, dir, db.URLString, "status").stdout
			for _, want := range []string{"no (migrating now: 1 running", "In progress:\n  2 long: running statement 2 (migrations/00002_long.sql:3)"} {
				if !strings.Contains(human, want) {
					t.Errorf("status during the migration does not say %q:\n%s", want, human)
				}
			}
			if strings.Contains(human, "Needs repair") {
				t.Errorf("status during the migration asks for repair:\n%s", human)
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if db.Kind == "mysql" {
			// ferry sends a MySQL migration and its bookkeeping as one
			// query, which the server finishes even once the client is
			// gone. What interrupts it is the connection dying (a network
			// cut, a restart): kill it on the server too.
			var id int64
			if err := db.QueryRowContext(ctx, "SELECT id FROM information_schema.processlist WHERE info = 'SELECT SLEEP(3)'").Scan(&id); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
				t.Fatal(err)
			}
		}

		checkKept := func() {
			t.Helper()
			var v string
			if err := db.QueryRowContext(ctx, "SELECT v FROM keep WHERE id = 1").Scan(&v); err != nil || v != "precious" {
				t.Fatalf("data from migration 1 lost: %q %v", v, err)
			}
		}
		checkKept()
		// The slow statement has done its job; keep the recovery quick.
		os.WriteFile(filepath.Join(dir, "migrations", "00002_long.sql"), []byte("-- +ferry up\nCREATE TABLE k1 (id INTEGER);\nSELECT 1;\nCREATE TABLE k2 (id INTEGER);\n"), 0o644)

		if db.Dialect.TransactionalDDL() {
			// The transaction died with the process: nothing of migration
			// 2 remains, and status says it is pending.
			s := statusOf(t, dir, db.URLString)
			if s.CurrentVersion != 1 || len(s.Failed) != 0 || len(s.Pending) != 2 || s.Pending[0] != 2 {
				t.Fatalf("status after kill: %+v", s)
			}
			var n int
			db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ferry_migrations WHERE version = 2").Scan(&n)
			if n != 0 {
				t.Fatalf("killed transactional migration left %d history rows", n)
			}
			r := mustRun(t, dir, db.URLString, "up")
			if !strings.Contains(r.stdout, "now at version 3") {
				t.Fatalf("recovery up: %s", r.stdout)
			}
		} else {
			// MySQL: the orphaned statement finishes on the server and
			// releases the lock; status then reports the interruption.
			var s statusJSON
			for s = statusOf(t, dir, db.URLString); s.Lock.Held; s = statusOf(t, dir, db.URLString) {
			}
			if len(s.Failed) != 1 || s.Failed[0].Version != 2 || s.Failed[0].State != "interrupted" || s.Failed[0].Statement != 2 || s.Failed[0].Line != 3 {
				t.Fatalf("status after kill: %+v", s.Failed)
			}
			human := mustRun(t, dir, db.URLString, "status").stdout
			for _, want := range []string{"interrupted at statement 2 (migrations/00002_long.sql:3)", "statement 1 took effect", "ferry repair 2 --mark pending"} {
				if !strings.Contains(human, want) {
					t.Errorf("status does not explain %q:\n%s", want, human)
				}
			}
			r := runFerry(t, dir, db.URLString, "up")
			if r.code != 1 || !strings.Contains(r.stderr, "ferry repair 2") {
				t.Fatalf("up past an interrupted migration: exit %d %s", r.code, r.stderr)
			}
			if r := runFerry(t, dir, db.URLString, "repair", "2"); r.code != exitUsage {
				t.Fatalf("repair without --mark: exit %d", r.code)
			}
			// The operator undoes statement 1 and marks it pending.
			if _, err := db.ExecContext(ctx, "DROP TABLE k1"); err != nil {
				t.Fatal(err)
			}
			mustRun(t, dir, db.URLString, "repair", "2", "--mark", "pending")
			mustRun(t, dir, db.URLString, "up")
		}
		checkKept()
		s := statusOf(t, dir, db.URLString)
		if !s.IsUpToDate || s.CurrentVersion != 3 {
			t.Fatalf("final status: %+v", s)
		}
		for _, tbl := range []string{"k1", "k2", "after_long"} {
			if ok, _ := db.Dialect.TableExists(ctx, db, tbl); !ok {
				t.Errorf("table %s missing after recovery", tbl)
			}
		}
	})
}

func TestCLIBadInput(t *testing.T) {
	t.Run("malformed file", func(t *testing.T) {
		dir := project(t, map[string]string{"00001_bad.sql": "-- +ferry up\nSELECT 1;\n-- +ferry sideways\n"})
		r := runFerry(t, dir, "", "up")
		if r.code != 1 || !strings.Contains(r.stderr, "migrations/00001_bad.sql:3: unknown annotation") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		// Nothing is applied; status still works and shows the migration pending.
		if s := statusOf(t, dir, ""); s.CurrentVersion != 0 || len(s.Pending) != 1 {
			t.Errorf("a malformed file changed the database: %+v", s)
		}
		if r := runFerry(t, dir, "", "validate"); r.code != 1 || !strings.Contains(r.stdout, "00001_bad.sql:3: unknown annotation") {
			t.Errorf("validate: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("duplicate version", func(t *testing.T) {
		dir := project(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nSELECT 1;\n",
			"1_b.sql":     "-- +ferry up\nSELECT 2;\n",
		})
		r := runFerry(t, dir, "", "validate")
		if r.code != 1 || !strings.Contains(r.stdout, "duplicate version 1") {
			t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("unreachable database", func(t *testing.T) {
		dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nSELECT 1;\n"})
		for _, u := range []string{"postgres://app:Sup3rS3cret@127.0.0.1:1/app", "mysql://app:Sup3rS3cret@127.0.0.1:1/app"} {
			r := runFerry(t, dir, u, "status")
			if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") || !strings.Contains(r.stderr, `user "app"`) {
				t.Errorf("%s: exit %d: %s", u, r.code, r.stderr)
			}
			if strings.Contains(r.stderr+r.stdout, "Sup3rS3cret") {
				t.Errorf("password in output: %s", r.stderr)
			}
		}
	})
	t.Run("wrong scheme", func(t *testing.T) {
		dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nSELECT 1;\n"})
		r := runFerry(t, dir, "oracle://scott:tiger@db/orcl", "status")
		if r.code != exitUsage || !strings.Contains(r.stderr, `unsupported database URL scheme "oracle"`) || strings.Contains(r.stderr, "tiger") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		dir := t.TempDir()
		r := runFerry(t, dir, "", "up")
		if r.code != exitUsage || !strings.Contains(r.stderr, "ferry init") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "ferry.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a missing migrations directory left a database file behind: %v", err)
		}
	})
	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{{"up", "--nope"}, {"baseline"}, {"down", "-n", "0"}, {"up", "--lock-timeout", "soon"}} {
			if r := runFerry(t, t.TempDir(), "", args...); r.code != exitUsage {
				t.Errorf("ferry %v: exit %d, want 2: %s", args, r.code, r.stderr)
			}
		}
	})
}

// TestREADMEQuickStart runs the README's first command, `ferry up` with no
// flags, on a copy of the example migrations the repository ships.
func TestREADMEQuickStart(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "..", "migrations")
	entries, err := os.ReadDir(src)
	if err != nil || len(entries) == 0 {
		t.Fatalf("the repository's example migrations: %v", err)
	}
	os.Mkdir(filepath.Join(dir, "migrations"), 0o755)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "migrations", e.Name()), data, 0o644)
	}
	mustRun(t, dir, "", "up")
	if s := statusOf(t, dir, ""); !s.IsUpToDate || s.CurrentVersion == 0 {
		t.Fatalf("status after the quick start: %+v", s)
	}
}

// TestConfigPrecedence: flags beat FERRY_* variables, which beat
// ferry.yaml, which beats the defaults; ${VAR} in ferry.yaml is expanded.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"from_file", "from_env", "from_flag"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("dir: from_file\ndatabase: sqlite:${DB_FILE}\nlock_timeout: 90s\n"), 0o644)
	status := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(ferryBin, append([]string{"status", "--json"}, args...)...)
		cmd.Dir = dir
		cmd.Env = cleanEnv(env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Only from_file exists in the file's view; each layer points at a
	// directory that exists only if that layer wins.
	os.Remove(filepath.Join(dir, "from_env"))
	os.Remove(filepath.Join(dir, "from_flag"))
	if out, err := status([]string{"DB_FILE=fromyaml.db"}); err != nil || !strings.Contains(out, `"database": "sqlite:fromyaml.db"`) {
		t.Fatalf("ferry.yaml with ${VAR} not used: %v %s", err, out)
	}
	os.Remove(filepath.Join(dir, "from_file"))
	os.Mkdir(filepath.Join(dir, "from_env"), 0o755)
	if out, err := status([]string{"DB_FILE=x.db", "FERRY_DIR=from_env"}); err != nil {
		t.Fatalf("FERRY_DIR did not beat ferry.yaml: %s", out)
	}
	os.Remove(filepath.Join(dir, "from_env"))
	os.Mkdir(filepath.Join(dir, "from_flag"), 0o755)
	if out, err := status([]string{"DB_FILE=x.db", "FERRY_DIR=from_env"}, "--dir", "from_flag"); err != nil {
		t.Fatalf("--dir did not beat FERRY_DIR: %s", out)
	}
	if out, err := status(nil, "--config", "nope.yaml"); err == nil || !strings.Contains(out, "nope.yaml") {
		t.Errorf("a missing explicit config file must be an error: %s", out)
	}
	os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("dri: typo\n"), 0o644)
	if out, err := status(nil); err == nil || !strings.Contains(out, "field dri not found") {
		t.Errorf("a typo in ferry.yaml must be an error: %s", out)
	}
}
