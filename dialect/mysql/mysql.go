// Package mysql is ferry's MySQL and MariaDB dialect, on
// github.com/go-sql-driver/mysql.
//
// MySQL commits DDL implicitly, so the engine records a migration as running
// before its first statement and applied after its last one. The migration
// lock is GET_LOCK on one dedicated connection.
package mysql

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/dialect"
)

// Dialect is the MySQL/MariaDB dialect.
type Dialect struct{}

// New returns the MySQL/MariaDB dialect.
func New() *Dialect { return &Dialect{} }

// Name implements dialect.Dialect.
func (d *Dialect) Name() string { return "mysql" }

// TransactionalDDL implements dialect.Dialect: MySQL commits DDL implicitly.
func (d *Dialect) TransactionalDDL() bool { return false }

// Syntax implements dialect.Dialect.
func (d *Dialect) Syntax() dialect.Syntax {
	return dialect.Syntax{BackslashEscapes: true, HashComments: true}
}

// QuoteIdent implements dialect.Dialect.
func (d *Dialect) QuoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// Table implements dialect.Dialect.
func (d *Dialect) Table(name string) string { return d.QuoteIdent(name) }

// Placeholder implements dialect.Dialect.
func (d *Dialect) Placeholder(int) string { return "?" }

// NowMillis implements dialect.Dialect.
func (d *Dialect) NowMillis() string { return "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)" }

// HistoryDDL implements dialect.Dialect.
func (d *Dialect) HistoryDDL(table string) []string {
	return []string{`CREATE TABLE IF NOT EXISTS ` + d.Table(table) + ` (
	id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	version BIGINT NOT NULL,
	name VARCHAR(255) NOT NULL,
	checksum VARCHAR(64) NOT NULL,
	operation VARCHAR(16) NOT NULL,
	state VARCHAR(16) NOT NULL,
	applied_at DATETIME(6) NOT NULL,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	applied_by VARCHAR(255) NOT NULL,
	statement INT NOT NULL DEFAULT 0,
	error TEXT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`}
}

// LockTableDDL implements dialect.Dialect.
func (d *Dialect) LockTableDDL(table string) []string {
	return []string{`CREATE TABLE IF NOT EXISTS ` + d.Table(table) + ` (
	id INT NOT NULL PRIMARY KEY,
	holder VARCHAR(255) NOT NULL,
	owner VARCHAR(64) NOT NULL,
	token BIGINT NOT NULL,
	acquired_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`}
}

// TableExists implements dialect.Dialect.
func (d *Dialect) TableExists(ctx context.Context, q dialect.Querier, table string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`, table).Scan(&n)
	return n > 0, err
}

// InsertReturningIDSQL implements dialect.Dialect: the id comes back with
// the result.
func (d *Dialect) InsertReturningIDSQL(insert string) string { return insert }

// InsertReturningID implements dialect.Dialect.
func (d *Dialect) InsertReturningID(ctx context.Context, q dialect.Querier, insert string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, insert, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// Prepare implements dialect.Dialect; MySQL needs nothing.
func (d *Dialect) Prepare(context.Context, dialect.Querier) error { return nil }

// lockName is the SQL expression for the GET_LOCK name guarding the history
// table named by the placeholder in the current database. Lock names are
// server-wide and at most 64 characters long.
const lockName = `CONCAT('ferry:', LEFT(SHA2(CONCAT(DATABASE(), ':', ?), 256), 40))`

// TryLock implements dialect.SessionLocker.
func (d *Dialect) TryLock(ctx context.Context, conn *sql.Conn, table string) (string, bool, error) {
	var got sql.NullInt64
	var id string
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+lockName+`, 0), CONNECTION_ID()`, table).Scan(&got, &id); err != nil {
		return "", false, err
	}
	return id, got.Valid && got.Int64 == 1, nil
}

// Unlock implements dialect.SessionLocker.
func (d *Dialect) Unlock(ctx context.Context, conn *sql.Conn, table string) error {
	var released sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT RELEASE_LOCK(`+lockName+`)`, table).Scan(&released); err != nil {
		return err
	}
	if !released.Valid || released.Int64 != 1 {
		return errors.New("lock was not held by this connection")
	}
	return nil
}

// LockOwner implements dialect.SessionLocker.
func (d *Dialect) LockOwner(ctx context.Context, q dialect.Querier, table string) (string, error) {
	var owner sql.NullString
	if err := q.QueryRowContext(ctx, `SELECT IS_USED_LOCK(`+lockName+`)`, table).Scan(&owner); err != nil {
		return "", err
	}
	return owner.String, nil
}

