package redact

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// forms are the ways a secret appears in a URL or a message: as it is,
// query-escaped, path-escaped and user-info-escaped.
func forms(s string) []string {
	return []string{s, url.QueryEscape(s), url.PathEscape(s), userinfoEscape(s)}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// withoutPassword returns raw with the password cut out of its user
// info, and the password, when url.Parse finds one; ok is false when it
// finds none or when the cut changes more than the password.
func withoutPassword(raw string) (noPass, pass string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return "", "", false
	}
	pass, ok = u.User.Password()
	if !ok {
		return "", "", false
	}
	// url.Parse's authority follows "//" and ends at the first '/', '?'
	// or '#'; its user info ends at the authority's last '@'.
	i := strings.Index(raw, "//")
	if i < 0 {
		return "", "", false
	}
	start, end := i+2, len(raw)
	if j := strings.IndexAny(raw[start:], "/?#"); j >= 0 {
		end = start + j
	}
	at := strings.LastIndex(raw[start:end], "@")
	colon := strings.Index(raw[start:end], ":")
	if at < 0 || colon < 0 || colon > at {
		return "", "", false
	}
	noPass = raw[:start+colon] + raw[start+at:]
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

// FuzzURL: when url.Parse finds a password in raw's user info, URL(raw)
// is URL of raw without the password, so it cannot show the password,
// whatever it is; and what comes out, when it parses, has no password and
// has Mask for every secret-named parameter.
func FuzzURL(f *testing.F) {
	for _, s := range []string{
		"postgres://app:pw@db.internal:6543/orders?sslmode=require",
		"postgres://app:p%40ss%20word@db/x?sslpassword=keypass&sslmode=verify-full",
		"mysql://root:Hunter2Secret@127.0.0.1/app?parseTime=true",
		"s3://bucket/prefix?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA&region=eu",
		"https://user:S3cr3t/pw@host/path?token=t0k3n#frag",
		"postgres://a:b@c@d/x",
		"postgres://u:S3cr3tpw@[::1/x",
		"postgres://u:S3cr3tpw@h/x?password=%zz&a=b",
		"postgres:u:S3cr3tpw@h/x",
		"scott:tiger@db/x",
		"http://h/?api_key=1;2&x=%",
		"sqlite:ferry.db",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := URL(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Opaque != "" {
			return
		}
		if noPass, pass, ok := withoutPassword(raw); ok && out != URL(noPass) {
			t.Fatalf("URL(%q) = %q, without the password %q it is %q", raw, out, pass, URL(noPass))
		}
		ou, err := url.Parse(out)
		if err != nil {
			return // url.URL.String does not always give back what url.Parse reads ("%2f%2f " comes out as "//%20")
		}
		if _, ok := ou.User.Password(); ok {
			t.Fatalf("URL(%q) = %q has a password", raw, out)
		}
		q, err := url.ParseQuery(ou.RawQuery)
		if err != nil {
			return
		}
		for k, vs := range q {
			for _, v := range vs {
				if IsSecretName(k) && v != Mask {
					t.Fatalf("URL(%q) = %q: parameter %q is %q, want %s", raw, out, k, v, Mask)
				}
			}
		}
	})
}

// FuzzSecrets: Secrets and Error leave no form of a non-empty secret in
// the text, and Error keeps the chain. A secret holding a byte of Mask is
// left out of the check: the mask itself can make it up ("ax" in "aax"
// becomes "axxxxx").
func FuzzSecrets(f *testing.F) {
	f.Add(`syntax error at or near "Hunter2Secret"`, "Hunter2Secret", "")
	f.Add("driver said p@ss word and p%40ss%20word and p%40ss+word", "p@ss word", "keypass")
	f.Add("dial tcp: postgres://app:p%40ss%2Fw@h/x: refused", "p@ss/w", "app")
	f.Add("aaaa", "aa", "a")
	f.Add("a/b a%2Fb", "a/b", "")
	f.Add("", "", "")
	f.Add("no secret here", "", "")
	f.Fuzz(func(t *testing.T, s, secret, other string) {
		got := Secrets(s, secret, other)
		cause := errors.New(s)
		err := Error(cause, secret, other)
		if err.Error() != got {
			t.Fatalf("Error(%q).Error() = %q, Secrets = %q", s, err.Error(), got)
		}
		if !errors.Is(err, cause) {
			t.Fatalf("Error(%q) does not unwrap to its cause", s)
		}
		if secret == "" && other == "" && (got != s || err != cause) {
			t.Fatalf("no secret, yet Secrets(%q) = %q and Error wraps", s, got)
		}
		for _, sec := range []string{secret, other} {
			if sec == "" || strings.ContainsAny(sec, Mask) {
				continue
			}
			if containsAny(got, forms(sec)) {
				t.Fatalf("Secrets(%q, %q, %q) = %q shows %q", s, secret, other, got, sec)
			}
		}
	})
}
