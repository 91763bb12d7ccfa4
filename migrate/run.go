package migrate

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Applied is one migration applied, reverted or recorded by a run.
type Applied struct {
	Version   int64
	Name      string
	Operation Op
	Duration  time.Duration
}

// Result is what a run did.
type Result struct {
	// Migrations applied, reverted or recorded, in order.
	Migrations []Applied
	// From and To are the current version before and after the run.
	From, To int64
	// LockWaited is how long the run waited for the migration lock.
	LockWaited time.Duration
	// LastAppliedBy says who applied the current version when this run
	// found nothing to do (for example because another server of the fleet
	// did it while this one waited for the lock).
	LastAppliedBy string
}

// run is one locked run: the held lock, the history read once, and the
// two contexts. soft is the caller's context: when it is cancelled the run
// stops at the next safe point. exec is used for statements: it is only
// cancelled when the lock is lost.
type run struct {
	m    *Migrator
	h    *held
	hist *history
	soft context.Context
	exec context.Context
	res  *Result
	// by is recorded as applied_by (the process, or who asked for the run).
	by string
	// mirrorReady is set once the history mirror's table is ensured.
	mirrorReady bool
	// fencedInsert is the run's prepared fenced history insert (lease
	// locks), closed when the run ends.
	fencedInsert *sql.Stmt
	// lastID is the highest history row id the run has seen (set by the
	// first chunk of grouped migrations).
	lastID int64
	// waits bounds lock waits (see LockWait), once the run asked.
	waits *lockWaits
}

// mirrored records a change of version v in the history mirror, if any.
func (r *run) mirrored(q Querier, v int64, applied bool) error {
	mr := r.m.mirror
	if mr == nil {
		return nil
	}
	if !r.mirrorReady {
		if err := mr.Ensure(r.exec, q); err != nil {
			return fmt.Errorf("history mirror: %w", err)
		}
		r.mirrorReady = true
	}
	c := MirrorChange{Version: v, Applied: applied}
	for av, s := range r.hist.versions {
		if s.applied && av != v && av > c.Current {
			c.Current = av
		}
	}
	if applied && v > c.Current {
		c.Current = v
	}
	err := mr.Record(r.exec, q, c)
	if err != nil {
		return fmt.Errorf("history mirror, version %d: %w", v, err)
	}
	return nil
}

// locked takes the migration lock, reads the history, calls fn and
// releases the lock. check, when not nil, runs first, before the lock is
// taken and before anything is written (not even ferry's tables or the
// lock row), on a history read without the lock: a run that check refuses
// (a migration file that does not parse, nothing to repair) leaves the
// database as it was. The run under the lock re-reads only the history
// rows written since, and fn checks again what may have changed.
func (m *Migrator) locked(ctx context.Context, check func(*history) error, fn func(*run) error) (*Result, error) {
	return m.lockedBy(ctx, "", check, fn)
}

// lockedBy is locked with applied_by set to by (default: this process).
func (m *Migrator) lockedBy(ctx context.Context, by string, check func(*history) error, fn func(*run) error) (*Result, error) {
	var pre *history
	if check != nil {
		h, _, err := m.loadHistory(ctx, m.db, true)
		if err != nil {
			return nil, err
		}
		if err := check(h); err != nil {
			return nil, err
		}
		pre = h
	}
	exec, cancelExec := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelExec(nil)
	h, err := m.acquire(ctx, cancelExec)
	if err != nil {
		return nil, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := h.release(rctx); err != nil {
			m.log.Warn("releasing the migration lock failed; it is freed when the connection closes", "error", err)
		}
		m.hooks.lockReleased()
	}()
	hist, err := m.refreshHistory(exec, h.conn, pre)
	if err != nil {
		return nil, err
	}
	m.loadScriptLimit(exec, h.conn)
	if by == "" {
		by = m.holder
	} else if len(by) > 255 {
		by = by[:255]
	}
	r := &run{m: m, h: h, hist: hist, soft: ctx, exec: exec, by: by, res: &Result{From: hist.maxApplied(), LockWaited: h.waited}}
	err = fn(r)
	if r.fencedInsert != nil {
		r.fencedInsert.Close()
	}
	r.res.To = r.hist.maxApplied()
	if err != nil {
		if c := context.Cause(exec); c != nil && errors.Is(c, ErrLockLost) {
			err = fmt.Errorf("%w (%w)", err, c)
		}
		return r.res, err
	}
	return r.res, nil
}

