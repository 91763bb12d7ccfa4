package migrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// Errors a run can return; check them with errors.Is.
var (
	// ErrNeedsRepair: a non-transactional migration failed or was
	// interrupted, and nothing runs past it until Repair (see
	// *NeedsRepairError).
	ErrNeedsRepair = errors.New("a migration needs repair")
	// ErrOutOfOrder: a pending migration is older than the newest applied
	// one and out-of-order application is not allowed.
	ErrOutOfOrder = errors.New("pending migration is older than the newest applied one")
	// ErrNoDown: a migration to revert has no down part.
	ErrNoDown = errors.New("migration has no down part")
	// ErrInterrupted: the run was cancelled and stopped at a safe point.
	ErrInterrupted = errors.New("interrupted")
	// ErrUnknownVersion: no migration or history row has this version.
	ErrUnknownVersion = errors.New("unknown version")
)

// Applied is one migration applied or reverted by a run.
type Applied struct {
	Version   int64         `json:"version"`
	Name      string        `json:"name"`
	Operation string        `json:"operation"`
	Duration  time.Duration `json:"-"`
	// DurationMS is Duration in milliseconds, for JSON.
	DurationMS int64 `json:"duration_ms"`
}

// Result is what a run did.
type Result struct {
	// Migrations applied, reverted or recorded, in order.
	Migrations []Applied `json:"migrations"`
	// From and To are the current version before and after the run.
	From int64 `json:"from_version"`
	To   int64 `json:"to_version"`
	// LockWaitedMS is how long the run waited for the migration lock.
	LockWaitedMS int64 `json:"lock_waited_ms"`
	// LastAppliedBy says who applied the current version when this run
	// found nothing to do (for example because another server of the fleet
	// did it while this one waited for the lock).
	LastAppliedBy string `json:"last_applied_by,omitempty"`
}

// MigrationError is a failed statement or Go function of one migration.
type MigrationError struct {
	Version   int64
	Name      string
	File      string
	Operation string // OpUp or OpDown
	// Statement is the 1-based index of the failing statement (0 for a Go
	// function or a failure outside any statement), Line its line.
	Statement, Line int
	// Failed is the statement that raised Err when it is not Statement
	// (MySQL runs consecutive DML statements in one transaction, so a
	// failure rolls back the earlier ones of its group too: Statement is
	// then the first of the group, the first without effect), FailedLine
	// its line; 0 otherwise.
	Failed, FailedLine int
	// RolledBack: the migration ran in a transaction that was rolled back,
	// so nothing of it remains. Otherwise the statements before Statement
	// took effect and the migration must be repaired.
	RolledBack bool
	Err        error
}

