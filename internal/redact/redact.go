// Package redact hides secrets in what ferry prints. URL is the one
// function every printed URL goes through (database, backup store, the
// migration service's base URL), so that no path prints a password.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces a secret in printed text.
const Mask = "xxxxx"

// secretWords are the parts of a name that mark its value as secret.
var secretWords = []string{"password", "passwd", "pwd", "pswd", "secret", "token", "key", "credential", "signature", "sig", "auth", "private"}

// IsSecretName reports whether a parameter or variable name looks like it
// holds a secret ("password", "sslpassword", "AWS_SECRET_ACCESS_KEY",
// "X-Amz-Signature", "API_TOKEN").
func IsSecretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// secretVarWords are, besides secretWords, the parts of an environment
// variable's name that mark its value as secret: a connection string
// carries a password ("DATABASE_URL", "PG_DSN", "DB_CONN"), and "PASS"
// ends many a password's name ("DB_PASS").
var secretVarWords = []string{"pass", "dsn", "database_url", "db_url", "conn"}

// IsSecretVariable reports whether an environment variable's value should
// be masked wherever it is shown: IsSecretName's names, and connection
// strings. It is broader than IsSecretName, which also judges URL query
// parameters (where "connect_timeout" is no secret); masking a harmless
// value costs only what it hides.
func IsSecretVariable(name string) bool {
	if IsSecretName(name) {
		return true
	}
	n := strings.ToLower(name)
	for _, w := range secretVarWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// URL returns raw with its password removed (the user name stays) and the
// value of every secret-named query parameter replaced by Mask. It works
// on strings that do not parse as URLs too: everything between the first
// ':' of the user info and the last '@' before the path is removed.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return rawURL(raw)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = maskQuery(u.RawQuery)
		} else {
			changed := false
			for k, vs := range q {
				if IsSecretName(k) {
					q[k] = []string{Mask}
					changed = true
					continue
				}
				for i, v := range vs {
					// A URL inside a parameter (an endpoint) may hold a
					// password of its own.
					if strings.Contains(v, "@") {
						if r := URL(v); r != v {
							vs[i], changed = r, true
						}
					}
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	return u.String()
}

// URLSecrets returns the secrets a URL holds: its password and the values
// of its secret-named query parameters, for hiding them in messages that
// quote the URL (Error, Secrets).
func URLSecrets(raw string) []string {
	var out []string
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	if _, q, ok := strings.Cut(raw, "?"); ok {
		for _, part := range strings.Split(q, "&") {
			k, v, _ := strings.Cut(part, "=")
			if uk, err := url.QueryUnescape(k); err == nil {
				k = uk
			}
			if !IsSecretName(k) || v == "" {
				continue
			}
			out = append(out, v)
			if uv, err := url.QueryUnescape(v); err == nil && uv != v {
				out = append(out, uv)
			}
		}
		// A URL inside a parameter (an endpoint) may hold a password.
		if vals, err := url.ParseQuery(q); err == nil {
			for _, vs := range vals {
				for _, v := range vs {
					if strings.Contains(v, "@") && strings.Contains(v, "://") {
						out = append(out, URLSecrets(v)...)
					}
				}
			}
		}
	}
	return out
}

// rawURL redacts a string that url.Parse refuses. It errs on the side of
// hiding too much: everything from the first ':' after the scheme up to the
// last '@' goes, so that a password holding '/', '?' or '@' does not leak.
func rawURL(raw string) string {
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + 3
	}
	out := raw
	if at := strings.LastIndexByte(raw, '@'); at >= start {
		if colon := strings.IndexByte(raw[start:at], ':'); colon >= 0 {
			out = raw[:start+colon] + raw[at:]
		}
	}
	if base, q, ok := strings.Cut(out, "?"); ok {
		out = base + "?" + maskQuery(q)
	}
	return out
}

// maskQuery masks secret-named parameters of a query string that may not
// parse, keeping the rest as it is.
func maskQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if IsSecretName(k) {
			parts[i] = url.QueryEscape(k) + "=" + Mask
		}
	}
	return strings.Join(parts, "&")
}

// Secrets replaces every occurrence of each secret (as given, and as it
// appears escaped inside a URL) in s with Mask.
func Secrets(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		for _, form := range []string{sec, url.QueryEscape(sec), userinfoEscape(sec), url.PathEscape(sec)} {
			if form != "" {
				s = strings.ReplaceAll(s, form, Mask)
			}
		}
	}
	return s
}

// userinfoEscape is how a password appears inside a URL's user info.
func userinfoEscape(s string) string {
	return strings.TrimPrefix(url.UserPassword("", s).String(), ":")
}

// Password removes password from s where it can stand as one: in a URL's
// user info (":password@", escaped or not) or as a key=value setting
// (password=..., quoted or not). Unlike Secrets it leaves other text alone,
// so that a short password ("1", or one equal to the user name) neither
// garbles the message nor gives itself away by what it masks.
func Password(s, password string) string {
	if password == "" {
		return s
	}
	for _, form := range []string{password, userinfoEscape(password), url.QueryEscape(password)} {
		for _, ctx := range [][2]string{
			{":", "@"}, {"password=", ""}, {"password='", "'"}, {`password="`, `"`},
			{"PASSWORD=", ""}, {"pwd=", ""}, {"PGPASSWORD=", ""},
		} {
			s = replaceBounded(s, ctx[0]+form+ctx[1], ctx[0]+Mask+ctx[1], ctx[1] == "")
		}
	}
	return s
}

// replaceBounded replaces old by new in s; with open, only where old is
// not followed by more of a value (a letter, digit or one of .-_~%).
func replaceBounded(s, old, new string, open bool) string {
	if !open {
		return strings.ReplaceAll(s, old, new)
	}
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(old)
		if end < len(s) && isValueByte(s[end]) {
			b.WriteString(s[:end])
			s = s[end:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(new)
		s = s[end:]
	}
}

func isValueByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_~%", c) >= 0
}

// PasswordError wraps err so that its message shows password nowhere it
// stands as one (see Password), while errors.Is and errors.As still see
// the chain.
func PasswordError(err error, password string) error {
	if err == nil || password == "" {
		return err
	}
	return &passwordError{err: err, password: password}
}

type passwordError struct {
	err      error
	password string
}

func (e *passwordError) Error() string { return Password(e.err.Error(), e.password) }
func (e *passwordError) Unwrap() error { return e.err }

// Error wraps err so that its message shows none of the secrets, while
// errors.Is and errors.As still see the chain. It returns err itself when
// there is nothing to hide.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	any := false
	for _, s := range secrets {
		if s != "" {
			any = true
		}
	}
	if !any {
		return err
	}
	return &redactedError{err: err, secrets: secrets}
}

type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string { return Secrets(e.err.Error(), e.secrets...) }
func (e *redactedError) Unwrap() error { return e.err }
