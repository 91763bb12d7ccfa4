package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ferrydb/ferry/dialect"
)

// applyInTransaction runs the migration and its history row in one
// transaction, statement by statement: a failure leaves nothing of it.
// Cancelling the run's context stops it between two statements, and the
// transaction is rolled back.
func (a *attempt) applyInTransaction() error {
	r, m, mig := a.r, a.r.m, a.mig
	_, fn := mig.parts(a.op)
	stmt := 0 // the statement running, 0 outside the migration's own
	// The migration's statements take the run's context, which cancels
	// them. On an embedded database ferry's own (BEGIN, the history row,
	// COMMIT) are short and cannot hang on a network: they take a context
	// that is not cancelled, which spares the driver a watcher goroutine
	// per call (the transaction is rolled back when a statement fails).
	own := r.exec
	if _, ok := m.d.(dialect.Embedded); ok {
		own = context.WithoutCancel(r.exec)
	}
	local := r.lockWaits().localSQL(mig)
	body := func(tx *sql.Tx) error {
		if local != "" {
			// The lock wait bound, for this transaction only (see LockWait).
			if _, err := tx.ExecContext(own, local); err != nil {
				return err
			}
		}
		if fn != nil {
			if err := fn(r.exec, tx); err != nil {
				return err
			}
		} else {
			for i, st := range a.sec.Statements {
				if i > 0 && r.soft.Err() != nil {
					return fmt.Errorf("%w: migration %d rolled back before statement %d: %w", ErrInterrupted, mig.Version, i+1, r.soft.Err())
				}
				stmt = i + 1
				m.log.Debug("statement", "version", mig.Version, "statement", stmt, "line", st.Line)
				if _, err := tx.ExecContext(r.exec, st.SQL); err != nil {
					return err
				}
			}
		}
		stmt = 0
		if err := r.mirrored(tx, mig.Version, a.op == OpUp); err != nil {
			return err
		}
		rec := a.record(doneState(a.op))
		return r.recordFenced(own, tx, &rec)
	}
	retry := r.lockRetry(mig, a.op)
	var err error
	for {
		err = inTx(own, r.h.conn, body)
		if err == nil || errors.Is(err, ErrInterrupted) {
			break
		}
		// A lock wait that gave up rolled the transaction back: nothing
		// of the migration took effect, so it is tried again.
		var again bool
		if again, err = retry.again(err); !again {
			break
		}
	}
	switch {
	case errors.Is(err, ErrInterrupted):
		return err
	case err != nil:
		return a.fail(stmt, stmt, err)
	}
	a.succeeded()
	return nil
}

// recordFenced writes a history row in the migration's transaction, under
// the lease's fencing check where the lock is a lease: a lease renewed
// recently goes in the INSERT's own condition (one statement, its plan
// prepared once per run), an older one is renewed first.
func (r *run) recordFenced(ctx context.Context, tx *sql.Tx, rec *Record) error {
	m := r.m
	if r.h.lease != nil {
		if token, holder, fresh := r.h.lease(); fresh {
			if r.fencedInsert == nil {
				st, err := r.h.conn.PrepareContext(ctx, m.fencedInsertSQL())
				if err != nil {
					return fmt.Errorf("record version %d in %s: %w", rec.Version, m.table, err)
				}
				r.fencedInsert = st
			}
			_, args := m.insertSQL(rec, "")
			res, err := tx.StmtContext(ctx, r.fencedInsert).ExecContext(ctx, append(args, token, holder)...)
			if err != nil {
				return fmt.Errorf("record version %d in %s: %w", rec.Version, m.table, err)
			}
			if n, err := res.RowsAffected(); err == nil && n != 1 {
				return ErrLockLost
			}
			return nil
		}
	}
	if err := r.h.fence(ctx, tx); err != nil {
		return err
	}
	_, err := m.insertRecord(ctx, tx, rec)
	return err
}
