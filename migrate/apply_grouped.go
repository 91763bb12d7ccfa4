package migrate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// A database that commits DDL by itself (MySQL) gets consecutive grouped
// migrations as one script, a chunk, in one round trip
// (dialect.Scripter). In the script:
//
//   - a migration's history row says it is running, and at which
//     statement, before each of its DDL statements (committed: the DDL
//     commits by itself, and may take effect even if ferry dies);
//   - consecutive DML statements share a transaction with the bookkeeping
//     around them;
//   - the outcome of a migration that ends with DDL is recorded in the
//     next transaction of the script, which the next migration's running
//     row and first DML statements share; a migration made only of DML is
//     recorded applied in the transaction that runs it, which goes on to
//     hold the next migration's start;
//   - the script ends with a committed transaction that leaves no
//     migration running.
//
// So a chunk costs one commit per run of DML and one per DDL statement,
// the same as the statements alone, and a client that dies (the server
// runs the rest of the script) leaves every migration of the chunk
// recorded as it ended. The statement a running row names is always the
// first whose effects are not in the database: the one to check after an
// interruption.

// Chunk limits: a chunk ends after this many migrations or once its SQL
// reaches this size (a migration larger than that is a chunk of its own).
const (
	chunkMigrations = 32
	chunkBytes      = 1 << 20
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

// chunkEnd returns the end (exclusive) of the chunk that starts at
// migs[i], a grouped migration: the grouped migrations that follow it, up
// to the chunk limits. max caps the chunk's length.
func (m *Migrator) chunkEnd(migs []*Migration, i int, op Op, max int) int {
	size := 0
	j := i
	for j < len(migs) && j-i < max && m.strategyFor(migs[j], op) == grouped {
		sec, _ := migs[j].parts(op)
		n := 0
		for _, st := range sec.Statements {
			n += len(st.SQL)
		}
		if j > i && size+n > chunkBytes {
			break
		}
		size += n
		j++
	}
	return j
}

// scriptStep is one statement of a chunk's script.
type scriptStep struct {
	sql string
	// mig is the migration (index in the chunk) the step is part of.
	mig int
	// stmt is the migration's statement (1-based) the step runs; 0 for
	// ferry's bookkeeping.
	stmt int
	// tx is the script's transaction (1-based) that holds the step; 0
	// outside one.
	tx int
	// row marks the step that writes mig's history row; done the one that
	// records its outcome (it may be the same step).
	row, done bool
	// mark: the dialect marks how far the server got after this step
	// (dialect.Scripter). Every migration statement, COMMIT and statement
	// outside a transaction is marked; the bookkeeping in a transaction
	// before a marked step fails (and is rolled back) with it.
	mark bool
}

// scriptBuilder writes a chunk's script.
type scriptBuilder struct {
	m     *Migrator
	sc    dialect.Scripter
	steps []scriptStep
	tx    int // the open transaction, 0 if none
	ntx   int
	// pending is the attempt (and its index) whose outcome the next
	// transaction records: it ended with DDL.
	pending    *attempt
	pendingIdx int
}

func (b *scriptBuilder) emit(s scriptStep) {
	s.tx = b.tx
	s.mark = s.mark || s.tx == 0
	b.steps = append(b.steps, s)
}

func (b *scriptBuilder) begin(mig int) {
	if b.tx == 0 {
		b.emit(scriptStep{sql: "BEGIN", mig: mig})
		b.ntx++
		b.tx = b.ntx
	}
}

func (b *scriptBuilder) commit(mig int) {
	if b.tx != 0 {
		b.emit(scriptStep{sql: "COMMIT", mig: mig, mark: true})
		b.tx = 0
	}
}

// record writes a's history row in state, naming statement next; a
// running row's id is saved for the updates that follow it.
func (b *scriptBuilder) record(i int, a *attempt, state State, next int) {
	m := b.m
	rec := Record{
		Version: a.mig.Version, Name: a.mig.Name, Checksum: a.mig.Checksum, Operation: a.op, State: state,
		AppliedAt: a.start.UTC(), AppliedBy: a.r.by, Statement: next,
	}
	if state != StateRunning {
		ins, args := m.insertSQL(&rec, b.sc.ScriptElapsedMillis())
		b.emit(scriptStep{sql: inlineArgs(ins, args, b.sc.Literal), mig: i, row: true, done: true})
		return
	}
	ins, args := m.insertSQL(&rec, "")
	b.emit(scriptStep{sql: inlineArgs(ins, args, b.sc.Literal), mig: i, row: true})
	b.emit(scriptStep{sql: b.sc.SaveRowID(), mig: i})
}

func (b *scriptBuilder) progress(i, next int) {
	b.emit(scriptStep{sql: fmt.Sprintf("UPDATE %s SET statement = %d WHERE id = %s", b.m.d.Table(b.m.table), next, b.sc.RowID()), mig: i})
}

func (b *scriptBuilder) done(i int, a *attempt) {
	b.emit(scriptStep{sql: fmt.Sprintf("UPDATE %s SET state = %s, duration_ms = %s, statement = 0, error = NULL WHERE id = %s",
		b.m.d.Table(b.m.table), b.sc.Literal(string(doneState(a.op))), b.sc.ScriptElapsedMillis(), b.sc.RowID()), mig: i, done: true})
}

// flush records the pending migration's outcome in the open transaction.
func (b *scriptBuilder) flush() {
	if b.pending != nil {
		b.done(b.pendingIdx, b.pending)
		b.pending = nil
	}
}

// add writes migration i of the chunk. Its history row is written with
// the first of its statements that commits: with its first DML group
// (the row, in the same transaction, names the statement after the
// group, or is written finished if nothing follows), or just before its
// first DDL statement.
func (b *scriptBuilder) add(i int, a *attempt) {
	if b.pending != nil {
		b.begin(b.pendingIdx)
		b.flush()
	}
	if i > 0 {
		b.emit(scriptStep{sql: b.sc.StartClock(), mig: i})
	}
	stmts := a.sec.Statements
	if len(stmts) == 0 {
		b.begin(i)
		b.record(i, a, doneState(a.op), 0)
		return
	}
	rowWritten, rowTx, rowSays := false, 0, 0
	for k := 0; k < len(stmts); {
		n := k + 1
		if !isDML(stmts[k]) {
			// DDL commits by itself: the row must already say it is next.
			switch {
			case !rowWritten:
				b.record(i, a, StateRunning, n)
				rowWritten, rowTx = true, b.tx
			case rowSays != n:
				b.progress(i, n)
			}
			rowSays = n
			b.commit(i)
			b.emit(scriptStep{sql: stmts[k].SQL, mig: i, stmt: n})
			k++
			continue
		}
		j := k
		for j < len(stmts) && isDML(stmts[j]) {
			j++
		}
		b.begin(i)
		for q := k; q < j; q++ {
			b.emit(scriptStep{sql: stmts[q].SQL, mig: i, stmt: q + 1, mark: true})
		}
		switch {
		case j < len(stmts) && !rowWritten:
			b.record(i, a, StateRunning, j+1)
			rowWritten, rowTx, rowSays = true, b.tx, j+1
		case j < len(stmts):
			b.progress(i, j+1)
			rowSays = j + 1
		case !rowWritten:
			b.record(i, a, doneState(a.op), 0)
		default:
			b.done(i, a)
			if rowTx != b.tx {
				// The migration ran DDL before: its last transaction is
				// its own, so that a later failure cannot undo it.
				b.commit(i)
			}
		}
		k = j
	}
	if !isDML(stmts[len(stmts)-1]) {
		b.pending, b.pendingIdx = a, i
	}
}

// finish ends the script with a committed transaction that leaves no
// migration running.
func (b *scriptBuilder) finish() {
	last := 0
	if n := len(b.steps); n > 0 {
		last = b.steps[n-1].mig
	}
	if b.pending != nil {
		if b.tx == 0 {
			// Nothing else to commit: one statement commits by itself.
			b.flush()
			return
		}
		b.flush()
	}
	b.commit(last)
}

// chunkScript is the script of a chunk of grouped attempts.
func (m *Migrator) chunkScript(atts []*attempt) []scriptStep {
	b := &scriptBuilder{m: m, sc: m.d.(dialect.Scripter)}
	for i, a := range atts {
		b.add(i, a)
	}
	b.finish()
	return b.steps
}

// errRetryAlone is applyChunk's signal that a failure rolled back a
// transaction holding the work of several migrations: the migrations from
// retry on must run again, each in its own script, so that the failure is
// recorded against the one that caused it and the others apply.
type errRetryAlone struct{ from int }

func (e *errRetryAlone) Error() string { return "run the chunk's migrations one by one" }

// applyChunk runs a chunk of grouped migrations as one script. After an
// error the dialect says how many steps completed: the migrations before
// the failing one are recorded as applied, and the failing one as failed
// at the first statement without effect (a failing DML group leaves
// nothing of itself), or as rolled back when nothing of it took effect.
func (r *run) applyChunk(migs []*Migration, op Op) error {
	m := r.m
	sc := m.d.(dialect.Scripter)
	start := time.Now()
	atts := make([]*attempt, len(migs))
	for i, mig := range migs {
		atts[i] = &attempt{r: r, mig: mig, op: op, start: start}
		atts[i].sec, _ = mig.parts(op)
		m.log.Info("migrating", "version", mig.Version, "name", mig.Name, "operation", op, "strategy", grouped.String())
	}
	steps := m.chunkScript(atts)
	sqls := make([]string, len(steps))
	marks := make([]bool, len(steps))
	for i, s := range steps {
		sqls[i], marks[i] = s.sql, s.mark
	}
	for _, mig := range migs {
		m.hooks.migrationStarted(Event{Version: mig.Version, Name: mig.Name, Operation: op, Together: len(migs)})
	}
	m.log.Debug("sending migrations as one script", "first", migs[0].Version, "migrations", len(migs), "steps", len(steps))
	done, err := sc.ExecScript(r.exec, r.h.conn, sqls, marks)
	many := len(migs)
	took := r.chunkDurations(many > 1)
	dur := func(a *attempt) time.Duration {
		if d, ok := took[a.mig.Version]; ok {
			return d
		}
		return time.Since(start)
	}
	if err == nil {
		for _, a := range atts {
			a.succeeded()
			r.finished(a, dur(a), nil, many)
		}
		return nil
	}
	if done < 0 || done >= len(steps) {
		// The connection is gone, and the lock with it; the server may
		// still be running the script. The history says how far it got.
		a := atts[0]
		if id, ok, lerr := m.runningRow(r.exec, r.h.conn, a.mig.Version); lerr == nil && ok {
			a.id = id
		}
		ferr := a.fail(0, 0, err)
		r.finished(a, time.Since(start), ferr, many)
		return ferr
	}
	// The script stopped at step f; if f was in a transaction, that was
	// rolled back. Migrations whose outcome it recorded after their DDL
	// took effect are applied: record them now. Migrations it ran whole
	// are not: if one precedes the failing migration, they run again one
	// by one.
	// The failing step is the first marked one from done on: the steps
	// before it in its transaction were rolled back with it.
	fi := done
	for fi < len(steps)-1 && !steps[fi].mark {
		fi++
	}
	f := steps[fi]
	a := atts[f.mig]
	first, carried := 0, -1
	if f.tx != 0 {
		for _, s := range steps[:fi+1] {
			if s.tx != f.tx {
				continue
			}
			switch {
			case s.mig == f.mig:
				if first == 0 && s.stmt > 0 {
					first = s.stmt
				}
			case s.row && carried < 0:
				carried = s.mig
			}
		}
	}
	completed := f.mig
	if carried >= 0 {
		completed = carried
	}
	for i, b := range atts[:completed] {
		d := dur(b)
		if !recorded(steps, fi, i, f.tx) {
			if rerr := r.recordLateOutcome(b); rerr != nil {
				ferr := b.fail(0, 0, rerr)
				r.finished(b, time.Since(start), ferr, many)
				return ferr
			}
			d = time.Since(start)
		}
		b.succeeded()
		r.finished(b, d, nil, many)
	}
	if carried >= 0 {
		return &errRetryAlone{from: carried}
	}
	var stmt int
	if f.tx == 0 {
		// A DDL statement, or the bookkeeping that commits by itself
		// before one: that statement is the first without effect.
		first = f.stmt
		for _, s := range steps[fi:] {
			if first != 0 {
				break
			}
			if s.mig == f.mig && s.stmt > 0 {
				first = s.stmt
			}
		}
		stmt = first
	} else {
		if first == 0 {
			first = f.stmt
		}
		stmt = f.stmt
		if stmt == 0 {
			stmt = first
		}
	}
	// Its running row, if one is in the database: written before the
	// failing step and committed.
	if id, ok, lerr := m.runningRow(r.exec, r.h.conn, a.mig.Version); lerr == nil && ok {
		a.id = id
	}
	ferr := a.fail(first, stmt, err)
	r.finished(a, time.Since(start), ferr, many)
	return ferr
}

// recorded reports whether the outcome of migration i of the script is
// in the database after the script stopped at step done, with its
// transaction tx (0: none) rolled back.
func recorded(steps []scriptStep, done, i, tx int) bool {
	for k, s := range steps {
		if s.mig == i && s.done {
			return k < done && (s.tx == 0 || s.tx != tx)
		}
	}
	return false
}

// recordLateOutcome records the outcome of a migration whose statements
// all took effect but whose outcome was rolled back with the next
// migration's failed transaction.
func (r *run) recordLateOutcome(a *attempt) error {
	m := r.m
	id, ok, err := m.runningRow(r.exec, r.h.conn, a.mig.Version)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("its running row is missing")
	}
	return m.updateRecord(r.exec, r.h.conn, id, doneState(a.op), time.Since(a.start), 0, "")
}

// chunkDurations returns how long each migration of the script just run
// took, by version, as the server recorded it (read: several migrations
// shared the script). A version it lacks took the script's time.
func (r *run) chunkDurations(read bool) map[int64]time.Duration {
	out := map[int64]time.Duration{}
	if !read {
		return out
	}
	m := r.m
	if r.lastID == 0 {
		for _, rec := range r.hist.records {
			r.lastID = max(r.lastID, rec.ID)
		}
	}
	rows, err := r.h.conn.QueryContext(r.exec, "SELECT id, version, state, duration_ms FROM "+m.d.Table(m.table)+" WHERE id > "+m.d.Placeholder(1)+" ORDER BY id", r.lastID)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var id, v, ms int64
		var state string
		if rows.Scan(&id, &v, &state, &ms) == nil {
			r.lastID = max(r.lastID, id)
			if State(state) == StateApplied || State(state) == StateReverted {
				out[v] = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return out
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
