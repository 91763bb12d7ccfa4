// Package dialect defines the one interface through which the migration
// engine talks to a database family. The engine (package migrate) knows no
// concrete database; postgres, mysql and sqlite implement this interface in
// their own packages.
package dialect

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Querier is the part of *sql.DB, *sql.Conn and *sql.Tx that the engine and
// the dialects need. Go-function migrations receive one too.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Syntax tells the statement splitter how a dialect reads SQL text.
type Syntax struct {
	// BackslashEscapes: a backslash escapes the next character inside quoted
	// strings (MySQL's default). PostgreSQL only does this in E'...' strings.
	BackslashEscapes bool
	// HashComments: '#' starts a comment that runs to the end of the line.
	HashComments bool
	// NestedComments: /* ... */ comments nest (PostgreSQL).
	NestedComments bool
	// DollarQuotes: $$...$$ and $tag$...$tag$ quote a string (PostgreSQL).
	DollarQuotes bool
}

// Dialect is what the engine needs to know about one database family.
// Implementations must be safe for concurrent use.
type Dialect interface {
	// Name is the dialect's short name: "postgres", "mysql" or "sqlite".
	Name() string
	// TransactionalDDL reports whether schema changes roll back with their
	// transaction, so that one migration can be applied atomically together
	// with its history row.
	TransactionalDDL() bool
	// Syntax describes how statements in this dialect are quoted and
	// commented, for splitting migration files into statements.
	Syntax() Syntax
	// QuoteIdent quotes a single identifier.
	QuoteIdent(name string) string
	// Table returns the quoted, and where the dialect has schemas, the
	// schema-qualified name of a ferry-owned table.
	Table(name string) string
	// Placeholder returns the bind parameter marker for the n-th (1-based)
	// argument of a statement.
	Placeholder(n int) string
	// NowMillis is an SQL expression for the database server's clock in
	// milliseconds since the Unix epoch, as a 64-bit integer. Lease locks use
	// the server clock so that the clocks of a fleet's hosts do not matter.
	NowMillis() string
	// HistoryDDL returns the statements that create the history table and
	// its index if they do not exist. table and index are bare names.
	HistoryDDL(table string) []string
	// LockTableDDL returns the statement that creates the one-row lock table
	// if it does not exist.
	LockTableDDL(table string) []string
	// TableExists reports whether a ferry-owned table (bare name) exists.
	TableExists(ctx context.Context, q Querier, table string) (bool, error)
	// InsertReturningID runs an INSERT statement and returns the generated
	// value of its auto-increment column "id".
	InsertReturningID(ctx context.Context, q Querier, insert string, args ...any) (int64, error)
	// InsertReturningIDSQL is the statement InsertReturningID sends for
	// insert (for plans that show what runs).
	InsertReturningIDSQL(insert string) string
	// Prepare runs once per migration run under the migration lock, before
	// the history table is created; PostgreSQL creates a missing schema here.
	Prepare(ctx context.Context, q Querier) error
}

// SessionLocker is implemented by dialects whose server offers a named lock
// that belongs to one connection and is released when that connection ends
// (PostgreSQL advisory locks, MySQL GET_LOCK). The engine then holds the
// lock and runs the migrations on that same connection, so that losing the
// connection loses the work with the lock and nothing runs unprotected.
type SessionLocker interface {
	//
	// The lock guards the ferry history table named table in the current
	// database (and schema): its key is derived from both, so two
	// ferry-managed schemas never block each other.

	// TryLock tries once, without waiting, to take the lock on conn. On
	// success it returns the server's id of conn (a backend pid or a
	// connection id) as owner.
	TryLock(ctx context.Context, conn *sql.Conn, table string) (owner string, ok bool, err error)
	// Unlock releases the lock held by conn.
	Unlock(ctx context.Context, conn *sql.Conn, table string) error
	// LockOwner returns the server's id of the connection that holds the
	// lock, or "" when nobody holds it.
	LockOwner(ctx context.Context, q Querier, table string) (string, error)
}

// Batcher is implemented by dialects that can run a migration's statements
// and its history row in one round trip, as one transaction, and still say
// which statement failed. The engine uses it for transactional SQL
// migrations whose statements each hold one command.
type Batcher interface {
	// ExecBatch runs stmts on conn in order, as one transaction. On failure
	// nothing of the batch took effect, and failed is the index of the
	// statement that failed (len(stmts) when committing failed).
	ExecBatch(ctx context.Context, conn *sql.Conn, stmts []BatchStatement) (failed int, err error)
	// ElapsedMillis returns an SQL expression for the milliseconds since
	// the batch's transaction began: the history row, written by the last
	// statement of a batch, records the migration's duration with it.
	ElapsedMillis() string
}

