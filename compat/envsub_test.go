package compat_test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/dbcompare"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/internal/tools"
)

// envsubVars is the whole environment, besides PATH and HOME, that goose
// and ferry get. REGION is left unset on purpose: the files read it as
// ${REGION:-eu-west-1}. EMPTY_NOTE is set and empty.
var envsubVars = map[string]string{
	"APP_TABLE_PREFIX": "acme_",
	"APP_ROLE":         "acme_reader",
	"DEFAULT_CURRENCY": "EUR",
	"APP_ENV":          "production",
	"EMPTY_NOTE":       "",
	"DB_PASSWORD":      "Hunter2-s3cr3t",
	"REPORT_LABEL":     "EU accounts",
	"EXTRA_SQL":        "CREATE TABLE acme_extra (id INTEGER PRIMARY KEY);",
}

// historyTables are goose's and ferry's own tables, left out of the
// comparison.
var historyTables = []string{"goose_db_version", "ferry_migrations", "ferry_migrations_lock"}

const reportsFile = "20240301000003_reports.sql"

// envsubFiles is a goose directory that uses ENVSUB the way projects do:
// a table-name prefix, a role named in a comment, defaults inside quoted
// strings, ${VAR:-default} with VAR unset, ${VAR:0:4}, $$ for a dollar
// sign (a PostgreSQL dollar-quoted body included), ${...} kept literally
// outside ON/OFF, down sections that substitute too, and values that
// change how the file splits into statements (goose substitutes first).
// Only the SQL that is not portable depends on kind.
func envsubFiles(kind string) map[string]string {
	// The role goes into the table's comment where the database keeps
	// one; SQLite keeps the comment line inside CREATE TABLE instead.
	comment := map[string]string{
		database.Postgres: "COMMENT ON TABLE ${APP_TABLE_PREFIX}accounts IS 'read by ${APP_ROLE}';\n",
		database.MySQL:    "ALTER TABLE ${APP_TABLE_PREFIX}accounts COMMENT = 'read by ${APP_ROLE}';\n",
	}[kind]
	var function, dropFunction, notice string
	if kind == database.Postgres {
		// goose substitutes before it splits: the $$$$ of a one-line DO
		// block is $$ by then, and its inner ; does not end it.
		notice = "DO $$$$ BEGIN RAISE NOTICE 'deploying ${APP_ENV}'; END $$$$;\n"
		function = `-- +goose StatementBegin
CREATE FUNCTION ${APP_TABLE_PREFIX}price_label(amount NUMERIC) RETURNS TEXT AS $$$$
BEGIN
    RETURN '${DEFAULT_CURRENCY} ' || amount::TEXT;
END;
$$$$ LANGUAGE plpgsql;
-- +goose StatementEnd
`
		dropFunction = "DROP FUNCTION ${APP_TABLE_PREFIX}price_label(NUMERIC);\n"
	}
	return map[string]string{
		"20240301000001_accounts.sql": `-- +goose ENVSUB ON
-- +goose Up
CREATE TABLE ${APP_TABLE_PREFIX}accounts (
    id INTEGER PRIMARY KEY,
    -- read by ${APP_ROLE}
    name VARCHAR(100) NOT NULL,
    currency VARCHAR(3) NOT NULL DEFAULT '${DEFAULT_CURRENCY}',
    region VARCHAR(20) NOT NULL DEFAULT '${REGION:-eu-west-1}',
    tier VARCHAR(20) NOT NULL DEFAULT '${APP_ENV:0:4}'
);
` + comment + `INSERT INTO ${APP_TABLE_PREFIX}accounts (id, name) VALUES (1, 'owner'), (2, 'guest');

-- +goose Down
DROP TABLE ${APP_TABLE_PREFIX}accounts;
`,
		"20240301000002_settings.sql": `-- +goose Up
-- Templates are filled in by the application, not by goose: ${customer_name}
CREATE TABLE acme_settings (name VARCHAR(100) PRIMARY KEY, value VARCHAR(200) NOT NULL);
INSERT INTO acme_settings (name, value) VALUES ('greeting', 'Hello ${customer_name}, you owe $$5');
-- +goose ENVSUB ON
INSERT INTO ${APP_TABLE_PREFIX}settings (name, value) VALUES
    ('price', 'costs $$5 or \$6'),
    ('replication_password', '${DB_PASSWORD}'),
    ('unset_default', '${EMPTY_NOTE-fallback}'),
    ('empty_default', '${EMPTY_NOTE:-fallback}'),
    ('env', '$APP_ENV');
-- +goose ENVSUB OFF
INSERT INTO acme_settings (name, value) VALUES ('literal', '${APP_ENV} stays'); -- and so does ${THIS}

-- +goose Down
-- +goose ENVSUB ON
DROP TABLE ${APP_TABLE_PREFIX}settings;
`,
		// A whole statement in a variable: split after substitution.
		"20240301000004_extra.sql": `-- +goose Up
-- +goose ENVSUB ON
` + notice + `${EXTRA_SQL}
INSERT INTO acme_extra (id) VALUES (4);

-- +goose Down
DROP TABLE acme_extra;
`,
		reportsFile: `-- +goose Up
-- +goose ENVSUB ON
CREATE VIEW ${APP_TABLE_PREFIX}eu_accounts AS
    SELECT id, name, '${REPORT_LABEL}' AS label FROM ${APP_TABLE_PREFIX}accounts WHERE region = '${REGION:-eu-west-1}';
` + function + `
-- +goose Down
-- +goose ENVSUB ON
` + dropFunction + `DROP VIEW ${APP_TABLE_PREFIX}eu_accounts;
`,
	}
}

