package server_test

import (
	"encoding/json"
	"strings"
	"testing"

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
