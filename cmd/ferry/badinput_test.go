package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/dbcompare"
	"github.com/ferrydb/ferry/internal/testdb"
)

// badInput is one bad input an operator could give ferry, and what ferry
// must answer: the exit code, a message that says what is wrong and where,
// no password, and a database left exactly as it was.
type badInput struct {
	name string
	// kinds the row runs on; nil for all three.
	kinds []string
	// files are written into the row's copy of migrations/ ("" removes
	// the file); root files into the project directory.
	files, root map[string]string
	// url gives FERRY_DATABASE_URL from the test database's URL; nil
	// means the test database itself, "" means none.
	url  func(db string) string
	env  []string
	args []string
	code int
	// stderr and stdout must each contain every one of their strings.
	stderr, stdout []string
	// secrets must appear in no output, besides every password and
	// secret-named parameter of the URLs in url, env and args.
	secrets []string
}

// In every string of a row, {dir} is the row's project directory.
const badDir = "{dir}"

// The project every row starts from: 1 and 2 are applied, 3 and 5 are
// pending, and 5 drops a table, so a row that wrongly applies pending
// migrations loses data visibly.
var badProject = map[string]string{
	"00001_users.sql":      "-- +ferry up\nCREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);\nINSERT INTO users (id, name) VALUES (1, 'ada');\n-- +ferry down\nDROP TABLE users;\n",
	"00002_posts.sql":      "-- +ferry up\nCREATE TABLE posts (id INTEGER PRIMARY KEY, body VARCHAR(200));\nINSERT INTO posts (id, body) VALUES (1, 'hello');\n-- +ferry down\nDROP TABLE posts;\n",
	"00003_tags.sql":       "-- +ferry up\nCREATE TABLE tags (id INTEGER PRIMARY KEY);\n-- +ferry down\nDROP TABLE tags;\n",
	"00005_drop_posts.sql": "-- +ferry up\nDROP TABLE posts;\n-- +ferry down\nCREATE TABLE posts (id INTEGER PRIMARY KEY, body VARCHAR(200));\n",
}

const (
	badPG     = database.Postgres
	badMySQL  = database.MySQL
	badSQLite = database.SQLite
	badFile   = "00007_bad.sql"
)

// badParam is the test database's URL with the parameter k=v.
func badParam(k, v string) func(string) string {
	return func(db string) string {
		u, _ := url.Parse(db)
		q := u.Query()
		q.Set(k, v)
		u.RawQuery = q.Encode()
		return u.String()
	}
}

// badPassword is the test database's URL with the password pw.
func badPassword(pw string) func(string) string {
	return func(db string) string {
		u, _ := url.Parse(db)
		u.User = url.UserPassword(u.User.Username(), pw)
		return u.String()
	}
}

// badURL is u, whatever the test database.
func badURL(u string) func(string) string { return func(string) string { return u } }

