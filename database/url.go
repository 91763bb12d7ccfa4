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
	"maps"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	driver "github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/internal/redact"
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
			if redact.IsSecretName(k) {
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
	return redact.URL(u.u.String())
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
		if !ok && looksLikeFile(raw) {
			return nil, fmt.Errorf("database URL %s has no scheme: for a SQLite file, write sqlite:%s", raw, raw)
		}
		return nil, fmt.Errorf("database URL %s has no scheme: use postgres://, mysql:// or sqlite:path", redact.URL(raw))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return parseServer(raw, Postgres, "5432")
	case "mysql", "mariadb":
		return parseServer(raw, MySQL, "3306")
	}
	return nil, fmt.Errorf("%w %q in %s: use postgres://, mysql:// (or mariadb://) or sqlite:path", ErrUnsupportedScheme, scheme, redact.URL(raw))
}

func parseSQLite(rest string) (*URL, error) {
	path, query, _ := strings.Cut(rest, "?")
	switch {
	case strings.HasPrefix(path, "///"): // sqlite:///abs/path
		path = path[2:]
	case strings.HasPrefix(path, "//"): // sqlite://rel/path
		path = path[2:]
		if auth, _, _ := strings.Cut(path, "/"); strings.Contains(auth, "@") {
			return nil, errors.New("sqlite URL has a user or password: SQLite has neither; write sqlite:path/to/file.db")
		}
	}
	if path == "" {
		return nil, errors.New("sqlite URL has no file path: use sqlite:path/to/file.db")
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("sqlite URL parameters: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if !slices.Contains(sqliteParams, k) {
			return nil, fmt.Errorf("unknown sqlite URL parameter %q: use one of %s", k, strings.Join(sqliteParams, ", "))
		}
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
		return nil, fmt.Errorf("invalid %s URL %s: %v", kind, redact.URL(raw), err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// A parameter lost to a stray ; or % would go unnoticed (sslmode
		// among them: TLS off without a word).
		return nil, fmt.Errorf("%s URL %s: its query string does not parse: %v", kind, redact.URL(raw), redact.Error(err, redact.URLSecrets(raw)...))
	}
	for _, k := range []string{"schema", "sslmode", "sslrootcert", "sslcert", "sslkey", "socket", "connect_timeout"} {
		if len(q[k]) > 1 {
			return nil, fmt.Errorf("%s URL gives %s %d times: give it once", kind, k, len(q[k]))
		}
	}
	// The user and password may come as parameters (libpq allows it): they
	// go into the user info, so that they are shown, redacted and passed
	// like any other, and never reach the server as settings.
	if err := credentialParams(u, q, kind); err != nil {
		return nil, err
	}
	switch kind {
	case Postgres:
		err = checkPostgresParams(q)
	case MySQL:
		err = checkMySQLParams(q)
	}
	if err != nil {
		return nil, err
	}
	if err := checkCommonParams(u, q, kind); err != nil {
		return nil, err
	}
	out := &URL{Kind: kind, Host: u.Hostname(), Port: u.Port(), Params: q}
	if out.Host == "" && q.Get("host") == "" && q.Get("socket") == "" {
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
		out.Schema = q.Get("schema")
		q.Del("schema")
	}
	u.RawQuery = q.Encode()
	if kind == MySQL && strings.ToLower(u.Scheme) == "mariadb" {
		u.Scheme = "mysql"
	}
	out.u = u
	return out, nil
}

// sqliteParams are the parameters modernc.org/sqlite and SQLite's URI
// filenames know.
var sqliteParams = []string{
	"_pragma", "_txlock", "_time_format", "_time_integer_format", "_timezone", "_inttotime", "_texttotime",
	"_busy_timeout", "_timeout", "_foreign_keys", "_fk", "_journal_mode", "_journal", "_synchronous", "_sync",
	"_auto_vacuum", "_vacuum", "_query_only", "_dqs", "_defensive", "_error_rc",
	"vfs", "mode", "cache", "immutable", "nolock", "psow",
}

// sslModes are the values sslmode takes, per server kind.
var sslModes = map[string][]string{
	Postgres: {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"},
	MySQL:    {"disable", "preferred", "prefer", "allow", "require", "verify-ca", "verify-full"},
}

// checkCommonParams checks the port and the parameters both server kinds
// share, so that a URL that cannot work is refused when it is read, not
// when the driver gets it.
func checkCommonParams(u *url.URL, q url.Values, kind string) error {
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s URL %s: invalid port %q: use 1 to 65535", kind, redact.URL(u.String()), p)
		}
	}
	if mode := q.Get("sslmode"); mode != "" && !slices.Contains(sslModes[kind], mode) {
		return fmt.Errorf("%s URL parameter sslmode %q: use %s", kind, mode, strings.Join(sslModes[kind], ", "))
	}
	if v := q.Get("connect_timeout"); v != "" && kind == Postgres {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return fmt.Errorf("postgres URL parameter connect_timeout %q: use a positive number of seconds (0 would wait for ever)", v)
		}
	}
	return nil
}

