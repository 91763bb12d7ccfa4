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
			for k := range q {
				if IsSecretName(k) {
					q[k] = []string{Mask}
					changed = true
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
