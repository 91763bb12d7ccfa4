package api

import (
	"time"

	"github.com/ferrydb/ferry/internal/advice"
	"github.com/ferrydb/ferry/migrate"
)

// Status is ferry's GET /v1/status document, the same as
// `ferry status --json`. It is a type of its own, not the engine's: a
// renamed engine field never changes the API.
type Status struct {
	// Database is the database URL without its password.
	Database       string `json:"database"`
	Dialect        string `json:"dialect"`
	HistoryTable   string `json:"history_table"`
	CurrentVersion int64  `json:"current_version"`
	LatestVersion  int64  `json:"latest_version"`
	// IsUpToDate: no migration is pending or failed, and no import into
	// the database has not finished (ImportsInProgress), as Metaflow's
	// is_up_to_date, ferry_schema_up_to_date and ferry status say.
	IsUpToDate bool `json:"is_up_to_date"`
	// Ready: up to date, and whether an import has not finished is known
	// (see SetImports): what a release about to start checks, as ferry
	// status --exit-code does.
	Ready   bool    `json:"ready"`
	Pending []int64 `json:"pending"`
	// PendingMigrations details Pending.
	PendingMigrations []PendingMigration `json:"pending_migrations"`
	// Applied lists the applied migrations (all of them, unless the
	// producer says otherwise through AppliedCount).
	Applied      []AppliedMigration `json:"applied"`
	AppliedCount int                `json:"applied_count"`
	Failed       []Failure          `json:"failed"`
	// Missing lists applied migrations whose file is gone.
	Missing             []AppliedMigration `json:"missing"`
	Lock                *Lock              `json:"lock"`
	MigrationInProgress bool               `json:"migration_in_progress"`
	// Fleet lists the live instances of the fleet registry by release
	// (absent when the producer has no registry).
	Fleet any `json:"fleet,omitempty"`
	// ImportsInProgress lists imports (ferry import, ferry copy) into the
	// database that started and did not finish: until they do, its data
	// is incomplete.
	ImportsInProgress []ImportInProgress `json:"imports_in_progress,omitempty"`
	// ImportsError says the import ledger could not be read: whether an
	// import is unfinished is unknown (absent when it was read).
	ImportsError string `json:"imports_error,omitempty"`
	// Lint is the lint of the pending migrations (absent when none is
	// pending, or the producer does not lint).
	Lint *LintReport `json:"lint,omitempty"`
}

// ImportInProgress is an unfinished import in a Status.
type ImportInProgress struct {
	ExportID     string   `json:"export_id"`
	TablesLoaded []string `json:"tables_loaded"`
	Verified     bool     `json:"verified"`
	Copy         bool     `json:"copy,omitempty"`
	// VerificationFailed: the rows it loaded differ from the export's;
	// it cannot be finished (drop the database and import anew).
	VerificationFailed bool `json:"verification_failed,omitempty"`
	// ExportDamaged: its load stopped at a chunk of the export that is
	// missing or damaged; running it again helps once the export's
	// objects are restored.
	ExportDamaged bool `json:"export_damaged,omitempty"`
	// ValueRefused: its load stopped at a value the target cannot take;
	// it cannot be finished (drop the database and import anew).
	ValueRefused bool `json:"value_refused,omitempty"`
	// From is where the export is (ferry import --from), when known.
	From string `json:"from,omitempty"`
	// Command is the ferry import command that finishes it, when known.
	Command string `json:"command,omitempty"`
	// KeyEnv is the environment variable the export's key came from,
	// which Command needs set too.
	KeyEnv string `json:"key_env,omitempty"`
	// Advice says what to do about it, in words (the console shows it).
	Advice string `json:"advice,omitempty"`
}

