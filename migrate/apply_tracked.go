package migrate

import "time"

// applyTracked runs the migration statement by statement without a
// transaction, recording it as running first, its progress before each
// later statement, and its outcome last, so that an interruption at any
// point says which statement to check.
func (a *attempt) applyTracked() error {
	r, m, mig := a.r, a.r.m, a.mig
	_, fn := mig.parts(a.op)
	rec := a.record(StateRunning)
	if a.sec != nil && len(a.sec.Statements) > 0 {
		rec.Statement = 1
	}
	if err := r.h.fence(r.exec, r.h.conn); err != nil {
		return err
	}
	id, err := m.insertRecord(r.exec, r.h.conn, &rec)
	if err != nil {
		return err
	}
	a.id = id
	if fn != nil {
		if lw := r.lockWaits(); lw != nil {
			if err := r.bound(lw.timeoutFor(mig)); err != nil {
				return a.fail(0, 0, err)
			}
		}
		if err := fn(r.exec, r.h.conn); err != nil {
			return a.fail(0, 0, err)
		}
		return a.finishTracked(0)
	}
	return a.continueTracked(1, nil)
}

// continueTracked runs the statements of a tracked attempt from the
// from-th (1-based) on, its running row (a.id) recording the first one
// without effect; a statement that gives up waiting for a lock (and so
// took no effect) is tried again. retry, if set, holds the tries the
// from-th statement has had already.
func (a *attempt) continueTracked(from int, retry *lockRetry) error {
	r, m, mig := a.r, a.r.m, a.mig
	stmt := 0
	for i := from - 1; i < len(a.sec.Statements); i++ {
		st := a.sec.Statements[i]
		stmt = i + 1
		if i > 0 {
			if err := m.setProgress(r.exec, r.h.conn, a.id, stmt); err != nil {
				return a.fail(stmt, stmt, err)
			}
		}
		if err := r.boundFor(mig, st.SQL); err != nil {
			return a.fail(stmt, stmt, err)
		}
		m.log.Debug("statement", "version", mig.Version, "statement", stmt, "line", st.Line)
		if retry == nil || i > from-1 {
			retry = r.lockRetry(mig, a.op)
		}
		for {
			_, err := r.h.conn.ExecContext(r.exec, st.SQL)
			if err == nil {
				break
			}
			again, err := retry.again(err)
			if !again {
				return a.fail(stmt, stmt, err)
			}
		}
	}
	return a.finishTracked(stmt)
}

// finishTracked records a tracked attempt whose statements all ran.
func (a *attempt) finishTracked(stmt int) error {
	r, m, mig := a.r, a.r.m, a.mig
	if err := r.mirrored(r.h.conn, mig.Version, a.op == OpUp); err != nil {
		return a.fail(stmt, stmt, err)
	}
	if err := m.updateRecord(r.exec, r.h.conn, a.id, doneState(a.op), time.Since(a.start), 0, ""); err != nil {
		return a.fail(stmt, stmt, err)
	}
	a.succeeded()
	return nil
}
