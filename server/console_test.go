package server_test

import (
	"context"
	"github.com/ferrydb/ferry/lint"
	"io"
	"net/http"
	"net/url"
	"regexp"
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
	// The outcome reaches the page in a one-time cookie.
	outcome := func(r *http.Response) string {
		for _, c := range r.Cookies() {
			if c.Name == "ferry_console_outcome" {
				req, _ := http.NewRequest("GET", s.URL+"/", nil)
				req.AddCookie(c)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body := readAll(t, resp)
				if m := regexp.MustCompile(`id="(message|error)" role="\w+">([^<]*)<`).FindStringSubmatch(body); m != nil {
					return m[1] + ": " + m[2]
				}
			}
		}
		return ""
	}
	if r := form("wrong-token", ""); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" || outcome(r) != "error: wrong or missing token: nothing was applied" {
		t.Fatalf("wrong token: %d %s %q", r.StatusCode, r.Header.Get("Location"), outcome(r))
	}
	// A link cannot put words on the page.
	if _, body := do(t, "GET", s.URL+"/?error=call+us&message=hi", nil, nil); strings.Contains(body, "call us") || strings.Contains(body, `id="message"`) {
		t.Error("the page shows text from its URL")
	}
	if st := schemaStatus(t, s.URL); st.CurrentVersion != "1" {
		t.Fatalf("a wrong token applied something: %+v", st)
	}
	if r := form(token, "2"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(outcome(r), "message: upgrade success: 1 applied, now at version 2") {
		t.Fatalf("upgrade to 2: %d %q", r.StatusCode, outcome(r))
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
