package migrate

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// BaselineOptions adjust Baseline.
type BaselineOptions struct {
	// AllowMissing accepts a version that no migration has (every
	// migration below it is recorded); by default such a version, most
	// likely a typo, is refused.
	AllowMissing bool
}

// Baseline records every migration up to version v as applied without
// running it, for a database whose schema already has them.
func (m *Migrator) Baseline(ctx context.Context, v int64, opts BaselineOptions) (*Result, error) {
	if v <= 0 {
		return nil, fmt.Errorf("baseline version must be positive, got %d", v)
	}
	if _, ok := m.byVersion[v]; !ok && !opts.AllowMissing {
		return nil, fmt.Errorf("%w: no migration has version %d%s", ErrUnknownVersion, v, m.nearest(v))
	}
	todo := func(h *history) []*Migration {
		var out []*Migration
		for _, mig := range m.migrations {
			if mig.Version <= v && !h.state(mig.Version).applied {
				out = append(out, mig)
			}
		}
		return out
	}
	check := func(h *history) error {
		if err := m.checkRepaired(h, false); err != nil {
			return err
		}
		return parseAll(todo(h)) // for their checksums
	}
	return m.locked(ctx, check, func(r *run) error {
		if err := m.checkRepaired(r.hist, true); err != nil {
			return err
		}
		todo := todo(r.hist)
		if len(todo) == 0 {
			if _, ok := m.byVersion[v]; !ok && (len(m.migrations) == 0 || m.migrations[0].Version > v) {
				return fmt.Errorf("%w: no migration has a version up to %d", ErrUnknownVersion, v)
			}
			return nil
		}
		if err := parseAll(todo); err != nil { // for their checksums
			return err
		}
		for _, mig := range todo {
			rec := Record{
				Version: mig.Version, Name: mig.Name, Checksum: mig.Checksum, Operation: OpBaseline, State: StateApplied,
				AppliedAt: time.Now().UTC(), AppliedBy: r.by,
			}
			if err := r.mirrored(r.h.conn, mig.Version, true); err != nil {
				return err
			}
			if _, err := m.insertRecord(r.exec, r.h.conn, &rec); err != nil {
				return err
			}
			r.record(rec)
			r.res.Migrations = append(r.res.Migrations, Applied{Version: mig.Version, Name: mig.Name, Operation: OpBaseline})
		}
		return nil
	})
}

// RepairMark is the operator's decision about a failed migration.
type RepairMark string

const (
	// MarkApplied: the migration's changes are complete (finished by hand).
	MarkApplied RepairMark = "applied"
	// MarkPending: the migration's changes were undone; it runs again on
	// the next Up.
	MarkPending RepairMark = "pending"
)

// Repair resolves a failed or interrupted non-transactional migration
// after the operator fixed the database by hand, recording it as applied or
// as not applied.
func (m *Migrator) Repair(ctx context.Context, v int64, mark RepairMark) (*Result, error) {
	if mark != MarkApplied && mark != MarkPending {
		return nil, fmt.Errorf("repair needs an explicit decision: mark %q or %q, got %q", MarkApplied, MarkPending, mark)
	}
	needsRepair := func(h *history) (*Record, error) {
		s, ok := h.versions[v]
		if !ok || s.blocked == nil {
			state := "pending"
			switch {
			case !ok && m.byVersion[v] == nil:
				return nil, fmt.Errorf("%w: version %d has no migration file and no history", ErrUnknownVersion, v)
			case ok && s.applied:
				state = "applied"
			}
			return nil, fmt.Errorf("version %d has nothing to repair: it is %s and did not fail", v, state)
		}
		return s.blocked, nil
	}
	check := func(h *history) error {
		_, err := needsRepair(h)
		return err
	}
	return m.locked(ctx, check, func(r *run) error {
		b, err := needsRepair(r.hist)
		if err != nil {
			return err
		}
		state := StateApplied
		if mark == MarkPending {
			state = StateReverted
		}
		rec := Record{
			Version: v, Name: b.Name, Checksum: b.Checksum, Operation: OpRepair, State: state,
			AppliedAt: time.Now().UTC(), AppliedBy: r.by, Statement: b.Statement,
		}
		if mig := m.byVersion[v]; mig != nil {
			// A file that no longer parses leaves the checksum unknown;
			// validate reports it.
			_ = mig.parse()
			rec.Name, rec.Checksum = mig.Name, mig.Checksum
		}
		// The mirror follows the outcome: an up resolved as applied, or a
		// down resolved as done.
		if (b.Operation == OpUp && mark == MarkApplied) || (b.Operation == OpDown && mark == MarkPending) {
			if err := r.mirrored(r.h.conn, v, mark == MarkApplied); err != nil {
				return err
			}
		}
		if _, err := m.insertRecord(r.exec, r.h.conn, &rec); err != nil {
			return err
		}
		r.record(rec)
		r.res.Migrations = append(r.res.Migrations, Applied{Version: v, Name: rec.Name, Operation: OpRepair})
		return nil
	})
}

