package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/transfer"
)

// silentListener accepts connections and never answers, as a hung
// database server or a half-open proxy does.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestCLIHungServer: against a MySQL or PostgreSQL listener that accepts
// and never answers, status gives up after --connect-timeout, wait's
// --timeout is a hard bound, and serve starts listening (MySQL used to hang
// 11 minutes; serve never listened).
func TestCLIHungServer(t *testing.T) {
	addr := silentListener(t)
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
	for _, u := range []string{"mysql://app:Sup3rS3cret@" + addr + "/app", "postgres://app:Sup3rS3cret@" + addr + "/app?sslmode=disable"} {
		kind := strings.SplitN(u, ":", 2)[0]
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := runFerry(t, dir, u, "status", "--connect-timeout", "2s")
			if r.code != 1 || !strings.Contains(r.stderr, "cannot connect") || strings.Contains(r.stderr, "Sup3rS3cret") {
				t.Errorf("status: exit %d: %s", r.code, r.stderr)
			}
			start = time.Now()
			r = runFerry(t, dir, u, "wait", "--version", "1", "--timeout", "3s")
			took := time.Since(start)
			if r.code != 1 || !strings.Contains(r.stderr, "timed out after 3s") || strings.Contains(r.stderr, "Sup3rS3cret") {
				t.Errorf("wait: exit %d after %s: %s", r.code, took, r.stderr)
			}
			// A hard bound: no check outlives the timeout by the connect
			// timeout (10s by default) or more.
			if took > 9*time.Second {
				t.Errorf("wait --timeout 3s took %s", took)
			}
			s := startServe(t, dir, u, nil, "--read-only", "--connect-timeout", "1s")
			defer s.stop(t)
			code, body := httpGet(t, "http://"+s.addr+"/readyz")
			if code != 503 || strings.Contains(body, "Sup3rS3cret") {
				t.Errorf("/readyz against a hung server: %d %s", code, body)
			}
		})
	}
}

