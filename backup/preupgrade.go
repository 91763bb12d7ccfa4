package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

// Mode says whether an upgrade takes a backup first.
type Mode string

const (
	// ModeOff takes no backup.
	ModeOff Mode = "off"
	// ModeAuto takes a backup; if it fails, the upgrade logs a warning and
	// goes on without one.
	ModeAuto Mode = "auto"
	// ModeRequired takes a backup; if it fails, the upgrade stops with
	// nothing applied.
	ModeRequired Mode = "required"
)

// ParseMode parses "auto", "required" or "off".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeOff, ModeAuto, ModeRequired:
		return m, nil
	}
	return "", fmt.Errorf("backup mode %q: use auto, required or off", s)
}

// ErrBackupFailed is returned (wrapped) by an upgrade in ModeRequired whose
// backup failed; nothing was applied.
var ErrBackupFailed = errors.New("the backup before the upgrade failed")

// PreUpgrade takes a backup before an upgrade changes anything. Its
// Preflight method is a migrate.Preflight: the engine calls it under the
// migration lock, after planning, and only when there is something to
// apply, so there is no backup when the schema is up to date.
//
//	pre := &backup.PreUpgrade{Store: store, DB: db, Mode: backup.ModeAuto}
//	m, _ := migrate.New(db.DB, db.Dialect, migrate.WithDir("migrations"), migrate.WithPreflight(pre.Preflight))
//	rec := &backup.Recorder{}
//	res, err := m.Up(backup.WithRecorder(ctx, rec), migrate.UpOptions{})
//	err = rec.WrapError(err) // a failure names the backup and the restore command
//	id := rec.BackupID()      // "" when no backup was taken
//
// One PreUpgrade may serve many runs (a service's Migrator); each run
// learns about its own backup through the Recorder in its context. The
// backup runs on the engine's run context, which is cancelled only when
// the migration lock is lost, not with the caller's context: a signal
// stops the upgrade after the backup, before the first migration.
type PreUpgrade struct {
	Store *Store
	// DB is the database being upgraded.
	DB   *database.DB
	Mode Mode
	// Options for Create (history table, tool directory, ferry version,
	// logger).
	Options Options
	// OnBackup, when set, is called with every backup taken.
	OnBackup func(*Manifest)
}

// Preflight implements migrate.Preflight.
func (p *PreUpgrade) Preflight(ctx context.Context, run *migrate.PreflightRun) error {
	if p.Mode == ModeOff || p.Mode == "" {
		return nil
	}
	rec := recorderFrom(ctx)
	s := p.Options.settings()
	up := &UpgradeInfo{From: run.From, To: run.To, Migrations: []int64{}}
	for _, mig := range run.Migrations {
		up.Migrations = append(up.Migrations, mig.Version)
	}
	m, err := Create(ctx, p.Store, p.DB, CreateOptions{Options: p.Options, Reason: ReasonBeforeUpgrade, Upgrade: up})
	if err != nil {
		rec.record(nil, p.Store, p.DB.URL, err)
		if p.Mode == ModeRequired {
			return fmt.Errorf("%w, so nothing was applied (--backup=required): %w; fix the cause and run again, or upgrade without a backup with --backup=auto or off", ErrBackupFailed, err)
		}
		s.log.Warn("the backup before the upgrade failed; upgrading without one (--backup=auto; use --backup=required to stop instead)", "error", err)
		return nil
	}
	rec.record(m, p.Store, p.DB.URL, nil)
	if p.OnBackup != nil {
		p.OnBackup(m)
	}
	return nil
}

// Recorder learns which backup the pre-upgrade backup of one run took.
// Put it into the run's context with WithRecorder. Its zero value is
// ready; it is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	manifest *Manifest
	store    string
	target   *database.URL // the database the backup is of
	err      error
}

type recorderKey struct{}

// WithRecorder returns a context that makes PreUpgrade report to r.
func WithRecorder(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, r)
}

func recorderFrom(ctx context.Context) *Recorder {
	r, _ := ctx.Value(recorderKey{}).(*Recorder)
	return r
}

func (r *Recorder) record(m *Manifest, s *Store, target *database.URL, err error) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.manifest, r.target, r.err = m, target, err
	if s != nil {
		r.store = s.String()
	}
}

// Backup returns the manifest of the backup taken, or nil.
func (r *Recorder) Backup() *Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifest
}

// BackupID returns the id of the backup taken, or "".
func (r *Recorder) BackupID() string {
	if m := r.Backup(); m != nil {
		return m.ID
	}
	return ""
}

// Store returns the store the backup went to (or would have), as a URL
// without secrets.
func (r *Recorder) Store() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store
}

// Err returns why the backup failed, when it did; in ModeAuto the upgrade
// went on without it.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// RestoreCommand returns the command that restores the database to its
// state before the upgrade, or "" when no backup was taken. It names the
// database (--database, and --schema for a PostgreSQL schema) unless its
// URL holds a password or another secret, which ferry never prints: then
// the command restores into the database ferry is configured with
// (FERRY_DATABASE_URL or ferry.yaml), and UpgradeError says so.
func (r *Recorder) RestoreCommand() string {
	m, store, target := r.snapshot()
	if m == nil {
		return ""
	}
	return RestoreCommand(m.ID, store, target)
}

// snapshot returns what was recorded, read at once.
func (r *Recorder) snapshot() (*Manifest, string, *database.URL) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifest, r.store, r.target
}

// RestoreCommand returns `ferry backup restore ID --store STORE
// [--database URL [--schema S]] --yes`, quoted for a POSIX shell. The
// database is named when target is not nil and its URL holds no secret.
func RestoreCommand(id, store string, target *database.URL) string {
	cmd := "ferry backup restore " + id + " --store " + shellQuote(store)
	if target != nil && !target.HasSecrets() {
		cmd += " --database " + shellQuote(target.String())
		if target.Schema != "" {
			cmd += " --schema " + shellQuote(target.Schema)
		}
	}
	return cmd + " --yes"
}

func shellQuote(s string) string {
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./:=,+@%", c)) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// WrapError adds the backup and its restore command to a failed upgrade's
// error. It returns err unchanged when err is nil or no backup was taken.
// The result unwraps to err, so errors.Is and errors.As keep working.
func (r *Recorder) WrapError(err error) error {
	if err == nil {
		return nil
	}
	m, store, target := r.snapshot()
	if m == nil {
		return err
	}
	ue := &UpgradeError{Err: err, BackupID: m.ID, Store: store, RestoreCommand: RestoreCommand(m.ID, store, target)}
	if target != nil && target.HasSecrets() {
		ue.Database = target.String()
	}
	return ue
}

// UpgradeError is a failed upgrade that had a backup taken before it.
type UpgradeError struct {
	Err            error
	BackupID       string
	Store          string
	RestoreCommand string
	// Database is set when the restore command cannot name the database
	// (its URL holds a password): the URL without it, for the message.
	Database string
}

// Error is the upgrade's error followed by the backup id and the restore
// command on lines of their own.
func (e *UpgradeError) Error() string {
	msg := fmt.Sprintf("%v\nbackup %s was taken before this upgrade; to return the database to its state before the upgrade, run:\n  %s",
		e.Err, e.BackupID, e.RestoreCommand)
	if e.Database != "" {
		msg += "\nwith FERRY_DATABASE_URL (or ferry.yaml) set to the URL of " + e.Database + ", password included (ferry does not print passwords)"
	}
	return msg
}

// Unwrap returns the upgrade's own error.
func (e *UpgradeError) Unwrap() error { return e.Err }