// Adopted is a migration that another tool applied, for Adopt.
type Adopted struct {
	Version   int64
	AppliedAt time.Time
	// Dirty: the tool left this migration half-applied (golang-migrate's
	// dirty flag). ferry records it as failed, so that it is repaired before
	// anything else runs.
	Dirty bool
}

// Adopt records migrations applied by another tool (from names it, for
// example "goose") in ferry's history, so that ferry takes the database over
// without running them again. Versions ferry already has as applied are
// skipped, so adopting twice changes nothing.
func (m *Migrator) Adopt(ctx context.Context, from string, list []Adopted) (*Result, error) {
	sorted := slices.Clone(list)
	slices.SortFunc(sorted, func(a, b Adopted) int { return cmp.Compare(a.Version, b.Version) })
	var known []*Migration
	for _, a := range sorted {
		if mig := m.byVersion[a.Version]; mig != nil {
			known = append(known, mig)
		}
	}
	if err := parseAll(known); err != nil { // for their checksums
		return nil, err
	}
	return m.locked(ctx, nil, func(r *run) error {
		for _, a := range sorted {
			if a.Version <= 0 {
				continue
			}
			s := r.hist.state(a.Version)
			if s.applied || s.blocked != nil {
				continue
			}
			rec := Record{
				Version: a.Version, Name: "(unknown: no migration file)", Operation: OpAdopt, State: StateApplied,
				AppliedAt: a.AppliedAt.UTC(), AppliedBy: "adopted from " + from,
			}
			if rec.AppliedAt.IsZero() {
				rec.AppliedAt = time.Now().UTC()
			}
			if mig := m.byVersion[a.Version]; mig != nil {
				rec.Name, rec.Checksum = mig.Name, mig.Checksum
			}
			if a.Dirty {
				rec.State, rec.Error = StateFailed, from+" left this migration dirty (it failed part-way)"
			}
			if _, err := m.insertRecord(r.exec, r.h.conn, &rec); err != nil {
				return err
			}
			r.record(rec)
			r.res.Migrations = append(r.res.Migrations, Applied{Version: a.Version, Name: rec.Name, Operation: OpAdopt})
		}
		return nil
	})
}

// WithLock takes the migration lock, calls fn, and releases the lock, so
// that fn runs while no Up, Down, Repair or other WithLock call can: a
// restore of the database, for example. Like a run, it creates ferry's
// history and lock tables if they are missing. fn gets the lock's own
// dedicated connection; its context is cancelled only if a lease lock is
// lost, not when ctx is (fn should watch ctx itself where it can stop
// safely). The error is fn's, or the lock's.
func (m *Migrator) WithLock(ctx context.Context, fn func(ctx context.Context, conn Querier) error) error {
	_, err := m.locked(ctx, nil, func(r *run) error { return fn(r.exec, r.h.conn) })
	return err
}