// TestCLIWaitRetriesUntilTheDatabaseIsUp: ferry wait used to exit at once
// when the database could not be reached; it keeps trying, says why it
// waits, and succeeds once the database is there and migrated.
func TestCLIWaitRetriesUntilTheDatabaseIsUp(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
	// A SQLite file in a directory that does not exist yet cannot be
	// opened: the database is "down".
	dbURL := "sqlite:" + filepath.Join(dir, "later", "app.db")
	cmd := ferryCmd(dir, dbURL, "wait", "--version", "1", "--timeout", "2m")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() || !strings.Contains(sc.Text(), "cannot be read yet, retrying") {
		t.Fatalf("wait did not say why it waits: %q", sc.Text())
	}
	if err := os.Mkdir(filepath.Join(dir, "later"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, dbURL, "up")
	go func() {
		for sc.Scan() {
		}
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("wait after the database came up: %v", err)
	}
}

// TestCLIFailurePrintedOnce: a failed migration is reported once on
// stderr (there used to be an ERROR log line with the same message too).
func TestCLIFailurePrintedOnce(t *testing.T) {
	dir := project(t, map[string]string{"00001_bad.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\nSELEC 1;\n"})
	r := runFerry(t, dir, "", "up")
	if r.code != 1 || strings.Count(r.stderr, "migration 1 (bad) failed") != 1 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestCLISettings: every invalid flag or variable value is a usage error
// (exit 2); MF_MIGRATION_ENDPOINTS_ENABLED reads as a boolean; an unset
// ${VAR} in ferry.yaml is an error naming it, and ${VAR:-default} works.
func TestCLISettings(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
	for _, tt := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"status", "--lock-mode", "foo"}, `--lock-mode: "foo": use session or lease`},
		{[]string{"FERRY_LOCK_MODE=foo"}, []string{"status"}, `FERRY_LOCK_MODE: "foo"`},
		{nil, []string{"status", "--history", "flyway"}, `use ferry, goose or golang-migrate`},
		{nil, []string{"status", "--log-format", "xml"}, `use text or json`},
		{nil, []string{"serve", "--compat", "airflow"}, `use metaflow`},
		{[]string{"FERRY_LOCK_TIMEOUT=soon"}, []string{"status"}, "FERRY_LOCK_TIMEOUT"},
		{[]string{"MF_MIGRATION_ENDPOINTS_ENABLED=maybe"}, []string{"status"}, "MF_MIGRATION_ENDPOINTS_ENABLED"},
		{nil, []string{"up", "--to", "0"}, "--to 0"},
		{nil, []string{"up", "--to", "-1"}, "--to -1"},
		{nil, []string{"up", "--to", "7"}, "no migration has version 7"},
		{nil, []string{"remote", "upgrade", "--to", "0", "--base-url", "http://127.0.0.1:1"}, "--to 0"},
	} {
		cmd := ferryCmd(dir, "", tt.args...)
		cmd.Env = append(cmd.Env, tt.env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(string(out), tt.want) {
			t.Errorf("%v ferry %v: %v, want exit 2 saying %q:\n%s", tt.env, tt.args, err, tt.want, out)
		}
	}
	if s := statusOf(t, dir, ""); s.CurrentVersion != 0 {
		t.Fatalf("a usage error applied migrations: %+v", s)
	}

	// MF_MIGRATION_ENDPOINTS_ENABLED=false (no, off, 0) makes the service
	// read-only.
	for _, v := range []string{"false", "no", "off", "0", "FALSE"} {
		s := startServe(t, dir, "", []string{"MF_MIGRATION_ENDPOINTS_ENABLED=" + v})
		code, body := httpDo(t, "PATCH", "http://"+s.addr+"/upgrade", nil)
		s.stop(t)
		if code != 404 || !strings.Contains(body, "read-only") {
			t.Errorf("MF_MIGRATION_ENDPOINTS_ENABLED=%s: PATCH /upgrade %d %s", v, code, body)
		}
	}

	// ${VAR} in ferry.yaml.
	if err := os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("dir: migrations\ndatabase: sqlite:${APP_DB}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runFerry(t, dir, "", "status")
	if r.code != exitUsage || !strings.Contains(r.stderr, "ferry.yaml:2: environment variable APP_DB is not set") {
		t.Errorf("unset ${APP_DB}: exit %d: %s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("dir: migrations\ndatabase: sqlite:${APP_DB:-fallback.db}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := ferryCmd(dir, "", "status", "--json")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"database": "sqlite:fallback.db"`) {
		t.Errorf("${APP_DB:-fallback.db}: %v %s", err, out)
	}
}

func httpDo(t *testing.T, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestExpandEnv: every ${...} form of ferry.yaml is expanded or refused,
// none stays in a value as text.
func TestExpandEnv(t *testing.T) {
	env := map[string]string{"SET": "v", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"a: ${SET}\n":           "a: v\n",
		"a: ${NOPE:-d}\n":       "a: d\n",
		"a: ${EMPTY:-d}\n":      "a: d\n",
		"a: ${EMPTY-d}\n":       "a: \n",
		"a: ${NOPE-d}\n":        "a: d\n",
		"a: pa$word $SET\n":     "a: pa$word $SET\n",
		"a: ${SET:?must set}\n": "a: v\n",
	} {
		got, err := expandEnv("f.yaml", in, lookup)
		if err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"a: ${NOPE}\n":           "f.yaml:1: environment variable NOPE is not set",
		"a: ${NOPE:?must set}\n": "f.yaml:1: environment variable NOPE: must set",
		"b: 1\na: ${NOPE?}\n":    "f.yaml:2: environment variable NOPE: not set",
		"a: ${NOPE:0:2}\n":       "f.yaml:1: ${NOPE:0:2}: ferry.yaml expands",
		"a: ${unterminated\n":    "f.yaml:1: ${unterminated",
	} {
		if _, err := expandEnv("f.yaml", in, lookup); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("expandEnv(%q): %v, want an error saying %q", in, err, want)
		}
	}
}

// TestReadCommandsCreateNoFile: a command that only reads does not create
// the SQLite file it is pointed at; it reads the empty database the file
// would be, and says the file is not there.
func TestReadCommandsCreateNoFile(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
	file := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"history"}, {"validate"}, {"up", "--dry-run"}, {"down", "--dry-run"}, {"release", "list", "--releases", "releases.yaml"}} {
		if args[0] == "release" {
			os.WriteFile(filepath.Join(dir, "releases.yaml"), []byte("releases:\n  - name: v1\n    schema: 1\n"), 0o644)
		}
		r := runFerry(t, dir, "sqlite:"+file, args...)
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("ferry %s created %s: %v", strings.Join(args, " "), file, err)
		}
		if !strings.Contains(r.stderr, "does not exist yet") || !strings.Contains(r.stderr, file) {
			t.Errorf("ferry %s: exit %d, no warning that names the file: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		if args[0] == "status" && r.code != 0 {
			t.Errorf("ferry status: exit %d: %s", r.code, r.stderr)
		}
	}
	r := mustRun(t, dir, "sqlite:"+file, "status")
	if !strings.Contains(r.stdout, "1 pending") {
		t.Errorf("status of the missing file: %s", r.stdout)
	}
	mustRun(t, dir, "sqlite:"+file, "up")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("ferry up did not create the file: %v", err)
	}
}

// TestTerminalSafe: control characters from names ferry prints (an
// export's source, a table) are escaped, so that they cannot rewrite the
// operator's terminal; newlines, tabs and other text stay.
func TestTerminalSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttext\nnext line é 🚀": "plain\ttext\nnext line é 🚀",
		"db\x1b[2J\x1b]0;owned\x07":  `db\x1b[2J\x1b]0;owned\a`,
		"cr\rover\x7f\u009b":         `cr\rover\x7f\u009b`,
	} {
		if got := terminalSafe(in); got != want {
			t.Errorf("terminalSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFirstMigrationsAdvice: dropping the target is advised only when a
// migration of the import's half took effect or a failure is recorded,
// not when the import waited too long for the lock (another import may
// hold it).
func TestFirstMigrationsAdvice(t *testing.T) {
	a := &app{}
	for _, c := range []struct {
		err        error
		drop, want string
	}{
		{fmt.Errorf("%w: %w", transfer.ErrFirstMigrations, &migrate.MigrationError{Version: 1, RolledBack: false, Err: errors.New("syntax")}), "drop it, create it empty", ""},
		{fmt.Errorf("%w: %w", transfer.ErrFirstMigrations, &migrate.NeedsRepairError{}), "drop it, create it empty", ""},
		{fmt.Errorf("%w: %w", transfer.ErrFirstMigrations, &migrate.MigrationError{Version: 1, RolledBack: true, Err: errors.New("syntax")}), "", "fix the migration and run the same `ferry import` again"},
		{fmt.Errorf("%w: %w", transfer.ErrFirstMigrations, &migrate.LockTimeoutError{}), "", "; run the same `ferry import` again"},
		// A value the target's column cannot hold: the next run meets it.
		{fmt.Errorf("load table t: column v: \"basic\" is longer than 4 characters: %w", transfer.ErrValue), "drop this database, create it empty", ""},
	} {
		got := a.advice(c.err)
		if c.drop != "" && !strings.Contains(got, c.drop) || c.drop == "" && (strings.Contains(got, "drop it") || !strings.Contains(got, c.want)) {
			t.Errorf("advice for %v: %q", c.err, got)
		}
	}
}