// badInputs returns the table, by category.
func badInputs() []struct {
	category string
	rows     []badInput
} {
	// upBad is a row whose file has a bad body: up parses the pending
	// files before it takes the migration lock, so not even the lock row
	// changes.
	upBad := func(name, body string, want ...string) badInput {
		return badInput{name: name, files: map[string]string{badFile: body}, args: []string{"up"}, code: 1, stderr: want}
	}
	loc := "migrations/" + badFile
	return []struct {
		category string
		rows     []badInput
	}{{"migration files", []badInput{
		upBad("unknown annotation", "-- +ferry up\nSELECT 1;\n-- +ferry sideways\n", loc+`:3: unknown annotation "-- +ferry sideways"`),
		upBad("unterminated string", "-- +ferry up\nINSERT INTO users (id, name) VALUES (7, 'ada);\n", loc+":2: unterminated string"),
		{name: "unterminated dollar quote", kinds: []string{badPG}, files: map[string]string{badFile: "-- +ferry up\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1;\n"},
			args: []string{"up"}, code: 1, stderr: []string{loc + ":2: unterminated dollar-quoted string $$"}},
		upBad("unterminated comment", "-- +ferry up\n/* users\nSELECT 1;\n", loc+":2: unterminated /* comment"),
		{name: "duplicate version", files: map[string]string{"2_posts_again.sql": "-- +ferry up\nSELECT 1;\n"}, args: []string{"up"}, code: 1,
			stderr: []string{"migrations/2_posts_again.sql: duplicate version 2: migrations/00002_posts.sql has it too"}},
		{name: "file name without version", files: map[string]string{"add_users.sql": "-- +ferry up\nSELECT 1;\n"}, args: []string{"up"}, code: 1,
			stderr: []string{"migrations/add_users.sql: file name must start with a version number"}},
		{name: "version 0", files: map[string]string{"0_a.sql": "-- +ferry up\nSELECT 1;\n"}, args: []string{"up"}, code: 1,
			stderr: []string{"migrations/0_a.sql: version 0 is not allowed"}},
		{name: "20-digit version", files: map[string]string{"12345678901234567890_a.sql": "-- +ferry up\nSELECT 1;\n"}, args: []string{"up"}, code: 1,
			stderr: []string{"migrations/12345678901234567890_a.sql: version 12345678901234567890 has 20 digits"}},
		{name: "no underscore after version", files: map[string]string{"00007users.sql": "-- +ferry up\nSELECT 1;\n"}, args: []string{"up"}, code: 1,
			stderr: []string{"migrations/00007users.sql: file name must have an underscore after the version 00007"}},
		upBad("empty up section", "-- +ferry up\n-- +ferry down\nDROP TABLE users;\n", loc+":1: the up section is empty", "-- +ferry allow-empty"),
		upBad("unedited ferry new template", "-- +ferry up\n-- TODO: write the migration's SQL here (an up section left empty is refused)\n\n-- +ferry down\n",
			loc+":1: the up section is empty"),
		upBad("UTF-16 file", "\xff\xfe-\x00-\x00 \x00+\x00f\x00e\x00r\x00r\x00y\x00 \x00u\x00p\x00\n\x00", loc+": the file is UTF-16 text: save it as UTF-8"),
		{name: "upper-case .SQL extension", files: map[string]string{"00007_x.SQL": "-- +ferry up\nSELECT 1;\n"}, args: []string{"up"}, code: 1,
			stderr: []string{"migrations/00007_x.SQL: extension .SQL: ferry reads migration files ending in .sql, in lower case"}},
		upBad("SQL outside a section", "DROP TABLE users;\n", loc+":1: SQL outside a section"),
		upBad("second up section", "-- +ferry up\nSELECT 1;\n-- +ferry up\nDROP TABLE users;\n", loc+":3: second up section (the first starts at line 1)"),
		upBad("ferry and goose annotations mixed", "-- +ferry up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n", loc+":3: file mixes -- +ferry and -- +goose annotations"),
		upBad("statement-begin without end", "-- +goose Up\n-- +goose StatementBegin\nDROP TABLE users;\n", loc+":2: statement-begin has no matching statement-end"),
		{name: "down file without up file", files: map[string]string{"00007_x.down.sql": "DROP TABLE users;\n"}, args: []string{"up"}, code: 1,
			stderr: []string{"migrations/00007_x.down.sql: down migration without an up part: add 00007_x.up.sql"}},
		upBad("mysql client DELIMITER", "-- +ferry up\nDELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //\nDELIMITER ;\n",
			loc+":2: DELIMITER is a command of the mysql client", "statement-begin"),
		{name: "unregistered Go migration", files: map[string]string{"00007_seed.go": "package migrations\n"}, args: []string{"up"}, code: 1,
			stderr: []string{"migrations/00007_seed.go: Go migration file for version 7, but no Go migration 7 is registered"}},
		upBad("goose ENVSUB with an unset variable", "-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE ${BADINPUT_UNSET_TABLE} (id INTEGER);\n",
			loc+":3: ENVSUB: environment variable BADINPUT_UNSET_TABLE is not set"),
		{name: "applied migration edited", files: map[string]string{"00001_users.sql": strings.Replace(badProject["00001_users.sql"], "VARCHAR(50)", "VARCHAR(80)", 1)},
			args: []string{"validate"}, code: 1, stdout: []string{"migrations/00001_users.sql was edited after it was applied"}},
		{name: "applied migration deleted", files: map[string]string{"00002_posts.sql": ""}, args: []string{"validate"}, code: 1,
			stdout: []string{"version 2 (posts) is applied but its migration file is missing"}},
	}}, {"database URLs", []badInput{
		{name: "unsupported scheme", url: badURL("oracle://scott:T1gerT1ger@db/orcl"), args: []string{"status"}, code: 2,
			stderr: []string{`unsupported database URL scheme "oracle"`}},
		{name: "mysql init_connect parameter", kinds: []string{badMySQL}, url: badParam("init_connect", "DROP TABLE users"), args: []string{"up"}, code: 2,
			stderr: []string{`unknown mysql URL parameter "init_connect"`}},
		{name: "mysql secret-named parameter", kinds: []string{badMySQL}, url: badParam("token", "Tok3nS3cretValue"), args: []string{"status"}, code: 2,
			stderr: []string{`mysql URL parameter "token" looks like a secret`}},
		{name: "mysql allowAllFiles", kinds: []string{badMySQL}, url: badParam("allowAllFiles", "true"), args: []string{"status"}, code: 2,
			stderr: []string{`"allowAllFiles" is refused: it lets the database server read any file on this host`}},
		{name: "mysql tls=skip-verify", kinds: []string{badMySQL}, url: badParam("tls", "skip-verify"), args: []string{"status"}, code: 2,
			stderr: []string{`mysql URL parameter "tls": use sslmode=`}},
		{name: "mysql timeout=abc", kinds: []string{badMySQL}, url: badParam("timeout", "abc"), args: []string{"status"}, code: 2,
			stderr: []string{`time: invalid duration "abc"`}},
		{name: "mysql sslmode=bogus", kinds: []string{badMySQL}, url: badParam("sslmode", "bogus"), args: []string{"status"}, code: 2,
			stderr: []string{`sslmode "bogus": use disable, preferred`}},
		{name: "postgres secret-named parameter", kinds: []string{badPG}, url: badParam("auth_token", "Tok3nS3cretValue"), args: []string{"status"}, code: 2,
			stderr: []string{`postgres URL parameter "auth_token" looks like a secret`}},
		{name: "postgres user given twice", kinds: []string{badPG}, url: badParam("user", "intruder"), args: []string{"up"}, code: 2,
			stderr: []string{"postgres URL gives the user twice"}},
		{name: "postgres sslmode=bogus", kinds: []string{badPG}, url: badParam("sslmode", "bogus"), args: []string{"status"}, code: 2,
			stderr: []string{"sslmode", "verify-full"}},
		{name: "postgres port 99999", kinds: []string{badPG}, url: badURL("postgres://app:P0rtS3cret@127.0.0.1:99999/app"), args: []string{"status"}, code: 2,
			stderr: []string{"invalid port"}},
		{name: "postgres host unreachable", kinds: []string{badPG}, url: badURL("postgres://app:Unr3achableS3cret@127.0.0.1:1/app"), args: []string{"up"}, code: 1,
			stderr: []string{"cannot connect to database", "127.0.0.1:1", `user "app"`}},
		{name: "mysql host unreachable", kinds: []string{badMySQL}, url: badURL("mysql://app:Unr3achableS3cret@127.0.0.1:1/app"), args: []string{"up"}, code: 1,
			stderr: []string{"cannot connect to database", "127.0.0.1:1", `user "app"`}},
		{name: "mysql wrong password", kinds: []string{badMySQL}, url: badPassword("Wr0ngPassw0rd"), args: []string{"up"}, code: 1,
			stderr: []string{"cannot connect to database", "Access denied for user"}},
		{name: "metaflow variables, host unreachable", kinds: []string{badPG}, url: badURL(""), args: []string{"status"}, code: 1,
			env:    []string{"MF_METADATA_DB_HOST=127.0.0.1", "MF_METADATA_DB_PORT=1", "MF_METADATA_DB_USER=app", "MF_METADATA_DB_PSWD=MfS3cretPassword", "MF_METADATA_DB_NAME=app"},
			stderr: []string{"127.0.0.1:1", `user "app"`, "MF_METADATA_DB_"}, secrets: []string{"MfS3cretPassword"}},
		{name: "sqlite directory missing", kinds: []string{badSQLite}, url: badURL("sqlite:" + badDir + "/no/such/app.db"), args: []string{"up"}, code: 1,
			stderr: []string{"directory " + badDir + "/no/such does not exist"}},
		{name: "sqlite URL without a path", kinds: []string{badSQLite}, url: badURL("sqlite:"), args: []string{"up"}, code: 2,
			stderr: []string{"sqlite URL has no file path"}},
	}}, {"targets and arguments", []badInput{
		{name: "up --to 0", args: []string{"up", "--to", "0"}, code: 2, stderr: []string{"--to 0: give the version of a migration"}},
		{name: "up --to -1", args: []string{"up", "--to", "-1"}, code: 2, stderr: []string{"--to -1: give the version of a migration"}},
		{name: "up --to abc", args: []string{"up", "--to", "abc"}, code: 2, stderr: []string{`invalid argument "abc" for "--to" flag`}},
		{name: "up --to a version no file has", args: []string{"up", "--to", "4"}, code: 2,
			stderr: []string{"no migration has version 4; the nearest are 3 (tags) below and 5 (drop_posts) above"}},
		{name: "baseline 999", args: []string{"baseline", "999"}, code: 2, stderr: []string{"no migration has version 999", "--allow-missing"}},
		{name: "baseline 0", args: []string{"baseline", "0"}, code: 2, stderr: []string{`version "0" is not a positive integer`}},
		{name: "repair a pending migration", args: []string{"repair", "3", "--mark", "applied"}, code: 1,
			stderr: []string{"version 3 has nothing to repair: it is pending and did not fail"}},
		{name: "repair a version nothing has", args: []string{"repair", "99", "--mark", "applied"}, code: 2,
			stderr: []string{"version 99 has no migration file and no history"}},
		{name: "repair without --mark", args: []string{"repair", "1"}, code: 2, stderr: []string{"--mark applied", "--mark pending"}},
		{name: "repair --mark done", args: []string{"repair", "1", "--mark", "done"}, code: 2, stderr: []string{"--mark applied"}},
		{name: "down -n 0", args: []string{"down", "-n", "0"}, code: 2, stderr: []string{"-n must be at least 1"}},
		{name: "down -n and --to together", args: []string{"down", "-n", "1", "--to", "0"}, code: 2, stderr: []string{"use -n or --to, not both"}},
		{name: "down --to -1", args: []string{"down", "--to", "-1"}, code: 2, stderr: []string{"--to -1"}},
		{name: "down --to -1 --dry-run", args: []string{"down", "--to", "-1", "--dry-run"}, code: 2, stderr: []string{"--to -1"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "unknown remote command", args: []string{"remote", "frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "extra positional argument", args: []string{"up", "now"}, code: 2, stderr: []string{`ferry up takes no arguments, got "now"`}},
		{name: "remote upgrade --to 0", args: []string{"remote", "upgrade", "--to", "0", "--base-url", "http://127.0.0.1:1"}, code: 2,
			stderr: []string{"--to 0"}},
		{name: "remote status without --base-url", args: []string{"remote", "status"}, code: 2, stderr: []string{"--base-url"}},
		{name: "remote base URL not http", args: []string{"remote", "status", "--base-url", "ftp://ferry:Ft9S3cretToken@host"}, code: 2,
			stderr: []string{"use http://host:port or https://host:port"}},
	}}, {"settings", []badInput{
		{name: "--lock-mode foo", args: []string{"up", "--lock-mode", "foo"}, code: 2, stderr: []string{`--lock-mode: "foo": use session or lease`}},
		{name: "FERRY_LOCK_MODE=foo", env: []string{"FERRY_LOCK_MODE=foo"}, args: []string{"up"}, code: 2, stderr: []string{`FERRY_LOCK_MODE: "foo"`}},
		{name: "--history flyway", args: []string{"up", "--history", "flyway"}, code: 2, stderr: []string{"use ferry, goose or golang-migrate"}},
		{name: "--log-level loud", args: []string{"up", "--log-level", "loud"}, code: 2, stderr: []string{"use debug, info, warn or error"}},
		{name: "--log-format xml", args: []string{"up", "--log-format", "xml"}, code: 2, stderr: []string{"use text or json"}},
		{name: "--lock-timeout soon", args: []string{"up", "--lock-timeout", "soon"}, code: 2, stderr: []string{`invalid argument "soon" for "--lock-timeout"`}},
		{name: "--lock-timeout negative", args: []string{"up", "--lock-timeout", "-5s"}, code: 2, stderr: []string{"lock timeout must be positive, got -5s"}},
		{name: "--connect-timeout negative", args: []string{"status", "--connect-timeout", "-1s"}, code: 2, stderr: []string{"connect timeout"}},
		{name: "FERRY_CONNECT_TIMEOUT=abc", env: []string{"FERRY_CONNECT_TIMEOUT=abc"}, args: []string{"up"}, code: 2,
			stderr: []string{`FERRY_CONNECT_TIMEOUT: connect timeout "abc"`}},
		{name: "--contract-wait negative", args: []string{"up", "--contract-wait", "-1s"}, code: 2,
			stderr: []string{`--contract-wait: contract wait "-1s": use a duration such as 30m, or 0 to refuse at once`}},
		{name: "FERRY_CONTRACT_WAIT=soon", env: []string{"FERRY_CONTRACT_WAIT=soon"}, args: []string{"up"}, code: 2,
			stderr: []string{`FERRY_CONTRACT_WAIT: contract wait "soon"`}},
		{name: "FERRY_DDL_LOCK_TIMEOUT=-1s", env: []string{"FERRY_DDL_LOCK_TIMEOUT=-1s"}, args: []string{"up"}, code: 2,
			stderr: []string{`FERRY_DDL_LOCK_TIMEOUT: DDL lock timeout "-1s": use a duration such as 5s or 1m, or 0 for no limit`}},
		{name: "FERRY_ALLOW_OUT_OF_ORDER=maybe", env: []string{"FERRY_ALLOW_OUT_OF_ORDER=maybe"}, args: []string{"up"}, code: 2,
			stderr: []string{`FERRY_ALLOW_OUT_OF_ORDER: "maybe": use true or false`}},
		{name: "MF_MIGRATION_ENDPOINTS_ENABLED=maybe", env: []string{"MF_MIGRATION_ENDPOINTS_ENABLED=maybe"}, args: []string{"up"}, code: 2,
			stderr: []string{`MF_MIGRATION_ENDPOINTS_ENABLED: "maybe": use true or false`}},
		{name: "--table not an identifier", args: []string{"status", "--table", "users; DROP TABLE users"}, code: 2,
			stderr: []string{`history table name "users; DROP TABLE users": use letters, digits and underscores`}},
		{name: "--schema without PostgreSQL", kinds: []string{badMySQL, badSQLite}, args: []string{"up", "--schema", "app"}, code: 2,
			stderr: []string{`a schema ("app", from --schema, FERRY_SCHEMA or ferry.yaml) is only supported for PostgreSQL`}},
		{name: "ferry.yaml unset ${VAR}", root: map[string]string{"ferry.yaml": "dir: migrations\nlock_timeout: ${BADINPUT_UNSET_TIMEOUT}\n"}, args: []string{"up"}, code: 2,
			stderr: []string{"ferry.yaml:2: environment variable BADINPUT_UNSET_TIMEOUT is not set"}},
		{name: "ferry.yaml lock_mode: foo", root: map[string]string{"ferry.yaml": "lock_mode: foo\n"}, args: []string{"up"}, code: 2,
			stderr: []string{`config file ferry.yaml: lock_mode: "foo": use session or lease`}},
		{name: "ferry.yaml unknown key", root: map[string]string{"ferry.yaml": "dri: migrations\n"}, args: []string{"up"}, code: 2,
			stderr: []string{"config file ferry.yaml", "line 1: field dri not found"}},
		{name: "ferry.yaml lock_timeout: soon", root: map[string]string{"ferry.yaml": "lock_timeout: soon\n"}, args: []string{"up"}, code: 2,
			stderr: []string{"config file ferry.yaml", "line 1", "soon"}},
		{name: "--config names a missing file", args: []string{"up", "--config", "nope.yaml"}, code: 1,
			stderr: []string{"config file: open nope.yaml: no such file or directory"}},
	}}, {"backups and service", []badInput{
		{name: "backup restore unknown id", args: []string{"backup", "restore", "20261121T193000Z-ab12cd", "--yes"}, code: 1,
			stderr: []string{"backup not found: 20261121T193000Z-ab12cd", "ferry backup list"}},
		{name: "backup restore --to a bare file path", args: []string{"backup", "restore", "20261121T193000Z-ab12cd", "--to", "/var/lib/app.db", "--yes"}, code: 2,
			stderr: []string{"database URL /var/lib/app.db has no scheme: for a SQLite file, write sqlite:/var/lib/app.db"}},
		{name: "backup restore malformed id", args: []string{"backup", "restore", "latest", "--yes"}, code: 2,
			stderr: []string{`"latest" is not a backup id`}},
		{name: "file store URL with a password", args: []string{"backup", "list", "--store", "file://user:St0reS3cret@/var/backups"}, code: 2,
			stderr: []string{"a file URL needs an absolute path"}},
		{name: "s3 store URL with a secret parameter", args: []string{"backup", "list", "--store", "s3://ferry-badinput/b?secret_key=S3cretK3yValue"}, code: 2,
			stderr: []string{`s3:// takes no parameter "secret_key"`}},
		{name: "serve on all interfaces without a token", args: []string{"serve", "--listen", "0.0.0.0:0"}, code: 1,
			stderr: []string{"refusing to serve upgrades on 0.0.0.0:0 without a token"}},
		{name: "serve with a short token", root: map[string]string{"tokens": "shortTok9\n"}, args: []string{"serve", "--token-file", "tokens"}, code: 1,
			stderr: []string{"token file tokens: line 1", "too short"}, secrets: []string{"shortTok9"}},
		{name: "serve with a short FERRY_TOKEN", env: []string{"FERRY_TOKEN=shortTok9"}, args: []string{"serve"}, code: 1,
			stderr: []string{"FERRY_TOKEN is too short (9 characters)"}, secrets: []string{"shortTok9"}},
		{name: "serve with a missing token file", args: []string{"serve", "--token-file", "no-tokens"}, code: 1,
			stderr: []string{"token file: open no-tokens: no such file or directory"}},
		{name: "serve --listen without a port", args: []string{"serve", "--listen", "127.0.0.1"}, code: 2,
			stderr: []string{`--listen: listen address \"127.0.0.1\": want HOST:PORT`}},
		{name: "serve --listen as a URL, no token", args: []string{"serve", "--listen", "http://0.0.0.0:8082"}, code: 2,
			stderr: []string{`--listen: listen address \"http://0.0.0.0:8082\"`, "not a URL"}},
		{name: "serve --listen with a bad port", args: []string{"serve", "--listen", "127.0.0.1:99999"}, code: 2,
			stderr: []string{"the port must be a number from 0 to 65535"}},
		{name: "serve --allowed-host wildcard", args: []string{"serve", "--listen", "127.0.0.1:0", "--allowed-host", "*"}, code: 2,
			stderr: []string{`--allowed-host: allowed host \"*\": wildcards are not supported`}},
		{name: "serve --allowed-host unspecified address", args: []string{"serve", "--listen", "127.0.0.1:0", "--allowed-host", "0.0.0.0"}, code: 2,
			stderr: []string{"the unspecified address, which would allow every host"}},
	}}}
}

// TestBadInputTable runs every bad input against the real binary on each
// database, where the row applies, and checks that the database (schema,
// every table's rows, ferry's history and lock rows) is exactly as before.
func TestBadInputTable(t *testing.T) {
	for _, kind := range testdb.Kinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			tmpl := project(t, badProject)
			b := newBadBase(t, kind, tmpl)
			for _, g := range badInputs() {
				for _, row := range g.rows {
					if row.kinds != nil && !slices.Contains(row.kinds, kind) {
						continue
					}
					changed := false
					t.Run(g.category+"/"+row.name, func(t *testing.T) { changed = runBadInput(t, b, tmpl, row) })
					if changed {
						// Judge the next rows against a fresh database.
						b = newBadBase(t, kind, tmpl)
					}
				}
			}
		})
	}
}

