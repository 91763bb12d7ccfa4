package database

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/redact"
)

// fuzzSchemes are the schemes FuzzParseParts builds URLs with: every one
// Parse knows, one it refuses, and a mixed-case one.
var fuzzSchemes = []string{"postgres", "postgresql", "mysql", "mariadb", "sqlite", "oracle", "PostgreS"}

// passwordForms are the ways a password can appear in a URL or a message:
// as it is, query-escaped, path-escaped and user-info-escaped.
func passwordForms(p string) []string {
	return []string{p, url.QueryEscape(p), url.PathEscape(p), strings.TrimPrefix(url.UserPassword("", p).String(), ":")}
}

// containsAny reports whether s holds any of subs.
func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// FuzzParseParts: a URL built from parts, with a password in its user
// info, gives what the same URL without the password gives: the same
// String and the same redact.URL, and an error that shows the password in
// no form (unless the URL shows it anyway).
func FuzzParseParts(f *testing.F) {
	f.Add(uint8(0), "app", "pw12", "db.internal:6543", "orders", "sslmode=require&schema=billing")
	f.Add(uint8(1), "app", "Hunter2Secret", "db", "orders", "")
	f.Add(uint8(2), "root", "p@ss word", "127.0.0.1", "app", "parseTime=true")
	f.Add(uint8(3), "root", "p%40ss/?#", "h:3307", "app", "")
	f.Add(uint8(0), "app", "p@ss word", "db", "x", "sslpassword=keypass&sslmode=verify-full")
	f.Add(uint8(0), "scott", "tiger", "db:notaport", "x", "")
	f.Add(uint8(5), "scott", "tiger", "db", "orcl", "")
	f.Add(uint8(4), "", "", "", "x.db", "_pragma=foreign_keys(1)")
	f.Add(uint8(2), "root", "S3cr3tpw", "h", "app", "password=other1&sql_mode='ANSI'")
	f.Add(uint8(2), "root", "S3cr3tpw", "h", "app", "allowAllFiles=true&tls=true&bogus=1")
	f.Add(uint8(0), "", "S3cr3tpw", "", "x", "user=app&host=/tmp")
	f.Add(uint8(0), "app", "S3cr3tpw", "h", "a@b", "schema=s&000")
	f.Add(uint8(6), "a:b", "c@d:e", "[::1]:5432", "d b", "schema=s&token=t")
	f.Fuzz(func(t *testing.T, s uint8, user, pass, host, db, query string) {
		scheme := fuzzSchemes[int(s)%len(fuzzSchemes)]
		build := func(ui *url.Userinfo) string {
			return (&url.URL{Scheme: scheme, User: ui, Host: host, Path: "/" + db, RawQuery: query}).String()
		}
		raw := build(url.UserPassword(user, pass))
		checkHidden(t, raw, build(url.User(user)), pass)
		if u, err := Parse(raw); err == nil && u.Kind != SQLite && u.Password() != pass {
			t.Fatalf("Parse(%q).Password() = %q, want %q", raw, u.Password(), pass)
		}
	})
}

// FuzzParse: Parse never panics, and when url.Parse finds a password in
// the user info, Parse gives what it gives for the URL without it (see
// checkHidden).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"postgres://app:pw@db.internal:6543/orders?sslmode=require&schema=billing",
		"postgresql://app@db/orders",
		"mysql://root:pw@127.0.0.1/app?parseTime=true",
		"mariadb://root@h:3307/app",
		"sqlite:ferry.db",
		"sqlite:///var/lib/app/state.db?_pragma=foreign_keys(1)",
		"sqlite3:data/x.db",
		"oracle://scott:tiger@db/orcl",
		"postgres://scott:tiger@db:notaport/x",
		"scott:tiger@db/x",
		"",
		"sqlite:",
		"postgres://app:p%40ss%20word@db/x?sslpassword=keypass&sslmode=verify-full",
		"mysql://root:Hunter2Secret@h/app?password=x",
		"postgres://a:b@c@d/x?user=e",
		"mysql://u:S3cr3tpw@h/d?sql_mode=%27ANSI%27&tls=true",
		"postgres://u:S3cr3tpw@[::1/x",
		" postgres://u:S3cr3tpw@h/%zz ",
		"postgres://u:S3cr3tpw@h/x#frag:y@z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := Parse(raw)
		if err == nil && u.Kind != Postgres && u.Kind != MySQL && u.Kind != SQLite {
			t.Fatalf("Parse(%q): kind %q", raw, u.Kind)
		}
		if noPass, pass, ok := withoutPassword(raw); ok {
			checkHidden(t, strings.TrimSpace(raw), noPass, pass)
		}
	})
}

