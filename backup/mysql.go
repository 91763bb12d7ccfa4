package backup

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
)

// myDriver backs up MySQL and MariaDB with mysqldump --single-transaction
// (mariadb-dump where the server is MariaDB and it is installed),
// compressed with gzip on the way to the store, and restores with the
// mysql client.
type myDriver struct {
	db *database.DB
	s  settings
}

func (m *myDriver) object() Object {
	return Object{Name: "dump.sql.gz", Format: "mysqldump-sql", Compression: "gzip"}
}

type myServer struct {
	version      string
	major, minor int
	mariadb      bool
}

func (m *myDriver) server(ctx context.Context) (*myServer, error) {
	var v string
	if err := m.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return nil, fmt.Errorf("read the server version: %w", err)
	}
	s := &myServer{version: v, mariadb: strings.Contains(strings.ToLower(v), "mariadb")}
	s.major, s.minor, _ = parseMajorMinor(v, "")
	return s, nil
}

func myInstallHint(s *myServer) string {
	if s.mariadb {
		return fmt.Sprintf("install the MariaDB client %d.%d or newer (Debian/Ubuntu: apt-get install mariadb-client; RHEL/Fedora: dnf install mariadb; macOS: brew install mariadb), or set FERRY_BACKUP_TOOL_DIR to the directory that holds it", s.major, s.minor)
	}
	return fmt.Sprintf("install the MySQL %d.%d client or newer (Debian/Ubuntu: apt-get install mysql-client; RHEL/Fedora: dnf install mysql; macOS: brew install mysql-client), or set FERRY_BACKUP_TOOL_DIR to the directory that holds it", s.major, s.minor)
}

// myTool finds the first of names and checks its version against the
// server's: a client of the same flavour older than the server fails.
func (m *myDriver) myTool(ctx context.Context, mariadbNames, mysqlNames []string) (*tool, error) {
	s, err := m.server(ctx)
	if err != nil {
		return nil, err
	}
	names := mysqlNames
	if s.mariadb {
		names = mariadbNames
	}
	n, path, err := findTool(m.s.toolDir, names...)
	if err != nil {
		return nil, fmt.Errorf("%w; %s", err, myInstallHint(s))
	}
	line, err := toolVersion(ctx, path)
	if err != nil {
		return nil, err
	}
	t := &tool{name: n, path: path, version: line, mariadb: strings.Contains(line, "MariaDB")}
	after := "Ver "
	switch {
	case strings.Contains(line, "Distrib "):
		after = "Distrib "
	case strings.Contains(line, " from "):
		after = " from "
	}
	var ok bool
	if t.major, t.minor, ok = parseMajorMinor(line, after); !ok {
		return nil, fmt.Errorf("%w: cannot read the version of %s from %q", ErrTool, path, line)
	}
	switch {
	case t.mariadb != s.mariadb:
		m.s.log.Warn("the client tool and the server are of different flavours (MySQL and MariaDB); if the backup fails, install the server's own client", "tool", path, "tool_version", line, "server_version", s.version)
	case t.major < s.major || (t.major == s.major && t.minor < s.minor):
		return nil, fmt.Errorf("%w: %s (%s) is version %d.%d, older than the server (%s); %s", ErrTool, n, path, t.major, t.minor, s.version, myInstallHint(s))
	}
	return t, nil
}

func (m *myDriver) dumpTool(ctx context.Context) (*tool, error) {
	return m.myTool(ctx, []string{"mariadb-dump", "mysqldump"}, []string{"mysqldump"})
}

func (m *myDriver) loadTool(ctx context.Context) (*tool, error) {
	return m.myTool(ctx, []string{"mariadb", "mysql"}, []string{"mysql"})
}

func (m *myDriver) withOptionFile(t *tool, fn func(r *runner, optionArg string) error) error {
	path, cleanup, err := mysqlOptionFile(m.db.URL, t.mariadb)
	if err != nil {
		return fmt.Errorf("write the client option file: %w", err)
	}
	defer cleanup()
	return fn(&runner{tool: t, secret: m.db.URL.Password()}, "--defaults-extra-file="+path)
}

