package compat_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/compat"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/internal/tools"
	"github.com/ferrydb/ferry/migrate"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return c
}

// gooseMigrations are four goose files in the style Metaflow writes them:
// several statements in one StatementBegin/End block.
var gooseMigrations = map[string]string{
	"20240101000001_flows.sql": "-- +goose Up\n-- +goose StatementBegin\nSELECT 'up SQL query';\nCREATE TABLE flows (id INTEGER PRIMARY KEY, name VARCHAR(100));\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TABLE flows;\n",
	"20240101000002_runs.sql":  "-- +goose Up\nCREATE TABLE runs (id INTEGER PRIMARY KEY, flow_id INTEGER);\n\n-- +goose Down\nDROP TABLE runs;\n",
	"20240101000003_tags.sql":  "-- +goose Up\n-- +goose StatementBegin\nSELECT 'up SQL query';\nCREATE TABLE tags (id INTEGER PRIMARY KEY);\nCREATE INDEX tags_id_idx ON tags (id);\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TABLE tags;\n",
	"20240101000004_steps.sql": "-- +goose Up\nCREATE TABLE steps (id INTEGER PRIMARY KEY);\n\n-- +goose Down\nDROP TABLE steps;\n",
}

func writeDir(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gooseArgs returns goose's driver name and connection string for db.
func gooseArgs(db *testdb.DB) (string, string) {
	u := db.URL
	switch db.Kind {
	case database.Postgres:
		return "postgres", u.WithPassword() + "?sslmode=disable"
	case database.MySQL:
		return "mysql", fmt.Sprintf("%s@tcp(%s)/%s?parseTime=true&multiStatements=true", u.User, u.Address(), u.Database)
	}
	return "sqlite3", u.Database
}

func runTool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx(t), bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

var gooseVersionLine = regexp.MustCompile(`goose: version (\d+)`)

func gooseVersion(t *testing.T, bin, dir, driver, dsn string) string {
	t.Helper()
	out := runTool(t, bin, "-dir", dir, driver, dsn, "version")
	m := gooseVersionLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("goose version printed %q", out)
	}
	return m[1]
}

func TestAdoptAndMirrorGoose(t *testing.T) {
	bin, err := tools.Goose().Path(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := writeDir(t, gooseMigrations)
		driver, dsn := gooseArgs(db)
		// goose itself brings the database to the middle version.
		runTool(t, bin, "-dir", dir, driver, dsn, "up-to", "20240101000002")

		goose, err := compat.New(compat.ToolGoose, db.Dialect, "")
		if err != nil {
			t.Fatal(err)
		}
		m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir), migrate.WithHistoryMirror(goose))
		if err != nil {
			t.Fatal(err)
		}
		adopted, err := goose.Read(ctx(t), db, m.Migrations())
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Adopt(ctx(t), compat.ToolGoose, adopted)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Migrations) != 2 || res.To != 20240101000002 {
			t.Fatalf("adopt: %+v", res)
		}
		// Adopting again changes nothing.
		if res, err := m.Adopt(ctx(t), compat.ToolGoose, adopted); err != nil || len(res.Migrations) != 0 {
			t.Fatalf("second adopt: %+v %v", res, err)
		}
		s, err := m.Status(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if s.CurrentVersion != 20240101000002 || fmt.Sprint(s.Pending) != "[20240101000003 20240101000004]" || s.Applied[0].Operation != "adopt" {
			t.Fatalf("status after adopt: current %d pending %v applied %+v", s.CurrentVersion, s.Pending, s.Applied)
		}

		// ferry applies the rest; goose's table follows.
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		if v := gooseVersion(t, bin, dir, driver, dsn); v != "20240101000004" {
			t.Fatalf("goose says version %s after ferry up", v)
		}
		// goose finds nothing to do, and ferry's revert is visible to goose.
		runTool(t, bin, "-dir", dir, driver, dsn, "up")
		if _, err := m.Down(ctx(t), 1); err != nil {
			t.Fatal(err)
		}
		if v := gooseVersion(t, bin, dir, driver, dsn); v != "20240101000003" {
			t.Fatalf("goose says version %s after ferry down", v)
		}
		// And goose can pick up from where ferry left.
		runTool(t, bin, "-dir", dir, driver, dsn, "up")
		if n := countRows(t, db, "SELECT COUNT(*) FROM steps"); n != 0 {
			t.Fatal("steps table missing after goose up")
		}
	})
}