// AppliedMigration is an applied migration in a Status.
type AppliedMigration struct {
	Version    int64     `json:"version"`
	Name       string    `json:"name"`
	Operation  string    `json:"operation"` // how it came to be applied: up, baseline, repair or adopt
	AppliedAt  time.Time `json:"applied_at"`
	DurationMS int64     `json:"duration_ms"`
	AppliedBy  string    `json:"applied_by"`
	Checksum   string    `json:"checksum,omitempty"`
	// File is empty when the migration's file is missing.
	File string `json:"file,omitempty"`
}

// PendingMigration is a migration not applied yet.
type PendingMigration struct {
	Version int64  `json:"version"`
	Name    string `json:"name"`
	File    string `json:"file,omitempty"`
	// LastError is the error of the last attempt, when a transactional
	// attempt failed and was rolled back.
	LastError string `json:"last_error,omitempty"`
}

// Failure is a migration that failed or was interrupted without a
// transaction and needs repair.
type Failure struct {
	Version   int64     `json:"version"`
	Name      string    `json:"name"`
	File      string    `json:"file,omitempty"`
	Operation string    `json:"operation"`
	State     string    `json:"state"` // failed, interrupted or running
	Statement int       `json:"statement,omitempty"`
	Line      int       `json:"line,omitempty"`
	Error     string    `json:"error,omitempty"`
	AppliedBy string    `json:"applied_by"`
	At        time.Time `json:"at"`
	// Hint is what to do: the repair command to run once the database is
	// checked ("" while the migration is running).
	Hint string `json:"hint,omitempty"`
}

// Lock says who holds the migration lock.
type Lock struct {
	Mode       string     `json:"mode"`
	Held       bool       `json:"held"`
	Holder     string     `json:"holder,omitempty"`
	Connection string     `json:"connection,omitempty"`
	Since      *time.Time `json:"since,omitempty"`
	HeldForMS  int64      `json:"held_for_ms,omitempty"`
	Note       string     `json:"note,omitempty"`
}

// Result is what a run did (`ferry up --json` and friends).
type Result struct {
	Migrations    []Applied `json:"migrations"`
	From          int64     `json:"from_version"`
	To            int64     `json:"to_version"`
	LockWaitedMS  int64     `json:"lock_waited_ms"`
	LastAppliedBy string    `json:"last_applied_by,omitempty"`
}

// Applied is one migration applied, reverted or recorded by a run.
type Applied struct {
	Version    int64  `json:"version"`
	Name       string `json:"name"`
	Operation  string `json:"operation"`
	DurationMS int64  `json:"duration_ms"`
}