// IsBusy implements dialect.BusyChecker: deadlocks (1213) and lock wait
// timeouts (1205) are worth retrying.
func (d *Dialect) IsBusy(err error) bool {
	var e *driver.MySQLError
	return errors.As(err, &e) && (e.Number == 1213 || e.Number == 1205)
}

// LockWaitSQL implements dialect.LockWaiter with lock_wait_timeout, the
// wait for metadata locks, in whole seconds (at least one).
// MySQL has no bound local to a transaction: local is the session's.
func (d *Dialect) LockWaitSQL(wait time.Duration, _ bool) string {
	if wait <= 0 {
		return "SET SESSION lock_wait_timeout = DEFAULT"
	}
	return "SET SESSION lock_wait_timeout = " + strconv.FormatInt(int64(d.LockWaitBound(wait)/time.Second), 10)
}

// LockWaitBound implements dialect.LockWaiter: whole seconds, at least one.
func (d *Dialect) LockWaitBound(wait time.Duration) time.Duration {
	if wait <= 0 {
		return 0
	}
	return max((wait+time.Second-1)/time.Second, 1) * time.Second
}

// IsLockWait implements dialect.LockWaiter: ER_LOCK_WAIT_TIMEOUT.
func (d *Dialect) IsLockWait(err error) bool {
	var e *driver.MySQLError
	return errors.As(err, &e) && e.Number == 1205
}

// OldTransactionsQuery implements dialect.LockWaiter.
func (d *Dialect) OldTransactionsQuery(age time.Duration) (string, []any) {
	return `SELECT p.ID, COALESCE(p.USER, ''), COALESCE(p.HOST, ''), COALESCE(p.COMMAND, ''),
	TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)), COALESCE(p.INFO, t.trx_query, ''),
	COALESCE(p.DB <> DATABASE(), FALSE)
FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
WHERE t.trx_mysql_thread_id <> CONNECTION_ID()
  AND t.trx_started < NOW(6) - INTERVAL ` + strconv.FormatInt(age.Microseconds(), 10) + ` MICROSECOND
ORDER BY t.trx_started
LIMIT 20`, nil
}

// OldTransactions implements dialect.LockWaiter: the transactions open
// for longer than age, those of sessions whose default database is another
// one marked Elsewhere. MySQL does not say which tables a transaction
// holds metadata locks on (without optional instrumentation); seeing other
// users' sessions takes the PROCESS privilege.
func (d *Dialect) OldTransactions(ctx context.Context, q dialect.Querier, age time.Duration) ([]dialect.Session, error) {
	query, _ := d.OldTransactionsQuery(age)
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dialect.Session
	for rows.Next() {
		var s dialect.Session
		var micros int64
		if err := rows.Scan(&s.ID, &s.User, &s.Client, &s.State, &micros, &s.Query, &s.Elsewhere); err != nil {
			return nil, err
		}
		if s.State == "Sleep" {
			s.State = "idle in transaction"
		}
		s.TxAge = time.Duration(micros) * time.Microsecond
		out = append(out, s)
	}
	return out, rows.Err()
}

// ServerVersion implements dialect.ServerInfo.
func (d *Dialect) ServerVersion(ctx context.Context, q dialect.Querier) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&v)
	return v, err
}

// ExecScript implements dialect.Scripter with a multi-statement query:
// after each statement the script sets @ferry_done, so that after an
// error one more query tells how far the server got. @ferry_row, which
// SaveRowID sets, lives as long as the session.
func (d *Dialect) ExecScript(ctx context.Context, conn *sql.Conn, stmts []string, marks []bool) (int, error) {
	var b strings.Builder
	for i, s := range d.ScriptStatements(stmts, marks) {
		if i > 0 {
			b.WriteString(";\n")
		}
		b.WriteString(s)
	}
	_, err := conn.ExecContext(ctx, b.String())
	if err == nil {
		return len(stmts), nil
	}
	// The connection is still there after an SQL error: say where it
	// stopped. If it is gone, so is the session (and its lock).
	_, _ = conn.ExecContext(ctx, "ROLLBACK")
	var done sql.NullInt64
	if qerr := conn.QueryRowContext(ctx, "SELECT @ferry_done").Scan(&done); qerr != nil {
		return -1, err
	}
	return int(done.Int64), err
}