// badBase is the database every row of one kind runs against.
type badBase struct {
	db     *testdb.DB
	before badState
}

func newBadBase(t *testing.T, kind, tmpl string) *badBase {
	t.Helper()
	db := testdb.New(t, kind)
	mustRun(t, tmpl, db.URLString, "up", "--to", "2")
	if s := statusOf(t, tmpl, db.URLString); s.CurrentVersion != 2 || !slices.Equal(s.Pending, []int64{3, 5}) {
		t.Fatalf("set-up: want version 2 with 3 and 5 pending, got %+v", s)
	}
	st, err := takeBadState(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	return &badBase{db: db, before: st}
}

// runBadInput runs one row in its own copy of the project and reports
// whether the database changed.
func runBadInput(t *testing.T, b *badBase, tmpl string, row badInput) (changed bool) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(tmpl)); err != nil {
		t.Fatal(err)
	}
	fill := func(s string) string { return strings.ReplaceAll(s, badDir, dir) }
	for sub, files := range map[string]map[string]string{"migrations": row.files, ".": row.root} {
		for name, body := range files {
			p := filepath.Join(dir, sub, name)
			if body == "" {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dbURL := b.db.URLString
	if row.url != nil {
		dbURL = fill(row.url(b.db.URLString))
	}
	var env, args []string
	if dbURL != "" {
		env = append(env, "FERRY_DATABASE_URL="+dbURL)
	}
	for _, e := range row.env {
		env = append(env, fill(e))
	}
	for _, a := range row.args {
		args = append(args, fill(a))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	cmd.Dir, cmd.Env = dir, cleanEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		code = -1
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run ferry: %v", err)
	}

	var problems []string
	if code == -1 {
		problems = append(problems, "did not exit within 30s")
	} else if code != row.code {
		problems = append(problems, fmt.Sprintf("exit %d, want %d", code, row.code))
	}
	for _, w := range row.stderr {
		if w = fill(w); !strings.Contains(stderr.String(), w) {
			problems = append(problems, fmt.Sprintf("stderr does not say %q", w))
		}
	}
	for _, w := range row.stdout {
		if w = fill(w); !strings.Contains(stdout.String(), w) {
			problems = append(problems, fmt.Sprintf("stdout does not say %q", w))
		}
	}
	// The test server's own password is left out: a CI password such as
	// "postgres" would match everywhere.
	own, _ := url.Parse(b.db.URLString)
	ownPW, _ := own.User.Password()
	for _, s := range append(badSecrets(append(append([]string{dbURL}, env...), args...)...), row.secrets...) {
		if s != ownPW && strings.Contains(stdout.String()+stderr.String(), s) {
			problems = append(problems, fmt.Sprintf("the secret %q is printed", s))
		}
	}
	after, err := takeBadState(b.db.DB)
	if err != nil {
		t.Fatalf("read the database after the row: %v", err)
	}
	if d := b.before.diff(after); d != "" {
		problems = append(problems, "the database changed:\n"+d)
		// Only the lock row changed: judge the next rows against it;
		// anything more takes a fresh database.
		changed = after.schema != b.before.schema || after.history != b.before.history || after.tables != b.before.tables
		b.before = after
	}
	if len(problems) > 0 {
		t.Errorf("%s: %s ferry %s\n- %s\nstdout:\n%s\nstderr:\n%s",
			b.db.Kind, strings.Join(env, " "), strings.Join(args, " "),
			strings.Join(problems, "\n- "), stdout.String(), stderr.String())
	}
	return changed
}

// badSecrets returns the passwords and secret-named query parameters of the
// URLs in ss (each possibly a NAME=value variable).
func badSecrets(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if i := strings.Index(s, "="); i > 0 && !strings.Contains(s[:i], "://") {
			s = s[i+1:]
		}
		u, err := url.Parse(s)
		if err != nil || !strings.Contains(s, "://") {
			continue
		}
		if pw, ok := u.User.Password(); ok && pw != "" {
			out = append(out, pw)
		}
		for k, vs := range u.Query() {
			k = strings.ToLower(k)
			if strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token") {
				out = append(out, vs...)
			}
		}
	}
	return out
}

