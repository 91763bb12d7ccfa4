package migrate

import (
	"fmt"
	"strings"

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
	// holds this step, 0 outside one.
	group int
	// rowWritten: once this step completed, the running row is in the
	// database (committed).
	rowWritten bool
}

// groupedScript is what a grouped migration sends, in order: the history
// row written as running before the first DDL statement, its progress
// before each later one, consecutive DML statements in one transaction
// with the bookkeeping that follows them, and the outcome. The statement
// the row names is always the first whose effects are not in the
// database: the one to check after an interruption.
func (a *attempt) groupedScript(sc dialect.Scripter) []scriptStep {
	m, stmts := a.r.m, a.sec.Statements
	t := m.d.Table(m.table)
	inline := func(q string, args []any) string { return inlineArgs(q, args, sc.Literal) }
	running := func(next int) []scriptStep {
		rec := a.record(StateRunning)
		rec.Duration, rec.Statement = 0, next
		ins, args := m.insertSQL(&rec, "")
		return []scriptStep{{sql: inline(ins, args)}, {sql: sc.SaveRowID()}}
	}
	progress := func(next int) string {
		return fmt.Sprintf("UPDATE %s SET statement = %d WHERE id = %s", t, next, sc.RowID())
	}
	done := fmt.Sprintf("UPDATE %s SET state = %s, duration_ms = %s, statement = 0, error = NULL WHERE id = %s",
		t, sc.Literal(string(doneState(a.op))), sc.ScriptElapsedMillis(), sc.RowID())

	var out []scriptStep
	rowWritten := false
	if len(stmts) == 0 {
		out = append(out, running(0)...)
		for i := range out {
			out[i].rowWritten = true
		}
		return append(out, scriptStep{sql: done, rowWritten: true})
	}
	for i := 0; i < len(stmts); {
		if !isDML(stmts[i]) {
			// DDL commits by itself: the row must already say it is next.
			n := i + 1
			if !rowWritten {
				steps := running(n)
				steps[0].rowWritten, steps[1].rowWritten = true, true // autocommitted
				out = append(out, steps...)
				rowWritten = true
			} else {
				out = append(out, scriptStep{sql: progress(n), rowWritten: true})
			}
			out = append(out, scriptStep{sql: stmts[i].SQL, stmt: n, rowWritten: true})
			i++
			continue
		}
		j := i
		for j < len(stmts) && isDML(stmts[j]) {
			j++
		}
		g := i + 1
		out = append(out, scriptStep{sql: "BEGIN", group: g, rowWritten: rowWritten})
		if !rowWritten {
			steps := running(g)
			for k := range steps {
				steps[k].group = g
			}
			out = append(out, steps...)
		}
		for k := i; k < j; k++ {
			out = append(out, scriptStep{sql: stmts[k].SQL, stmt: k + 1, group: g, rowWritten: rowWritten})
		}
		end := done
		if j < len(stmts) {
			end = progress(j + 1)
		}
		out = append(out, scriptStep{sql: end, group: g, rowWritten: rowWritten})
		out = append(out, scriptStep{sql: "COMMIT", group: g, rowWritten: true})
		rowWritten = true
		i = j
	}
	if !isDML(stmts[len(stmts)-1]) {
		out = append(out, scriptStep{sql: done, rowWritten: true})
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
	done, row, err := sc.ExecScript(r.exec, r.h.conn, sqls)
	if err == nil {
		a.succeeded()
		return nil
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
	case stmt == 0:
		// Bookkeeping before a DDL statement: that statement is next; after
		// the last one, the outcome could not be written.
		first, stmt = len(a.sec.Statements), len(a.sec.Statements)
		for _, s := range steps[done:] {
			if s.stmt > 0 {
				first, stmt = s.stmt, s.stmt
				break
			}
		}
	}
	// The running row exists if a step that completed committed it (a
	// DML group that failed took its own row with it).
	if done > 0 && steps[done-1].rowWritten {
		a.id = row
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
