// Package postgres is ferry's PostgreSQL dialect, on the pgx driver.
//
// The migration lock is a session advisory lock taken by polling
// pg_try_advisory_lock on one dedicated connection: a waiter blocked in
// pg_advisory_lock would sit in a transaction that CREATE INDEX CONCURRENTLY,
// run by the lock holder, waits for, and the two would deadlock.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ferrydb/ferry/dialect"
)

// Dialect is the PostgreSQL dialect. The zero value uses the connection's
// search_path; New sets an explicit schema.
type Dialect struct {
	schema string
}

// New returns the PostgreSQL dialect. When schema is not empty, ferry's
// tables live in it and Prepare creates it if it is missing.
func New(schema string) *Dialect { return &Dialect{schema: schema} }

// Schema returns the schema ferry's tables live in ("" for the search_path).
func (d *Dialect) Schema() string { return d.schema }

// Name implements dialect.Dialect.
func (d *Dialect) Name() string { return "postgres" }

// TransactionalDDL implements dialect.Dialect.
func (d *Dialect) TransactionalDDL() bool { return true }

// Syntax implements dialect.Dialect.
func (d *Dialect) Syntax() dialect.Syntax {
	return dialect.Syntax{NestedComments: true, DollarQuotes: true}
}

// QuoteIdent implements dialect.Dialect.
func (d *Dialect) QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Table implements dialect.Dialect.
func (d *Dialect) Table(name string) string {
	if d.schema == "" {
		return d.QuoteIdent(name)
	}
	return d.QuoteIdent(d.schema) + "." + d.QuoteIdent(name)
}

// Placeholder implements dialect.Dialect.
func (d *Dialect) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// NowMillis implements dialect.Dialect.
func (d *Dialect) NowMillis() string {
	return "(extract(epoch from clock_timestamp()) * 1000)::bigint"
}

// ElapsedMillis implements dialect.Batcher: now() is the start of the
// transaction, clock_timestamp() the present.
func (d *Dialect) ElapsedMillis() string {
	return "(extract(epoch from clock_timestamp() - now()) * 1000)::bigint"
}

// HistoryDDL implements dialect.Dialect.
func (d *Dialect) HistoryDDL(table string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + d.Table(table) + ` (
	id BIGSERIAL PRIMARY KEY,
	version BIGINT NOT NULL,
	name TEXT NOT NULL,
	checksum TEXT NOT NULL,
	operation TEXT NOT NULL,
	state TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	applied_by TEXT NOT NULL,
	statement INTEGER NOT NULL DEFAULT 0,
	error TEXT
)`,
		// No index besides the primary key: every read takes the whole
		// table (or the rows after an id), and each index is one more
		// page written with every migration.
	}
}

// LockTableDDL implements dialect.Dialect.
func (d *Dialect) LockTableDDL(table string) []string {
	return []string{`CREATE TABLE IF NOT EXISTS ` + d.Table(table) + ` (
	id INTEGER PRIMARY KEY,
	holder TEXT NOT NULL,
	owner TEXT NOT NULL,
	token BIGINT NOT NULL,
	acquired_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
)`}
}

// TableExists implements dialect.Dialect.
func (d *Dialect) TableExists(ctx context.Context, q dialect.Querier, table string) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, d.Table(table)).Scan(&ok)
	return ok, err
}

// InsertReturningIDSQL implements dialect.Dialect.
func (d *Dialect) InsertReturningIDSQL(insert string) string { return insert + " RETURNING id" }

// InsertReturningID implements dialect.Dialect.
func (d *Dialect) InsertReturningID(ctx context.Context, q dialect.Querier, insert string, args ...any) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, d.InsertReturningIDSQL(insert), args...).Scan(&id)
	return id, err
}

// Prepare implements dialect.Dialect: it creates the schema if one is set.
func (d *Dialect) Prepare(ctx context.Context, q dialect.Querier) error {
	if d.schema == "" {
		return nil
	}
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, d.schema).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := q.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+d.QuoteIdent(d.schema)); err != nil {
		return fmt.Errorf("create schema %q: %w", d.schema, err)
	}
	return nil
}

// lockKey is an SQL expression for the 64-bit advisory lock key guarding the
// history table named by $1 in the current database and schema.
func (d *Dialect) lockKey() string {
	schema := "coalesce(current_schema(), '')"
	if d.schema != "" {
		schema = quoteLiteral(d.schema)
	}
	return `('x' || substr(md5('ferry:' || current_database() || ':' || ` + schema + ` || ':' || $1), 1, 16))::bit(64)::bigint`
}

// TryLock implements dialect.SessionLocker.
func (d *Dialect) TryLock(ctx context.Context, conn *sql.Conn, table string) (string, bool, error) {
	var ok bool
	var pid int64
	err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(`+d.lockKey()+`), pg_backend_pid()`, table).Scan(&ok, &pid)
	if err != nil || !ok {
		return "", false, err
	}
	// Let the server notice a lock holder that died in the middle of a long
	// statement and free the lock (PostgreSQL 14 and later; older servers
	// reject the setting, and then the lock is freed when the statement ends).
	_, _ = conn.ExecContext(ctx, `SET client_connection_check_interval = '2s'`)
	return strconv.FormatInt(pid, 10), true, nil
}

// Unlock implements dialect.SessionLocker.
func (d *Dialect) Unlock(ctx context.Context, conn *sql.Conn, table string) error {
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock(`+d.lockKey()+`)`, table).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return errors.New("advisory lock was not held by this connection")
	}
	return nil
}

