// Command ferry applies versioned SQL migrations exactly once, reports
// schema status, and serves the migration API.
//
// With no flags it uses the migrations in ./migrations and the embedded
// SQLite database ./ferry.db. See `ferry --help` and docs/.
//
// Exit codes: 0 success, 1 failure, 2 usage error, 3 migrations pending or
// an import unfinished (status --exit-code).
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/compat"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitPending = 3
)

func main() {
	stop := startCPUProfile(os.Getenv("FERRY_CPUPROFILE"), os.Stderr)
	code := run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// startCPUProfile writes a pprof CPU profile of the whole invocation to
// path, when path is not empty (FERRY_CPUPROFILE, for the benchmarks in
// bench/; not documented for users). A profile that cannot be started is
// reported and skipped: it never changes what the command does.
func startCPUProfile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: FERRY_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "ferry: FERRY_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "ferry: FERRY_CPUPROFILE: %v\n", err)
		}
	}
}

// app is one invocation of the CLI.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	cfg            config
	log            *slog.Logger
	upTo           int64                       // ferry up --to, for its report
	jsonLog        atomic.Pointer[slog.Logger] // log, when it writes JSON (read by the signal handler)
	json           bool
	// serving: the command is a service (ferry serve), which reports in
	// its logs, not on stdout.
	serving bool
	// signals is the context cancelled by the first SIGINT or SIGTERM.
	signals context.Context
	// detachSignals stops that handling, for a command that forwards
	// signals to a child process itself (ferry launch).
	detachSignals func()
}

// usageError marks an error as a usage problem (exit code 2).
type usageError struct{ error }

// Unwrap keeps errors.Is and errors.As seeing the cause.
func (e usageError) Unwrap() error { return e.error }

// storeFlagHint names the flag that takes the store when an unknown flag
// is the one another command takes it with: ferry export writes to --to,
// its subcommands (and backup's) read --store.
func storeFlagHint(c *cobra.Command, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return ""
	}
	if from := c.Flags().Lookup("from"); from != nil && strings.Contains(from.Usage, "STORE/ID") && (name == "to" || name == "store") {
		return "; `" + c.CommandPath() + "` takes the export as --from STORE/ID"
	}
	for _, pair := range [][2]string{{"to", "store"}, {"store", "to"}} {
		if f := c.Flags().Lookup(pair[1]); name == pair[0] && f != nil && strings.Contains(f.Usage, "store") {
			return "; `" + c.CommandPath() + "` takes the store as --" + pair[1]
		}
	}
	return ""
}

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries a specific exit code without a message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	ctx, stop, detach := signalContext(func(sig os.Signal) {
		const msg = "stopping at the next safe point and releasing the lock (signal again to exit at once)"
		if l := a.jsonLog.Load(); l != nil {
			// With JSON logs every stderr line is a JSON object.
			l.Warn(msg, "signal", sig.String())
			return
		}
		fmt.Fprintf(stderr, "ferry: %s: %s\n", sig, msg)
	})
	defer stop()
	a.signals, a.detachSignals = ctx, detach
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if l := a.jsonLog.Load(); l != nil {
		// With JSON logs every stderr line is a JSON object.
		l.Error(a.explain(err))
	} else {
		fmt.Fprintf(stderr, "ferry: %s\n", terminalSafe(a.explain(err)))
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ") {
		return exitUsage
	}
	return exitFailure
}

// group makes c, a command that only holds subcommands, refuse an unknown
// or a missing subcommand as a usage error (cobra prints the help and
// exits 0 otherwise).
func group(c *cobra.Command) *cobra.Command {
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unknown command %q for %q (see `%s --help`)", args[0], cmd.CommandPath(), cmd.CommandPath())
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		return usageErrorf("%s needs a command: %s (see `%s --help`)", cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
	}
	return c
}