// credentialParams moves "user" and "password" query parameters into u's
// user info (removing them from q); one given both ways is an error.
func credentialParams(u *url.URL, q url.Values, kind string) error {
	user, pass, hasPass := "", "", false
	if u.User != nil {
		user = u.User.Username()
		pass, hasPass = u.User.Password()
	}
	if vs, ok := q["user"]; ok {
		if user != "" || len(vs) != 1 {
			return fmt.Errorf("%s URL gives the user twice (in the user info and as ?user=): give it once", kind)
		}
		user = vs[0]
		q.Del("user")
	}
	if vs, ok := q["password"]; ok {
		if hasPass || len(vs) != 1 {
			return fmt.Errorf("%s URL gives the password twice (in the user info and as ?password=): give it once", kind)
		}
		pass, hasPass = vs[0], true
		q.Del("password")
	}
	switch {
	case hasPass:
		u.User = url.UserPassword(user, pass)
	case user != "":
		u.User = url.User(user)
	}
	return nil
}

// Query parameters of PostgreSQL URLs that pgx reads itself and that may
// hold a secret: they never reach the server.
var pgxSecretParams = []string{"sslpassword"}

// checkPostgresParams refuses secret-looking parameters that pgx would send
// to the server as run-time settings (pgx passes every parameter it does
// not know to the server, which may quote the value in an error).
// Settings such as statement_timeout or search_path pass.
func checkPostgresParams(q url.Values) error {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if redact.IsSecretName(k) && !slices.Contains(pgxSecretParams, k) && k != "sslkey" && k != "passfile" {
			return fmt.Errorf("postgres URL parameter %q looks like a secret and would be sent to the server as a setting: put the password in the URL's user info (postgres://user:PASSWORD@host/db) or in a passfile", k)
		}
	}
	return nil
}

// mysqlDriverParams are the go-sql-driver/mysql parameters a MySQL URL may
// carry; ferryMySQLParams are ferry's own. Other driver parameters are
// refused: allowAllFiles lets the server read any file of this host,
// allowOldPasswords uses an insecure hash, allowFallbackToPlaintext and tls
// are set through sslmode.
var (
	mysqlDriverParams = []string{
		"allowCleartextPasswords", "allowNativePasswords", "charset", "checkConnLiveness",
		"clientFoundRows", "collation", "columnsWithAlias", "compress", "connectionAttributes",
		"interpolateParams", "loc", "maxAllowedPacket", "multiStatements", "parseTime",
		"readTimeout", "rejectReadOnly", "timeTruncate", "timeout", "writeTimeout",
	}
	ferryMySQLParams = []string{"sslmode", "sslrootcert", "sslcert", "sslkey", "socket"}
	// mysqlSessionVars are the session variables a URL may set: the driver
	// sends each as SET name=value when it connects, value unquoted, so
	// only these names and plain values pass.
	mysqlSessionVars = []string{
		"sql_mode", "time_zone", "lock_wait_timeout", "innodb_lock_wait_timeout",
		"max_execution_time", "max_statement_time", "wait_timeout", "net_read_timeout",
		"net_write_timeout", "transaction_isolation", "tx_isolation", "foreign_key_checks",
		"sql_require_primary_key", "sql_safe_updates",
	}
	// plainSetting is a value that SET can take as it is: a number, an
	// identifier, or a quoted string without quotes or backslashes in it.
	plainSetting = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:-?[0-9]+(?:\.[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*|'[A-Za-z0-9_.:+, /-]*')$`)
	})
	// charsetName is a character set or collation name (charset may list
	// several): the driver sends it unquoted in SET NAMES.
	charsetName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_]+(?:,[A-Za-z0-9_]+)*$`) })
)