// LockOwner implements dialect.SessionLocker.
func (d *Dialect) LockOwner(ctx context.Context, q dialect.Querier, table string) (string, error) {
	var pid sql.NullInt64
	err := q.QueryRowContext(ctx, `WITH k AS (SELECT `+d.lockKey()+` AS key)
SELECT l.pid FROM pg_locks l, k
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = ((k.key >> 32) & 4294967295)
  AND l.objid::bigint = (k.key & 4294967295)
LIMIT 1`, table).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !pid.Valid) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(pid.Int64, 10), nil
}

// ExecBatch implements dialect.Batcher: the statements go to the server as
// one extended-protocol pipeline (parse, bind, execute each; one sync),
// which PostgreSQL runs as one implicit transaction, in one round trip.
// Arguments are sent as text; nil is NULL.
func (d *Dialect) ExecBatch(ctx context.Context, conn *sql.Conn, stmts []dialect.BatchStatement) (int, error) {
	failed := 0
	err := conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres batch: unexpected driver connection %T", driverConn)
		}
		var b pgconn.Batch
		for _, st := range stmts {
			params := make([][]byte, len(st.Args))
			for i, a := range st.Args {
				params[i] = textParam(a)
			}
			b.ExecParams(st.SQL, params, nil, nil, nil)
		}
		results, err := sc.Conn().PgConn().ExecBatch(ctx, &b).ReadAll()
		failed = len(results)
		return err
	})
	if err != nil {
		return failed, err
	}
	return -1, nil
}

// textParam encodes one argument in PostgreSQL's text format.
func textParam(a any) []byte {
	switch v := a.(type) {
	case nil:
		return nil
	case string:
		return []byte(v)
	case []byte:
		return v
	case int:
		return strconv.AppendInt(nil, int64(v), 10)
	case int64:
		return strconv.AppendInt(nil, v, 10)
	case bool:
		return strconv.AppendBool(nil, v)
	case time.Time:
		return []byte(v.UTC().Format("2006-01-02 15:04:05.999999Z07:00"))
	}
	return []byte(fmt.Sprint(a))
}

// IsBusy implements dialect.BusyChecker: deadlock victims and
// serialization failures are worth retrying.
func (d *Dialect) IsBusy(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == "40P01" || e.Code == "40001" || e.Code == "55P03")
}

// LockWaitSQL implements dialect.LockWaiter with lock_timeout.
func (d *Dialect) LockWaitSQL(wait time.Duration, local bool) string {
	switch {
	case local:
		return fmt.Sprintf("SET LOCAL lock_timeout = %d", max(d.LockWaitBound(wait).Milliseconds(), 0))
	case wait <= 0:
		return "RESET lock_timeout"
	}
	return fmt.Sprintf("SET lock_timeout = %d", d.LockWaitBound(wait).Milliseconds())
}

// LockWaitBound implements dialect.LockWaiter: milliseconds.
func (d *Dialect) LockWaitBound(wait time.Duration) time.Duration {
	if wait <= 0 {
		return 0
	}
	return max(wait.Round(time.Millisecond), time.Millisecond)
}

// IsLockWait implements dialect.LockWaiter: lock_not_available, which
// lock_timeout raises.
func (d *Dialect) IsLockWait(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "55P03"
}

// OldTransactionsQuery implements dialect.LockWaiter.
func (d *Dialect) OldTransactionsQuery(age time.Duration) (string, []any) {
	return `SELECT a.pid, coalesce(a.usename, ''), a.application_name, coalesce(host(a.client_addr), ''),
	coalesce(a.state, ''), extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, ''),
	array_to_string(array_agg(DISTINCT c.relname ORDER BY c.relname), ' ')
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND a.datname = current_database()
  AND n.nspname = coalesce(nullif($1, ''), current_schema()) AND c.relkind IN ('r', 'p', 'm', 'f')
  AND a.xact_start < now() - make_interval(secs => $2)
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY 6 DESC
LIMIT 20`, []any{d.schema, age.Seconds()}
}

// OldTransactions implements dialect.LockWaiter: the sessions holding
// locks on tables of the schema in transactions open for longer than age.
func (d *Dialect) OldTransactions(ctx context.Context, q dialect.Querier, age time.Duration) ([]dialect.Session, error) {
	query, args := d.OldTransactionsQuery(age)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dialect.Session
	for rows.Next() {
		var s dialect.Session
		var secs float64
		var tables string
		if err := rows.Scan(&s.ID, &s.User, &s.Application, &s.Client, &s.State, &secs, &s.Query, &tables); err != nil {
			return nil, err
		}
		s.TxAge = time.Duration(secs * float64(time.Second))
		s.Tables = strings.Fields(tables)
		out = append(out, s)
	}
	return out, rows.Err()
}

// ServerVersion implements dialect.ServerInfo.
func (d *Dialect) ServerVersion(ctx context.Context, q dialect.Querier) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SHOW server_version`).Scan(&v)
	return v, err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Open returns a connection pool for a pgx connection string (a postgres://
// URL or key=value pairs). When schema is not empty it becomes the
// connection's search_path, so that migrations create their objects there.
// Open does not connect; the caller pings.
func Open(connString, schema string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	if schema != "" {
		// Quoted: the server reads the setting as SQL, where an unquoted
		// name is folded to lower case (Sales would be sales).
		cfg.RuntimeParams["search_path"] = `"` + strings.ReplaceAll(schema, `"`, `""`) + `"`
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "ferry"
	}
	return stdlib.OpenDB(*cfg), nil
}