func (e *MigrationError) Error() string {
	var b strings.Builder
	verb := "migration"
	if e.Operation == OpDown {
		verb = "reverting migration"
	}
	fmt.Fprintf(&b, "%s %d (%s) failed", verb, e.Version, e.Name)
	if e.Failed > e.Statement && e.Statement > 0 {
		fmt.Fprintf(&b, " at statement %d", e.Failed)
		if e.File != "" {
			fmt.Fprintf(&b, " (%s:%d)", e.File, e.FailedLine)
		}
		fmt.Fprintf(&b, ", which ran in one transaction with %s, rolled back with it", statementRange(e.Statement, e.Failed-1))
	} else if e.Statement > 0 {
		fmt.Fprintf(&b, " at statement %d", e.Statement)
		if e.File != "" {
			fmt.Fprintf(&b, " (%s:%d)", e.File, e.Line)
		}
	} else if e.File != "" {
		fmt.Fprintf(&b, " (%s)", e.File)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.RolledBack {
		b.WriteString("; its transaction was rolled back, so nothing of it was applied: fix the migration and run again")
	} else {
		fmt.Fprintf(&b, "; %s", repairHint(e.Version, e.Operation, e.Statement, false))
	}
	return b.String()
}

func (e *MigrationError) Unwrap() error { return e.Err }

// statementRange names statements from to to: "statement 2" or
// "statements 2-4".
func statementRange(from, to int) string {
	if from == to {
		return fmt.Sprintf("statement %d", from)
	}
	return fmt.Sprintf("statements %d-%d", from, to)
}

// repairHint tells the operator what to check and which repair to run.
func repairHint(v int64, op string, statement int, interrupted bool) string {
	var done string
	switch {
	case statement <= 1:
		done = "no earlier statement of it ran"
	case statement == 2:
		done = "statement 1 took effect"
	default:
		done = fmt.Sprintf("statements 1-%d took effect", statement-1)
	}
	which := fmt.Sprintf("statement %d and the ones after it did not", statement)
	if interrupted {
		which = fmt.Sprintf("statement %d may or may not have taken effect", statement)
	}
	if statement == 0 {
		which, done = "it stopped part-way", "some of it may have taken effect"
	}
	if op == OpDown {
		return fmt.Sprintf("this migration ran without a transaction: %s and %s. Check the database, then either finish reverting it by hand and run `ferry repair %d --mark pending`, or restore what was reverted and run `ferry repair %d --mark applied`", done, which, v, v)
	}
	return fmt.Sprintf("this migration ran without a transaction: %s and %s. Check the database, then either complete the rest of it by hand and run `ferry repair %d --mark applied`, or undo what took effect and run `ferry repair %d --mark pending` so that it runs again", done, which, v, v)
}

// Failure describes a migration that failed or was interrupted without a
// transaction and blocks further runs until it is repaired.
type Failure struct {
	Version   int64     `json:"version"`
	Name      string    `json:"name"`
	File      string    `json:"file,omitempty"`
	Operation string    `json:"operation"`
	State     string    `json:"state"` // "failed", "interrupted" or "running"
	Statement int       `json:"statement,omitempty"`
	Line      int       `json:"line,omitempty"`
	Error     string    `json:"error,omitempty"`
	AppliedBy string    `json:"applied_by"`
	At        time.Time `json:"at"`
	Hint      string    `json:"hint,omitempty"`
}

// NeedsRepairError is returned (wrapping ErrNeedsRepair) when a run finds
// an unresolved failed or interrupted migration.
type NeedsRepairError struct {
	Failures []Failure
}

func (e *NeedsRepairError) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		parts[i] = f.describe()
	}
	return strings.Join(parts, "\n")
}

func (e *NeedsRepairError) Unwrap() error { return ErrNeedsRepair }

// onlyRunning reports whether every failure may be a migration running
// right now in another process (read without the lock, a running row may
// even have ended between two reads): none of them is a settled failure.
func (e *NeedsRepairError) onlyRunning() bool {
	for _, f := range e.Failures {
		if f.State == StateFailed {
			return false
		}
	}
	return true
}

func (f *Failure) describe() string {
	var b strings.Builder
	what := "migration"
	if f.Operation == OpDown {
		what = "revert of migration"
	}
	fmt.Fprintf(&b, "%s %d (%s) %s", what, f.Version, f.Name, f.State)
	if f.Statement > 0 {
		if f.State == "failed" {
			fmt.Fprintf(&b, " at statement %d", f.Statement)
		} else {
			fmt.Fprintf(&b, " during statement %d", f.Statement)
		}
		if f.File != "" && f.Line > 0 {
			fmt.Fprintf(&b, " (%s:%d)", f.File, f.Line)
		}
	}
	fmt.Fprintf(&b, " on %s at %s", f.AppliedBy, f.At.Format(time.RFC3339))
	if f.Error != "" {
		fmt.Fprintf(&b, ": %s", f.Error)
	}
	if f.Hint != "" {
		fmt.Fprintf(&b, "; %s", f.Hint)
	}
	return b.String()
}