// dump runs mysqldump in one consistent-snapshot transaction
// (--single-transaction) and counts the rows of every table from the dump
// stream itself. A count taken in our own START TRANSACTION WITH
// CONSISTENT SNAPSHOT would be of another instant than mysqldump's
// snapshot; counting the dump's INSERT rows is exact for what was dumped.
// The schema version is read just before the dump starts.
func (m *myDriver) dump(ctx context.Context, t *tool, w io.Writer) (*dumpResult, error) {
	version, err := schemaVersion(ctx, m.db, m.db.Dialect, m.s.table)
	if err != nil {
		return nil, err
	}
	counter := newInsertCounter()
	err = m.withOptionFile(t, func(r *runner, opt string) error {
		args := []string{opt, "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
			"--skip-dump-date", "--no-tablespaces", "--default-character-set=utf8mb4"}
		if !t.mariadb {
			args = append(args, "--set-gtid-purged=OFF")
		}
		args = append(args, "--", m.db.URL.Database)
		return r.run(ctx, args, nil, io.MultiWriter(counter, w))
	})
	if err != nil {
		return nil, err
	}
	if err := counter.err(); err != nil {
		return nil, fmt.Errorf("count rows in the dump: %w", err)
	}
	return &dumpResult{tables: sortedCounts(counter.counts), schemaVersion: version, consistency: "dump"}, nil
}

func (m *myDriver) relations(ctx context.Context, q dialect.Querier) ([]string, error) {
	return queryStrings(ctx, q, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name")
}

func (m *myDriver) countRows(ctx context.Context, q dialect.Querier, _ []string) (map[string]int64, error) {
	names, err := queryStrings(ctx, q, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED')")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	quoted := map[string]string{}
	for _, n := range names {
		quoted[n] = m.db.Dialect.QuoteIdent(n)
	}
	return countAll(ctx, q, quoted)
}

// clean drops every view, table, sequence, routine and event of the
// database, with foreign key checks off on this connection.
func (m *myDriver) clean(ctx context.Context, conn dialect.Querier) error {
	if _, err := conn.ExecContext(ctx, "SET FOREIGN_KEY_CHECKS = 0"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SET FOREIGN_KEY_CHECKS = 1")
	q := m.db.Dialect.QuoteIdent
	steps := []struct{ query, kind string }{
		{"SELECT table_name FROM information_schema.views WHERE table_schema = DATABASE()", "VIEW"},
		{"SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'SEQUENCE'", "SEQUENCE"},
		{"SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type <> 'VIEW' AND table_type <> 'SEQUENCE'", "TABLE"},
		{"SELECT routine_name FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_type = 'PROCEDURE'", "PROCEDURE"},
		{"SELECT routine_name FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_type = 'FUNCTION'", "FUNCTION"},
		{"SELECT event_name FROM information_schema.events WHERE event_schema = DATABASE()", "EVENT"},
	}
	for _, s := range steps {
		names, err := queryStrings(ctx, conn, s.query)
		if err != nil {
			return fmt.Errorf("list objects to drop: %w", err)
		}
		for _, n := range names {
			st := "DROP " + s.kind + " IF EXISTS " + q(n)
			if _, err := conn.ExecContext(ctx, st); err != nil {
				return fmt.Errorf("empty the target database: %s: %w", st, err)
			}
		}
	}
	return nil
}

func (m *myDriver) load(ctx context.Context, t *tool, r io.Reader, _ func(context.Context, dialect.Querier) error) error {
	return m.withOptionFile(t, func(run *runner, opt string) error {
		return run.run(ctx, []string{opt, "--binary-mode", "--default-character-set=utf8mb4", "--batch", "--", m.db.URL.Database}, r, io.Discard)
	})
}

func (m *myDriver) scratch(ctx context.Context) (*database.DB, func(context.Context) error, error) {
	var charset, collation string
	if err := m.db.QueryRowContext(ctx, "SELECT default_character_set_name, default_collation_name FROM information_schema.schemata WHERE schema_name = DATABASE()").Scan(&charset, &collation); err != nil {
		return nil, nil, fmt.Errorf("read database character set: %w", err)
	}
	name := scratchName()
	q := m.db.Dialect.QuoteIdent
	if _, err := m.db.ExecContext(ctx, "CREATE DATABASE "+q(name)+" CHARACTER SET "+charset+" COLLATE "+collation); err != nil {
		return nil, nil, fmt.Errorf("create scratch database %s on %s (Verify needs the CREATE privilege): %w", name, m.db.URL.Address(), err)
	}
	drop := func(ctx context.Context) error {
		_, err := m.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q(name))
		return err
	}
	db, err := database.OpenURL(ctx, m.db.URL.WithDatabase(name), database.Options{})
	if err != nil {
		_ = drop(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return db, func(ctx context.Context) error { db.Close(); return drop(ctx) }, nil
}