// badState is what a bad input must leave alone: the schema as the
// database's tools print it, the rows of every table, and ferry's history
// and lock rows in full.
type badState struct {
	schema, history, lock, tables string
}

func takeBadState(db *database.DB) (badState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s badState
	var err error
	if s.schema, err = dbcompare.Schema(ctx, db); err != nil {
		return s, err
	}
	sums, err := dbcompare.Checksums(ctx, db, "ferry_migrations", "ferry_migrations_lock")
	if err != nil {
		return s, err
	}
	var lines []string
	for name, sum := range sums {
		lines = append(lines, name+": "+sum)
	}
	slices.Sort(lines)
	s.tables = strings.Join(lines, "\n")
	if s.history, err = badRowsText(ctx, db, "SELECT * FROM ferry_migrations ORDER BY id"); err != nil {
		return s, err
	}
	s.lock, err = badRowsText(ctx, db, "SELECT * FROM ferry_migrations_lock")
	return s, err
}

// badRowsText prints the rows of query, one line each.
func badRowsText(ctx context.Context, db *database.DB, query string) (string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return "", fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		for i, v := range vals {
			if v == nil {
				fmt.Fprintf(&b, "%s=NULL ", cols[i])
			} else {
				fmt.Fprintf(&b, "%s=%q ", cols[i], v)
			}
		}
		b.WriteString("\n")
	}
	return b.String(), rows.Err()
}

// diff says what differs between two states, "" when nothing does.
func (s badState) diff(o badState) string {
	var b strings.Builder
	for _, p := range []struct{ what, a, b string }{
		{"schema", s.schema, o.schema},
		{"ferry_migrations", s.history, o.history},
		{"ferry_migrations_lock", s.lock, o.lock},
		{"rows of every table", s.tables, o.tables},
	} {
		if p.a == p.b {
			continue
		}
		fmt.Fprintf(&b, "  %s:\n", p.what)
		al, bl := strings.Split(p.a, "\n"), strings.Split(p.b, "\n")
		for _, l := range al {
			if !slices.Contains(bl, l) {
				fmt.Fprintf(&b, "    - %s\n", l)
			}
		}
		for _, l := range bl {
			if !slices.Contains(al, l) {
				fmt.Fprintf(&b, "    + %s\n", l)
			}
		}
	}
	return b.String()
}
