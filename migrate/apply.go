package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// strategy is how one migration is applied or reverted. strategyFor is
// the one place that chooses it: runs and dry-run plans both ask it, so a
// plan shows what a run does.
type strategy int

const (
	// batched: the statements and the history row go to the server as
	// one pipeline, one transaction, one round trip (PostgreSQL).
	batched strategy = iota
	// inTransaction: one transaction with the history row, statement by
	// statement (PostgreSQL and SQLite).
	inTransaction
	// grouped: the database commits DDL by itself (MySQL). The migration
	// is recorded as running before its first DDL, its progress before
	// each later DDL, consecutive DML statements share a transaction with
	// that bookkeeping, and the outcome is recorded in the next
	// transaction; consecutive grouped migrations go to the server as one
	// script (dialect.Scripter), see apply_grouped.go.
	grouped
	// tracked: statement by statement without a transaction, recorded as
	// running first, with its progress after each statement and its
	// outcome last (no-transaction migrations, Go functions without
	// transactional DDL, lease locks and history mirrors on MySQL).
	tracked
)

func (s strategy) String() string {
	switch s {
	case batched:
		return "batched"
	case inTransaction:
		return "one transaction"
	case grouped:
		return "grouped"
	}
	return "tracked"
}

// strategyFor chooses how mig is applied (op OpUp) or reverted.
func (m *Migrator) strategyFor(mig *Migration, op Op) strategy {
	sec, fn := mig.parts(op)
	isSQL := fn == nil && sec != nil
	// Batches and groups write the history through ferry's own statements
	// only: a history mirror writes through its own, and a lease lock
	// needs its fencing check inside each transaction.
	plain := m.mirror == nil && m.lockMode() == LockSession
	switch {
	case m.d.TransactionalDDL() && !mig.NoTransaction:
		if _, ok := m.d.(dialect.Batcher); ok && plain && isSQL && !sec.hasMulti() {
			return batched
		}
		return inTransaction
	case !m.d.TransactionalDDL() && !mig.NoTransaction && plain && isSQL:
		if _, ok := m.d.(dialect.Scripter); ok && m.fitsScript(sec) {
			return grouped
		}
	}
	return tracked
}

// hasMulti reports whether a statement of the section holds several
// commands (a statement-begin block), which a batch cannot carry.
func (s *Section) hasMulti() bool {
	for _, st := range s.Statements {
		if st.multi {
			return true
		}
	}
	return false
}

// applyAll applies (or reverts) migs in order, stopping at the next safe
// point when the run's context is cancelled: between migrations, or after
// a chunk of grouped ones (which the server runs whole).
func (r *run) applyAll(migs []*Migration, op Op) error {
	defer r.unbound()
	if err := r.preflightLocks(migs, op); err != nil {
		return err
	}
	return r.applyFrom(migs, op)
}

