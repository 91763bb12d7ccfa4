package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// upgradePipeline is the pipeline of `ferry up` and `ferry serve`: the
// contract gate, then the backup before the upgrade when the backup mode
// asks for one.
type upgradePipeline struct {
	migrate.Pipeline
	// store is the backup store, nil when no backup is taken.
	store *backup.Store
}

// close releases the backup store.
func (p *upgradePipeline) close() {
	if p.store != nil {
		p.store.Close()
	}
}

// pipeline builds the upgrade pipeline for db. force lets the gate apply a
// contract migration that breaks live instances.
func (a *app) pipeline(ctx context.Context, db *database.DB, force bool) (*upgradePipeline, error) {
	p := &upgradePipeline{}
	p.Gate = release.Gate(db.Dialect, release.WithForce(force), release.WithLogger(a.log))
	pre, store, err := a.preUpgrade(ctx)
	if err != nil {
		return nil, err
	}
	if pre != nil {
		pre.DB, p.store = db, store
		if !a.json && !a.serving {
			pre.OnBackup = func(m *backup.Manifest) {
				a.printf("backup %s taken before the upgrade (%s in %s)\n", m.ID, fmtSize(m.Size()), store)
			}
		}
		p.Backup = pre.Backup
	}
	return p, nil
}

// upgradeWaiting is m.Upgrade that, when the contract gate holds a
// contract migration back and wait is not 0, tries again (a new upgrade,
// holding the migration lock only while it runs) after pauses from 1s up
// to 10s, the last one at the deadline, until the instances it breaks
// have left the registry or wait has passed since it started. The
// outcome counts every migration applied on the way, and names the last
// backup taken. The lint check runs on the first try only: it covered
// every pending migration.
func (a *app) upgradeWaiting(ctx context.Context, m *migrate.Migrator, opts migrate.UpOptions, p migrate.Pipeline, wait time.Duration) (*migrate.UpgradeOutcome, error) {
	deadline := time.Now().Add(wait)
	out, err := m.Upgrade(ctx, opts, p)
	if wait <= 0 || !errors.Is(err, release.ErrContractBlocked) {
		return out, err
	}
	p.Check = nil
	pause := time.Second
	said := ""
	for errors.Is(err, release.ErrContractBlocked) {
		var blocked *release.ContractBlockedError
		if errors.As(err, &blocked) {
			if ids, who := blockedBy(blocked); ids != said {
				a.log.Warn("contract migration held: waiting for the instances it breaks to leave the fleet registry", "held_by", who, "wait_left", time.Until(deadline).Round(time.Second).String())
				said = ids
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return out, fmt.Errorf("%w\nWaited %s (--contract-wait) for them to leave.", err, wait)
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("%w\nStopped waiting for them to leave: %w", err, context.Cause(ctx))
		case <-time.After(min(pause, left)):
		}
		pause = min(2*pause, 10*time.Second)
		next, nerr := m.Upgrade(ctx, opts, p)
		out, err = mergeOutcomes(out, next), nerr
	}
	return out, err
}

// mergeOutcomes is the outcome of two upgrades run one after the other:
// the migrations of both, from the first's version, the lock waits
// summed, and the later backup if it took one, else the earlier.
func mergeOutcomes(first, next *migrate.UpgradeOutcome) *migrate.UpgradeOutcome {
	if next == nil {
		return first
	}
	if first == nil {
		return next
	}
	if first.Result != nil {
		if next.Result == nil {
			// The later try failed before it ran anything (the lock,
			// the connection): what the first applied stands.
			next.Result = first.Result
		} else {
			r := *next.Result
			r.Migrations = append(append([]migrate.Applied(nil), first.Migrations...), next.Migrations...)
			r.From = first.From
			r.LockWaited += first.LockWaited
			next.Result = &r
		}
	}
	if next.Backup == nil || next.Backup.ID == "" {
		next.Backup = first.Backup
	}
	return next
}

// blockedBy names the instances that hold contract migrations back: their
// ids, sorted (what changes when one leaves), and their descriptions,
// for the log.
func blockedBy(e *release.ContractBlockedError) (ids, who string) {
	var idList, parts []string
	for _, b := range e.Blocked {
		for _, l := range b.Instances {
			idList = append(idList, l.ID)
			parts = append(parts, l.String())
		}
	}
	slices.Sort(idList)
	slices.Sort(parts)
	return strings.Join(slices.Compact(idList), ","), strings.Join(slices.Compact(parts), "; ")
}