// Scripter is implemented by dialects that commit DDL by themselves but
// can send a migration, and ferry's bookkeeping around it, to the server
// in one round trip (MySQL multi-statements), and tell afterwards how far
// the server got. The engine uses it for migrations whose DDL cannot share
// a transaction: the server runs the same statements in the same order as
// it would one by one, so an interruption is recorded just as precisely,
// without a round trip per statement.
type Scripter interface {
	// ExecScript runs stmts on conn in order, in one round trip. They are
	// no transaction unless they say so (BEGIN ... COMMIT). The server
	// stops at the first error; a transaction the script left open is
	// rolled back. The dialect notes how far the server got after each
	// statement whose mark is set (every one when marks is nil): after an
	// error, done says that every statement before stmts[done] completed,
	// and the one that failed is one of stmts[done:] up to the first
	// marked one. done is -1 when the connection is gone.
	ExecScript(ctx context.Context, conn *sql.Conn, stmts []string, marks []bool) (done int, err error)
	// SaveRowID returns a statement that saves the id generated by the
	// INSERT just before it, for RowID; the id stays saved for the later
	// scripts of the connection, until the next SaveRowID.
	SaveRowID() string
	// RowID returns an SQL expression for the id SaveRowID saved.
	RowID() string
	// StartClock returns a statement that restarts the clock that
	// ScriptElapsedMillis reads (a script starts it).
	StartClock() string
	// ScriptElapsedMillis returns an SQL expression for the milliseconds
	// since the script began, or since the last StartClock.
	ScriptElapsedMillis() string
	// ScriptNow returns an SQL expression for the current time in UTC.
	ScriptNow() string
	// ScriptStatements returns the statements ExecScript sends for stmts
	// and marks, in order: its own (the clock, the progress marks)
	// included, so that a dry run can show exactly what runs.
	ScriptStatements(stmts []string, marks []bool) []string
	// ScriptLimit returns the most bytes the server takes in one script.
	ScriptLimit(ctx context.Context, q Querier) (int, error)
	// Literal returns v (nil, a string, an integer or a time.Time) as an
	// SQL literal, safe whatever the session's SQL mode.
	Literal(v any) string
}

// BatchStatement is one statement of a batch, with its arguments (bind
// parameters written as Placeholder returns them).
type BatchStatement struct {
	SQL  string
	Args []any
}

// Embedded is implemented by dialects whose database runs inside this
// process (SQLite): a call cannot hang on a network, so a short one needs
// no cancellation.
type Embedded interface {
	Embedded()
}

// BusyChecker is implemented by dialects whose servers report transient
// contention (a busy SQLite file, a deadlock victim) that is worth retrying.
type BusyChecker interface {
	IsBusy(err error) bool
}

// ServerInfo is implemented by dialects that can describe the server and the
// current database, for status output and backup manifests.
type ServerInfo interface {
	ServerVersion(ctx context.Context, q Querier) (string, error)
}

// LockWaiter is implemented by dialects that can bound how long a
// statement waits for a lock on a table. A DDL statement that waits
// behind one long transaction makes every later query on its table queue
// behind it; bounded, it gives up instead, and the engine retries it.
type LockWaiter interface {
	// LockWaitSQL is the statement that makes statements give up after
	// waiting d for a lock (0: no bound): for the session, or with local
	// for the rest of the current transaction only.
	LockWaitSQL(d time.Duration, local bool) string
	// LockWaitBound is the bound the server applies for d (MySQL's are
	// whole seconds).
	LockWaitBound(d time.Duration) time.Duration
	// IsLockWait reports whether err is a statement that gave up waiting
	// for a lock: nothing of the statement took effect.
	IsLockWait(err error) bool
	// OldTransactions returns the other sessions of the database whose
	// transactions have been open for longer than age, oldest first, with
	// the tables of the schema they hold locks on where the server says
	// (PostgreSQL; MySQL does not say without optional instrumentation).
	OldTransactions(ctx context.Context, q Querier, age time.Duration) ([]Session, error)
	// OldTransactionsQuery is the query OldTransactions runs, for plans.
	OldTransactionsQuery(age time.Duration) (string, []any)
}

// Session is another session of the database server, as a LockWaiter
// describes it.
type Session struct {
	ID          int64         `json:"id"`
	User        string        `json:"user,omitempty"`
	Application string        `json:"application,omitempty"`
	Client      string        `json:"client,omitempty"`
	State       string        `json:"state,omitempty"`
	TxAge       time.Duration `json:"transaction_age_ns"`
	Query       string        `json:"query,omitempty"`
	// Tables it holds locks on, where the server says.
	Tables []string `json:"tables,omitempty"`
	// Elsewhere: the session's default database is another one (MySQL,
	// which does not say which tables a transaction holds).
	Elsewhere bool `json:"elsewhere,omitempty"`
}

// String describes the session in one line, its query cut short.
func (s Session) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "session %d", s.ID)
	var parts []string
	if s.User != "" {
		parts = append(parts, "user "+s.User)
	}
	if s.Application != "" {
		parts = append(parts, fmt.Sprintf("application %q", s.Application))
	}
	if s.Client != "" {
		parts = append(parts, "from "+s.Client)
	}
	parts = append(parts, "transaction open "+s.TxAge.Round(time.Second).String())
	if s.State != "" {
		parts = append(parts, s.State)
	}
	if len(s.Tables) > 0 {
		parts = append(parts, "locks on "+strings.Join(s.Tables, ", "))
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	if q := strings.Join(strings.Fields(maskLiterals(s.Query)), " "); q != "" {
		if len(q) > 120 {
			q = q[:117] + "..."
		}
		fmt.Fprintf(&b, ", last query: %s", q)
	}
	return b.String()
}

// maskLiterals cuts a query off at its first quote or dollar sign: what
// follows may be a literal holding a password, and the quoting rules that
// would say where it ends (backslashes, standard strings, MySQL's double
// quotes, PostgreSQL's dollar quotes) differ by server and setting.
func maskLiterals(q string) string {
	if i := strings.IndexAny(q, "'\"$`"); i >= 0 {
		return q[:i] + "..."
	}
	return q
}