// checkMySQLParams allows the driver's own parameters, ferry's, and a
// few session variables with plain values. Anything else would reach the
// server as a SET statement (?password=PASSWORD('x') changes the
// account's password), so it is refused, naming the parameter but never
// its value.
func checkMySQLParams(q url.Values) error {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vs := q[k]
		switch {
		case k == "charset" || k == "collation":
			for _, v := range vs {
				if !charsetName().MatchString(v) {
					return fmt.Errorf("mysql URL parameter %q: use a character set or collation name, such as utf8mb4 (letters, digits and underscores)", k)
				}
			}
		case k == "parseTime" || k == "multiStatements":
			// Accepted in URLs copied from elsewhere; ferry turns both on.
			for _, v := range vs {
				if b, err := strconv.ParseBool(v); err != nil || !b {
					return fmt.Errorf("mysql URL parameter %s=%s: ferry always turns %s on (leave the parameter out)", k, v, k)
				}
			}
		case slices.Contains(mysqlDriverParams, k), slices.Contains(ferryMySQLParams, k):
		case slices.Contains(mysqlSessionVars, k):
			for _, v := range vs {
				if !plainSetting().MatchString(v) {
					return fmt.Errorf("mysql URL parameter %q: its value must be a number, a name, or a quoted string such as 'READ-COMMITTED' or 'STRICT_ALL_TABLES' (no quotes or backslashes inside)", k)
				}
			}
		case k == "tls" || k == "allowFallbackToPlaintext":
			return fmt.Errorf("mysql URL parameter %q: use sslmode=disable|preferred|require|verify-ca|verify-full (with sslrootcert, sslcert, sslkey) instead", k)
		case k == "allowAllFiles":
			return fmt.Errorf("mysql URL parameter %q is refused: it lets the database server read any file on this host", k)
		case redact.IsSecretName(k):
			return fmt.Errorf("mysql URL parameter %q looks like a secret and would be sent to the server as a session variable; it is refused: put the password in the URL's user info (mysql://user:PASSWORD@host/db)", k)
		default:
			return fmt.Errorf("unknown mysql URL parameter %q: it would be sent to the server as a session variable, so ferry refuses it. Allowed: the driver's %s; ferry's %s; and the session variables %s",
				k, strings.Join(mysqlDriverParams, ", "), strings.Join(ferryMySQLParams, ", "), strings.Join(mysqlSessionVars, ", "))
		}
	}
	// The driver's own parsing, for values it cannot use (timeout=abc).
	driverOnly := url.Values{}
	for k, vs := range q {
		if slices.Contains(mysqlDriverParams, k) {
			driverOnly[k] = vs
		}
	}
	if _, err := driver.ParseDSN("/?" + driverOnly.Encode()); err != nil {
		return fmt.Errorf("mysql URL parameters: %w", err)
	}
	return nil
}

// looksLikeFile reports whether a URL without a scheme is a SQLite file's
// path: one with a directory or a SQLite file extension, no credentials.
func looksLikeFile(raw string) bool {
	if strings.ContainsAny(raw, "@?") {
		return false
	}
	if strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "./") || strings.HasPrefix(raw, "../") {
		return true
	}
	switch strings.ToLower(path.Ext(raw)) {
	case ".db", ".sqlite", ".sqlite3":
		return true
	}
	return false
}
