package server_test

import (
	"context"
	"github.com/ferrydb/ferry/lint"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestConsole(t *testing.T) {
	db := testdb.New(t, "sqlite")
	dir := migrationsDir(t, map[string]string{
		"00001_a.sql":                    "-- +ferry up\nCREATE TABLE a (id INTEGER, name TEXT);\n",
		"00002_<script>alert(1)<b>x.sql": "-- +ferry up\n-- +ferry contract\nALTER TABLE a DROP COLUMN name;\n",
	})
	pre, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pre.Up(context.Background(), migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	s := newService(t, db, server.Config{Tokens: []server.Token{{Name: "ops", Secret: token}}, Lint: &lint.Config{Dialect: "sqlite"}}, migrate.WithDir(dir))

	resp, err := http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, want := range []string{`id="current-version">1<`, `1 pending`, `&lt;script&gt;alert(1)&lt;b&gt;x`, `<span class="flag">contract</span>`, `drop-column`, `name="token"`, `id="upgrade-button"`} {
		if !strings.Contains(body, want) {
			t.Errorf("console lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Error("a migration name reached the page unescaped")
	}

	// The form without JavaScript: a wrong token applies nothing.
	form := func(tok, to string) *http.Response {
		resp, err := noRedirect.PostForm(s.URL+"/console/upgrade", url.Values{"token": {tok}, "to": {to}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := form("wrong-token", ""); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "error=wrong+or+missing+token") {
		t.Fatalf("wrong token: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if st := schemaStatus(t, s.URL); st.CurrentVersion != "1" {
		t.Fatalf("a wrong token applied something: %+v", st)
	}
	if r := form(token, "2"); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "message=upgrade+success") {
		t.Fatalf("upgrade to 1: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	resp, err = http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); !strings.Contains(body, `id="current-version">2<`) || !strings.Contains(body, "for ops@") {
		t.Errorf("after the form's upgrade the console does not show version 2 and who applied it:\n%s", body)
	}

	// Read-only: no button, no form route; --no-console: no page.
	ro := newService(t, testdb.New(t, "sqlite"), server.Config{ReadOnly: true}, migrate.WithDir(dir))
	resp, err = http.Get(ro.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); strings.Contains(body, "upgrade-button") || !strings.Contains(body, "2 pending") {
		t.Errorf("read-only console shows an Upgrade button, or no status")
	}
	if code, _ := do(t, "POST", ro.URL+"/console/upgrade", strings.NewReader("to=2"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); code == http.StatusSeeOther {
		t.Error("read-only service took the console's upgrade form")
	}
	off := newService(t, db, server.Config{NoConsole: true}, migrate.WithDir(dir))
	if code, _ := do(t, "GET", off.URL+"/", nil, nil); code != http.StatusNotFound {
		t.Errorf("NoConsole: GET / answered %d, want 404", code)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