// failures lists the blocked versions of h. lockHeld says whether some
// process holds the lock right now (a running row is then in progress, not
// interrupted); a run holding the lock itself passes false.
func (m *Migrator) failures(h *history, lockHeld bool) []Failure {
	var out []Failure
	versions := make([]int64, 0, len(h.versions))
	for v, s := range h.versions {
		if s.blocked != nil {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	for _, v := range versions {
		r := h.versions[v].blocked
		f := Failure{
			Version: v, Name: r.Name, Operation: r.Operation, State: r.State,
			Statement: r.Statement, Error: r.Error, AppliedBy: r.AppliedBy, At: r.AppliedAt,
		}
		if mig := m.byVersion[v]; mig != nil {
			_ = mig.parse() // for the statement's line; a bad file just has none
			sec := mig.Up
			if r.Operation == OpDown {
				sec = mig.Down
			}
			if sec != nil {
				f.File = sec.File
			}
			f.Line = mig.statementLine(sec, r.Statement)
		}
		interrupted := false
		if r.State == StateRunning {
			if lockHeld {
				f.State = "running"
			} else {
				f.State, interrupted = "interrupted", true
			}
		}
		if f.State != "running" {
			f.Hint = repairHint(v, r.Operation, r.Statement, interrupted)
		}
		out = append(out, f)
	}
	return out
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
	if by == "" {
		by = m.holder
	} else if len(by) > 255 {
		by = by[:255]
	}
	r := &run{m: m, h: h, hist: hist, soft: ctx, exec: exec, by: by, res: &Result{From: hist.maxApplied(), LockWaitedMS: h.waited.Milliseconds()}}
	err = fn(r)
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
	if err := m.CheckTarget(opts.To); err != nil {
		return nil, err
	}
	check := func(h *history) error {
		// Another process may be applying a migration right now (its row
		// says running): the run waits for the lock, it does not refuse.
		plan, err := m.planUp(h, opts.To, true)
		var nr *NeedsRepairError
		if errors.As(err, &nr) && nr.onlyRunning() {
			plan, err = m.pending(h, opts.To), nil
		}
		if err != nil {
			return err
		}
		return parseAll(plan)
	}
	return m.lockedBy(ctx, opts.AppliedBy, check, func(r *run) error {
		plan, err := m.planUp(r.hist, opts.To, false)
		if err != nil {
			return err
		}
		if len(plan) == 0 {
			r.res.LastAppliedBy = r.lastAppliedBy()
			return nil
		}
		// Every migration to apply must parse before the first one runs.
		if err := parseAll(plan); err != nil {
			return err
		}
		if err := r.preflight(plan); err != nil {
			return err
		}
		for _, mig := range plan {
			if err := r.checkSoft(); err != nil {
				return err
			}
			if err := r.apply(mig, OpUp); err != nil {
				return err
			}
		}
		return nil
	})
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

// preflight runs the Preflight checks for a plan.
func (r *run) preflight(plan []*Migration) error {
	if len(r.m.preflights) == 0 {
		return nil
	}
	pr := &PreflightRun{Migrations: plan, From: r.hist.maxApplied(), To: max(r.hist.maxApplied(), plan[len(plan)-1].Version), Conn: r.h.conn}
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

func (r *run) lastAppliedBy() string {
	for i := len(r.hist.records) - 1; i >= 0; i-- {
		rec := r.hist.records[i]
		if rec.State != StateApplied {
			continue
		}
		if rec.AppliedBy == "" { // a brief read: read the row's details
			if err := r.m.fillDetails(r.exec, r.h.conn, r.hist, []int64{rec.ID}); err != nil {
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
	var plan []*Migration
	var outOfOrder []string
	for _, mig := range m.migrations {
		if h.state(mig.Version).applied || (to > 0 && mig.Version > to) {
			continue
		}
		if mig.Version < maxApplied && !m.allowOutOfOrder {
			outOfOrder = append(outOfOrder, mig.String())
		}
		plan = append(plan, mig)
	}
	if len(outOfOrder) > 0 {
		return nil, fmt.Errorf("%w: %s pending but version %d is already applied; renumber them above %d, or allow out-of-order migrations (--allow-out-of-order)",
			ErrOutOfOrder, strings.Join(outOfOrder, ", "), maxApplied, maxApplied)
	}
	return plan, nil
}

// apply runs the up (op == OpUp) or down part of one migration.
func (r *run) apply(mig *Migration, op string) error {
	m := r.m
	start := time.Now()
	m.log.Info("migrating", "version", mig.Version, "name", mig.Name, "operation", op, "transaction", m.d.TransactionalDDL() && !mig.NoTransaction)
	m.hooks.migrationStarted(Event{Version: mig.Version, Name: mig.Name, Operation: op})
	var err error
	if m.d.TransactionalDDL() && !mig.NoTransaction {
		err = r.applyTx(mig, op, start)
	} else {
		if r.groupable(mig, op) {
			err = r.applyGrouped(mig, op, start)
		} else {
			err = r.applyTracked(mig, op, start)
		}
	}
	d := time.Since(start)
	m.hooks.migrationDone(Event{Version: mig.Version, Name: mig.Name, Operation: op, Duration: d, Err: err})
	if err != nil {
		// Info, not Error: the run returns err, and whoever called it
		// reports it once (the CLI's message, the service's audit record).
		m.log.Info("migration failed", "version", mig.Version, "name", mig.Name, "operation", op, "error", err)
		return err
	}
	m.log.Info("migrated", "version", mig.Version, "name", mig.Name, "operation", op, "duration", d.Round(time.Millisecond))
	r.res.Migrations = append(r.res.Migrations, Applied{Version: mig.Version, Name: mig.Name, Operation: op, Duration: d, DurationMS: d.Milliseconds()})
	return nil
}

// parts returns the SQL section or Go function for a direction.
func (mig *Migration) parts(op string) (*Section, GoFunc) {
	if op == OpDown {
		return mig.Down, mig.DownFunc
	}
	return mig.Up, mig.UpFunc
}

func (r *run) newRecord(mig *Migration, op, state string, start time.Time) Record {
	return Record{
		Version: mig.Version, Name: mig.Name, Checksum: mig.Checksum, Operation: op, State: state,
		AppliedAt: start.UTC(), Duration: time.Since(start), AppliedBy: r.by,
	}
}

func doneState(op string) string {
	if op == OpDown {
		return StateReverted
	}
	return StateApplied
}

// applyTx runs a migration and its history row in one transaction.
func (r *run) applyTx(mig *Migration, op string, start time.Time) error {
	m := r.m
	sec, fn := mig.parts(op)
	stmt := 0
	fail := func(tx interface{ Rollback() error }, err error) error {
		if tx != nil {
			_ = tx.Rollback()
		}
		err = mig.hide(err)
		if errors.Is(err, ErrInterrupted) {
			return err
		}
		rec := r.newRecord(mig, op, StateRolledBack, start)
		rec.Statement, rec.Error = stmt, err.Error()
		if _, herr := m.insertRecord(r.exec, r.h.conn, &rec); herr != nil {
			m.log.Warn("could not record the failed attempt", "version", mig.Version, "error", herr)
		} else {
			r.hist.add(rec)
		}
		me := &MigrationError{Version: mig.Version, Name: mig.Name, Operation: op, Statement: stmt, RolledBack: true, Err: err}
		if sec != nil {
			me.File, me.Line = sec.File, mig.statementLine(sec, stmt)
		}
		return me
	}
	if b, ok := r.batcher(mig, op); ok {
		// One round trip: the statements and the history row, as one
		// transaction.
		rec := r.newRecord(mig, op, doneState(op), start)
		batch := make([]dialect.BatchStatement, 0, len(sec.Statements)+1)
		for _, st := range sec.Statements {
			batch = append(batch, dialect.BatchStatement{SQL: st.SQL})
		}
		ins, args := m.insertSQL(&rec, b.ElapsedMillis())
		batch = append(batch, dialect.BatchStatement{SQL: ins, Args: args})
		m.log.Debug("sending the migration as one batch", "version", mig.Version, "statements", len(sec.Statements))
		if failed, err := b.ExecBatch(r.exec, r.h.conn, batch); err != nil {
			if failed < len(sec.Statements) {
				stmt = failed + 1
			}
			return fail(nil, err)
		}
		rec.Duration = time.Since(start)
		r.record(rec)
		return nil
	}
	tx, err := r.h.conn.BeginTx(r.exec, nil)
	if err != nil {
		return fail(nil, fmt.Errorf("begin transaction: %w", err))
	}
	if fn != nil {
		if err := fn(r.exec, tx); err != nil {
			return fail(tx, err)
		}
	} else {
		for i, st := range sec.Statements {
			if i > 0 && r.soft.Err() != nil {
				_ = tx.Rollback()
				return fmt.Errorf("%w: migration %d rolled back before statement %d: %w", ErrInterrupted, mig.Version, i+1, r.soft.Err())
			}
			stmt = i + 1
			m.log.Debug("statement", "version", mig.Version, "statement", stmt, "line", st.Line)
			if _, err := tx.ExecContext(r.exec, st.SQL); err != nil {
				return fail(tx, err)
			}
		}
	}
	stmt = 0
	if err := r.mirrored(tx, mig.Version, op == OpUp); err != nil {
		return fail(tx, err)
	}
	if err := r.h.fence(r.exec, tx); err != nil {
		return fail(tx, err)
	}
	rec := r.newRecord(mig, op, doneState(op), start)
	if _, err := m.insertRecord(r.exec, tx, &rec); err != nil {
		return fail(tx, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(nil, fmt.Errorf("commit: %w", err))
	}
	r.record(rec)
	return nil
}

// batcher returns the dialect's batch runner when this migration can use
// it: SQL whose statements each hold one command, under a session lock (a
// lease needs its fencing check in the transaction) and without a history
// mirror (it writes through its own statements).
func (r *run) batcher(mig *Migration, op string) (dialect.Batcher, bool) {
	b, ok := r.m.d.(dialect.Batcher)
	if !ok || r.m.mirror != nil || r.m.lockMode() != LockSession {
		return nil, false
	}
	sec, fn := mig.parts(op)
	if fn != nil || sec == nil {
		return nil, false
	}
	for _, st := range sec.Statements {
		if st.multi {
			return nil, false
		}
	}
	return b, true
}

// groupable reports whether a migration that runs without transactional
// DDL can use applyGrouped: SQL statements, under a session lock (a lease
// fences every write) and without a history mirror (it writes through its
// own statements), where the database has no transactional DDL (MySQL).
func (r *run) groupable(mig *Migration, op string) bool {
	if r.m.d.TransactionalDDL() || r.m.mirror != nil || r.m.lockMode() != LockSession {
		return false
	}
	sec, fn := mig.parts(op)
	return fn == nil && sec != nil
}

// isDML reports whether a statement only changes rows (INSERT, UPDATE,
// DELETE, REPLACE), so that it can share a transaction with ferry's own
// bookkeeping; anything else may commit implicitly.
func isDML(st Statement) bool {
	if st.multi {
		return false
	}
	s := strings.TrimLeft(st.SQL, " \t\r\n(")
	i := strings.IndexFunc(s, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') })
	if i < 0 {
		i = len(s)
	}
	switch strings.ToUpper(s[:i]) {
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
		return true
	}
	return false
}

// applyGrouped is applyTracked with fewer commits, for MySQL: consecutive
// DML statements run in one transaction together with the bookkeeping
// around them (the running row when they open the migration, the progress
// to the next statement, the outcome when they end it), and only DDL, which
// commits by itself, is tracked statement by statement. The recorded
// statement is always the first whose effects are not in the database, as
// with applyTracked; and a failing DML group leaves nothing of itself, so a
// migration whose first group fails is recorded as rolled back, not failed.
func (r *run) applyGrouped(mig *Migration, op string, start time.Time) error {
	m := r.m
	sec, _ := mig.parts(op)
	stmts := sec.Statements
	rec := r.newRecord(mig, op, StateRunning, start)
	rec.Statement = min(1, len(stmts))
	var id int64                       // the history row, once written
	progress := 0                      // the statement the row says is next (1-based)
	withRow := func(q Querier) error { // writes the running row if not yet
		if id != 0 {
			return nil
		}
		var err error
		id, err = m.insertRecord(r.exec, q, &rec)
		progress = rec.Statement
		return err
	}
	migErr := func(first, stmt int, err error, rolledBack bool) error {
		me := &MigrationError{Version: mig.Version, Name: mig.Name, Operation: op, Statement: first, RolledBack: rolledBack, Err: err, File: sec.File, Line: mig.statementLine(sec, first)}
		if stmt > first {
			me.Failed, me.FailedLine = stmt, mig.statementLine(sec, stmt)
		}
		return me
	}
	// fail records a failure. first is the first statement whose effects
	// are not in the database; stmt the one that failed.
	fail := func(first, stmt int, err error) error {
		err = mig.hide(err)
		rowErr := err.Error()
		if stmt > first && id != 0 {
			// The history row keeps first (where to resume); its error
			// says which statement raised it.
			rowErr = fmt.Sprintf("statement %d (line %d) failed, in one transaction with %s, rolled back with it: %v", stmt, mig.statementLine(sec, stmt), statementRange(first, stmt-1), err)
		}
		if id == 0 {
			// Nothing of this migration took effect.
			rr := r.newRecord(mig, op, StateRolledBack, start)
			rr.Statement, rr.Error = stmt, rowErr
			if _, herr := m.insertRecord(r.exec, r.h.conn, &rr); herr != nil {
				m.log.Warn("could not record the failed attempt", "version", mig.Version, "error", herr)
			} else {
				r.record(rr)
			}
			return migErr(stmt, stmt, err, true)
		}
		if herr := m.updateRecord(r.exec, r.h.conn, id, StateFailed, time.Since(start), first, rowErr); herr != nil {
			m.log.Warn("could not record the failure", "version", mig.Version, "error", herr)
		}
		rec.State, rec.Statement, rec.Error = StateFailed, first, rowErr
		r.record(rec)
		return migErr(first, stmt, err, false)
	}
	done := func(q Querier) error {
		return m.updateRecord(r.exec, q, id, doneState(op), time.Since(start), 0, "")
	}

	for i := 0; i < len(stmts); {
		if !isDML(stmts[i]) {
			// DDL commits by itself: the row must already say it is next.
			n := i + 1
			if id == 0 {
				rec.Statement = n
				if err := withRow(r.h.conn); err != nil {
					return err
				}
			} else if progress != n {
				if err := m.setProgress(r.exec, r.h.conn, id, n); err != nil {
					return fail(n, n, err)
				}
				progress = n
			}
			m.log.Debug("statement", "version", mig.Version, "statement", n, "line", stmts[i].Line)
			if _, err := r.h.conn.ExecContext(r.exec, stmts[i].SQL); err != nil {
				return fail(n, n, err)
			}
			i++
			continue
		}
		// A group of DML statements, in one transaction with the
		// bookkeeping around it.
		j := i
		for j < len(stmts) && isDML(stmts[j]) {
			j++
		}
		tx, err := r.h.conn.BeginTx(r.exec, nil)
		if err != nil {
			return fail(i+1, i+1, fmt.Errorf("begin transaction: %w", err))
		}
		opened := id == 0
		if opened {
			rec.Statement = i + 1
			if err := withRow(tx); err != nil {
				tx.Rollback()
				return err
			}
		}
		for k := i; k < j; k++ {
			m.log.Debug("statement", "version", mig.Version, "statement", k+1, "line", stmts[k].Line)
			if _, err := tx.ExecContext(r.exec, stmts[k].SQL); err != nil {
				tx.Rollback()
				if opened {
					id = 0 // the running row was rolled back with the group
				}
				return fail(i+1, k+1, err)
			}
		}
		last := j == len(stmts)
		if last {
			err = done(tx)
		} else {
			err = m.setProgress(r.exec, tx, id, j+1)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		if err != nil {
			if opened {
				id = 0
			}
			return fail(i+1, i+1, err)
		}
		progress = j + 1
		if last {
			rec.State, rec.Statement, rec.Duration = doneState(op), 0, time.Since(start)
			r.record(rec)
			return nil
		}
		i = j
	}
	// The last statement was DDL (or there were none).
	if err := withRow(r.h.conn); err != nil {
		return err
	}
	if err := done(r.h.conn); err != nil {
		return fail(len(stmts), len(stmts), err)
	}
	rec.State, rec.Statement, rec.Duration = doneState(op), 0, time.Since(start)
	r.record(rec)
	return nil
}

// applyTracked runs a migration statement by statement without a
// transaction, recording it as running first, its progress after each
// statement, and its outcome last.
func (r *run) applyTracked(mig *Migration, op string, start time.Time) error {
	m := r.m
	sec, fn := mig.parts(op)
	rec := r.newRecord(mig, op, StateRunning, start)
	if sec != nil && len(sec.Statements) > 0 {
		rec.Statement = 1
	}
	if err := r.h.fence(r.exec, r.h.conn); err != nil {
		return err
	}
	id, err := m.insertRecord(r.exec, r.h.conn, &rec)
	if err != nil {
		return err
	}
	stmt := 0
	fail := func(err error) error {
		err = mig.hide(err)
		if herr := m.updateRecord(r.exec, r.h.conn, id, StateFailed, time.Since(start), stmt, err.Error()); herr != nil {
			m.log.Warn("could not record the failure", "version", mig.Version, "error", herr)
		}
		rec.State, rec.Statement, rec.Error = StateFailed, stmt, err.Error()
		r.record(rec)
		me := &MigrationError{Version: mig.Version, Name: mig.Name, Operation: op, Statement: stmt, Err: err}
		if sec != nil {
			me.File, me.Line = sec.File, mig.statementLine(sec, stmt)
		}
		return me
	}
	if fn != nil {
		if err := fn(r.exec, r.h.conn); err != nil {
			return fail(err)
		}
	} else {
		for i, st := range sec.Statements {
			stmt = i + 1
			if i > 0 {
				if err := m.setProgress(r.exec, r.h.conn, id, stmt); err != nil {
					return fail(err)
				}
			}
			m.log.Debug("statement", "version", mig.Version, "statement", stmt, "line", st.Line)
			if _, err := r.h.conn.ExecContext(r.exec, st.SQL); err != nil {
				return fail(err)
			}
		}
	}
	if err := r.mirrored(r.h.conn, mig.Version, op == OpUp); err != nil {
		return fail(err)
	}
	if err := m.updateRecord(r.exec, r.h.conn, id, doneState(op), time.Since(start), 0, ""); err != nil {
		return fail(err)
	}
	rec.State, rec.Statement, rec.Duration = doneState(op), 0, time.Since(start)
	r.record(rec)
	return nil
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
	return m.locked(ctx, func(h *history) error { return m.checkRevert(h, todo(h), false) }, func(r *run) error {
		return r.revert(todo(r.hist))
	})
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
		return r.apply(m.byVersion[applied[0]], OpUp)
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
	for _, v := range versions {
		if err := r.checkSoft(); err != nil {
			return err
		}
		if err := r.apply(r.m.byVersion[v], OpDown); err != nil {
			return err
		}
	}
	return nil
}

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
			rec := r.newRecord(mig, OpBaseline, StateApplied, time.Now())
			rec.Duration = 0
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
