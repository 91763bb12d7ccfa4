// Package migrate is ferry's migration engine: it loads versioned
// migrations, plans and applies them exactly once under a database-wide
// lock, reverts them, and reports status and problems.
//
// The engine knows no concrete database: it works through a
// dialect.Dialect (see packages dialect/postgres, dialect/mysql and
// dialect/sqlite, or package database which opens one from a URL).
//
// Every run reads the history table once, takes the migration lock before
// changing anything, and records every attempt in the history table, which
// keeps the full history. Where the database has transactional DDL
// (PostgreSQL, SQLite), each migration runs in one transaction together with
// its history row. Elsewhere (MySQL, and migrations marked no-transaction)
// the migration is recorded as running before its first statement and as
// applied after its last, so an interruption is visible and is resolved
// with Repair.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// DefaultTable is the default name of the history table.
const DefaultTable = "ferry_migrations"

// DefaultLockTimeout is how long Up waits for the migration lock by default.
const DefaultLockTimeout = 15 * time.Minute

// Migrator applies and reverts the migrations of one source to one
// database. It is safe for concurrent use; concurrent runs, in this process
// or in others, serialise on the migration lock.
type Migrator struct {
	db         *sql.DB
	d          dialect.Dialect
	table      string
	lockTable  string
	migrations []*Migration
	byVersion  map[int64]*Migration
	checkOnce  sync.Once
	checkErr   error

	statusCache historyCache
	// scriptLimit is the most bytes the server takes in one script
	// (dialect.Scripter), read once; 0 until then.
	scriptLimit atomic.Int64

	log             *slog.Logger
	lockTimeout     time.Duration
	leaseTTL        time.Duration
	lockModeOpt     LockMode
	allowOutOfOrder bool
	hostname        string
	holder          string // host:pid, recorded as applied_by and lock holder
	hooks           Hooks
	preflights      []Preflight
	mirror          HistoryMirror
	lockWait        LockWait

	fsys         fs.FS
	display      string
	goMigrations []*GoMigration
	env          LookupEnv
}

// Option configures a Migrator.
type Option func(*Migrator) error

// WithDir reads migrations from a directory.
func WithDir(dir string) Option {
	return func(m *Migrator) error {
		info, err := os.Stat(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %s", ErrNoDir, dir)
			}
			return fmt.Errorf("migrations directory: %w", err)
		}
		if !info.IsDir() {
			return fmt.Errorf("migrations directory %s is not a directory", dir)
		}
		m.fsys, m.display = os.DirFS(dir), filepath.ToSlash(filepath.Clean(dir))
		return nil
	}
}

// WithFS reads migrations from the top directory of fsys, for example an
// embed.FS (use fs.Sub to select a subdirectory). display is shown in
// messages before file names.
func WithFS(fsys fs.FS, display string) Option {
	return func(m *Migrator) error {
		m.fsys, m.display = fsys, display
		return nil
	}
}

// WithEnv sets where goose's ENVSUB (-- +goose ENVSUB ON) takes
// variables from (default: the process's environment, os.LookupEnv).
func WithEnv(lookup LookupEnv) Option {
	return func(m *Migrator) error {
		m.env = lookup
		return nil
	}
}

// WithGoMigrations adds migrations written in Go.
func WithGoMigrations(ms ...*GoMigration) Option {
	return func(m *Migrator) error {
		m.goMigrations = append(m.goMigrations, ms...)
		return nil
	}
}

