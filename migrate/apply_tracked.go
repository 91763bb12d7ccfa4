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
	stmt := 0
	if fn != nil {
		if err := fn(r.exec, r.h.conn); err != nil {
			return a.fail(stmt, stmt, err)
		}
	} else {
		for i, st := range a.sec.Statements {
			stmt = i + 1
			if i > 0 {
				if err := m.setProgress(r.exec, r.h.conn, id, stmt); err != nil {
					return a.fail(stmt, stmt, err)
				}
			}
			m.log.Debug("statement", "version", mig.Version, "statement", stmt, "line", st.Line)
			if _, err := r.h.conn.ExecContext(r.exec, st.SQL); err != nil {
				return a.fail(stmt, stmt, err)
			}
		}
	}
	if err := r.mirrored(r.h.conn, mig.Version, a.op == OpUp); err != nil {
		return a.fail(stmt, stmt, err)
	}
	if err := m.updateRecord(r.exec, r.h.conn, id, doneState(a.op), time.Since(a.start), 0, ""); err != nil {
		return a.fail(stmt, stmt, err)
	}
	a.succeeded()
	return nil
}
