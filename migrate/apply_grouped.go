package migrate

import (
	"context"
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
//     around them, and only with the bookkeeping of their own migration and
//     of the one before it;
//   - the outcome of a migration that ends with DDL is recorded in the
//     next transaction of the script (the next migration's first); a
//     migration that ends with DML records its outcome in the transaction
//     that runs it;
//   - the script ends with a committed transaction that leaves no
//     migration running.
//
// So a chunk commits no more often than its statements alone would, and a
// client that dies (the server runs the rest of the script) leaves every
// migration of the chunk recorded as it ended. The statement a running row
// names is always the first whose effects are not in the database: the one
// to check after an interruption. A failure rolls back at most the failing
// migration's own transaction and the record of the one before it, which
// ferry then writes on its own: no migration's statements ever run twice.

// Chunk limits: a chunk ends after this many migrations or once its
// script would pass this size, or the server's own limit on one query
// (Scripter.ScriptLimit) if that is lower. A migration whose script alone
// passes the server's limit is not grouped: it runs statement by statement.
const (
	chunkMigrations = 32
	chunkBytes      = 1 << 20
)

// loadScriptLimit reads, once, the most bytes the server takes in one
// script; until it is known (or if it cannot be read) chunks stay under
// chunkBytes.
func (m *Migrator) loadScriptLimit(ctx context.Context, q Querier) {
	sc, ok := m.d.(dialect.Scripter)
	if !ok || m.scriptLimit.Load() > 0 {
		return
	}
	n, err := sc.ScriptLimit(ctx, q)
	if err != nil || n <= 0 {
		m.log.Debug("could not read the server's limit on one query; scripts stay small", "error", err)
		return
	}
	m.scriptLimit.Store(int64(n))
}

// fitsScript reports whether a migration's script fits the server's
// limit on one query (when it is known).
func (m *Migrator) fitsScript(sec *Section) bool {
	l := m.scriptLimit.Load()
	return l == 0 || int64(scriptSize(sec)) <= l
}

// scriptSize estimates the bytes a migration adds to a chunk's script:
// its statements, a progress mark after each, and ferry's bookkeeping.
func scriptSize(sec *Section) int {
	n := 2048
	for _, st := range sec.Statements {
		n += len(st.SQL) + 32
	}
	return n
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

// chunkEnd returns the end (exclusive) of the chunk that starts at
// migs[i], a grouped migration: the grouped migrations that follow it, up
// to the chunk limits. max caps the chunk's length.
// A chunk's migrations share one lock wait bound (lw, nil when there is
// none): one with another bound starts the next chunk.
func (m *Migrator) chunkEnd(migs []*Migration, i int, op Op, lw *lockWaits) int {
	limit := chunkBytes
	if l := int(m.scriptLimit.Load()); l > 0 {
		limit = min(limit, l)
	}
	size := 0
	j := i
	for j < len(migs) && j-i < chunkMigrations && m.strategyFor(migs[j], op) == grouped &&
		(lw == nil || lw.timeoutFor(migs[j]) == lw.timeoutFor(migs[i])) {
		sec, _ := migs[j].parts(op)
		n := scriptSize(sec)
		if j > i && size+n > limit {
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
	// The row's time is the server's, when the row is written: every
	// migration of a script is sent at once.
	lit := func(v any) string {
		if t, ok := v.(time.Time); ok && t.Equal(rec.AppliedAt) {
			return b.sc.ScriptNow()
		}
		return b.sc.Literal(v)
	}
	if state != StateRunning {
		ins, args := m.insertSQL(&rec, b.sc.ScriptElapsedMillis())
		b.emit(scriptStep{sql: inlineArgs(ins, args, lit), mig: i, row: true, done: true})
		return
	}
	ins, args := m.insertSQL(&rec, "")
	b.emit(scriptStep{sql: inlineArgs(ins, args, lit), mig: i, row: true})
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
		b.commit(i)
		return
	}
	rowWritten, rowSays := false, 0
	for k := 0; k < len(stmts); {
		n := k + 1
		if !isDML(stmts[k]) {
			// DDL commits by itself: the row must already say it is next.
			switch {
			case !rowWritten:
				b.record(i, a, StateRunning, n)
				rowWritten = true
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
			rowWritten, rowSays = true, j+1
		case j < len(stmts):
			b.progress(i, j+1)
			rowSays = j + 1
		case !rowWritten:
			b.record(i, a, doneState(a.op), 0)
			b.commit(i)
		default:
			b.done(i, a)
			b.commit(i)
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
		// In a transaction of its own, committed explicitly: a migration
		// may have turned autocommit off for the session.
		b.begin(b.pendingIdx)
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

// applyChunk runs a chunk of grouped migrations as one script. After an
// error the dialect says how far the server got: the migrations before
// the failing one are recorded as applied (the one whose record the
// failure rolled back is recorded on its own), and the failing one as
// failed at the first statement without effect (a failing DML group
// leaves nothing of itself), or as rolled back when nothing of it took
// effect.
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
	if lw := r.lockWaits(); lw != nil {
		if err := r.bound(lw.timeoutFor(migs[0])); err != nil {
			return err
		}
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
	if done < 0 {
		return r.lostConnection(atts, start, err)
	}
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
	// The script stopped at step f, the first marked one from done on;
	// if f was in a transaction, that was rolled back, and with it the
	// record of the migration before f's, if that transaction held it.
	fi := done
	for fi < len(steps)-1 && !steps[fi].mark {
		fi++
	}
	f := steps[fi]
	a := atts[f.mig]
	for i, b := range atts[:f.mig] {
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
	first, stmt := 0, f.stmt
	if f.tx != 0 {
		// The first statement of the failing transaction is where the
		// migration's effects end.
		for _, s := range steps[:fi+1] {
			if s.tx == f.tx && s.mig == f.mig && s.stmt > 0 {
				first = s.stmt
				break
			}
		}
	}
	if first == 0 {
		// A DDL statement, or ferry's bookkeeping (alone, or before the
		// migration's first statement): the next statement is the first
		// without effect.
		for _, s := range steps[fi:] {
			if s.mig == f.mig && s.stmt > 0 {
				first = s.stmt
				break
			}
		}
	}
	if stmt == 0 {
		stmt = first
	}
	// Its running row, if one is in the database: written before the
	// failing step and committed.
	if id, ok, lerr := m.runningRow(r.exec, r.h.conn, a.mig.Version); lerr == nil && ok {
		a.id = id
	}
	// Its duration, by the clock the script restarted when it began.
	var ms int64
	if r.h.conn.QueryRowContext(r.exec, "SELECT "+sc.ScriptElapsedMillis()).Scan(&ms) == nil {
		a.start = time.Now().Add(-time.Duration(ms) * time.Millisecond)
	}
	if f.tx == 0 && first == stmt && a.id != 0 && a.sec != nil {
		// A DDL statement that gave up waiting for a lock took no effect:
		// the migration goes on from it, statement by statement, after a
		// pause, and then the rest of the chunk.
		retry := r.lockRetry(a.mig, op)
		again, rerr := retry.again(err)
		if again {
			cerr := a.continueTracked(first, retry)
			r.finished(a, time.Since(a.start), cerr, many)
			if cerr != nil {
				return cerr
			}
			return r.applyFrom(migs[f.mig+1:], op)
		}
		err = rerr
	}
	ferr := a.fail(first, stmt, err)
	r.finished(a, time.Since(a.start), ferr, many)
	return ferr
}

// lostConnection reports a script whose connection died: the server runs
// what it was sent to its end, or to the first error, unless it was
// restarted, so ferry cannot tell how far it got, and the lock went with
// the connection.
func (r *run) lostConnection(atts []*attempt, start time.Time, err error) error {
	first, last := atts[0].mig, atts[len(atts)-1].mig
	what := fmt.Sprintf("migration %d (%s)", first.Version, first.Name)
	if len(atts) > 1 {
		what = fmt.Sprintf("migrations %d (%s) to %d (%s)", first.Version, first.Name, last.Version, last.Name)
	}
	lerr := fmt.Errorf("%w while the server ran %s as one script: %w; the server finishes what it was sent unless it was restarted, so any of them may have been applied, and the history says which",
		ErrConnectionLost, what, err)
	r.finished(atts[0], time.Since(start), lerr, len(atts))
	return lerr
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