var tableName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,58}$`) })

// CheckTableName says why name cannot be the history table's, or returns
// nil.
func CheckTableName(name string) error {
	if !tableName().MatchString(name) {
		return fmt.Errorf("history table name %q: use letters, digits and underscores, starting with a letter, at most 59 characters", name)
	}
	return nil
}

// WithTable names the history table (default ferry_migrations). The lock
// table is named after it with a _lock suffix.
func WithTable(name string) Option {
	return func(m *Migrator) error {
		if err := CheckTableName(name); err != nil {
			return err
		}
		m.table, m.lockTable = name, name+"_lock"
		return nil
	}
}

// WithLogger sets the logger for progress messages (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(m *Migrator) error {
		if l != nil {
			m.log = l
		}
		return nil
	}
}

// WithLockTimeout sets how long a run waits for the migration lock.
func WithLockTimeout(d time.Duration) Option {
	return func(m *Migrator) error {
		if d <= 0 {
			return fmt.Errorf("lock timeout must be positive, got %s", d)
		}
		m.lockTimeout = d
		return nil
	}
}

// WithLockMode selects the session or the lease lock (default: session
// where the dialect has one).
func WithLockMode(mode LockMode) Option {
	return func(m *Migrator) error {
		switch mode {
		case LockAuto, LockSession, LockLease:
			m.lockModeOpt = mode
			return nil
		}
		return fmt.Errorf("unknown lock mode %q: use session or lease", mode)
	}
}

// WithLeaseTTL sets how long a lease lock stays valid without a heartbeat
// (default 30s; the heartbeat runs every third of it).
func WithLeaseTTL(d time.Duration) Option {
	return func(m *Migrator) error {
		if d < 300*time.Millisecond {
			return fmt.Errorf("lease TTL %s is too short", d)
		}
		m.leaseTTL = d
		return nil
	}
}

// WithAllowOutOfOrder lets Up apply a pending migration whose version is
// lower than the highest applied one.
func WithAllowOutOfOrder(allow bool) Option {
	return func(m *Migrator) error {
		m.allowOutOfOrder = allow
		return nil
	}
}

// WithIdentity sets what is recorded as applied_by and as the lock holder
// (default host:pid). The name must not contain secrets.
func WithIdentity(id string) Option {
	return func(m *Migrator) error {
		if id != "" {
			m.holder = id
		}
		return nil
	}
}

// WithHooks installs callbacks for metrics.
func WithHooks(h Hooks) Option {
	return func(m *Migrator) error {
		m.hooks = h
		return nil
	}
}

// Preflight is called by Up under the migration lock, after the plan is
// made and before the first migration runs, but only when there is
// something to apply. Returning an error aborts the run with nothing
// applied; the error is returned from Up as is. Preflights run in the order
// they were given. Uses: refusing a contract migration while old releases
// still run, taking a backup of the database before it changes.
type Preflight func(ctx context.Context, run *PreflightRun) error

// PreflightRun describes the run a Preflight may veto.
type PreflightRun struct {
	// Migrations are the migrations about to be applied, in order.
	Migrations []*Migration
	m          *Migrator
	// From is the current version; To the version after the run.
	From, To int64
	// Conn is the run's own connection (the one holding a session lock).
	Conn Querier
}

// All returns all the migrations the migrator knows, applied or not, in
// version order, parsed (the first call reads any file not read yet).
func (p *PreflightRun) All() []*Migration { return p.m.Migrations() }

// WithPreflight adds checks that run before anything is applied.
func WithPreflight(p ...Preflight) Option {
	return func(m *Migrator) error {
		m.preflights = append(m.preflights, p...)
		return nil
	}
}

// HistoryMirror keeps another tool's version table in step with ferry's
// history, so that the tool (and services that read its table) still see
// the right version. Its methods run under the migration lock, inside the
// migration's transaction where the database has transactional DDL, so the
// mirror changes exactly when ferry's history does.
type HistoryMirror interface {
	// Ensure creates the tool's table if it is missing.
	Ensure(ctx context.Context, q Querier) error
	// Record records one change.
	Record(ctx context.Context, q Querier, c MirrorChange) error
}

// MirrorChange is one change for a HistoryMirror.
type MirrorChange struct {
	// Version took effect (Applied) or was reverted.
	Version int64
	Applied bool
	// Current is the database's version after the change: the highest
	// applied version, 0 if none.
	Current int64
}

// WithHistoryMirror keeps another tool's version table (goose's
// goose_db_version, golang-migrate's schema_migrations; see package compat)
// up to date as ferry applies, reverts, baselines and repairs migrations.
func WithHistoryMirror(h HistoryMirror) Option {
	return func(m *Migrator) error {
		m.mirror = h
		return nil
	}
}

// Hooks are called as a run progresses; any of them may be nil. They must
// return quickly.
type Hooks struct {
	// LockAcquired is called when the migration lock is taken, with the
	// time spent waiting for it.
	LockAcquired func(waited time.Duration)
	// LockReleased is called when the lock is released.
	LockReleased func()
	// MigrationStarted is called before a migration is applied or
	// reverted (Event.Duration and Event.Err are zero). For migrations
	// sent to the server together (Event.Together > 1), it is called for
	// each of them before the script is sent, and MigrationDone when it
	// returns, for each migration up to the one that failed, if one did
	// (the server runs nothing after a failure).
	MigrationStarted func(Event)
	// MigrationDone is called after every attempt to apply or revert a
	// migration.
	MigrationDone func(Event)
}

// Event describes one finished attempt to apply or revert a migration.
type Event struct {
	Version   int64
	Name      string
	Operation Op // OpUp or OpDown
	Duration  time.Duration
	Err       error
	// Together is how many migrations went to the server in one script
	// with this one, itself included (MySQL sends consecutive migrations
	// that way, see Hooks.MigrationStarted); 1 when it went alone.
	Together int
}

func (h Hooks) lockAcquired(d time.Duration) {
	if h.LockAcquired != nil {
		h.LockAcquired(d)
	}
}

func (h Hooks) lockReleased() {
	if h.LockReleased != nil {
		h.LockReleased()
	}
}

func (h Hooks) migrationStarted(e Event) {
	if h.MigrationStarted != nil {
		h.MigrationStarted(e)
	}
}

func (h Hooks) migrationDone(e Event) {
	if h.MigrationDone != nil {
		h.MigrationDone(e)
	}
}

// New lists the migrations and returns a Migrator for db. Problems with
// the files' names (versions, duplicates, pairs) are reported at once, as a
// *LoadError. A migration's SQL is read and parsed when a run first needs
// it, before anything is applied, so that a command such as Status on ten
// thousand migrations does not read ten thousand files; Check parses them
// all and reports every problem.
func New(db *sql.DB, d dialect.Dialect, opts ...Option) (*Migrator, error) {
	if db == nil || d == nil {
		return nil, errors.New("migrate.New: db and dialect are required")
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown-host"
	}
	m := &Migrator{
		db: db, d: d,
		table: DefaultTable, lockTable: DefaultTable + "_lock",
		log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		lockTimeout: DefaultLockTimeout,
		lockWait:    DefaultLockWait(),
		leaseTTL:    30 * time.Second,
		hostname:    host,
		holder:      host + ":" + strconv.Itoa(os.Getpid()),
	}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	if m.fsys == nil && len(m.goMigrations) == 0 {
		return nil, errors.New("no migrations source: use WithDir, WithFS or WithGoMigrations")
	}
	env := m.env
	if env == nil {
		env = os.LookupEnv
	}
	migs, err := scan(m.fsys, m.display, d.Syntax(), env, m.goMigrations...)
	if err != nil {
		return nil, err
	}
	m.migrations = migs
	m.byVersion = make(map[int64]*Migration, len(migs))
	for _, mig := range migs {
		m.byVersion[mig.Version] = mig
	}
	return m, nil
}

// ErrScratchGo is returned by Scratch for a migrator with migrations
// written in Go, which may do more than change the database they are
// given.
var ErrScratchGo = errors.New("migrations written in Go are not run on a scratch database")

// Scratch returns a migrator of m's migrations (files, environment and
// history table) onto db, a throw-away database of the same engine as m's
// (d, its dialect), for learning what the migrations make there: without
// m's hooks, preflights, history mirror or logger.
func (m *Migrator) Scratch(db *sql.DB, d dialect.Dialect) (*Migrator, error) {
	if len(m.goMigrations) > 0 {
		return nil, ErrScratchGo
	}
	opts := []Option{WithTable(m.table)}
	if m.fsys != nil {
		opts = append(opts, WithFS(m.fsys, m.display))
	}
	if m.env != nil {
		opts = append(opts, WithEnv(m.env))
	}
	return New(db, d, opts...)
}

// Migrations returns the migrations in version order, parsed. A migration
// whose file does not parse keeps only its Version, Name and Source: call
// Check to learn about such problems.
func (m *Migrator) Migrations() []*Migration {
	_ = m.Check()
	return m.migrations
}

// Check reads and parses every migration file (once) and returns a
// *LoadError listing every problem, or nil.
func (m *Migrator) Check() error {
	m.checkOnce.Do(func() { m.checkErr = parseAll(m.migrations) })
	return m.checkErr
}

// Table returns the name of the history table.
func (m *Migrator) Table() string { return m.table }

// Dialect returns the dialect the migrator was built with.
func (m *Migrator) Dialect() dialect.Dialect { return m.d }

// latest is the highest available version, 0 if there are no migrations.
func (m *Migrator) latest() int64 {
	if len(m.migrations) == 0 {
		return 0
	}
	return m.migrations[len(m.migrations)-1].Version
}
