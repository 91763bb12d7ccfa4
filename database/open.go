package database

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/dialect/mysql"
	"github.com/ferrydb/ferry/dialect/postgres"
	"github.com/ferrydb/ferry/dialect/sqlite"
	"github.com/ferrydb/ferry/internal/redact"
)

// DB is an open connection pool together with its dialect and URL.
type DB struct {
	*sql.DB
	Dialect dialect.Dialect
	URL     *URL
	// Absent says the SQLite file does not exist and the DB is an empty
	// in-memory stand-in (Options.NoCreate).
	Absent bool
	opts   Options
}

// TextTimes opens a second pool to db's MySQL database, with db's
// options, in which date and time values are the server's text
// (Options.TextTimes). The caller closes it. Other databases have no such
// pool: it returns nil.
func (db *DB) TextTimes(ctx context.Context) (*sql.DB, error) {
	if db.URL.Kind != MySQL {
		return nil, nil
	}
	opts := db.opts
	opts.TextTimes, opts.NoPing = true, true
	out, err := OpenURL(ctx, db.URL, opts)
	if err != nil {
		return nil, err
	}
	return out.DB, nil
}

// Options adjust Open.
type Options struct {
	// Schema overrides the URL's PostgreSQL schema.
	Schema string
	// Logger receives driver messages; nil discards them.
	Logger *slog.Logger
	// ConnectTimeout bounds each connection attempt, the server's greeting
	// and authentication included, when the URL sets no timeout of its own
	// (connect_timeout for PostgreSQL, timeout for MySQL). Default
	// DefaultConnectTimeout. Once connected, no read timeout applies:
	// every call takes a context, and a migration statement may rightly
	// run for hours.
	ConnectTimeout time.Duration
	// NoPing skips the initial connection check; nothing connects until
	// the first query (or DB.Ping). SQLite creates the file then.
	NoPing bool
	// NoCreate, for commands that only read (status, history, a dry
	// run), does not create a SQLite file that does not exist: the
	// returned DB is an empty in-memory database standing in for it, and
	// DB.Absent is set. A mistyped path leaves no empty file behind.
	NoCreate bool
	// TextTimes, on MySQL, leaves DATE, DATETIME, TIMESTAMP and TIME
	// values as the server's text instead of parsing them into times:
	// for readers that copy values as they are (zero dates included),
	// without a CAST per value in every row.
	TextTimes bool
}

