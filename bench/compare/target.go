package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/database"
)

// server is one database server (or, for SQLite, a directory of files) on
// which the benchmark creates fresh databases. It remembers every database
// it created until it is dropped, so that dropAll leaves nothing behind even
// when a run fails half-way.
type server struct {
	kind  string        // database.Postgres, database.MySQL or database.SQLite
	admin *database.URL // nil for SQLite
	db    *database.DB  // admin connection pool, nil for SQLite
	dir   string        // SQLite files
	log   *slog.Logger

	mu   sync.Mutex
	live map[string]bool // databases (or SQLite paths) not dropped yet
}

// openServer connects to the admin URL of a server kind; for SQLite it
// only needs the directory for the database files.
func openServer(ctx context.Context, kind, adminURL, dir string, log *slog.Logger) (*server, error) {
	s := &server{kind: kind, dir: dir, log: log, live: map[string]bool{}}
	if kind == database.SQLite {
		return s, nil
	}
	u, err := database.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("%s admin URL: %w", kind, err)
	}
	if u.Kind != kind {
		return nil, fmt.Errorf("%s admin URL %s is a %s URL", kind, u, u.Kind)
	}
	db, err := database.OpenURL(ctx, u, database.Options{})
	if err != nil {
		return nil, err
	}
	// Only this process's few statements use the pool; keep it from
	// holding connections while case 4 needs them.
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	s.admin, s.db = u, db
	return s, nil
}

// uniqueName returns prefix followed by 12 random hex digits.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// namePrefix starts the name of every database the benchmark creates.
const namePrefix = "ferry_bench_cmp"

// fresh is a new, empty, uniquely named database.
type fresh struct {
	srv  *server
	name string // database name, or the file path for SQLite
}

// create makes a fresh database.
func (s *server) create(ctx context.Context) (*fresh, error) {
	name := uniqueName(namePrefix)
	if s.kind == database.SQLite {
		name = filepath.Join(s.dir, name+".db")
	} else {
		q := `CREATE DATABASE "` + name + `"`
		if s.kind == database.MySQL {
			q = "CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4"
		}
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("create database %s: %w", name, err)
		}
	}
	s.mu.Lock()
	s.live[name] = true
	s.mu.Unlock()
	return &fresh{srv: s, name: name}, nil
}