// toolEnv is envsubVars as an environment, with PATH, HOME and extra:
// nothing else of the test's environment (no FERRY_* or GOOSE_* setting)
// reaches the tools.
func toolEnv(vars map[string]string, extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return append(env, extra...)
}

// runIn runs bin in dir with exactly env and returns its combined output.
func runIn(t *testing.T, dir string, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), bin, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRunIn(t *testing.T, dir string, env []string, bin string, args ...string) string {
	t.Helper()
	out, err := runIn(t, dir, env, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return out
}

// buildFerry builds the ferry CLI into a directory t removes.
func buildFerry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	out, err := exec.CommandContext(ctx(t), "go", "build", "-o", bin, "github.com/ferrydb/ferry/cmd/ferry").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ferry: %v\n%s", err, out)
	}
	return bin
}

// TestEnvsub: a goose directory that uses ENVSUB, applied and reverted by
// the goose CLI on one database and by the ferry CLI on another with the
// same environment, leaves the same tables, views, functions and rows.
// Where ferry differs on purpose it is checked too: a variable that is not
// set stops ferry before it applies anything, naming file, line and
// variable, and a dry run masks secret-named variables.
func TestEnvsub(t *testing.T) {
	gooseBin, err := tools.Goose().Path(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	ferryBin := buildFerry(t)
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		files := envsubFiles(db.Kind)
		work := t.TempDir() // no .env, no ferry.yaml: only the environment given counts
		dir := filepath.Join(work, "migrations")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ferryURL := testdb.Create(t, db)
		ferryDB, err := database.Open(ctx(t), ferryURL, database.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ferryDB.Close() })
		driver, dsn := gooseArgs(db)
		gooseEnv := toolEnv(envsubVars)
		ferryEnv := toolEnv(envsubVars, "FERRY_DATABASE_URL="+ferryURL)
		goose := func(args ...string) string {
			return mustRunIn(t, work, gooseEnv, gooseBin, append([]string{"-dir", dir, driver, dsn}, args...)...)
		}
		ferry := func(args ...string) string {
			return mustRunIn(t, work, ferryEnv, ferryBin, append([]string{"--dir", dir}, args...)...)
		}

		// A required variable that is not set: ferry names it and applies
		// nothing, not even the migrations before the file that uses it.
		unset := maps.Clone(envsubVars)
		delete(unset, "REPORT_LABEL")
		out, err := runIn(t, work, toolEnv(unset, "FERRY_DATABASE_URL="+ferryURL), ferryBin, "--dir", dir, "up")
		src := files[reportsFile]
		line := 1 + strings.Count(src[:strings.Index(src, "${REPORT_LABEL}")], "\n")
		if at := fmt.Sprintf("%s:%d:", reportsFile, line); err == nil || !strings.Contains(out, at) || !strings.Contains(out, "REPORT_LABEL") {
			t.Fatalf("ferry up without REPORT_LABEL: %v, want an error naming %s and REPORT_LABEL; output:\n%s", err, at, out)
		}
		sums, err := dbcompare.Checksums(ctx(t), ferryDB)
		if err != nil {
			t.Fatal(err)
		}
		// The lock table keeps its row; the history must have none.
		for name, sum := range sums {
			bare := name[strings.LastIndexByte(name, '.')+1:]
			if !slices.Contains(historyTables, bare) || bare == "ferry_migrations" && !strings.HasPrefix(sum, "0 rows") {
				t.Fatalf("after the failed ferry up, table %s has %s; want nothing applied", name, sum)
			}
		}

		// A dry run shows the substituted SQL with the password masked.
		out = ferry("up", "--dry-run")
		if strings.Contains(out, envsubVars["DB_PASSWORD"]) || !strings.Contains(out, "('replication_password', 'xxxxx')") || !strings.Contains(out, "DEFAULT 'EUR'") {
			t.Fatalf("ferry up --dry-run: want the SQL with DB_PASSWORD shown as xxxxx and never its value; got:\n%s", out)
		}

		goose("up")
		ferry("up")
		compareDatabases(t, db.Kind, db.DB, ferryDB)
		settings := map[string]string{
			"greeting":             "Hello ${customer_name}, you owe $$5",
			"price":                "costs $5 or $6",
			"replication_password": envsubVars["DB_PASSWORD"],
			"unset_default":        "",
			"empty_default":        "fallback",
			"env":                  "production",
			"literal":              "${APP_ENV} stays",
		}
		if got := settingsRows(t, ferryDB); !maps.Equal(got, settings) {
			t.Errorf("acme_settings after ferry up:\n got %q\nwant %q", got, settings)
		}

		// The down sections substitute too: back to the first migration,
		// then to nothing.
		goose("down-to", "20240301000001")
		ferry("down", "--to", "20240301000001")
		compareDatabases(t, db.Kind, db.DB, ferryDB)
		goose("down-to", "0")
		ferry("down", "--to", "0")
		compareDatabases(t, db.Kind, db.DB, ferryDB)
		if sums, err := dbcompare.Checksums(ctx(t), ferryDB, historyTables...); err != nil || len(sums) != 0 {
			t.Errorf("after ferry down --to 0: tables %v (%v), want none", slices.Sorted(maps.Keys(sums)), err)
		}
	})
}