// schemaName is a PostgreSQL schema name ferry accepts: it becomes the
// connection's search_path.
var schemaName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`) })

// CheckSchema says why name cannot be a schema for ferry's tables and
// the migrations' search_path, or returns nil ("" is none).
func CheckSchema(name string) error {
	if name != "" && !schemaName().MatchString(name) {
		return fmt.Errorf("schema %q: use letters, digits, underscores and $, starting with a letter or underscore, at most 63 characters", name)
	}
	return nil
}

// DefaultConnectTimeout bounds a connection attempt when nothing else does.
const DefaultConnectTimeout = 10 * time.Second

// ErrUnreachable is wrapped by Open's error when the database cannot be
// reached or refuses the connection.
var ErrUnreachable = errors.New("cannot connect to database")

// Open parses rawURL, opens a connection pool and checks that the database
// answers. The error names the kind, host and database, never the password.
func Open(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	u, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	return OpenURL(ctx, u, opts)
}

// OpenURL is Open for a parsed URL.
func OpenURL(ctx context.Context, u *URL, opts Options) (*DB, error) {
	if opts.Schema != "" {
		u.Schema = opts.Schema
	}
	if u.Schema != "" && u.Kind != Postgres {
		return nil, fmt.Errorf("a schema (%q) is only supported for PostgreSQL; for %s, name the database in the URL", u.Schema, u.Kind)
	}
	if err := CheckSchema(u.Schema); err != nil {
		return nil, err
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	absent := false
	if opts.NoCreate && u.Kind == SQLite && u.Database != ":memory:" {
		_, err := os.Stat(u.Database)
		absent = errors.Is(err, fs.ErrNotExist)
	}
	var db *sql.DB
	var d dialect.Dialect
	var err error
	if absent {
		// One connection: each connection to :memory: is its own database.
		db, err = sqlite.Open(":memory:", u.Params)
		if err == nil {
			db.SetMaxOpenConns(1)
		}
		d = sqlite.New()
	} else {
		db, d, err = open(u, opts)
	}
	if err != nil {
		return nil, u.Redact(fmt.Errorf("open %s: %w", u, err))
	}
	out := &DB{DB: db, Dialect: d, URL: u, Absent: absent, opts: opts}
	if opts.NoPing {
		return out, nil
	}
	if err := out.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return out, nil
}

// Ping checks that the database answers. Its error names the kind, host,
// database and user, never the password, and wraps ErrUnreachable.
//
// A SQLite file that another process is writing to (SQLITE_BUSY after the
// busy timeout: a long migration, most likely) answers: it is there, and
// whoever uses it next waits for the writer, as the migration lock does.
func (db *DB) Ping(ctx context.Context) error {
	if db.URL.Kind == SQLite {
		// SQLite creates the file on first use, but not its directory.
		if dir := filepath.Dir(db.URL.Database); dir != "." {
			if _, err := os.Stat(dir); err != nil {
				return fmt.Errorf("%w: SQLite database %s: directory %s does not exist", ErrUnreachable, db.URL.Database, dir)
			}
		}
	}
	if err := db.DB.PingContext(ctx); err != nil {
		if bc, ok := db.Dialect.(dialect.BusyChecker); ok && db.URL.Kind == SQLite && bc.IsBusy(err) {
			return nil
		}
		return db.URL.Redact(unreachable(db.URL, err))
	}
	return nil
}

func unreachable(u *URL, err error) error {
	if u.Kind == SQLite {
		return fmt.Errorf("%w: SQLite database %s: %w", ErrUnreachable, u.Database, err)
	}
	return fmt.Errorf("%w: %s database %q at %s as user %q: %w",
		ErrUnreachable, u.Kind, u.Database, u.Address(), u.User, err)
}

func open(u *URL, opts Options) (*sql.DB, dialect.Dialect, error) {
	switch u.Kind {
	case SQLite:
		db, err := sqlite.Open(u.Database, u.Params)
		return db, sqlite.New(), err
	case Postgres:
		cs := u.u.String()
		if u.Params.Get("connect_timeout") == "" {
			// Whole seconds, at least 1: 0 would mean no timeout.
			cs = withParam(cs, "connect_timeout", fmt.Sprint(max(1, int(math.Ceil(opts.ConnectTimeout.Seconds())))))
		}
		db, err := postgres.Open(cs, u.Schema)
		return db, postgres.New(u.Schema), err
	case MySQL:
		cfg, err := mysqlConfig(u, opts)
		if err != nil {
			return nil, nil, err
		}
		db, err := mysql.Open(cfg, opts.Logger, !opts.TextTimes)
		return db, mysql.New(), err
	}
	return nil, nil, fmt.Errorf("%w %q", ErrUnsupportedScheme, u.Kind)
}

func withParam(cs, k, v string) string {
	sep := "?"
	if strings.Contains(cs, "?") {
		sep = "&"
	}
	return cs + sep + k + "=" + v
}

// mysqlConfig builds the driver configuration. Besides the driver's own
// parameters it understands the libpq-style TLS parameters sslmode
// (disable, preferred, require, verify-ca, verify-full), sslrootcert,
// sslcert and sslkey, so one set of TLS settings works for every database.
func mysqlConfig(u *URL, opts Options) (*driver.Config, error) {
	params := u.Params
	tlsParams := map[string]string{}
	rest := make([]string, 0, len(params))
	for k, vs := range params {
		switch k {
		case "sslmode", "sslrootcert", "sslcert", "sslkey", "socket":
			tlsParams[k] = vs[len(vs)-1]
		default:
			for _, v := range vs {
				rest = append(rest, k+"="+v)
			}
		}
	}
	cfg, err := driver.ParseDSN("/?" + strings.Join(rest, "&"))
	if err != nil {
		return nil, fmt.Errorf("mysql URL parameters: %w", err)
	}
	cfg.User = u.User
	cfg.Passwd = u.password
	cfg.DBName = u.Database
	if sock := tlsParams["socket"]; sock != "" {
		cfg.Net, cfg.Addr = "unix", sock
	} else {
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(u.Host, u.Port)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = opts.ConnectTimeout
	}
	if params.Get("loc") == "" {
		cfg.Loc = time.UTC
	}
	if mode := tlsParams["sslmode"]; mode != "" {
		tc, err := tlsConfig(mode, u.Host, tlsParams)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
		cfg.AllowFallbackToPlaintext = mode == "preferred" || mode == "prefer" || mode == "allow"
	}
	return cfg, nil
}

func tlsConfig(mode, host string, p map[string]string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if ca := p["sslrootcert"]; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("sslrootcert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sslrootcert %s: no PEM certificates found", ca)
		}
		tc.RootCAs = pool
	}
	if cert, key := p["sslcert"], p["sslkey"]; cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, errors.New("sslcert and sslkey must be given together")
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("sslcert/sslkey: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	switch mode {
	case "disable":
		return nil, nil
	case "allow", "prefer", "preferred", "require":
		// Encrypt; like libpq, verify the chain only when a root certificate
		// is given (require with sslrootcert behaves as verify-ca).
		if tc.RootCAs == nil {
			tc.InsecureSkipVerify = true
			return tc, nil
		}
		return verifyChainOnly(tc), nil
	case "verify-ca":
		return verifyChainOnly(tc), nil
	case "verify-full":
		return tc, nil
	}
	return nil, fmt.Errorf("unknown sslmode %q: use disable, preferred, require, verify-ca or verify-full", mode)
}

// verifyChainOnly checks the server certificate against the roots but not
// the host name (sslmode=verify-ca).
func verifyChainOnly(tc *tls.Config) *tls.Config {
	roots := tc.RootCAs
	tc.InsecureSkipVerify = true
	tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("server sent no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
	return tc
}

// Redact hides the URL's password in err's message, for errors that come
// from code that had the full URL (drivers, client tools). errors.Is and
// errors.As still see the chain.
//
// The password is removed wherever it stands as one (in a URL, as
// password=...); a password long enough not to be mistaken for other text,
// and that is not part of the user, host or database name, is removed
// wherever it appears. (Masking every "1" or "postgres" would garble the
// message and give the password away by what it masks.)
func (u *URL) Redact(err error) error {
	pw := u.password
	if pw == "" || err == nil {
		return err
	}
	err = redact.PasswordError(err, pw)
	if len(pw) >= 6 && !strings.Contains(u.User, pw) && !strings.Contains(u.Host, pw) && !strings.Contains(u.Database, pw) {
		err = redact.Error(err, pw)
	}
	return err
}
