package migrate

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// Plan is what a run would do, for --dry-run.
type Plan struct {
	Operation Op // OpUp or OpDown
	// Migrations in the order they would run.
	Migrations []*Migration
	// CreatesTables is true when ferry's tables do not exist yet.
	CreatesTables bool

	m *Migrator
}

// PlanUp returns what Up would apply, without taking the lock or changing
// anything (not even creating the history table).
func (m *Migrator) PlanUp(ctx context.Context, opts UpOptions) (*Plan, error) {
	if err := m.CheckTarget(opts.To); err != nil {
		return nil, err
	}
	lock, err := m.lockInfo(ctx, m.db) // first, as in StatusWith
	if err != nil {
		return nil, err
	}
	h, exists, err := m.loadHistory(ctx, m.db, true)
	if err != nil {
		return nil, err
	}
	migs, err := m.planUp(h, opts.To, lock.Held)
	if err != nil {
		return nil, err
	}
	if err := parseAll(migs); err != nil {
		return nil, err
	}
	m.loadScriptLimit(ctx, m.db)
	return &Plan{Operation: OpUp, Migrations: migs, CreatesTables: !exists, m: m}, nil
}

// PlanDown returns what Down(n) (n > 0) or DownTo(to) (n == 0) would
// revert.
func (m *Migrator) PlanDown(ctx context.Context, n int, to int64) (*Plan, error) {
	if n < 0 || (n == 0 && to < 0) {
		return nil, fmt.Errorf("target version must not be negative, got %d", to)
	}
	h, exists, err := m.loadHistory(ctx, m.db, true)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if err := m.checkDownTarget(h, to); err != nil {
			return nil, err
		}
	}
	var versions []int64
	for i, v := range appliedDesc(h) {
		if (n > 0 && i >= n) || (n == 0 && v <= to) {
			break
		}
		versions = append(versions, v)
	}
	if err := m.checkRevert(h, versions, false); err != nil {
		return nil, err
	}
	migs := make([]*Migration, len(versions))
	for i, v := range versions {
		migs[i] = m.byVersion[v]
	}
	m.loadScriptLimit(ctx, m.db)
	return &Plan{Operation: OpDown, Migrations: migs, CreatesTables: !exists, m: m}, nil
}