func TestGooseMirrorCreatesTableLikeGoose(t *testing.T) {
	bin, err := tools.Goose().Path(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := writeDir(t, gooseMigrations)
		goose, _ := compat.New(compat.ToolGoose, db.Dialect, "")
		m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir), migrate.WithHistoryMirror(goose))
		if err != nil {
			t.Fatal(err)
		}
		// A fresh database upgraded by ferry in one step...
		if _, err := m.Up(ctx(t), migrate.UpOptions{To: 20240101000003}); err != nil {
			t.Fatal(err)
		}
		// ...is one that goose understands and can continue.
		driver, dsn := gooseArgs(db)
		if v := gooseVersion(t, bin, dir, driver, dsn); v != "20240101000003" {
			t.Fatalf("goose version %s", v)
		}
		runTool(t, bin, "-dir", dir, driver, dsn, "up")
		s, err := m.Status(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		// goose applied 4 behind ferry's back; ferry's history does not
		// know, and says so by listing it as pending.
		if fmt.Sprint(s.Pending) != "[20240101000004]" {
			t.Fatalf("pending %v", s.Pending)
		}
	})
}

func countRows(t *testing.T, db *testdb.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func migrateURL(db *testdb.DB) string {
	u := db.URL
	switch db.Kind {
	case database.Postgres:
		return u.WithPassword() + "?sslmode=disable"
	case database.MySQL:
		return fmt.Sprintf("mysql://%s@tcp(%s)/%s?multiStatements=true", u.User, u.Address(), u.Database)
	}
	return "sqlite://" + u.Database
}

func TestAdoptAndMirrorGolangMigrate(t *testing.T) {
	bin, err := tools.GolangMigrate().Path(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for i := 1; i <= 4; i++ {
		files[fmt.Sprintf("%d_t%d.up.sql", i, i)] = fmt.Sprintf("CREATE TABLE t%d (id INTEGER);\n", i)
		files[fmt.Sprintf("%d_t%d.down.sql", i, i)] = fmt.Sprintf("DROP TABLE t%d;\n", i)
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := writeDir(t, files)
		url := migrateURL(db)
		runTool(t, bin, "-path", dir, "-database", url, "up", "2")

		gm, _ := compat.New(compat.ToolGolangMigrate, db.Dialect, "")
		m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir), migrate.WithHistoryMirror(gm))
		if err != nil {
			t.Fatal(err)
		}
		adopted, err := gm.Read(ctx(t), db, m.Migrations())
		if err != nil {
			t.Fatal(err)
		}
		if res, err := m.Adopt(ctx(t), compat.ToolGolangMigrate, adopted); err != nil || len(res.Migrations) != 2 {
			t.Fatalf("adopt: %+v %v", res, err)
		}
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		out := runTool(t, bin, "-path", dir, "-database", url, "version")
		if strings.TrimSpace(lastLine(out)) != "4" {
			t.Fatalf("migrate version after ferry up: %q", out)
		}
		if _, err := m.DownTo(ctx(t), 1); err != nil {
			t.Fatal(err)
		}
		out = runTool(t, bin, "-path", dir, "-database", url, "version")
		if strings.TrimSpace(lastLine(out)) != "1" {
			t.Fatalf("migrate version after ferry down --to 1: %q", out)
		}
		runTool(t, bin, "-path", dir, "-database", url, "up")
		if countRows(t, db, "SELECT COUNT(*) FROM t4") != 0 {
			t.Fatal("golang-migrate could not continue after ferry")
		}
	})
}

// TestAdoptDirtyGolangMigrate: a migration golang-migrate left dirty is
// adopted as failed and must be repaired before ferry goes on.
func TestAdoptDirtyGolangMigrate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := writeDir(t, map[string]string{
			"1_a.up.sql": "CREATE TABLE a (id INTEGER);\n",
			"2_b.up.sql": "CREATE TABLE b (id INTEGER);\n",
		})
		gm, _ := compat.New(compat.ToolGolangMigrate, db.Dialect, "")
		if err := gm.Ensure(ctx(t), db); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx(t), "INSERT INTO schema_migrations (version, dirty) VALUES (2, "+map[bool]string{true: "1", false: "true"}[db.Kind == "sqlite"]+")"); err != nil {
			t.Fatal(err)
		}
		m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		adopted, err := gm.Read(ctx(t), db, m.Migrations())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Adopt(ctx(t), compat.ToolGolangMigrate, adopted); err != nil {
			t.Fatal(err)
		}
		s, _ := m.Status(ctx(t))
		if s.CurrentVersion != 1 || len(s.Failed) != 1 || s.Failed[0].Version != 2 || !strings.Contains(s.Failed[0].Error, "dirty") {
			t.Fatalf("status: current %d failed %+v", s.CurrentVersion, s.Failed)
		}
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