// ScriptStatements implements dialect.Scripter: the clock and the
// progress mark first, then each statement, followed by a mark where marks
// says (every one when marks is nil).
func (d *Dialect) ScriptStatements(stmts []string, marks []bool) []string {
	out := make([]string, 0, 1+2*len(stmts))
	out = append(out, "SET @ferry_done = 0, @ferry_t0 = UTC_TIMESTAMP(6)")
	for i, s := range stmts {
		// A statement-begin block may end with its own semicolon: an
		// empty statement after it would be a syntax error.
		out = append(out, strings.TrimRight(s, "; \t\r\n"))
		if marks == nil || marks[i] {
			out = append(out, "SET @ferry_done = "+strconv.Itoa(i+1))
		}
	}
	return out
}

// ScriptLimit implements dialect.Scripter: max_allowed_packet, less room
// for the packet's own header.
func (d *Dialect) ScriptLimit(ctx context.Context, q dialect.Querier) (int, error) {
	var n int64
	if err := q.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&n); err != nil {
		return 0, err
	}
	return int(n) - 1024, nil
}

// ScriptNow implements dialect.Scripter.
func (d *Dialect) ScriptNow() string { return "UTC_TIMESTAMP(6)" }

// SaveRowID implements dialect.Scripter.
func (d *Dialect) SaveRowID() string { return "SET @ferry_row = LAST_INSERT_ID()" }

// RowID implements dialect.Scripter.
func (d *Dialect) RowID() string { return "@ferry_row" }

// StartClock implements dialect.Scripter.
func (d *Dialect) StartClock() string { return "SET @ferry_t0 = UTC_TIMESTAMP(6)" }

// ScriptElapsedMillis implements dialect.Scripter.
func (d *Dialect) ScriptElapsedMillis() string {
	return "TIMESTAMPDIFF(MICROSECOND, @ferry_t0, UTC_TIMESTAMP(6)) DIV 1000"
}

// Literal implements dialect.Scripter. Strings are written in hex with a
// character set introducer, which means the same with or without
// NO_BACKSLASH_ESCAPES or ANSI_QUOTES.
func (d *Dialect) Literal(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		if x == "" {
			return "''"
		}
		return "_utf8mb4 X'" + hex.EncodeToString([]byte(x)) + "'"
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case time.Time:
		return "'" + x.UTC().Format("2006-01-02 15:04:05.000000") + "'"
	case fmt.Stringer:
		return d.Literal(x.String())
	}
	return d.Literal(fmt.Sprint(v))
}

// Open returns a connection pool for cfg. Open does not connect; the caller
// pings. It forces the settings ferry relies on: time values parsed (unless
// parseTime is false: they are then the server's text), and multi-statement
// calls allowed. ferry splits migration files itself, but a
// goose StatementBegin/StatementEnd block may hold several statements, and
// goose users run those with multiStatements on; this pool only ever runs
// the migrations' own SQL.
//
// cfg.Timeout bounds each whole connection attempt, the server's greeting
// and the authentication included: the driver applies it to the TCP
// connect alone, and a server that accepts and then never answers would
// otherwise hold a caller without a deadline for ever.
func Open(cfg *driver.Config, logger *slog.Logger, parseTime bool) (*sql.DB, error) {
	cfg = cfg.Clone()
	cfg.ParseTime = parseTime
	cfg.MultiStatements = true
	if logger != nil {
		cfg.Logger = slogLogger{logger}
	}
	conn, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout > 0 {
		conn = timeoutConnector{conn, cfg.Timeout}
	}
	return sql.OpenDB(conn), nil
}

// timeoutConnector bounds Connect, handshake included.
type timeoutConnector struct {
	sqldriver.Connector
	timeout time.Duration
}

func (c timeoutConnector) Connect(parent context.Context) (sqldriver.Conn, error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	conn, err := c.Connector.Connect(ctx)
	if err != nil && parent.Err() == nil && ctx.Err() != nil {
		// Our own bound ran out, not the caller's.
		return nil, fmt.Errorf("the server did not complete the connection within %s (the connect timeout): %w", c.timeout, err)
	}
	return conn, err
}

// slogLogger routes the driver's own messages (such as "unexpected EOF"
// after a connection was killed) to ferry's logger instead of the driver's
// process-wide default.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Print(v ...any) {
	s.l.Debug("mysql driver", "message", strings.TrimSpace(fmt.Sprint(v...)))
}