// UpOptions select what Up applies.
type UpOptions struct {
	// To is the highest version to apply, which must be the version of a
	// migration; 0 applies everything.
	To int64
	// AppliedBy is recorded in the history as who applied the migrations
	// (default: this process, host:pid). A service records the requester.
	// At most 255 bytes are kept; it must not contain secrets.
	AppliedBy string
}

// Up applies the pending migrations, in version order, up to opts.To.
// It waits for the migration lock; if another process applied them
// meanwhile, it finds nothing to do and succeeds.
//
// Cancelling ctx stops the run at the next safe point: between two
// statements of a migration running statement by statement in a
// transaction (which is then rolled back), or after the running migration
// finishes when it runs as one batch (PostgreSQL) or without a transaction.
// Statements in flight are not interrupted.
func (m *Migrator) Up(ctx context.Context, opts UpOptions) (*Result, error) {
	return m.up(ctx, opts, nil)
}

// errUpToDate: a brief read before the lock found nothing to apply.
var errUpToDate = errors.New("nothing to apply")

// up is Up with a step between planning and applying, under the lock:
// prepare may shorten the plan, or refuse it (Upgrade's gate and backup).
func (m *Migrator) up(ctx context.Context, opts UpOptions, prepare func(r *run, plan []*Migration) ([]*Migration, error)) (*Result, error) {
	if err := m.CheckTarget(opts.To); err != nil {
		return nil, err
	}
	var pre *history
	check := func(h *history) error {
		pre = h
		// Another process may be applying a migration right now (its row
		// says running): the run waits for the lock, it does not refuse.
		plan, err := m.planUp(h, opts.To, true)
		var nr *NeedsRepairError
		switch {
		case errors.As(err, &nr) && nr.onlyRunning():
			plan, err = m.pending(h, opts.To), nil
		case err == nil && len(plan) == 0:
			// Up to date: nothing to lock for. (A fleet starting at once
			// reads the history and goes on; only a run with work queues.)
			return errUpToDate
		}
		if err != nil {
			return err
		}
		return parseAll(plan)
	}
	res, err := m.lockedBy(ctx, opts.AppliedBy, check, func(r *run) error {
		plan, err := m.planUp(r.hist, opts.To, false)
		if err != nil {
			return err
		}
		if len(plan) == 0 {
			r.res.LastAppliedBy = m.lastAppliedBy(r.exec, r.h.conn, r.hist)
			return nil
		}
		// Every migration to apply must parse before the first one runs.
		if err := parseAll(plan); err != nil {
			return err
		}
		if err := r.preflight(plan); err != nil {
			return err
		}
		if prepare != nil {
			if plan, err = prepare(r, plan); err != nil {
				return err
			}
		}
		return r.applyAll(plan, OpUp)
	})
	if errors.Is(err, errUpToDate) {
		v := pre.maxApplied()
		return &Result{From: v, To: v, LastAppliedBy: m.lastAppliedBy(ctx, m.db, pre)}, nil
	}
	return res, err
}

// CheckTarget returns an error wrapping ErrUnknownVersion, naming the
// nearest known versions, for a target of Up that no migration has: a
// typo, or an empty variable in a script, must not apply a backlog. 0 (no
// target: everything) passes. Up and PlanUp check their target with it.
func (m *Migrator) CheckTarget(to int64) error {
	switch {
	case to < 0:
		return fmt.Errorf("%w: target version %d: versions are positive", ErrUnknownVersion, to)
	case to == 0:
		return nil
	}
	if _, ok := m.byVersion[to]; ok {
		return nil
	}
	return fmt.Errorf("%w: no migration has version %d%s", ErrUnknownVersion, to, m.nearest(to))
}

