package migrate

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record is one row of the history table: one attempt to apply, revert,
// baseline or repair a migration. The full history is kept.
type Record struct {
	ID        int64
	Version   int64
	Name      string
	Checksum  string
	Operation Op
	State     State
	AppliedAt time.Time
	Duration  time.Duration
	AppliedBy string
	// Statement is the 1-based index of the statement that was running or
	// failed; 0 when not relevant.
	Statement int
	Error     string
}

// versionState is what the history says about one version.
type versionState struct {
	applied bool
	last    *Record // the record that made it applied/reverted
	blocked *Record // an unresolved failed or running record
	failure *Record // the last rolled-back attempt, for information
}

// history is the history table read once per run. Records are pointers so
// that a record's details can be filled in after the brief read, and stay
// valid as the run appends records.
type history struct {
	records  []*Record
	versions map[int64]*versionState
	byID     map[int64]*Record
	// applied memoises appliedVersions until the next addRecord: a cached
	// history answers many statuses.
	applied []int64
}

func (h *history) state(v int64) *versionState {
	if s, ok := h.versions[v]; ok {
		return s
	}
	return &versionState{}
}

// maxApplied is the highest applied version, 0 if none.
func (h *history) maxApplied() int64 {
	var max int64
	for v, s := range h.versions {
		if s.applied && v > max {
			max = v
		}
	}
	return max
}

func buildHistory(records []*Record) *history {
	h := &history{records: make([]*Record, 0, len(records)), versions: make(map[int64]*versionState, len(records)), byID: make(map[int64]*Record, len(records))}
	for _, r := range records {
		h.addRecord(r)
	}
	return h
}

// add appends a record and updates its version's state.
func (h *history) add(r Record) { h.addRecord(&r) }

func (h *history) addRecord(rec *Record) {
	h.applied = nil
	h.records = append(h.records, rec)
	if rec.ID != 0 {
		h.byID[rec.ID] = rec
	}
	s := h.versions[rec.Version]
	if s == nil {
		s = &versionState{}
		h.versions[rec.Version] = s
	}
	switch rec.State {
	case StateApplied:
		s.applied, s.last, s.blocked = true, rec, nil
	case StateReverted:
		s.applied, s.last, s.blocked = false, rec, nil
	case StateRolledBack:
		s.failure = rec
	case StateFailed, StateRunning:
		s.blocked = rec
	}
}

// historyColumns are the columns of a full read, in the order scanRecord
// scans them; briefColumns those that say which versions are applied,
// pending or blocked.
const (
	historyColumns = "id, version, name, checksum, operation, state, applied_at, duration_ms, applied_by, statement, error"
	briefColumns   = "id, version, state"
)

func scanRecord(rows *sql.Rows) (*Record, error) {
	var r Record
	var ms int64
	var errText sql.NullString
	if err := rows.Scan(&r.ID, &r.Version, &r.Name, &r.Checksum, &r.Operation, &r.State, &r.AppliedAt, &ms, &r.AppliedBy, &r.Statement, &errText); err != nil {
		return nil, err
	}
	r.Duration = time.Duration(ms) * time.Millisecond
	r.AppliedAt = r.AppliedAt.UTC()
	r.Error = errText.String
	return &r, nil
}

