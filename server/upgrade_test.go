package server_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server"
	"github.com/ferrydb/ferry/server/api"
)

// TestUpgradeTargets: a target of 0 or below, an unknown field, or a
// version no migration has is refused with 400 naming what is wrong, and
// applies nothing (`{"to": 0}` and `{"version": 1}` used to apply the whole
// backlog).
func TestUpgradeTargets(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := newService(t, db, server.Config{Tokens: []server.Token{{Name: "x", Secret: token}}}, migrate.WithDir(migrationsDir(t, migrationFiles)))
		for _, tt := range []struct{ body, want string }{
			{`{"to": 0}`, `"to" is 0`},
			{`{"to": -1}`, `"to" is -1`},
			{`{"version": 1}`, `unknown field "version"`},
			{`{"to": 1, "force": true}`, `unknown field "force"`},
			{`{"to": 7}`, "no migration has version 7; the nearest are 3 (items) below"},
			{`{"to": 1} {"to": 3}`, "nothing after it"},
			{`[1]`, "must be JSON like"},
			{`{"to": "1"}`, "must be JSON like"},
			{`{"to": null}`, `"to" is null`},
			{`null`, "request body is null"},
		} {
			code, body := do(t, "POST", s.URL+"/v1/upgrade", strings.NewReader(tt.body), bearer())
			var e api.Error
			_ = json.Unmarshal([]byte(body), &e)
			if code != 400 || !strings.Contains(e.Detail, tt.want) {
				t.Errorf("POST /v1/upgrade %s: %d %s, want 400 saying %q", tt.body, code, body, tt.want)
			}
		}
		if st := schemaStatus(t, s.URL); st.CurrentVersion != "0" {
			t.Fatalf("a refused upgrade applied migrations: at %s", st.CurrentVersion)
		}
		if code, body := do(t, "POST", s.URL+"/v1/upgrade", strings.NewReader(`{"to": 2}`), bearer()); code != 200 || !strings.Contains(body, `"error":""`) {
			t.Fatalf("upgrade to 2: %d %s", code, body)
		}
		if st := schemaStatus(t, s.URL); st.CurrentVersion != "2" {
			t.Fatalf("after upgrade to 2: at %s", st.CurrentVersion)
		}
	})
}

// TestUpgradeLockWait: an upgrade held up by another session's
// transaction fails (500) saying who holds it up, so that automation can
// try again once that session is gone; then it applies.
func TestUpgradeLockWait(t *testing.T) {
	if !slices.Contains(testdb.Kinds(), database.Postgres) {
		t.Skip("no PostgreSQL server (set FERRY_TEST_POSTGRES_URL)")
	}
	db := testdb.New(t, database.Postgres)
	dir := migrationsDir(t, map[string]string{
		"001_busy.sql":  "-- +ferry up\nCREATE TABLE busy (id int PRIMARY KEY);\n",
		"002_extra.sql": "-- +ferry up\nALTER TABLE busy ADD COLUMN extra int;\n",
	})
	w := migrate.LockWait{Timeout: 100 * time.Millisecond, Retries: 1, Backoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	s := newService(t, db, server.Config{Tokens: []server.Token{{Name: "x", Secret: token}}}, migrate.WithDir(dir), migrate.WithLockWait(w))
	if code, body := do(t, "POST", s.URL+"/v1/upgrade", strings.NewReader(`{"to": 1}`), bearer()); code != 200 {
		t.Fatalf("upgrade to 1: %d %s", code, body)
	}
	_, release := testdb.Hold(t, db, "nightly-report", "SELECT count(*) FROM busy")
	code, body := do(t, "POST", s.URL+"/v1/upgrade", nil, bearer())
	var up api.Upgrade[api.Status]
	if err := json.Unmarshal([]byte(body), &up); err != nil || code != 500 || up.LockWait == nil || up.LockWait.Tries != 2 ||
		len(up.LockWait.Sessions) != 1 || up.LockWait.Sessions[0].Application != "nightly-report" {
		t.Fatalf("upgrade behind a long transaction: %d %v\n%s", code, err, body)
	}
	release()
	if code, body := do(t, "POST", s.URL+"/v1/upgrade", nil, bearer()); code != 200 || strings.Contains(body, "lock_wait") {
		t.Fatalf("upgrade once the transaction ended: %d %s", code, body)
	}
}