func settingsRows(t *testing.T, db *database.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(ctx(t), "SELECT name, value FROM acme_settings")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// compareDatabases fails t unless the database goose migrated and the one
// ferry migrated have the same schema and the same rows, each tool's
// history tables aside.
func compareDatabases(t *testing.T, kind string, goose, ferry *database.DB) {
	t.Helper()
	var objects [2][]string
	var sums [2]map[string]string
	for i, db := range []*database.DB{goose, ferry} {
		dump, err := dbcompare.Schema(ctx(t), db)
		if err != nil {
			t.Fatal(err)
		}
		objects[i] = schemaObjects(kind, dump)
		if sums[i], err = dbcompare.Checksums(ctx(t), db, historyTables...); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(objects[0], objects[1]) {
		t.Errorf("schemas differ\nonly goose's:\n%s\nonly ferry's:\n%s", strings.Join(without(objects[0], objects[1]), "\n--\n"), strings.Join(without(objects[1], objects[0]), "\n--\n"))
	}
	if !maps.Equal(sums[0], sums[1]) {
		t.Errorf("tables differ:\n goose %v\n ferry %v", sums[0], sums[1])
	}
}

// sqliteObject starts an object in dbcompare's SQLite schema listing.
var sqliteObject = regexp.MustCompile(`(?m)^(table|index|view|trigger) `)

// schemaObjects splits a dbcompare.Schema dump into its statements (for
// SQLite its objects), sorted and without repeats, leaving out those that
// name a history table. Sorted and without repeats because mysqldump
// repeats the same SET statements around every table, and goose and ferry
// keep different numbers of history tables.
func schemaObjects(kind, dump string) []string {
	var parts []string
	if kind == database.SQLite {
		starts := sqliteObject.FindAllStringIndex(dump, -1)
		for i, s := range starts {
			end := len(dump)
			if i+1 < len(starts) {
				end = starts[i+1][0]
			}
			parts = append(parts, dump[s[0]:end])
		}
	} else {
		parts = strings.Split(dump, ";\n")
	}
	var out []string
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p != "" && !slices.ContainsFunc(historyTables, func(h string) bool { return strings.Contains(p, h) }) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// without returns the elements of a that are not in b.
func without(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