// checkHidden fails t when Parse or redact.URL let the password of raw
// through: noPass is raw without the password. A parsed URL's String
// and redact.URL must be the same for both (the password cannot show
// then, whatever it is); an error may differ (a password given twice is
// an error only with the password), but must not show a password of 4+
// bytes (shorter ones turn up by chance) in any form, unless the error
// for noPass shows it too or noPass holds it (Parse names one bad
// parameter, whichever map order gives first). An empty password has
// nothing to hide.
func checkHidden(t *testing.T, raw, noPass, pass string) {
	t.Helper()
	if pass == "" {
		return
	}
	forms := passwordForms(pass)
	u, err := Parse(raw)
	ref, refErr := Parse(noPass)
	switch {
	case err == nil && refErr != nil:
		t.Fatalf("Parse(%q) works, but without the password it fails: %v", raw, refErr)
	case err == nil && u.String() != ref.String():
		t.Fatalf("Parse(%q).String() = %q, without the password %q", raw, u.String(), ref.String())
	case err != nil && len(pass) >= 4 && containsAny(err.Error(), forms) && (refErr == nil || !containsAny(refErr.Error(), forms)) && !containsAny(elsewhere(noPass), forms):
		t.Fatalf("Parse(%q) error shows the password %q: %v", raw, pass, err)
	}
	got, want := redact.URL(raw), redact.URL(noPass)
	if _, perr := url.Parse(raw); perr == nil && got != want {
		t.Fatalf("redact.URL(%q) = %q, without the password %q", raw, got, want)
	}
	if len(pass) >= 4 && containsAny(got, forms) && !containsAny(want, forms) {
		t.Fatalf("redact.URL(%q) = %q shows the password %q", raw, got, pass)
	}
}

// withoutPassword returns raw (trimmed, as Parse trims it) with the
// password cut out of its user info, and the password, when url.Parse
// finds one; ok is false when it finds none or when the cut changes more
// than the password.
func withoutPassword(raw string) (noPass, pass string, ok bool) {
	s := strings.TrimSpace(raw)
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return "", "", false
	}
	pass, ok = u.User.Password()
	if !ok {
		return "", "", false
	}
	// url.Parse's authority follows "//" and ends at the first '/', '?'
	// or '#'; its user info ends at the authority's last '@'.
	i := strings.Index(s, "//")
	if i < 0 {
		return "", "", false
	}
	start, end := i+2, len(s)
	if j := strings.IndexAny(s[start:], "/?#"); j >= 0 {
		end = start + j
	}
	at := strings.LastIndex(s[start:end], "@")
	colon := strings.Index(s[start:end], ":")
	if at < 0 || colon < 0 || colon > at {
		return "", "", false
	}
	noPass = s[:start+colon] + s[start+at:]
	v, err := url.Parse(noPass)
	if err != nil || v.User == nil {
		return "", "", false
	}
	if _, has := v.User.Password(); has || v.User.Username() != u.User.Username() {
		return "", "", false
	}
	c := *u
	c.User = v.User
	if c != *v {
		return "", "", false
	}
	return noPass, pass, true
}

// elsewhere is a URL without a password, as written, decoded and quoted
// (errors quote parameter names with %q): where a password may show up
// for a reason of its own.
func elsewhere(noPass string) string {
	parts := []string{noPass}
	if u, err := url.Parse(noPass); err == nil {
		parts = append(parts, u.Path, u.Host, u.Fragment, u.User.Username())
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			for k, vs := range q {
				parts = append(parts, k)
				parts = append(parts, vs...)
			}
		}
	}
	for _, p := range parts[:len(parts):len(parts)] {
		parts = append(parts, strconv.Quote(p))
	}
	return strings.Join(parts, "\x00")
}