// signalContext is cancelled by the first SIGINT or SIGTERM, so that a run
// stops at its next safe point and releases the lock; a second signal exits
// at once. detach stops listening (the context is then cancelled by no
// signal), for commands that handle signals themselves.
func signalContext(notify func(os.Signal)) (ctx context.Context, stop, detach func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	var once sync.Once
	detach = func() { once.Do(func() { signal.Stop(ch) }) }
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				n++
				if n == 1 {
					notify(sig)
					cancel()
					continue
				}
				os.Exit(130)
			}
		}
	}()
	return ctx, func() {
		detach()
		close(done)
		cancel()
	}, detach
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Apply versioned SQL migrations exactly once, and serve the migration API",
		Long: `ferry applies versioned SQL migrations to PostgreSQL, MySQL/MariaDB and
SQLite exactly once, even when a whole fleet runs it at the same moment.

With no flags it uses the migrations in ./migrations and the embedded SQLite
database ./ferry.db. Configuration comes from flags, then FERRY_* environment
variables, then ./ferry.yaml (or --config).

Database URLs:
  postgres://user:pass@host:5432/db?sslmode=verify-full&schema=app
  mysql://user:pass@host:3306/db?sslmode=require
  sqlite:path/to/file.db

Exit codes: 0 success, 1 failure, 2 usage error, 3 migrations pending or
an import unfinished (status --exit-code); ferry launch exits with its
child's code.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           version,
		PersistentPreRunE: a.setup,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v%s (see `%s --help`)", err, storeFlagHint(c, err), c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringP("database", "d", database.DefaultURL, "database URL (env FERRY_DATABASE_URL)")
	pf.String("dir", "migrations", "migrations directory (env FERRY_DIR)")
	pf.String("table", migrate.DefaultTable, "history table name (env FERRY_TABLE)")
	pf.String("schema", "", "PostgreSQL schema for ferry's tables and the migrations (env FERRY_SCHEMA)")
	pf.String("config", "ferry.yaml", "config file (env FERRY_CONFIG); read when present")
	pf.Duration("lock-timeout", migrate.DefaultLockTimeout, "how long to wait for the migration lock (env FERRY_LOCK_TIMEOUT)")
	pf.Duration("ddl-lock-timeout", migrate.DefaultLockWait().Timeout, "how long a migration's statement may wait for a lock on a table before it gives up, is rolled back and tried again (PostgreSQL lock_timeout; MySQL lock_wait_timeout, in whole seconds); 0: no limit (env FERRY_DDL_LOCK_TIMEOUT)")
	pf.Int("ddl-retries", migrate.DefaultLockWait().Retries, "how many more times a migration that gave up waiting for a lock is tried, after pauses that double from 1s up to 30s (env FERRY_DDL_RETRIES)")
	pf.String("preflight", migrate.DefaultLockWait().Preflight, "once before the migrations run, transactions open longer than --ddl-lock-timeout holding locks on tables they name: wait for them, refuse at once naming them, or off (env FERRY_PREFLIGHT)")
	pf.Duration("preflight-timeout", migrate.DefaultLockWait().PreflightTimeout, "how long --preflight wait waits before it refuses (env FERRY_PREFLIGHT_TIMEOUT)")
	pf.Duration("connect-timeout", database.DefaultConnectTimeout, "how long each attempt to connect to the database may take, authentication included (env FERRY_CONNECT_TIMEOUT)")
	pf.String("lock-mode", "", "migration lock: session (PostgreSQL, MySQL default) or lease (SQLite default; for connection poolers) (env FERRY_LOCK_MODE)")
	pf.String("history", "ferry", "also keep another tool's version table up to date: ferry (none), goose or golang-migrate (env FERRY_HISTORY)")
	pf.String("log-format", "text", "log format on stderr: text or json (env FERRY_LOG_FORMAT)")
	pf.String("log-level", "warn", "log level on stderr: debug, info, warn or error (env FERRY_LOG_LEVEL)")

	root.AddCommand(
		a.initCmd(), a.newCmd(),
		a.statusCmd(), a.upCmd(), a.downCmd(), a.redoCmd(),
		a.validateCmd(), a.lintCmd(), a.baselineCmd(), a.repairCmd(), a.historyCmd(),
		a.adoptCmd(), a.serveCmd(), a.remoteCmd(),
		a.releaseCmd(), a.launchCmd(), a.waitCmd(),
		a.backupCmd(), a.exportCmd(), a.importCmd(), a.copyCmd(),
	)
	return root
}

// setup resolves the configuration and the logger before every command.
func (a *app) setup(cmd *cobra.Command, _ []string) error {
	cfg, err := resolve(cmd.Flags(), a.getenv)
	if err != nil {
		return err
	}
	a.cfg = cfg
	if f := cmd.Flags().Lookup("json"); f != nil {
		a.json = f.Value.String() == "true"
	}
	return a.setupLogger()
}

// setupLogger builds the logger from the resolved configuration.
func (a *app) setupLogger() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.cfg.LogLevel)); err != nil {
		return usageErrorf("log level %q: use debug, info, warn or error", a.cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch a.cfg.LogFormat {
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
		a.jsonLog.Store(a.log)
	default:
		return usageErrorf("log format %q: use text or json", a.cfg.LogFormat)
	}
	return nil
}

// open connects to the configured database.
func (a *app) open(ctx context.Context) (*database.DB, error) {
	u, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	return database.OpenURL(ctx, u, a.dbOptions(false))
}

// databaseURL parses the configured database URL; a URL ferry cannot use
// (scheme, parameters) is a usage error, like any other bad setting.
func (a *app) databaseURL() (*database.URL, error) {
	u, err := database.Parse(a.cfg.Database)
	if err != nil {
		return nil, usageError{err}
	}
	if a.cfg.Schema != "" && u.Kind != database.Postgres {
		return nil, usageErrorf("a schema (%q, from --schema, FERRY_SCHEMA or ferry.yaml) is only supported for PostgreSQL; for %s, name the database in the URL", a.cfg.Schema, u.Kind)
	}
	for _, s := range []string{u.Schema, a.cfg.Schema} {
		if err := database.CheckSchema(s); err != nil {
			return nil, usageError{err}
		}
	}
	return u, nil
}

// dbOptions are the options for opening the configured database.
func (a *app) dbOptions(noPing bool) database.Options {
	return database.Options{Schema: a.cfg.Schema, Logger: a.log, ConnectTimeout: a.cfg.ConnectTimeout, NoPing: noPing}
}

// migrator loads the migrations and then connects to the database, so
// that a bad migration file is reported before anything touches the
// database. The caller closes the returned database.
func (a *app) migrator(ctx context.Context, extra ...migrate.Option) (*database.DB, *migrate.Migrator, error) {
	return a.newMigrator(ctx, connect, extra...)
}

// readMigrator is migrator for a command that only reads: a SQLite file
// that does not exist is not created, but read as the empty database it
// would be, with a warning that names it.
func (a *app) readMigrator(ctx context.Context, extra ...migrate.Option) (*database.DB, *migrate.Migrator, error) {
	return a.newMigrator(ctx, connectExisting, extra...)
}

// historyMigrator is readMigrator for a command that reads the
// database's history and never the migration files (ferry export): the
// directory need not be there, and a bad file in it stops nothing.
func (a *app) historyMigrator(ctx context.Context) (*database.DB, *migrate.Migrator, error) {
	return a.newMigrator(ctx, connectHistory)
}

// connectMode says how newMigrator reaches the database.
type connectMode int

const (
	connect         connectMode = iota
	connectExisting             // and do not create a SQLite file that is not there
	connectLater                // not now: a command that copes with a database not up yet (ferry wait)
	connectHistory              // as connectExisting, without the migration files
)

// newMigrator is migrator, reaching the database as mode says.
func (a *app) newMigrator(ctx context.Context, mode connectMode, extra ...migrate.Option) (*database.DB, *migrate.Migrator, error) {
	u, err := a.databaseURL()
	if err != nil {
		return nil, nil, err
	}
	o := a.dbOptions(true)
	o.NoCreate = mode == connectExisting || mode == connectHistory
	db, err := database.OpenURL(ctx, u, o)
	if err != nil {
		return nil, nil, err
	}

	files := migrate.WithDir(a.cfg.Dir)
	if mode == connectHistory {
		files = migrate.WithFS(embed.FS{}, "(none read)") // an empty directory
	}
	opts := []migrate.Option{
		files,
		migrate.WithTable(a.cfg.Table),
		migrate.WithLogger(a.log),
		migrate.WithLockTimeout(a.cfg.LockTimeout),
		migrate.WithLockMode(migrate.LockMode(a.cfg.LockMode)),
		migrate.WithAllowOutOfOrder(a.cfg.AllowOutOfOrder),
		migrate.WithLockWait(a.cfg.lockWait()),
	}
	if !a.json {
		opts = append(opts, migrate.WithHooks(a.progressHooks()))
	}
	mirror, err := a.historyMirror(db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if mirror != nil {
		opts = append(opts, migrate.WithHistoryMirror(mirror))
	}
	// Connect to a server while the migration files are listed: neither
	// waits for the other, and a bad file is still reported before
	// anything is changed. A SQLite file is opened only after: connecting
	// creates it, and a bad file or directory must leave nothing behind.
	pinged := make(chan error, 1)
	switch {
	case mode == connectLater:
		pinged <- nil
	case db.URL.Kind != database.SQLite:
		go func() { pinged <- db.Ping(ctx) }()
	}
	m, err := migrate.New(db.DB, db.Dialect, append(opts, extra...)...)
	if errors.Is(err, migrate.ErrNoDir) {
		err = usageError{err} // a bad --dir, FERRY_DIR or dir
	}
	if mode != connectLater && db.URL.Kind == database.SQLite {
		if err == nil {
			err = db.Ping(ctx)
		}
	} else if perr := <-pinged; err == nil {
		err = perr
	}
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if db.Absent {
		a.log.Warn("the SQLite database file does not exist yet; reading it as empty (the first command that writes to it creates it)", "file", u.Database)
	}
	return db, m, nil
}

// historyMirror returns the other tool's table that --history names, or
// nil for ferry's own history only.
func (a *app) historyMirror(db *database.DB) (compat.Table, error) {
	switch a.cfg.History {
	case "", "ferry":
		return nil, nil
	case compat.ToolGoose, compat.ToolGolangMigrate:
		return compat.New(a.cfg.History, db.Dialect, "")
	}
	return nil, usageErrorf("--history %q: use ferry, goose or golang-migrate", a.cfg.History)
}

// fmtDuration prints a duration for people: "<1ms", "12ms", "3.2s".
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) printf(format string, args ...any) {
	io.WriteString(a.stdout, terminalSafe(fmt.Sprintf(format, args...)))
}

// eprintf prints on stderr as printf does on stdout.
func (a *app) eprintf(format string, args ...any) {
	io.WriteString(a.stderr, terminalSafe(fmt.Sprintf(format, args...)))
}

// safeWriter writes through terminalSafe (for a tabwriter's table).
type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(s.w, terminalSafe(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// terminalSafe escapes the control characters of s, but newlines and
// tabs: what ferry prints holds names read from exports, stores and
// databases, and an escape sequence in one would rewrite the operator's
// terminal.
func terminalSafe(s string) string {
	unsafe := func(r rune) bool { return r != '\n' && r != '\t' && unicode.IsControl(r) }
	if !strings.ContainsFunc(s, unsafe) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafe(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// jsonFlag adds --json to a command that reports.
func jsonFlag(c *cobra.Command) {
	c.Flags().Bool("json", false, "print the result as JSON")
}

// exactArgs is cobra.ExactArgs reported as a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s (see `%s --help`)", c.CommandPath(), what, c.CommandPath())
		}
		return nil
	}
}

func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q (see `%s --help`)", c.CommandPath(), strings.Join(args, " "), c.CommandPath())
	}
	return nil
}

// progressHooks print a run's progress: "applying 3 add_x ... ok (2ms)"
// for a migration sent alone; for migrations sent to the server as one
// script (MySQL), a line that names them all before it is sent, then a
// line for each as the script's results come back.
func (a *app) progressHooks() migrate.Hooks {
	var script []migrate.Event // started, of a script not yet announced
	verb := func(op migrate.Op) string {
		if op == migrate.OpDown {
			return "reverting"
		}
		return "applying"
	}
	return migrate.Hooks{
		MigrationStarted: func(e migrate.Event) {
			if e.Together <= 1 {
				a.printf("%s %d %s ... ", verb(e.Operation), e.Version, e.Name)
				return
			}
			script = append(script, e)
			if len(script) < e.Together {
				return
			}
			first, last := script[0], script[len(script)-1]
			a.printf("%s %d migrations as one script (%d %s to %d %s):\n", verb(e.Operation), e.Together, first.Version, first.Name, last.Version, last.Name)
			script = script[:0]
		},
		MigrationDone: func(e migrate.Event) {
			if e.Together > 1 {
				a.printf("  %d %s ... ", e.Version, e.Name)
			}
			if e.Err != nil {
				a.printf("FAILED after %s\n", fmtDuration(e.Duration))
				return
			}
			a.printf("ok (%s)\n", fmtDuration(e.Duration))
		},
	}
}