// WriteSQL writes what the plan would send, in order and exactly: the
// migrations' statements, the transaction boundaries, and ferry's own
// statements around them (the history rows), each as the strategy that
// strategyFor chooses for a run sends it. Values only a run knows (the
// time, a lease's token) are shown as the plan would have them now.
func (p *Plan) WriteSQL(w io.Writer) error {
	var b strings.Builder
	m, d := p.m, p.m.d
	if len(p.Migrations) == 0 {
		b.WriteString("-- nothing to do\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "-- %s, waiting up to %s for it\n", m.lockDescription(), m.lockTimeout)
	if lw, ok := d.(dialect.LockWaiter); ok && m.lockWait.Timeout > 0 {
		fmt.Fprintf(&b, "-- a statement that waits more than %s for a lock gives up; what it was part of is rolled back and tried again, up to %d more times\n", lw.LockWaitBound(m.lockWait.Timeout), m.lockWait.Retries)
	}
	if p.CreatesTables {
		b.WriteString("-- ferry first creates its tables:\n")
		for _, s := range append(d.HistoryDDL(m.table), d.LockTableDDL(m.lockTable)...) {
			writeStmt(&b, s)
		}
	}
	b.WriteString("\n")
	r := &run{m: m, by: m.holder}
	now := time.Now()
	verb := "apply"
	if p.Operation == OpDown {
		verb = "revert"
	}
	migs := p.Migrations
	r.planPreflight(&b)
	for i := 0; i < len(migs); {
		how := m.strategyFor(migs[i], p.Operation)
		if how != grouped {
			a := &attempt{r: r, mig: migs[i], op: p.Operation, start: now}
			a.sec, _ = migs[i].parts(p.Operation)
			fmt.Fprintf(&b, "-- %s %s: %s\n", verb, migs[i], how.describe(d))
			a.writePlan(&b, how)
			b.WriteString("\n")
			i++
			continue
		}
		j := m.chunkEnd(migs, i, p.Operation, r.lockWaits())
		atts := make([]*attempt, j-i)
		for k := range atts {
			atts[k] = &attempt{r: r, mig: migs[i+k], op: p.Operation, start: now}
			atts[k].sec, _ = migs[i+k].parts(p.Operation)
		}
		if j-i > 1 {
			fmt.Fprintf(&b, "-- the next %d migrations go to the server as one script (one round trip)\n", j-i)
		}
		steps := m.chunkScript(atts)
		sqls := make([]string, len(steps))
		marks := make([]bool, len(steps))
		for k, s := range steps {
			sqls[k], marks[k] = s.sql, s.mark
		}
		// What the dialect sends: the steps, in order, among statements
		// of its own (its clock and progress marks).
		owner, next := 0, 0
		fmt.Fprintf(&b, "-- %s %s: %s\n", verb, atts[0].mig, how.describe(d))
		if l := r.lockWaits(); l != nil {
			planSQL(&b, l.sessionSQL(l.timeoutFor(atts[0].mig)))
		}
		for _, q := range d.(dialect.Scripter).ScriptStatements(sqls, marks) {
			if next >= len(steps) || q != strings.TrimRight(steps[next].sql, "; \t\r\n") {
				writeStmt(&b, q)
				continue
			}
			st := steps[next]
			next++
			if st.mig != owner {
				owner = st.mig
				fmt.Fprintf(&b, "\n-- %s %s: %s\n", verb, atts[owner].mig, how.describe(d))
			}
			if st.stmt > 0 {
				atts[owner].writeStatement(&b, st.stmt)
				continue
			}
			writeStmt(&b, st.sql)
		}
		b.WriteString("\n")
		i = j
	}
	r.planEnd(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// describe says how a strategy sends a migration, for plans.
func (s strategy) describe(d dialect.Dialect) string {
	switch s {
	case batched:
		return "one pipeline (one round trip), one transaction with its history row"
	case inTransaction:
		return "one transaction with its history row"
	case grouped:
		return d.Name() + " commits DDL by itself: the history row says running before each DDL statement, DML runs in transactions with the bookkeeping, the outcome is recorded in the next transaction; the dialect marks how far the server got after each statement"
	}
	return "statement by statement without a transaction, tracked in the history table"
}

// writePlan writes the statements of one migration as the strategy sends
// them.
func (a *attempt) writePlan(b *strings.Builder, how strategy) {
	m := a.r.m
	_, fn := a.mig.parts(a.op)
	user := func(i int) { a.writeStatement(b, i+1) }
	body := func() {
		if fn != nil {
			b.WriteString("-- (a Go function: its SQL is not known in advance)\n")
			return
		}
		for i := range a.sec.Statements {
			user(i)
		}
	}
	l := a.r.lockWaits()
	switch how {
	case batched:
		rec := a.record(doneState(a.op))
		rec.Duration = 0
		ins, args := m.insertSQL(&rec, m.d.(dialect.Batcher).ElapsedMillis())
		b.WriteString("-- (no BEGIN or COMMIT is sent: the server runs the pipeline as one implicit transaction)\n")
		planSQL(b, l.localSQL(a.mig))
		body()
		writeStmt(b, m.render(ins, args))
	case inTransaction:
		b.WriteString("BEGIN;\n")
		planSQL(b, l.localSQL(a.mig))
		body()
		if m.mirror != nil {
			fmt.Fprintf(b, "-- record version %d in the history mirror's table\n", a.mig.Version)
		}
		rec := a.record(doneState(a.op))
		ins, args := m.insertSQL(&rec, "")
		if m.lockMode() == LockLease {
			fmt.Fprintf(b, "-- the history row, written only while this run holds the lease (a lease last renewed more than %s ago is renewed first):\n", m.leaseTTL/3)
			ins, args = m.fencedInsertSQL(), append(args, planVar("lease_token"), planVar("lease_holder"))
		}
		writeStmt(b, m.render(ins, args))
		b.WriteString("COMMIT;\n")
	default:
		rec := a.record(StateRunning)
		if a.sec != nil && len(a.sec.Statements) > 0 {
			rec.Statement = 1
		}
		a.writeFence(b)
		ins, args := m.insertSQL(&rec, "")
		writeStmt(b, m.render(m.d.InsertReturningIDSQL(ins), args))
		if fn != nil {
			if l != nil {
				planSQL(b, l.sessionSQL(l.timeoutFor(a.mig)))
			}
			body()
		} else {
			for i, st := range a.sec.Statements {
				if i > 0 {
					writeStmt(b, m.render(m.progressSQL(), []any{i + 1, planVar("running_row_id")}))
				}
				if l != nil {
					planSQL(b, l.sessionSQL(l.statementTimeout(a.mig, st.SQL)))
				}
				user(i)
			}
		}
		if m.mirror != nil {
			fmt.Fprintf(b, "-- record version %d in the history mirror's table\n", a.mig.Version)
		}
		writeStmt(b, m.render(m.updateSQL(), []any{string(doneState(a.op)), planVar("duration_ms"), 0, nil, planVar("running_row_id")}))
	}
}

// writeStatement writes statement n (1-based) of the attempt's section,
// after the file and line it comes from.
func (a *attempt) writeStatement(b *strings.Builder, n int) {
	st := a.sec.Statements[n-1]
	if a.sec.File != "" {
		fmt.Fprintf(b, "-- %s:%d\n", a.sec.File, st.Line)
	}
	writeStmt(b, st.Display())
}

// writeFence writes the lease check of a run under a lease lock.
func (a *attempt) writeFence(b *strings.Builder) {
	m := a.r.m
	if m.lockMode() != LockLease {
		return
	}
	p := m.d.Placeholder
	fmt.Fprintf(b, "-- the lease check (this run's token and holder):\nSELECT COUNT(*) FROM %s WHERE id = 1 AND token = %s AND holder = %s;\n", m.d.Table(m.lockTable), p(1), p(2))
}

// writeStmt writes one statement, ending with a semicolon.
func writeStmt(b *strings.Builder, s string) {
	b.WriteString(s)
	if !strings.HasSuffix(strings.TrimSpace(s), ";") {
		b.WriteString(";")
	}
	b.WriteString("\n")
}

// planVar is a value only a run knows, shown by name in a plan.
type planVar string

// render writes args into q in place of the dialect's placeholders, as
// literals, to show a statement of ferry's own as it is sent.
func (m *Migrator) render(q string, args []any) string {
	lit := planLiteral
	if sc, ok := m.d.(dialect.Scripter); ok {
		lit = func(v any) string {
			if pv, ok := v.(planVar); ok {
				return ":" + string(pv)
			}
			return sc.Literal(v)
		}
	}
	if m.d.Placeholder(1) == m.d.Placeholder(2) {
		return inlineArgs(q, args, lit)
	}
	for i := len(args); i >= 1; i-- {
		q = strings.Replace(q, m.d.Placeholder(i), lit(args[i-1]), 1)
	}
	return q
}

// planLiteral shows a value as an SQL literal.
func planLiteral(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case time.Time:
		return "'" + x.UTC().Format("2006-01-02 15:04:05.000000Z07:00") + "'"
	case planVar:
		return ":" + string(x)
	}
	return fmt.Sprint(v)
}

// lockDescription says which migration lock a run takes.
func (m *Migrator) lockDescription() string {
	if m.lockMode() == LockLease {
		return fmt.Sprintf("ferry takes the migration lock: a lease in %s, renewed every %s", m.lockTable, m.leaseTTL/3)
	}
	return fmt.Sprintf("ferry takes the migration lock: a %s session lock on its own connection, which also runs the migrations", m.d.Name())
}
