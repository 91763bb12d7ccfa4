package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestCLIDDLLockTimeout: "ferry up" behind a long transaction gives up
// after --ddl-lock-timeout and --ddl-retries, exits 1 naming the session
// in the way, applies nothing, and applies once it has gone; the preflight
// refuses at once from ferry.yaml.
func TestCLIDDLLockTimeout(t *testing.T) {
	if !slices.Contains(testdb.Kinds(), database.Postgres) {
		t.Skip("no PostgreSQL server (set FERRY_TEST_POSTGRES_URL)")
	}
	db := testdb.New(t, database.Postgres)
	dir := project(t, map[string]string{
		"001_busy.sql":  "-- +ferry up\nCREATE TABLE busy (id int PRIMARY KEY);\n",
		"002_extra.sql": "-- +ferry up\nALTER TABLE busy ADD COLUMN extra int;\n",
	})
	mustRun(t, dir, db.URLString, "up", "--to", "1")
	_, release := testdb.Hold(t, db, "nightly-report", "SELECT count(*) FROM busy")
	r := runFerry(t, dir, db.URLString, "up", "--ddl-lock-timeout", "100ms", "--ddl-retries", "1", "--preflight", "off")
	if r.code != 1 || !strings.Contains(r.stderr, "gave up waiting 100ms for a lock, 2 times") || !strings.Contains(r.stderr, `application "nightly-report"`) {
		t.Fatalf("up behind a long transaction: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "nothing of it was applied") || strings.Contains(r.stderr, "repair") {
		t.Errorf("the message should say nothing was applied and nothing needs repair:\n%s", r.stderr)
	}
	// --json: the failure says what held it up, for automation.
	r = runFerry(t, dir, db.URLString, "up", "--json", "--ddl-lock-timeout", "100ms", "--ddl-retries", "0", "--preflight", "off")
	var doc struct {
		OK       bool `json:"ok"`
		LockWait struct {
			Tries    int `json:"tries"`
			Sessions []struct {
				Application string   `json:"application"`
				Tables      []string `json:"tables"`
			} `json:"sessions"`
		} `json:"lock_wait"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 1 || doc.OK || doc.LockWait.Tries != 1 ||
		len(doc.LockWait.Sessions) != 1 || doc.LockWait.Sessions[0].Application != "nightly-report" || !slices.Equal(doc.LockWait.Sessions[0].Tables, []string{"busy"}) {
		t.Fatalf("up --json behind a long transaction: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("ddl_lock_timeout: 100ms\npreflight: refuse\n"), 0o644)
	r = runFerry(t, dir, db.URLString, "up")
	if r.code != 1 || !strings.Contains(r.stderr, "not started: transactions open for longer than 100ms") || !strings.Contains(r.stderr, "nightly-report") {
		t.Fatalf("up with the preflight refusing: exit %d\n%s", r.code, r.stderr)
	}
	release()
	mustRun(t, dir, db.URLString, "up")
	if r := mustRun(t, dir, db.URLString, "status", "--json"); !strings.Contains(r.stdout, `"current_version": 2`) {
		t.Errorf("status after the transaction ended:\n%s", r.stdout)
	}
}
