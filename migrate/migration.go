package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/internal/redact"
)

// Querier is what a Go-function migration receives: the migration's
// transaction, or for a no-transaction migration the engine's connection.
type Querier = dialect.Querier

// GoFunc is the body of a Go-function migration.
type GoFunc func(ctx context.Context, q Querier) error

// GoMigration is a migration written in Go and registered with
// WithGoMigrations. Nothing is registered globally.
type GoMigration struct {
	Version int64
	Name    string
	Up      GoFunc
	// Down may be nil, in which case the migration cannot be reverted.
	Down GoFunc
	// NoTransaction runs Up and Down on a plain connection instead of inside
	// a transaction.
	NoTransaction bool
	// Contract marks a migration that older releases of the application
	// cannot run against (see package release).
	Contract bool
}

// Statement is one SQL statement of a migration and the line of its source
// file where it starts.
type Statement struct {
	SQL  string
	Line int
	// Column is the 1-based byte column of Line where the statement starts.
	Column int

	// multi: the statement holds several commands (a statement-begin
	// block), so it cannot be sent where one command is expected.
	multi bool
	// shown is SQL with the values of secret-named environment variables
	// masked, when ENVSUB put any in; "" otherwise.
	shown string
}

// Display returns the statement as it may be shown (dry runs, logs): SQL,
// with the values of secret-named variables that goose's ENVSUB put in
// replaced by xxxxx.
func (s Statement) Display() string {
	if s.shown != "" {
		return s.shown
	}
	return s.SQL
}

// Directive is a comment of the form "-- ferry:NAME ARGS" in a migration
// file: an instruction to a tool that reads the file, such as package
// lint's "-- ferry:lint-ignore RULE reason". The engine itself ignores
// directives; they do not change the checksum.
type Directive struct {
	// Line is the file's line the comment is on.
	Line int
	// Text is what follows "-- ferry:", e.g. "lint-ignore index-not-concurrent reason".
	Text string
}

// Section is the up or the down part of a migration.
type Section struct {
	// File is the file the section was read from.
	File       string
	Statements []Statement
}

// Migration is one versioned schema change.
type Migration struct {
	Version int64
	Name    string
	// Format is FormatFerry, FormatGoose, FormatMigrate or FormatGo.
	Format Format
	// Source is the file the migration was read from, as shown to users;
	// for a golang-migrate pair, the .up.sql file. Empty for Go migrations.
	Source string
	// Up and Down are the SQL parts. Down is nil when there is none.
	Up, Down *Section
	// UpFunc and DownFunc are set for Go migrations.
	UpFunc, DownFunc GoFunc
	// NoTransaction: run statement by statement outside a transaction.
	NoTransaction bool
	// Contract: older releases of the application break once it is applied.
	Contract bool
	// DDLLockTimeout, from a -- +ferry ddl-lock-timeout annotation,
	// replaces the run's LockWait.Timeout for this migration (nil: none).
	DDLLockTimeout *time.Duration
	// Directives are the "-- ferry:" comments of the up file, in order.
	Directives []Directive
	// Checksum is the hex sha256 of the normalised up SQL ("" for Go
	// migrations): comments and whitespace changes do not alter it.
	Checksum string

	// secrets are values of secret-named environment variables that
	// goose's ENVSUB put into the SQL: errors never show them.
	secrets []string
	// downErr is an error in the down part found when the file was read
	// (a goose ENVSUB variable that is not set): reverting reports it.
	downErr error

	// src is the migration's file(s), parsed when first needed: Up, Down,
	// NoTransaction, Contract, Checksum (and Format for annotated files)
	// are set from then on. What Load and Migrator.Migrations return is
	// parsed.
	src *fileSource
}

// CanRevert reports whether the migration has a down part.
func (m *Migration) CanRevert() bool { return m.Down != nil || m.DownFunc != nil }

// String names the migration for messages: version, name and file.
func (m *Migration) String() string {
	if m.Source == "" {
		return fmt.Sprintf("%d (%s, Go function)", m.Version, m.Name)
	}
	return fmt.Sprintf("%d (%s)", m.Version, m.Source)
}

// hide returns err with the values of secret-named ENVSUB variables
// masked in its message.
func (m *Migration) hide(err error) error { return redact.Error(err, m.secrets...) }

// statementLine returns the source line of the up statement with 1-based
// index n, or 0.
func (m *Migration) statementLine(sec *Section, n int) int {
	if sec == nil || n < 1 || n > len(sec.Statements) {
		return 0
	}
	return sec.Statements[n-1].Line
}

// FileError is an error in a migration file, at a line when one is known.
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}
