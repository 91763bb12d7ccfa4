package backup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestMissingOrOldTool: without the client tool, or with one older than
// the server, a backup fails before anything is stored and says which
// package to install.
func TestMissingOrOldTool(t *testing.T) {
	for _, kind := range []string{database.Postgres, database.MySQL} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, kind)
			ctx := tctx(t)
			store, dir := newStore(t)
			old := map[string][2]string{
				database.Postgres: {"pg_dump", `echo "pg_dump (PostgreSQL) 9.6.24"`},
				database.MySQL:    {"mariadb-dump", `echo "mariadb-dump  Ver 10.19 Distrib 10.3.39-MariaDB, for debian-linux-gnu (x86_64)"`},
			}[kind]
			hint := map[string]string{database.Postgres: "apt-get install postgresql-client-", database.MySQL: "apt-get install mariadb-client"}[kind]

			empty := t.TempDir()
			_, err := Create(ctx, store, db.DB, CreateOptions{Options: Options{ToolDir: empty}})
			if !errors.Is(err, ErrTool) || !strings.Contains(err.Error(), "not found in "+empty) || !strings.Contains(err.Error(), hint) {
				t.Errorf("missing tool: %v", err)
			}
			oldDir := t.TempDir()
			script(t, oldDir, old[0], old[1]+"\n")
			_, err = Create(ctx, store, db.DB, CreateOptions{Options: Options{ToolDir: oldDir}})
			if !errors.Is(err, ErrTool) || !strings.Contains(err.Error(), "older than") || !strings.Contains(err.Error(), hint) {
				t.Errorf("old tool: %v", err)
			}
			// A tool that fails half-way: its message is reported and the
			// partial object is deleted.
			failing := t.TempDir()
			real, err := exec.LookPath(old[0])
			if err != nil {
				real, _ = exec.LookPath("mysqldump")
			}
			script(t, failing, old[0], `if [ "$1" = --version ]; then exec `+real+` --version; fi
head -c 100000 /dev/urandom; echo "disk on fire" >&2; exit 3
`)
			_, err = Create(ctx, store, db.DB, CreateOptions{Options: Options{ToolDir: failing}})
			if !errors.Is(err, ErrTool) || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "exit status 3") {
				t.Errorf("failing tool: %v", err)
			}
			if l, _, err := store.List(ctx); err != nil || len(l) != 0 {
				t.Errorf("a failed backup is listed: %v %v", l, err)
			}
			filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() {
					t.Errorf("a failed backup left %s", p)
				}
				return nil
			})
		})
	}
}

// TestPasswordsStayOffCommandLines runs the real tools through wrapper
// scripts that record their arguments: the password is never an
// argument, reaches pg_dump as PGPASSWORD and mysqldump through a 0600
// option file, and appears in no manifest or error.
func TestPasswordsStayOffCommandLines(t *testing.T) {
	const secret = "S3cr3t-pw'x"
	for _, kind := range []string{database.Postgres, database.MySQL} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, kind)
			ctx := tctx(t)
			user := testdb.UniqueName("ferry_u")
			var create, drop []string
			if kind == database.Postgres {
				create = []string{`CREATE ROLE "` + user + `" LOGIN SUPERUSER PASSWORD 'S3cr3t-pw''x'`}
				drop = []string{`DROP ROLE IF EXISTS "` + user + `"`}
			} else {
				create = []string{"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'S3cr3t-pw''x'", "GRANT ALL ON *.* TO '" + user + "'@'%'"}
				drop = []string{"DROP USER IF EXISTS '" + user + "'@'%'"}
			}
			for _, s := range create {
				if _, err := db.ExecContext(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() {
				for _, s := range drop {
					db.ExecContext(ctx, s)
				}
			})
			seed(t, db.DB)
			u := *db.URL
			raw := strings.Replace(u.WithPassword(), "://"+u.User+"@", "://"+user+":S3cr3t-pw%27x@", 1)
			if kind == database.MySQL {
				raw = strings.Replace(u.WithPassword(), "://root@", "://"+user+":S3cr3t-pw%27x@", 1)
			}
			pw := openURL(t, raw)
			if pw.URL.Password() != secret {
				t.Fatalf("test URL password %q", pw.URL.Password())
			}
			wrappers, log := t.TempDir(), filepath.Join(t.TempDir(), "calls.log")
			for _, name := range []string{"pg_dump", "pg_restore", "mariadb-dump", "mariadb"} {
				real, err := exec.LookPath(name)
				if err != nil {
					continue
				}
				script(t, wrappers, name, `if [ "$1" = --version ]; then exec `+real+` --version; fi
echo "`+name+` $*" >> `+log+`
[ -n "$PGPASSWORD" ] && echo "PGPASSWORD is set" >> `+log+`
for a in "$@"; do case "$a" in --defaults-extra-file=*) f="${a#--defaults-extra-file=}"; echo "option file mode $(stat -c %a "$f")" >> `+log+`; grep -c password "$f" >> `+log+`;; esac; done
exec `+real+` "$@"
`)
			}
			store, dir := newStore(t)
			opts := Options{ToolDir: wrappers}
			m, err := Create(ctx, store, pw, CreateOptions{Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			target := openURL(t, testdb.Create(t, db))
			traw := strings.Replace(target.URL.WithPassword(), "://"+target.URL.User+"@", "://"+user+":S3cr3t-pw%27x@", 1)
			if _, err := Restore(ctx, store, m.ID, openURL(t, traw), RestoreOptions{Options: opts}); err != nil {
				t.Fatal(err)
			}
			calls, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(calls), "S3cr3t") {
				t.Errorf("password on a command line:\n%s", calls)
			}
			want := map[string][]string{
				database.Postgres: {"pg_dump --format=custom", "pg_restore --single-transaction", "PGPASSWORD is set"},
				database.MySQL:    {"mariadb-dump --defaults-extra-file=", "mariadb --defaults-extra-file=", "option file mode 600\n1\n"},
			}[kind]
			for _, w := range want {
				if !strings.Contains(string(calls), w) {
					t.Errorf("calls do not show %q:\n%s", w, calls)
				}
			}
			manifest, _ := os.ReadFile(filepath.Join(dir, m.ID, manifestName))
			if strings.Contains(string(manifest), "S3cr3t") || !strings.Contains(string(manifest), user) {
				t.Errorf("manifest:\n%s", manifest)
			}
			// A failing tool's error does not show the password either.
			bad, err := database.Open(ctx, strings.Replace(raw, "/"+db.URL.Database, "/no_such_db_x", 1), database.Options{NoPing: true})
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			_, err = Create(ctx, store, bad, CreateOptions{Options: opts})
			if err == nil || strings.Contains(err.Error(), "S3cr3t") {
				t.Errorf("error for a missing database: %v", err)
			}
		})
	}
}