// HistoryRow is one row of the history table (GET /v1/history,
// `ferry history --json`).
type HistoryRow struct {
	ID         int64     `json:"id"`
	Version    int64     `json:"version"`
	Name       string    `json:"name"`
	Checksum   string    `json:"checksum,omitempty"`
	Operation  string    `json:"operation"`
	State      string    `json:"state"`
	AppliedAt  time.Time `json:"applied_at"`
	DurationMS int64     `json:"duration_ms"`
	AppliedBy  string    `json:"applied_by"`
	Statement  int       `json:"statement,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// SetImports records the unfinished imports into the database, or the
// failure to read them (err), and what they mean for Ready.
func (s *Status) SetImports(imports []ImportInProgress, err error) {
	s.ImportsInProgress, s.ImportsError = imports, ""
	if err != nil {
		s.ImportsError = err.Error()
	}
	if len(imports) > 0 {
		// The data is incomplete whatever the schema's version: a script
		// that reads is_up_to_date must not take it for ready.
		s.IsUpToDate = false
	}
	s.Ready = s.IsUpToDate && err == nil
}

// FromStatus converts the engine's status. database is the URL to show
// (without its password), fleet what goes under "fleet" (nil: nothing).
func FromStatus(s *migrate.Status, database string, fleet any) *Status {
	out := &Status{
		Database: database, Dialect: s.Dialect, HistoryTable: s.HistoryTable,
		CurrentVersion: s.CurrentVersion, LatestVersion: s.LatestVersion, IsUpToDate: s.IsUpToDate, Ready: s.IsUpToDate,
		Pending: nonNil(s.Pending), PendingMigrations: make([]PendingMigration, len(s.PendingMigrations)),
		Applied: appliedList(s.Applied), AppliedCount: s.AppliedCount,
		Failed: make([]Failure, len(s.Failed)), Missing: appliedList(s.Missing),
		MigrationInProgress: s.MigrationInProgress, Fleet: fleet,
	}
	for i, p := range s.PendingMigrations {
		out.PendingMigrations[i] = PendingMigration{Version: p.Version, Name: p.Name, File: p.File, LastError: p.LastError}
	}
	for i, f := range s.Failed {
		out.Failed[i] = FromFailure(f)
	}
	if l := s.Lock; l != nil {
		out.Lock = &Lock{Mode: string(l.Mode), Held: l.Held, Holder: l.Holder, Connection: l.Connection, Since: l.Since, HeldForMS: l.HeldFor.Milliseconds(), Note: l.Note}
	}
	return out
}

// FromFailure converts a failure, with the advice that resolves it.
func FromFailure(f migrate.Failure) Failure {
	return Failure{
		Version: f.Version, Name: f.Name, File: f.File, Operation: string(f.Operation), State: string(f.State),
		Statement: f.Statement, Line: f.Line, Error: f.Error, AppliedBy: f.AppliedBy, At: f.At,
		Hint: advice.Repair(f),
	}
}

func appliedList(list []migrate.AppliedMigration) []AppliedMigration {
	out := make([]AppliedMigration, len(list))
	for i, a := range list {
		out[i] = AppliedMigration{
			Version: a.Version, Name: a.Name, Operation: string(a.Operation), AppliedAt: a.AppliedAt,
			DurationMS: a.Duration.Milliseconds(), AppliedBy: a.AppliedBy, Checksum: a.Checksum, File: a.File,
		}
	}
	return out
}

// FromResult converts what a run did; nil stays nil.
func FromResult(r *migrate.Result) *Result {
	if r == nil {
		return nil
	}
	return &Result{Migrations: FromApplied(r.Migrations), From: r.From, To: r.To, LockWaitedMS: r.LockWaited.Milliseconds(), LastAppliedBy: r.LastAppliedBy}
}

// FromApplied converts a run's migrations; the list is never nil.
func FromApplied(list []migrate.Applied) []Applied {
	out := make([]Applied, len(list))
	for i, a := range list {
		out[i] = Applied{Version: a.Version, Name: a.Name, Operation: string(a.Operation), DurationMS: a.Duration.Milliseconds()}
	}
	return out
}

// FromRecords converts history rows.
func FromRecords(recs []migrate.Record) []HistoryRow {
	out := make([]HistoryRow, len(recs))
	for i, r := range recs {
		out[i] = HistoryRow{
			ID: r.ID, Version: r.Version, Name: r.Name, Checksum: r.Checksum, Operation: string(r.Operation), State: string(r.State),
			AppliedAt: r.AppliedAt, DurationMS: r.Duration.Milliseconds(), AppliedBy: r.AppliedBy, Statement: r.Statement, Error: r.Error,
		}
	}
	return out
}

func nonNil(v []int64) []int64 {
	if v == nil {
		return []int64{}
	}
	return v
}

// ReleaseVerdict is one release of the manifest and whether it can run on
// the database's schema (the console's fleet section).
type ReleaseVerdict struct {
	Name       string `json:"name"`
	Schema     int64  `json:"schema"`
	Compatible bool   `json:"compatible"`
	Newest     bool   `json:"newest,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Live       int    `json:"live_instances"`
}

// Backup is one backup in the store (the console's backups section).
type Backup struct {
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	Reason        string    `json:"reason"`
	SizeBytes     int64     `json:"size_bytes"`
	SchemaVersion int64     `json:"schema_version"`
	Restore       string    `json:"restore_command"`
}