// nearest names the known versions closest to v, below and above, for
// messages about a version that is not known.
func (m *Migrator) nearest(v int64) string {
	i, _ := slices.BinarySearchFunc(m.migrations, v, func(mig *Migration, v int64) int { return cmp.Compare(mig.Version, v) })
	var near []string
	if i > 0 {
		near = append(near, fmt.Sprintf("%d (%s) below", m.migrations[i-1].Version, m.migrations[i-1].Name))
	}
	if i < len(m.migrations) {
		near = append(near, fmt.Sprintf("%d (%s) above", m.migrations[i].Version, m.migrations[i].Name))
	}
	if len(near) == 0 {
		return " (there are no migrations)"
	}
	return "; the nearest are " + strings.Join(near, " and ")
}

// preflightRun describes a plan to a Preflight, a Gate or a BackupFunc.
func (r *run) preflightRun(plan []*Migration) *PreflightRun {
	from := r.hist.maxApplied()
	return &PreflightRun{Migrations: plan, m: r.m, From: from, To: max(from, plan[len(plan)-1].Version), Conn: r.h.conn}
}

// preflight runs the Preflight checks for a plan.
func (r *run) preflight(plan []*Migration) error {
	if len(r.m.preflights) == 0 {
		return nil
	}
	pr := r.preflightRun(plan)
	for _, p := range r.m.preflights {
		if err := p(r.exec, pr); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) checkSoft() error {
	if err := r.soft.Err(); err != nil {
		return fmt.Errorf("%w: stopped before the next migration: %w", ErrInterrupted, err)
	}
	return nil
}

// lastAppliedBy says who applied h's current version, and when.
func (m *Migrator) lastAppliedBy(ctx context.Context, q Querier, h *history) string {
	for i := len(h.records) - 1; i >= 0; i-- {
		rec := h.records[i]
		if rec.State != StateApplied {
			continue
		}
		if rec.AppliedBy == "" { // a brief read: read the row's details
			if err := m.fillDetails(ctx, q, h, []int64{rec.ID}); err != nil {
				return ""
			}
		}
		return fmt.Sprintf("%s at %s", rec.AppliedBy, rec.AppliedAt.Format(time.RFC3339))
	}
	return ""
}

// pending lists the migrations h does not have as applied, up to to (0:
// all).
func (m *Migrator) pending(h *history, to int64) []*Migration {
	var out []*Migration
	for _, mig := range m.migrations {
		if !h.state(mig.Version).applied && (to == 0 || mig.Version <= to) {
			out = append(out, mig)
		}
	}
	return out
}

// planUp returns the migrations Up would apply. It refuses when a
// migration needs repair or when a pending migration is out of order.
func (m *Migrator) planUp(h *history, to int64, lockHeld bool) ([]*Migration, error) {
	if f := m.failures(h, lockHeld); len(f) > 0 {
		return nil, &NeedsRepairError{Failures: f}
	}
	maxApplied := h.maxApplied()
	plan := m.pending(h, to)
	var outOfOrder []*Migration
	for _, mig := range plan {
		if mig.Version < maxApplied && !m.allowOutOfOrder {
			outOfOrder = append(outOfOrder, mig)
		}
	}
	if len(outOfOrder) > 0 {
		return nil, &OutOfOrderError{Pending: outOfOrder, MaxApplied: maxApplied}
	}
	return plan, nil
}

// record adds a finished record to the run's view of the history.
func (r *run) record(rec Record) { r.hist.add(rec) }

// Down reverts the n most recently applied migrations (highest versions
// first).
func (m *Migrator) Down(ctx context.Context, n int) (*Result, error) {
	if n < 1 {
		return nil, fmt.Errorf("number of migrations to revert must be at least 1, got %d", n)
	}
	todo := func(h *history) []int64 {
		applied := appliedDesc(h)
		return applied[:min(n, len(applied))]
	}
	return m.locked(ctx, func(h *history) error { return m.checkRevert(h, todo(h), false) }, func(r *run) error {
		return r.revert(todo(r.hist))
	})
}

// DownTo reverts every applied migration with a version above v (0 reverts
// all of them).
func (m *Migrator) DownTo(ctx context.Context, v int64) (*Result, error) {
	if v < 0 {
		return nil, fmt.Errorf("target version must not be negative, got %d", v)
	}
	todo := func(h *history) []int64 {
		var out []int64
		for _, av := range appliedDesc(h) {
			if av > v {
				out = append(out, av)
			}
		}
		return out
	}
	check := func(h *history) error {
		if err := m.checkDownTarget(h, v); err != nil {
			return err
		}
		return m.checkRevert(h, todo(h), false)
	}
	return m.locked(ctx, check, func(r *run) error {
		return r.revert(todo(r.hist))
	})
}

// checkDownTarget refuses a version to revert down to that neither a
// migration nor the history has (0, everything, passes): a missing digit
// must not revert everything.
func (m *Migrator) checkDownTarget(h *history, v int64) error {
	if v == 0 {
		return nil
	}
	if _, ok := m.byVersion[v]; ok {
		return nil
	}
	if _, ok := h.versions[v]; ok {
		return nil
	}
	return fmt.Errorf("%w: no migration has version %d%s", ErrUnknownVersion, v, m.nearest(v))
}

// errNothingToRedo is Redo's error on a database with nothing applied.
var errNothingToRedo = errors.New("nothing to redo: no migration is applied")

// Redo reverts the most recently applied migration and applies it again.
func (m *Migrator) Redo(ctx context.Context) (*Result, error) {
	check := func(h *history) error {
		applied := appliedDesc(h)
		if len(applied) == 0 {
			return errNothingToRedo
		}
		return m.checkRevert(h, applied[:1], false)
	}
	return m.locked(ctx, check, func(r *run) error {
		applied := appliedDesc(r.hist)
		if len(applied) == 0 {
			return errNothingToRedo
		}
		if err := r.revert(applied[:1]); err != nil {
			return err
		}
		if err := r.checkSoft(); err != nil {
			return err
		}
		return r.applyAll([]*Migration{m.byVersion[applied[0]]}, OpUp)
	})
}

// appliedDesc lists the versions h has as applied, highest first.
func appliedDesc(h *history) []int64 {
	var vs []int64
	for v, s := range h.versions {
		if s.applied {
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] > vs[j] })
	return vs
}