// drop removes a database created by create.
func (s *server) drop(ctx context.Context, name string) error {
	var err error
	switch s.kind {
	case database.SQLite:
		for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
			if e := os.Remove(name + suffix); e != nil && !errors.Is(e, os.ErrNotExist) {
				err = errors.Join(err, e)
			}
		}
	case database.MySQL:
		_, err = s.db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`")
	default:
		_, err = s.db.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
	}
	if err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	s.mu.Lock()
	delete(s.live, name)
	s.mu.Unlock()
	return nil
}

// drop removes the database.
func (f *fresh) drop(ctx context.Context) error { return f.srv.drop(ctx, f.name) }

// close drops every database not dropped yet and closes the admin pool.
func (s *server) close(ctx context.Context) error {
	s.mu.Lock()
	names := make([]string, 0, len(s.live))
	for n := range s.live {
		names = append(names, n)
	}
	s.mu.Unlock()
	var err error
	for _, n := range names {
		err = errors.Join(err, s.drop(ctx, n))
	}
	if s.db != nil {
		err = errors.Join(err, s.db.Close())
	}
	return err
}

// leftovers lists databases named like the benchmark's on the server, for
// checking that nothing was left behind.
func (s *server) leftovers(ctx context.Context) ([]string, error) {
	var q string
	switch s.kind {
	case database.SQLite:
		m, err := filepath.Glob(filepath.Join(s.dir, namePrefix+"_*"))
		return m, err
	case database.MySQL:
		q = "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '" + namePrefix + "\\_%'"
	default:
		q = "SELECT datname FROM pg_database WHERE datname LIKE '" + namePrefix + "\\_%'"
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// version is the server's version string.
func (s *server) version(ctx context.Context) string {
	var v string
	var err error
	switch s.kind {
	case database.SQLite:
		return "" // filled from a fresh database (the library the tools embed)
	case database.MySQL:
		err = s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v)
	default:
		err = s.db.QueryRowContext(ctx, "SHOW server_version").Scan(&v)
	}
	if err != nil {
		return "unknown: " + err.Error()
	}
	return v
}

// connections is a counter of connections opened: for PostgreSQL those to
// the database name, for MySQL those to the whole server. SQLite has none.
func (s *server) connections(ctx context.Context, name string) (int, error) {
	var n int
	var err error
	switch s.kind {
	case database.Postgres:
		err = s.db.QueryRowContext(ctx, "SELECT sessions FROM pg_stat_database WHERE datname = $1", name).Scan(&n)
	case database.MySQL:
		var k string
		err = s.db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Connections'").Scan(&k, &n)
	default:
		err = errors.New("no connections to count")
	}
	return n, err
}

// counters reads the server's activity counters: for PostgreSQL, the
// database's transactions and rows (pg_stat_database, read once no
// backend is connected to it, so that they are flushed) and the server's
// WAL syncs; for MySQL, the server's statements, commits and fsyncs
// (SHOW GLOBAL STATUS: read on a quiet server).
func (s *server) counters(ctx context.Context, name string) (map[string]int64, error) {
	out := map[string]int64{}
	switch s.kind {
	case database.Postgres:
		for {
			var n int
			if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n); err != nil {
				return nil, err
			}
			if n == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		if _, err := s.db.ExecContext(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
			return nil, err
		}
		var commit, rollback, ins, upd, walSync, walRecords int64
		err := s.db.QueryRowContext(ctx, `SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, w.wal_sync, w.wal_records
FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = $1`, name).Scan(&commit, &rollback, &ins, &upd, &walSync, &walRecords)
		if err != nil {
			return nil, err
		}
		out["commits"], out["rollbacks"], out["rows inserted"], out["rows updated"], out["WAL syncs (server)"], out["WAL records (server)"] = commit, rollback, ins, upd, walSync, walRecords
	case database.MySQL:
		rows, err := s.db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_commit', 'Com_insert', 'Com_update', 'Handler_commit', 'Innodb_os_log_fsyncs', 'Innodb_data_fsyncs')")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var v int64
			if err := rows.Scan(&k, &v); err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, rows.Err()
	}
	return out, nil
}

// userinfo is the admin URL's user and password for URLs of other tools.
func (f *fresh) userinfo() *url.Userinfo {
	u := f.srv.admin
	if p := u.Password(); p != "" {
		return url.UserPassword(u.User, p)
	}
	return url.User(u.User)
}

// addr is host:port of the server.
func (f *fresh) addr() string { return net.JoinHostPort(f.srv.admin.Host, f.srv.admin.Port) }

// ferryURL is the database URL ferry is given.
func (f *fresh) ferryURL() string {
	switch f.srv.kind {
	case database.SQLite:
		return "sqlite:" + f.name
	case database.MySQL:
		return (&url.URL{Scheme: "mysql", User: f.userinfo(), Host: f.addr(), Path: "/" + f.name}).String()
	}
	return (&url.URL{Scheme: "postgres", User: f.userinfo(), Host: f.addr(), Path: "/" + f.name, RawQuery: "sslmode=disable"}).String()
}

// gooseArgs are goose's driver name and connection string.
func (f *fresh) gooseArgs() (driver, dsn string) {
	switch f.srv.kind {
	case database.SQLite:
		return "sqlite3", f.name
	case database.MySQL:
		return "mysql", f.userinfo().String() + "@tcp(" + f.addr() + ")/" + f.name + "?parseTime=true&multiStatements=true"
	}
	return "postgres", f.ferryURL()
}

// migrateURL is golang-migrate's database URL.
func (f *fresh) migrateURL() string {
	switch f.srv.kind {
	case database.SQLite:
		return "sqlite://" + f.name
	case database.MySQL:
		return "mysql://" + f.userinfo().String() + "@tcp(" + f.addr() + ")/" + f.name + "?multiStatements=true"
	}
	return f.ferryURL()
}

// clientCmd is the database's own client reading a script on stdin in one
// session: psql, mysql (or mariadb), or the sqlite3 shell.
func (f *fresh) clientCmd(ctx context.Context, script string) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	switch f.srv.kind {
	case database.SQLite:
		bin, err := exec.LookPath("sqlite3")
		if err != nil {
			return nil, fmt.Errorf("the sqlite3 shell is needed for SQLite's lower bound: %w", err)
		}
		cmd = exec.CommandContext(ctx, bin, "-bail", f.name)
	case database.MySQL:
		bin, err := exec.LookPath("mariadb")
		if err != nil {
			if bin, err = exec.LookPath("mysql"); err != nil {
				return nil, fmt.Errorf("the mariadb or mysql client is needed for MySQL's lower bound: %w", err)
			}
		}
		cmd = exec.CommandContext(ctx, bin, "--protocol=tcp", "-h", f.srv.admin.Host, "-P", f.srv.admin.Port, "-u", f.srv.admin.User, f.name)
		cmd.Env = append(childEnv(), "MYSQL_PWD="+f.srv.admin.Password())
	default:
		bin, err := exec.LookPath("psql")
		if err != nil {
			return nil, fmt.Errorf("psql is needed for PostgreSQL's lower bound: %w", err)
		}
		cmd = exec.CommandContext(ctx, bin, "-X", "-q", "-v", "ON_ERROR_STOP=1",
			"-h", f.srv.admin.Host, "-p", f.srv.admin.Port, "-U", f.srv.admin.User, "-d", f.name)
		cmd.Env = append(childEnv(), "PGPASSWORD="+f.srv.admin.Password(), "PGSSLMODE=disable")
	}
	cmd.Stdin = strings.NewReader(script)
	return cmd, nil
}

// open connects to the database for checks (not timed).
func (f *fresh) open(ctx context.Context) (*database.DB, error) {
	u := f.ferryURL()
	db, err := database.Open(ctx, u, database.Options{})
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// childEnv is the environment of every child process: this process's,
// without variables that configure ferry, goose or the database clients,
// so that only the command line decides what a tool does.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FERRY_") || strings.HasPrefix(k, "GOOSE_") || strings.HasPrefix(k, "PG") ||
			strings.HasPrefix(k, "MYSQL_") || strings.HasPrefix(k, "MF_") || k == "DB_SCHEMA_NAME" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
