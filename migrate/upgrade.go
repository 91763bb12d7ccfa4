package migrate

import (
	"context"
	"fmt"
)

// An upgrade is what `ferry up` and the migration service do: under one
// migration lock, plan the pending migrations, let a gate hold back the
// part of the plan that may not run yet, take a backup when something is
// left to apply, apply it, and report all of it. Upgrade is that pipeline,
// shared by every caller; package release provides the contract gate and
// package backup the pre-upgrade backup.

// Gate looks at a plan under the migration lock and says how much of it
// may run: the migrations up to and including version upTo (0: none), and
// why it holds back the rest (nil: it holds back nothing).
type Gate func(ctx context.Context, run *PreflightRun) (upTo int64, held error)

// BackupFunc takes a backup of the database under the migration lock,
// before the first migration of an upgrade runs. An error stops the
// upgrade with nothing applied; a backup that failed but must not stop the
// upgrade is reported in BackupOutcome.Err.
type BackupFunc func(ctx context.Context, run *PreflightRun) (*BackupOutcome, error)

// BackupOutcome is what a BackupFunc did.
type BackupOutcome struct {
	// ID names the backup taken ("" when none was).
	ID string
	// Restore is how to return the database to its state before the
	// upgrade with that backup (a command), shown when the upgrade fails.
	Restore string
	// Err says why a backup that was due failed, when the upgrade went on
	// without one.
	Err error
}

// Pipeline is what an upgrade does besides applying migrations.
type Pipeline struct {
	// Check, when set, runs first and may refuse the whole plan (lint of
	// the pending migrations, say) before the gate and the backup.
	Check Preflight
	// Gate, when set, may hold back part of the plan.
	Gate Gate
	// Backup, when set, runs before the first migration, when there is
	// something to apply.
	Backup BackupFunc
}

// UpgradeOutcome is what an upgrade did.
type UpgradeOutcome struct {
	*Result
	// Backup is what the backup step did; nil when it did not run.
	Backup *BackupOutcome
	// Held is the gate's reason for the migrations it held back (nil when
	// it held back none). Upgrade also returns it as its error, after
	// applying what the gate let through.
	Held error
}

// UpgradeError is a failed upgrade that had a backup taken before it.
type UpgradeError struct {
	Err    error
	Backup *BackupOutcome
}

func (e *UpgradeError) Error() string {
	return fmt.Sprintf("%v\nbackup %s was taken before this upgrade; to return the database to its state before the upgrade:\n  %s", e.Err, e.Backup.ID, e.Backup.Restore)
}

// Unwrap returns the upgrade's own error.
func (e *UpgradeError) Unwrap() error { return e.Err }

// Upgrade applies the pending migrations up to opts.To like Up, through
// the pipeline p, under one migration lock: the gate may hold back part of
// the plan (Upgrade applies the rest and then returns the gate's error);
// the backup runs once there is something to apply. A failure after a
// backup was taken is an *UpgradeError naming the backup.
func (m *Migrator) Upgrade(ctx context.Context, opts UpOptions, p Pipeline) (*UpgradeOutcome, error) {
	out := &UpgradeOutcome{}
	res, err := m.up(ctx, opts, func(r *run, plan []*Migration) ([]*Migration, error) {
		if p.Check != nil {
			if err := p.Check(r.exec, r.preflightRun(plan)); err != nil {
				return nil, err
			}
		}
		if p.Gate != nil {
			upTo, held := p.Gate(r.exec, r.preflightRun(plan))
			if held != nil {
				var kept []*Migration
				for _, mig := range plan {
					if mig.Version <= upTo {
						kept = append(kept, mig)
					}
				}
				if len(kept) == 0 {
					return nil, held
				}
				plan, out.Held = kept, held
			}
		}
		if p.Backup != nil {
			b, err := p.Backup(r.exec, r.preflightRun(plan))
			out.Backup = b
			if err != nil {
				return nil, err
			}
		}
		return plan, nil
	})
	out.Result = res
	if err != nil {
		if out.Backup != nil && out.Backup.ID != "" {
			err = &UpgradeError{Err: err, Backup: out.Backup}
		}
		return out, err
	}
	return out, out.Held
}