// applyFrom is applyAll without the run's start and end: the rest of a
// run, from migs on.
func (r *run) applyFrom(migs []*Migration, op Op) error {
	for i := 0; i < len(migs); {
		if err := r.checkSoft(); err != nil {
			return err
		}
		if r.m.strategyFor(migs[i], op) != grouped {
			if err := r.apply(migs[i], op); err != nil {
				return err
			}
			i++
			continue
		}
		j := r.m.chunkEnd(migs, i, op, r.lockWaits())
		if err := r.applyChunk(migs[i:j], op); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// apply runs the up (op == OpUp) or down part of one migration that is
// not grouped.
func (r *run) apply(mig *Migration, op Op) error {
	m := r.m
	start := time.Now()
	how := m.strategyFor(mig, op)
	m.log.Info("migrating", "version", mig.Version, "name", mig.Name, "operation", op, "strategy", how.String())
	m.hooks.migrationStarted(Event{Version: mig.Version, Name: mig.Name, Operation: op, Together: 1})
	a := &attempt{r: r, mig: mig, op: op, start: start}
	a.sec, _ = mig.parts(op)
	var err error
	switch how {
	case batched:
		err = a.applyBatched()
	case inTransaction:
		err = a.applyInTransaction()
	default:
		err = a.applyTracked()
	}
	r.finished(a, time.Since(start), err, 1)
	return err
}

// finished reports an attempt's end: the hook, the log and the run's
// result. together is Event.Together.
func (r *run) finished(a *attempt, d time.Duration, err error, together int) {
	m, mig, op := r.m, a.mig, a.op
	m.hooks.migrationDone(Event{Version: mig.Version, Name: mig.Name, Operation: op, Duration: d, Err: err, Together: together})
	if err != nil {
		// Info, not Error: the run returns err, and whoever called it
		// reports it once (the CLI's message, the service's audit record).
		m.log.Info("migration failed", "version", mig.Version, "name", mig.Name, "operation", op, "error", err)
		return
	}
	m.log.Info("migrated", "version", mig.Version, "name", mig.Name, "operation", op, "duration", d.Round(time.Millisecond))
	r.res.Migrations = append(r.res.Migrations, Applied{Version: mig.Version, Name: mig.Name, Operation: op, Duration: d})
}

// parts returns the SQL section or Go function for a direction.
func (mig *Migration) parts(op Op) (*Section, GoFunc) {
	if op == OpDown {
		return mig.Down, mig.DownFunc
	}
	return mig.Up, mig.UpFunc
}

// doneState is the state a finished operation leaves its version in.
func doneState(op Op) State {
	if op == OpDown {
		return StateReverted
	}
	return StateApplied
}

// attempt is one try to apply or revert one migration: what the strategies
// share, and the one place that records how it ended.
type attempt struct {
	r     *run
	mig   *Migration
	op    Op
	sec   *Section // nil for a Go function
	start time.Time
	// id is the history row written as running, 0 while there is none
	// (or after it was rolled back with the transaction that wrote it).
	id int64
}

// record returns the history row of the attempt in state.
func (a *attempt) record(state State) Record {
	return Record{
		Version: a.mig.Version, Name: a.mig.Name, Checksum: a.mig.Checksum, Operation: a.op, State: state,
		AppliedAt: a.start.UTC(), Duration: time.Since(a.start), AppliedBy: a.r.by,
	}
}

// line is the source line of statement n (1-based) of the attempt's
// section, 0 if unknown.
func (a *attempt) line(n int) int { return a.mig.statementLine(a.sec, n) }

// fail records a failed attempt and returns its *MigrationError. first is
// the first statement whose effects are not in the database, stmt the one
// that raised err (0: outside any statement). Without a running row
// nothing of the migration took effect: a rolled_back row records the
// attempt. Otherwise the running row becomes failed, for Repair.
func (a *attempt) fail(first, stmt int, err error) error {
	r, m := a.r, a.r.m
	err = a.mig.hide(err)
	me := &MigrationError{Version: a.mig.Version, Name: a.mig.Name, Operation: a.op, Err: err}
	if a.sec != nil {
		me.File = a.sec.File
	}
	if a.id == 0 {
		rec := a.record(StateRolledBack)
		rec.Statement, rec.Error = stmt, err.Error()
		if _, herr := m.insertRecord(r.exec, r.h.conn, &rec); herr != nil {
			m.log.Warn("could not record the failed attempt", "version", a.mig.Version, "error", herr)
		} else {
			r.hist.add(rec)
		}
		me.Statement, me.Line, me.RolledBack = stmt, a.line(stmt), true
		return me
	}
	if first <= 1 && stmt <= 1 && errors.Is(err, ErrLockWait) {
		// It gave up waiting for a lock at its first statement: nothing of
		// it took effect, and nothing needs repairing.
		if herr := m.updateRecord(r.exec, r.h.conn, a.id, StateRolledBack, time.Since(a.start), stmt, err.Error()); herr != nil {
			m.log.Warn("could not record the failed attempt", "version", a.mig.Version, "error", herr)
		}
		rec := a.record(StateRolledBack)
		rec.Statement, rec.Error = stmt, err.Error()
		r.hist.add(rec)
		me.Statement, me.Line, me.RolledBack = stmt, a.line(stmt), true
		return me
	}
	rowErr := err.Error()
	if stmt > first {
		// The row keeps first (where to resume); its error says which
		// statement raised it.
		rowErr = fmt.Sprintf("statement %d (line %d) failed, in one transaction with %s, rolled back with it: %v", stmt, a.line(stmt), statementRange(first, stmt-1), err)
		me.Failed, me.FailedLine = stmt, a.line(stmt)
	}
	if herr := m.updateRecord(r.exec, r.h.conn, a.id, StateFailed, time.Since(a.start), first, rowErr); herr != nil {
		m.log.Warn("could not record the failure", "version", a.mig.Version, "error", herr)
	}
	rec := a.record(StateFailed)
	rec.Statement, rec.Error = first, rowErr
	r.hist.add(rec)
	me.Statement, me.Line = first, a.line(first)
	return me
}

// succeeded adds the finished attempt to the run's view of the history.
func (a *attempt) succeeded() {
	rec := a.record(doneState(a.op))
	a.r.hist.add(rec)
}

// inTx runs fn in a transaction on conn and commits it when fn returns
// nil; on any error the transaction is rolled back.
func inTx(ctx context.Context, conn *sql.Conn, fn func(tx *sql.Tx) error) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