// checkRepaired refuses a run while a migration needs repair. Before the
// lock is taken (locked false), a migration another process is running
// right now is not refused: the lock waits for it, and the run checks
// again once it holds the lock.
func (m *Migrator) checkRepaired(h *history, locked bool) error {
	var f []Failure
	for _, fl := range m.failures(h, !locked) {
		if locked || fl.State == StateFailed {
			f = append(f, fl)
		}
	}
	if len(f) > 0 {
		return &NeedsRepairError{Failures: f}
	}
	return nil
}

// checkRevert checks that every one of versions can be reverted: nothing
// needs repair (another process's migration in progress aside: the lock
// waits for it), every file is there, parses, and has a down part.
func (m *Migrator) checkRevert(h *history, versions []int64, locked bool) error {
	if err := m.checkRepaired(h, locked); err != nil {
		return err
	}
	var migs []*Migration
	for _, v := range versions {
		mig := m.byVersion[v]
		if mig == nil {
			return fmt.Errorf("%w: cannot revert version %d: it is applied but its migration file is missing", ErrUnknownVersion, v)
		}
		migs = append(migs, mig)
	}
	if err := parseAll(migs); err != nil {
		return err
	}
	for _, mig := range migs {
		if !mig.CanRevert() {
			return fmt.Errorf("%w: cannot revert %s; nothing was reverted", ErrNoDown, mig)
		}
		if mig.downErr != nil {
			return &LoadError{Errs: []error{mig.downErr}}
		}
	}
	return nil
}

// revert reverts the given applied versions in order, after checking that
// all of them can be reverted.
func (r *run) revert(versions []int64) error {
	if err := r.m.checkRevert(r.hist, versions, true); err != nil {
		return err
	}
	migs := make([]*Migration, len(versions))
	for i, v := range versions {
		migs[i] = r.m.byVersion[v]
	}
	return r.applyAll(migs, OpDown)
}
