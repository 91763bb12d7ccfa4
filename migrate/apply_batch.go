package migrate

import (
	"github.com/ferrydb/ferry/dialect"
)

// applyBatched sends the migration's statements and its history row to
// the server in one round trip, as one transaction (dialect.Batcher). The
// history row measures the migration's duration on the server.
func (a *attempt) applyBatched() error {
	r, m := a.r, a.r.m
	b := m.d.(dialect.Batcher)
	rec := a.record(doneState(a.op))
	rec.Duration = 0
	batch := make([]dialect.BatchStatement, 0, len(a.sec.Statements)+2)
	// The lock wait bound, for this transaction only (see LockWait).
	local := r.lockWaits().localSQL(a.mig)
	if local != "" {
		batch = append(batch, dialect.BatchStatement{SQL: local})
	}
	for _, st := range a.sec.Statements {
		batch = append(batch, dialect.BatchStatement{SQL: st.SQL})
	}
	ins, args := m.insertSQL(&rec, b.ElapsedMillis())
	batch = append(batch, dialect.BatchStatement{SQL: ins, Args: args})
	m.log.Debug("sending the migration as one batch", "version", a.mig.Version, "statements", len(a.sec.Statements))
	retry := r.lockRetry(a.mig, a.op)
	for {
		failed, err := b.ExecBatch(r.exec, r.h.conn, batch)
		if err == nil {
			break
		}
		if local != "" {
			failed-- // the statements' own indexes
		}
		// A lock wait that gave up rolled the whole batch back: try again.
		again, err := retry.again(err)
		if again {
			continue
		}
		stmt := 0
		if failed >= 0 && failed < len(a.sec.Statements) {
			stmt = failed + 1
		}
		return a.fail(stmt, stmt, err)
	}
	a.succeeded()
	return nil
}
