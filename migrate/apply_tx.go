package migrate

import (
	"database/sql"
	"errors"
	"fmt"
)

// applyInTransaction runs the migration and its history row in one
// transaction, statement by statement: a failure leaves nothing of it.
// Cancelling the run's context stops it between two statements, and the
// transaction is rolled back.
func (a *attempt) applyInTransaction() error {
	r, m, mig := a.r, a.r.m, a.mig
	_, fn := mig.parts(a.op)
	stmt := 0 // the statement running, 0 outside the migration's own
	err := inTx(r.exec, r.h.conn, func(tx *sql.Tx) error {
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
		if err := r.h.fence(r.exec, tx); err != nil {
			return err
		}
		rec := a.record(doneState(a.op))
		_, err := m.insertRecord(r.exec, tx, &rec)
		return err
	})
	switch {
	case errors.Is(err, ErrInterrupted):
		return err
	case err != nil:
		return a.fail(stmt, stmt, err)
	}
	a.succeeded()
	return nil
}