// readHistory reads the history table. A full read has every column of
// every row. A brief read has, for most rows, only what says which versions
// are applied, pending or blocked (a fraction of the cost on a long
// history); failed, running and rolled-back rows always have their details,
// since every message about them needs them. fillDetails completes others.
func (m *Migrator) readHistory(ctx context.Context, q Querier, brief bool) (*history, error) {
	cols := historyColumns
	if brief {
		cols = briefColumns
	}
	// No ORDER BY: the rows come in insertion order almost always, and
	// checking that here is cheaper than the server's sort of a long
	// history (PostgreSQL sorts a sequential scan rather than walk the
	// primary key).
	rows, err := q.QueryContext(ctx, "SELECT "+cols+" FROM "+m.d.Table(m.table))
	if err != nil {
		return nil, fmt.Errorf("read history table %s: %w", m.table, err)
	}
	defer rows.Close()
	var recs []*Record
	var bs briefScanner
	for rows.Next() {
		var r *Record
		if brief {
			r, err = bs.scan(rows)
		} else {
			r, err = scanRecord(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("read history table %s: %w", m.table, err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history table %s: %w", m.table, err)
	}
	byID := func(a, b *Record) int { return cmp.Compare(a.ID, b.ID) }
	if !slices.IsSortedFunc(recs, byID) {
		slices.SortFunc(recs, byID)
	}
	h := buildHistory(recs)
	if brief {
		if err := m.fillDetails(ctx, q, h, unsettledIDs(recs)); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// unsettledIDs are the ids of failed, running and rolled-back rows: a brief
// read reads their details too.
func unsettledIDs(recs []*Record) []int64 {
	var ids []int64
	for _, r := range recs {
		if r.State != StateApplied && r.State != StateReverted {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// readHistoryAfter reads, briefly, the rows with an id above id.
func (m *Migrator) readHistoryAfter(ctx context.Context, q Querier, id int64) ([]*Record, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+briefColumns+" FROM "+m.d.Table(m.table)+" WHERE id > "+strconv.FormatInt(id, 10)+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read history table %s: %w", m.table, err)
	}
	defer rows.Close()
	var recs []*Record
	var bs briefScanner
	for rows.Next() {
		r, err := bs.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("read history table %s: %w", m.table, err)
		}
		recs = append(recs, r)
	}
	return recs, rows.Err()
}

// briefScanner reads brief rows (briefColumns) into records allocated in
// blocks, with the state a constant where it is one: a long history is
// ten thousand rows, read by every status and run.
type briefScanner struct {
	block []Record
	state sql.RawBytes
}

func (b *briefScanner) scan(rows *sql.Rows) (*Record, error) {
	if len(b.block) == 0 {
		b.block = make([]Record, 256)
	}
	r := &b.block[0]
	b.block = b.block[1:]
	if err := rows.Scan(&r.ID, &r.Version, &b.state); err != nil {
		return nil, err
	}
	r.State = stateOf(b.state)
	return r, nil
}

// stateOf is the State spelled by b, without a new string for the states
// ferry writes.
func stateOf(b []byte) State {
	for _, s := range []State{StateApplied, StateReverted, StateRunning, StateFailed, StateRolledBack} {
		if string(b) == string(s) {
			return s
		}
	}
	return State(b)
}

// fillDetails reads every column of the records with the given ids.
func (m *Migrator) fillDetails(ctx context.Context, q Querier, h *history, ids []int64) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		list := make([]string, n)
		for i, id := range ids[:n] {
			list[i] = strconv.FormatInt(id, 10)
		}
		ids = ids[n:]
		rows, err := q.QueryContext(ctx, "SELECT "+historyColumns+" FROM "+m.d.Table(m.table)+" WHERE id IN ("+strings.Join(list, ",")+")")
		if err != nil {
			return fmt.Errorf("read history table %s: %w", m.table, err)
		}
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("read history table %s: %w", m.table, err)
			}
			if rec := h.byID[r.ID]; rec != nil {
				// A row read without the lock may have moved on since the
				// brief read (running, then applied): the history keeps the
				// state it was built with, so that its versions' states
				// stay consistent, and a run under the lock reads it again.
				state := rec.State
				*rec = *r
				rec.State = state
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("read history table %s: %w", m.table, err)
		}
	}
	return nil
}

// refreshHistory returns the history under the migration lock. pre, when
// not nil, is a brief history read before the lock was taken: the rows
// appended since are read and added to it, which on a long history costs a
// small fraction of reading it all again. Anything else (rows updated in
// place, a table replaced by a restore) reads it all.
func (m *Migrator) refreshHistory(ctx context.Context, q Querier, pre *history) (*history, error) {
	if pre == nil || len(pre.records) == 0 {
		return m.readHistory(ctx, q, true)
	}
	for _, r := range pre.records {
		if r.State == StateRunning { // may have changed in place
			return m.readHistory(ctx, q, true)
		}
	}
	var count, maxID int64
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM "+m.d.Table(m.table)).Scan(&count, &maxID); err != nil {
		return nil, fmt.Errorf("read history table %s: %w", m.table, err)
	}
	known, lastID := int64(len(pre.records)), pre.records[len(pre.records)-1].ID
	switch {
	case count == known && maxID == lastID:
		return pre, nil
	case count > known && maxID > lastID:
		newer, err := m.readHistoryAfter(ctx, q, lastID)
		if err != nil {
			return nil, err
		}
		if int64(len(newer)) != count-known {
			return m.readHistory(ctx, q, true)
		}
		for _, r := range newer {
			pre.addRecord(r)
		}
		if err := m.fillDetails(ctx, q, pre, unsettledIDs(newer)); err != nil {
			return nil, err
		}
		return pre, nil
	}
	return m.readHistory(ctx, q, true)
}

// loadHistory reads the history, or returns an empty one when the table
// does not exist yet. It never creates anything.
func (m *Migrator) loadHistory(ctx context.Context, q Querier, brief bool) (*history, bool, error) {
	ok, err := m.d.TableExists(ctx, q, m.table)
	if err != nil {
		return nil, false, fmt.Errorf("look for history table %s: %w", m.table, err)
	}
	if !ok {
		return buildHistory(nil), false, nil
	}
	h, err := m.readHistory(ctx, q, brief)
	return h, true, err
}

// ensureTables creates the history and lock tables if they are missing. It
// runs under the migration lock (or tolerates a concurrent creator).
func (m *Migrator) ensureTables(ctx context.Context, q Querier) error {
	// Both tables: a process killed between creating the one and the
	// other must not leave a database every later run fails on.
	for _, t := range []string{m.table, m.lockTable} {
		ok, err := m.d.TableExists(ctx, q, t)
		if err != nil {
			return fmt.Errorf("look for ferry table %s: %w", t, err)
		}
		if !ok {
			return m.createTables(ctx, q)
		}
	}
	return nil
}

// createTables creates ferry's schema (where the dialect has one) and
// tables; every statement is "if not exists".
func (m *Migrator) createTables(ctx context.Context, q Querier) error {
	if err := m.d.Prepare(ctx, q); err != nil {
		return err
	}
	stmts := append(m.d.HistoryDDL(m.table), m.d.LockTableDDL(m.lockTable)...)
	for _, s := range stmts {
		if _, err := q.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create ferry table: %w", err)
		}
	}
	return nil
}

// insertRecord appends a history row and returns its id.
func (m *Migrator) insertRecord(ctx context.Context, q Querier, r *Record) (int64, error) {
	ins, args := m.insertSQL(r, "")
	id, err := m.d.InsertReturningID(ctx, q, ins, args...)
	if err != nil {
		return 0, fmt.Errorf("record version %d in %s: %w", r.Version, m.table, err)
	}
	return id, nil
}

// insertSQL is the statement and arguments that append r to the history.
// elapsed, when not empty, is an SQL expression for the milliseconds to add
// to r.Duration (see dialect.Batcher).
func (m *Migrator) insertSQL(r *Record, elapsed string) (string, []any) {
	ph := make([]string, 10)
	for i := range ph {
		ph[i] = m.d.Placeholder(i + 1)
	}
	if elapsed != "" {
		// The duration is measured by the server when the row is written
		// (the last statement of a batch): r.Duration is still 0 then.
		ph[6] += " + " + elapsed
	}
	ins := "INSERT INTO " + m.d.Table(m.table) +
		" (version, name, checksum, operation, state, applied_at, duration_ms, applied_by, statement, error) VALUES (" +
		strings.Join(ph, ", ") + ")"
	var errText any
	if r.Error != "" {
		errText = r.Error
	}
	return ins, []any{r.Version, r.Name, r.Checksum, string(r.Operation), string(r.State), r.AppliedAt.UTC(), r.Duration.Milliseconds(), r.AppliedBy, r.Statement, errText}
}

// fencedInsertSQL is insertSQL's statement that writes the row only while
// this run holds the lease with token and holder (lock table row 1): the
// lease check and the history row in one statement.
func (m *Migrator) fencedInsertSQL() string {
	p := m.d.Placeholder
	ph := make([]string, 10)
	for i := range ph {
		ph[i] = p(i + 1)
	}
	return "INSERT INTO " + m.d.Table(m.table) +
		" (version, name, checksum, operation, state, applied_at, duration_ms, applied_by, statement, error) SELECT " +
		strings.Join(ph, ", ") + " WHERE EXISTS (SELECT 1 FROM " + m.d.Table(m.lockTable) + " WHERE id = 1 AND token = " + p(11) + " AND holder = " + p(12) + ")"
}

// runningRow returns the id of the history row that says version v is
// running: under the migration lock there is at most one.
func (m *Migrator) runningRow(ctx context.Context, q Querier, v int64) (int64, bool, error) {
	p := m.d.Placeholder
	var id sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT MAX(id) FROM "+m.d.Table(m.table)+" WHERE version = "+p(1)+" AND state = "+p(2), v, string(StateRunning)).Scan(&id)
	return id.Int64, id.Valid, err
}

// updateSQL is updateRecord's statement.
func (m *Migrator) updateSQL() string {
	p := m.d.Placeholder
	return "UPDATE " + m.d.Table(m.table) + " SET state = " + p(1) + ", duration_ms = " + p(2) + ", statement = " + p(3) + ", error = " + p(4) + " WHERE id = " + p(5)
}

// progressSQL is setProgress's statement.
func (m *Migrator) progressSQL() string {
	p := m.d.Placeholder
	return "UPDATE " + m.d.Table(m.table) + " SET statement = " + p(1) + " WHERE id = " + p(2)
}

// updateRecord sets the state, duration, statement and error of a row
// written earlier as running.
func (m *Migrator) updateRecord(ctx context.Context, q Querier, id int64, state State, d time.Duration, statement int, errText string) error {
	var e any
	if errText != "" {
		e = errText
	}
	_, err := q.ExecContext(ctx, m.updateSQL(), string(state), d.Milliseconds(), statement, e, id)
	if err != nil {
		return fmt.Errorf("update history row %d in %s: %w", id, m.table, err)
	}
	return nil
}

// setProgress records which statement of a running migration is next.
func (m *Migrator) setProgress(ctx context.Context, q Querier, id int64, statement int) error {
	_, err := q.ExecContext(ctx, m.progressSQL(), statement, id)
	if err != nil {
		return fmt.Errorf("update history row %d in %s: %w", id, m.table, err)
	}
	return nil
}
