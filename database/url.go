// Package database turns a database URL into an open connection pool and
// the matching ferry dialect. It is the one place that knows every concrete
// dialect, and the one place that handles passwords: nothing it returns
// (URL.String, errors) ever contains one.
//
// Supported URLs:
//
//	postgres://user:pass@host:5432/db?sslmode=verify-full&schema=app   (also postgresql://)
//	mysql://user:pass@host:3306/db?sslmode=require                    (also mariadb://)
//	sqlite:path/to/file.db   sqlite:///absolute/path.db
package database

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
)

// Kinds of database.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
	SQLite   = "sqlite"
)

// DefaultURL is the database ferry uses when none is configured: the
// embedded SQLite file ./ferry.db.
const DefaultURL = "sqlite:ferry.db"

// ErrUnsupportedScheme is returned by Parse for a URL of a database ferry
// does not support.
var ErrUnsupportedScheme = errors.New("unsupported database URL scheme")

// URL is a parsed database URL. Its String method never shows the password.
type URL struct {
	// Kind is Postgres, MySQL or SQLite.
	Kind string
	// Host and Port of the server ("" for SQLite). Port is filled with the
	// default port when the URL has none.
	Host, Port string
	// User name ("" for SQLite).
	User string
	// Database is the database name, or the file path for SQLite.
	Database string
	// Schema is the PostgreSQL schema for ferry's tables and the
	// migrations' search_path (URL parameter "schema").
	Schema string
	// Params are the remaining query parameters, passed to the driver.
	Params url.Values

	password string
	u        *url.URL // the URL as given, ferry's own parameters removed
}

// Password returns the password given in the URL, for handing to a client
// tool through its environment. Never print it.
func (u *URL) Password() string { return u.password }

// HasSecrets reports whether the URL carries a password or a secret
// parameter, which String leaves out: String is then not enough to connect.
func (u *URL) HasSecrets() bool {
	if u.password != "" {
		return true
	}
	if u.u != nil {
		for k := range u.u.Query() {
			if isSecretParam(k) {
				return true
			}
		}
	}
	return false
}

// Address is host:port, or the file path for SQLite.
func (u *URL) Address() string {
	if u.Kind == SQLite {
		return u.Database
	}
	return net.JoinHostPort(u.Host, u.Port)
}

// String returns the URL with the password and any secret parameter
// removed; it is safe for logs, errors and status output.
func (u *URL) String() string {
	if u.Kind == SQLite {
		return "sqlite:" + u.Database
	}
	c := *u.u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	q := c.Query()
	for k := range q {
		if isSecretParam(k) {
			q.Set(k, "xxxxx")
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// WithPassword returns the full URL, password included, for passing to a
// child process through its environment (FERRY_DATABASE_URL). Never print it.
func (u *URL) WithPassword() string {
	if u.Kind == SQLite {
		return "sqlite:" + u.Database
	}
	return u.u.String()
}

// WithDatabase returns a copy of u that names another database on the same
// server (for SQLite: another file).
func (u *URL) WithDatabase(name string) *URL {
	c := *u
	c.Database = name
	if u.u != nil {
		cu := *u.u
		cu.Path = "/" + name
		c.u = &cu
	}
	c.Params = url.Values{}
	for k, v := range u.Params {
		c.Params[k] = append([]string(nil), v...)
	}
	return &c
}

func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "pwd", "secret", "token"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Parse parses a database URL. Errors never contain the password.
func Parse(raw string) (*URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("empty database URL")
	}
	if scheme, rest, ok := strings.Cut(raw, ":"); ok {
		switch strings.ToLower(scheme) {
		case "sqlite", "sqlite3":
			return parseSQLite(rest)
		}
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/@:") {
		return nil, fmt.Errorf("database URL %s has no scheme: use postgres://, mysql:// or sqlite:path", redactRaw(raw))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return parseServer(raw, Postgres, "5432")
	case "mysql", "mariadb":
		return parseServer(raw, MySQL, "3306")
	}
	return nil, fmt.Errorf("%w %q in %s: use postgres://, mysql:// (or mariadb://) or sqlite:path", ErrUnsupportedScheme, scheme, redactRaw(raw))
}

func parseSQLite(rest string) (*URL, error) {
	path, query, _ := strings.Cut(rest, "?")
	switch {
	case strings.HasPrefix(path, "///"): // sqlite:///abs/path
		path = path[2:]
	case strings.HasPrefix(path, "//"): // sqlite://rel/path
		path = path[2:]
	}
	if path == "" {
		return nil, errors.New("sqlite URL has no file path: use sqlite:path/to/file.db")
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("sqlite URL parameters: %w", err)
	}
	return &URL{Kind: SQLite, Database: filepath.Clean(path), Params: params}, nil
}

func parseServer(raw, kind, defaultPort string) (*URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL; say what is wrong without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid %s URL %s: %v", kind, redactRaw(raw), err)
	}
	out := &URL{Kind: kind, Host: u.Hostname(), Port: u.Port(), Params: u.Query()}
	if out.Host == "" && out.Params.Get("host") == "" && out.Params.Get("socket") == "" {
		out.Host = "localhost"
	}
	if out.Port == "" {
		out.Port = defaultPort
	}
	if u.User != nil {
		out.User = u.User.Username()
		out.password, _ = u.User.Password()
	}
	out.Database = strings.TrimPrefix(u.Path, "/")
	if kind == Postgres {
		out.Schema = out.Params.Get("schema")
		out.Params.Del("schema")
		q := u.Query()
		q.Del("schema")
		u.RawQuery = q.Encode()
	}
	if kind == MySQL && strings.ToLower(u.Scheme) == "mariadb" {
		u.Scheme = "mysql"
	}
	out.u = u
	return out, nil
}

// redactRaw removes the password from a URL string that may not parse:
// everything between the first ':' of the userinfo and the last '@'.
func redactRaw(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw[:at], "://"); i >= 0 {
		start = i + 3
	}
	colon := strings.Index(raw[start:at], ":")
	if colon < 0 {
		return raw
	}
	return raw[:start+colon+1] + "xxxxx" + raw[at:]
}
