package migrate

import (
	"fmt"
	"strings"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

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

// scriptStep is one statement of a grouped migration's script.
type scriptStep struct {
	sql string
	// stmt is the migration's statement (1-based) this step runs; 0 for
	// ferry's bookkeeping.
	stmt int
	// group is the first statement of the DML group whose transaction
	// holds this step (-1: the transaction that only records the outcome
	// and the next migration's running row), 0 outside one.
	group int
}

// groupedScript is what a grouped migration sends, in order: the history
// row written as running before the first DDL statement (unless the
// previous migration's script wrote it: a.queued), its progress before
// each later one, consecutive DML statements in one transaction with the
// bookkeeping that follows them, and the outcome, in the last
// transaction, together with the running row of the next migration when
// it starts with DDL (a.next). The statement the row names is always the
// first whose effects are not in the database: the one to check after an
// interruption.
func (a *attempt) groupedScript(sc dialect.Scripter) []scriptStep {
	m, stmts := a.r.m, a.sec.Statements
	t := m.d.Table(m.table)
	running := func(mig *Migration, op Op, next int, group int) []scriptStep {
		rec := Record{
			Version: mig.Version, Name: mig.Name, Checksum: mig.Checksum, Operation: op, State: StateRunning,
			AppliedAt: time.Now().UTC(), AppliedBy: a.r.by, Statement: next,
		}
		ins, args := m.insertSQL(&rec, "")
		return []scriptStep{{sql: inlineArgs(ins, args, sc.Literal), group: group}, {sql: sc.SaveRowID(), group: group}}
	}
	progress := func(next, group int) scriptStep {
		return scriptStep{sql: fmt.Sprintf("UPDATE %s SET statement = %d WHERE id = %s", t, next, sc.RowID()), group: group}
	}
	done := func(group int) scriptStep {
		return scriptStep{sql: fmt.Sprintf("UPDATE %s SET state = %s, duration_ms = %s, statement = 0, error = NULL WHERE id = %s",
			t, sc.Literal(string(doneState(a.op))), sc.ScriptElapsedMillis(), sc.RowID()), group: group}
	}
	// queueNext writes the next migration's running row (statement 1), in
	// the transaction that records this one's outcome.
	queueNext := func(group int) []scriptStep {
		if a.next == nil {
			return nil
		}
		return running(a.next, a.op, 1, group)
	}

	var out []scriptStep
	rowWritten := a.queued
	rowSays := 0 // the statement the running row names
	if a.queued {
		rowSays = 1
	}
	if len(stmts) == 0 {
		if !rowWritten {
			out = append(out, running(a.mig, a.op, 0, 0)...)
		}
		return append(append(append(out, scriptStep{sql: "BEGIN", group: -1}, done(-1)), queueNext(-1)...), scriptStep{sql: "COMMIT", group: -1})
	}
	for i := 0; i < len(stmts); {
		if !isDML(stmts[i]) {
			// DDL commits by itself: the row must already say it is next.
			n := i + 1
			switch {
			case !rowWritten:
				out = append(out, running(a.mig, a.op, n, 0)...)
				rowWritten = true
			case rowSays != n:
				out = append(out, progress(n, 0))
			}
			rowSays = n
			out = append(out, scriptStep{sql: stmts[i].SQL, stmt: n})
			i++
			continue
		}
		j := i
		for j < len(stmts) && isDML(stmts[j]) {
			j++
		}
		g := i + 1
		out = append(out, scriptStep{sql: "BEGIN", group: g})
		if !rowWritten {
			out = append(out, running(a.mig, a.op, g, g)...)
		}
		for k := i; k < j; k++ {
			out = append(out, scriptStep{sql: stmts[k].SQL, stmt: k + 1, group: g})
		}
		if j < len(stmts) {
			out = append(out, progress(j+1, g))
			rowSays = j + 1
		} else {
			out = append(out, done(g))
			out = append(out, queueNext(g)...)
		}
		out = append(out, scriptStep{sql: "COMMIT", group: g})
		rowWritten = true
		i = j
	}
	if !isDML(stmts[len(stmts)-1]) {
		if a.next == nil {
			out = append(out, done(0))
		} else {
			out = append(out, scriptStep{sql: "BEGIN", group: -1}, done(-1))
			out = append(out, queueNext(-1)...)
			out = append(out, scriptStep{sql: "COMMIT", group: -1})
		}
	}
	return out
}

// applyGrouped sends the grouped script in one round trip
// (dialect.Scripter). After an error the dialect says how many steps
// completed: the migration is recorded as failed at the first statement
// without effect (a failing DML group leaves nothing of itself), or as
// rolled back when nothing of it took effect.
func (a *attempt) applyGrouped() error {
	r, m := a.r, a.r.m
	sc := m.d.(dialect.Scripter)
	steps := a.groupedScript(sc)
	sqls := make([]string, len(steps))
	for i, s := range steps {
		sqls[i] = s.sql
	}
	m.log.Debug("sending the migration as one script", "version", a.mig.Version, "statements", len(a.sec.Statements), "steps", len(steps))
	done, err := sc.ExecScript(r.exec, r.h.conn, sqls)
	if err == nil {
		a.succeeded()
		return nil
	}
	// The running row, if one is in the database: written by an earlier
	// script, or by a step of this one that committed.
	if id, ok, lerr := m.runningRow(r.exec, r.h.conn, a.mig.Version); lerr == nil && ok {
		a.id = id
	}
	if done < 0 || done >= len(steps) {
		// The connection is gone (and the lock with it): the row says
		// running, at the statement to check.
		return a.fail(0, 0, err)
	}
	failed := steps[done]
	first, stmt := failed.stmt, failed.stmt
	switch {
	case failed.group > 0:
		first = failed.group
		if stmt == 0 {
			stmt = first
		}
	case failed.group < 0:
		// Recording the outcome failed: every statement ran.
		first, stmt = 0, 0
	case stmt == 0:
		// Bookkeeping before a DDL statement: that statement is next.
		for _, s := range steps[done:] {
			if s.stmt > 0 {
				first, stmt = s.stmt, s.stmt
				break
			}
		}
	}
	return a.fail(first, stmt, err)
}

// inlineArgs writes args into q in place of its ? placeholders, as
// literals (q has no ? of its own: ferry's bookkeeping statements only).
func inlineArgs(q string, args []any, lit func(any) string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' && n < len(args) {
			b.WriteString(lit(args[n]))
			n++
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
