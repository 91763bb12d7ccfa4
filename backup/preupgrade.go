package backup

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferrydb/ferry/store"
	"strings"

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
// Backup method is a migrate.BackupFunc: the engine's upgrade pipeline
// calls it under the migration lock, after planning, and only when there
// is something to apply, so there is no backup when the schema is up to
// date.
//
//	pre := &backup.PreUpgrade{Store: store, DB: db, Mode: backup.ModeAuto}
//	out, err := m.Upgrade(ctx, migrate.UpOptions{}, migrate.Pipeline{Backup: pre.Backup})
//	// out.Backup.ID names the backup; a failed upgrade's error, a
//	// *migrate.UpgradeError, carries the command that restores it.
//
// One PreUpgrade may serve many upgrades (a service's). The backup runs on
// the engine's run context, which is cancelled only when the migration
// lock is lost, not with the caller's context: a signal stops the upgrade
// after the backup, before the first migration.
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

// Backup implements migrate.BackupFunc. In ModeRequired a failed backup
// stops the upgrade (an error wrapping ErrBackupFailed); in ModeAuto it is
// logged and reported in the outcome, and the upgrade goes on.
func (p *PreUpgrade) Backup(ctx context.Context, run *migrate.PreflightRun) (*migrate.BackupOutcome, error) {
	if p.Mode == ModeOff || p.Mode == "" {
		return nil, nil
	}
	s := p.Options.settings()
	up := &UpgradeInfo{From: run.From, To: run.To, Migrations: []int64{}}
	for _, mig := range run.Migrations {
		up.Migrations = append(up.Migrations, mig.Version)
	}
	m, err := Create(ctx, p.Store, p.DB, CreateOptions{Options: p.Options, Reason: ReasonBeforeUpgrade, Upgrade: up})
	if err != nil {
		if p.Mode == ModeRequired {
			return nil, fmt.Errorf("%w, so nothing was applied (backup mode %s): %w", ErrBackupFailed, ModeRequired, err)
		}
		s.log.Warn("the backup before the upgrade failed; upgrading without one (backup mode auto)", "error", err)
		return &migrate.BackupOutcome{Err: err}, nil
	}
	if p.OnBackup != nil {
		p.OnBackup(m)
	}
	return &migrate.BackupOutcome{ID: m.ID, Restore: RestoreInstructions(m.ID, p.Store.String(), p.DB.URL)}, nil
}

// RestoreInstructions is the command that restores backup id, and, when
// the command cannot name the database (its URL holds a password, which
// ferry never prints), how to point it at the database.
func RestoreInstructions(id, store string, target *database.URL) string {
	cmd := RestoreCommand(id, store, target)
	if target != nil && target.HasSecrets() {
		cmd += "\nwith FERRY_DATABASE_URL (or ferry.yaml) set to the URL of " + target.String() + ", password included (ferry does not print passwords)"
	}
	return cmd
}

// RestoreCommand returns `ferry backup restore ID --store STORE
// [--database URL [--schema S]] --yes`, quoted for a POSIX shell. The
// database is named when target is not nil and its URL holds no secret.
func RestoreCommand(id, storeLoc string, target *database.URL) string {
	cmd := "ferry backup restore " + id + " --store " + store.ShellQuote(storeLoc)
	if target != nil && !target.HasSecrets() {
		cmd += " --database " + store.ShellQuote(target.String())
		if target.Schema != "" {
			cmd += " --schema " + store.ShellQuote(target.Schema)
		}
	}
	return cmd + " --yes"
}
