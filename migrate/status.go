package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// AppliedMigration is an applied migration in a Status.
type AppliedMigration struct {
	Version int64
	Name    string
	// Operation says how it came to be applied: up, baseline, repair or
	// adopt.
	Operation Op
	AppliedAt time.Time
	Duration  time.Duration
	AppliedBy string
	Checksum  string
	// File is empty when the migration's file is missing.
	File string
}

// PendingMigration is a migration not applied yet.
type PendingMigration struct {
	Version int64
	Name    string
	File    string
	// LastError is the error of the last attempt, when a transactional
	// attempt failed and was rolled back.
	LastError string
}

// Status is the state of the database against the migrations. Its wire
// form (ferry status --json, the service's /v1/status) is package
// server/api's.
type Status struct {
	Dialect        string
	HistoryTable   string
	CurrentVersion int64
	LatestVersion  int64
	IsUpToDate     bool
	Pending        []int64
	// PendingMigrations details Pending.
	PendingMigrations []PendingMigration
	Applied           []AppliedMigration
	// AppliedCount is the number of applied migrations; Applied lists all
	// of them unless StatusWith was asked for fewer.
	AppliedCount int
	Failed       []Failure
	// Missing lists applied migrations whose file is gone.
	Missing []AppliedMigration
	Lock    *LockInfo
	// MigrationInProgress is true while a process holds the migration lock.
	MigrationInProgress bool
}

// Status reports the current and latest versions, applied, pending and
// failed migrations, and who holds the migration lock. It changes nothing,
// and works before the history table exists.
func (m *Migrator) Status(ctx context.Context) (*Status, error) {
	return m.StatusWith(ctx, StatusOptions{})
}

// StatusOptions limit how much of the applied history a status describes.
type StatusOptions struct {
	// Applied is how many of the most recently applied migrations the
	// status lists, with when, how long and by whom: 0 lists every one, a
	// negative number none. Versions, pending and failed migrations and the
	// lock are always complete. A short list spares reading the details of
	// a long history (a service answering status requests does not need
	// them).
	Applied int
}

// StatusWith is Status with fewer applied migrations listed. Brief
// statuses reuse the history the last one read while the history table has
// not changed since (one cheap query tells), so that a service answering
// many status requests on a long history does not read it every time.
func (m *Migrator) StatusWith(ctx context.Context, opts StatusOptions) (*Status, error) {
	// The lock is read before the history: a holder commits its last
	// migration before it lets go, so a status that shows the lock free
	// shows everything that holder applied. (Read the other way round, a
	// holder that finished between the two reads would look idle with its
	// last migration missing.)
	lock, err := m.lockInfo(ctx, m.db)
	if err != nil {
		return nil, err
	}
	if opts.Applied == 0 {
		h, _, err := m.loadHistory(ctx, m.db, false)
		if err != nil {
			return nil, err
		}
		return m.status(h, lock, 0), nil
	}
	c := &m.statusCache
	c.mu.Lock()
	defer c.mu.Unlock()
	h, err := c.history(ctx, m)
	if err != nil {
		return nil, err
	}
	// The details of the listed migrations, and of applied ones whose file
	// is gone (their name comes from the history alone).
	all := h.appliedVersions()
	var ids []int64
	for i, v := range all {
		if rec := h.versions[v].last; rec.AppliedBy == "" && (i >= len(all)-opts.Applied || m.byVersion[v] == nil) {
			ids = append(ids, rec.ID)
		}
	}
	if err := m.fillDetails(ctx, m.db, h, ids); err != nil {
		return nil, err
	}
	return m.status(h, lock, opts.Applied), nil
}

// historyCache keeps the brief history between statuses. Rows are only
// ever appended to the history table, except that a running row (MySQL, a
// no-transaction migration) is updated in place until it ends, and a
// restore replaces the table: the count and the highest id tell the cases
// apart.
type historyCache struct {
	mu           sync.Mutex
	h            *history
	count, maxID int64
}

// history returns the brief history, read afresh only as far as needed.
func (c *historyCache) history(ctx context.Context, m *Migrator) (*history, error) {
	exists, err := m.d.TableExists(ctx, m.db, m.table)
	if err != nil {
		return nil, fmt.Errorf("look for history table %s: %w", m.table, err)
	}
	if !exists {
		c.h = nil
		return buildHistory(nil), nil
	}
	if c.h == nil {
		// Nothing to compare with: read it all, and take the count and the
		// highest id from the rows themselves.
		return c.reload(ctx, m)
	}
	var count, maxID int64
	if err := m.db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM "+m.d.Table(m.table)).Scan(&count, &maxID); err != nil {
		return nil, fmt.Errorf("read history table %s: %w", m.table, err)
	}
	reload := count < c.count || maxID < c.maxID
	if !reload {
		for _, r := range c.h.records {
			if r.State == StateRunning { // may have changed in place
				reload = true
				break
			}
		}
	}
	if !reload && count > c.count {
		// Read the appended rows; if they are not exactly the new ones,
		// the table was rewritten.
		newer, err := m.readHistoryAfter(ctx, m.db, c.maxID)
		if err != nil {
			return nil, err
		}
		if int64(len(newer)) != count-c.count {
			reload = true
		} else {
			for _, r := range newer {
				c.h.addRecord(r)
			}
			if err := m.fillDetails(ctx, m.db, c.h, unsettledIDs(newer)); err != nil {
				return nil, err
			}
		}
	}
	if reload {
		return c.reload(ctx, m)
	}
	c.count, c.maxID = count, maxID
	return c.h, nil
}

// reload reads the whole brief history.
func (c *historyCache) reload(ctx context.Context, m *Migrator) (*history, error) {
	h, err := m.readHistory(ctx, m.db, true)
	if err != nil {
		c.h = nil
		return nil, err
	}
	c.h, c.count, c.maxID = h, int64(len(h.records)), 0
	if n := len(h.records); n > 0 {
		c.maxID = h.records[n-1].ID
	}
	return h, nil
}

// appliedVersions lists the applied versions in order. The list is
// shared: callers must not modify it.
func (h *history) appliedVersions() []int64 {
	if h.applied != nil {
		return h.applied
	}
	// Walk the records rather than the map: versions are mostly applied
	// in order, so the list usually needs no sorting.
	vs := make([]int64, 0, len(h.versions))
	for _, r := range h.records {
		if s := h.versions[r.Version]; s.applied && s.last == r {
			vs = append(vs, r.Version)
		}
	}
	if !slices.IsSorted(vs) {
		slices.Sort(vs)
	}
	h.applied = vs
	return vs
}

func (m *Migrator) status(h *history, lock *LockInfo, listApplied int) *Status {
	all := h.appliedVersions()
	var current int64
	if len(all) > 0 {
		current = all[len(all)-1]
	}
	s := &Status{
		Dialect: m.d.Name(), HistoryTable: m.table,
		CurrentVersion: current, LatestVersion: m.latest(),
		Pending: []int64{}, PendingMigrations: []PendingMigration{},
		Applied: []AppliedMigration{}, Failed: []Failure{}, Missing: []AppliedMigration{},
		Lock: lock, MigrationInProgress: lock != nil && lock.Held,
	}
	s.AppliedCount = len(all)
	// The listed ones are the most recent: all from index first on.
	first := len(all)
	switch {
	case listApplied == 0:
		first = 0
	case listApplied > 0:
		first = max(0, len(all)-listApplied)
	}
	for i, v := range all {
		mig := m.byVersion[v]
		if mig != nil && i < first {
			continue // neither listed nor missing
		}
		last := h.versions[v].last
		a := AppliedMigration{
			Version: v, Name: last.Name, Operation: last.Operation, AppliedAt: last.AppliedAt,
			Duration: last.Duration, AppliedBy: last.AppliedBy, Checksum: last.Checksum,
		}
		if mig == nil {
			s.Missing = append(s.Missing, a)
		} else {
			a.File = mig.Source
		}
		if i >= first {
			s.Applied = append(s.Applied, a)
		}
	}
	if f := m.failures(h, s.MigrationInProgress); f != nil {
		s.Failed = f
	}
	for _, mig := range m.migrations {
		vs := h.state(mig.Version)
		if vs.applied || vs.blocked != nil {
			continue
		}
		p := PendingMigration{Version: mig.Version, Name: mig.Name, File: mig.Source}
		if vs.failure != nil && (vs.last == nil || vs.failure.ID > vs.last.ID) {
			p.LastError = vs.failure.Error
		}
		s.Pending = append(s.Pending, mig.Version)
		s.PendingMigrations = append(s.PendingMigrations, p)
	}
	s.IsUpToDate = len(s.Pending) == 0 && len(s.Failed) == 0
	return s
}

// History returns every row of the history table, oldest first.
func (m *Migrator) History(ctx context.Context) ([]Record, error) {
	h, _, err := m.loadHistory(ctx, m.db, false)
	if err != nil {
		return nil, err
	}
	out := make([]Record, len(h.records))
	for i, r := range h.records {
		out[i] = *r
	}
	return out, nil
}

// HistoryPage returns up to limit rows of the history table with an id
// above after, in id order: the history a page at a time (after 0 is the
// first page; the last row's ID is the next page's after).
func (m *Migrator) HistoryPage(ctx context.Context, after int64, limit int) ([]Record, error) {
	return m.historyPage(ctx, "id > "+strconv.FormatInt(after, 10)+" ORDER BY id", limit)
}

// HistoryBefore returns up to limit rows of the history table with an id
// below before (0: from the newest), newest first: the history as a
// console shows it, a page at a time.
func (m *Migrator) HistoryBefore(ctx context.Context, before int64, limit int) ([]Record, error) {
	where := "1 = 1"
	if before > 0 {
		where = "id < " + strconv.FormatInt(before, 10)
	}
	return m.historyPage(ctx, where+" ORDER BY id DESC", limit)
}

// historyPage reads up to limit rows of the history table matching cond
// (a WHERE condition with its ORDER BY).
func (m *Migrator) historyPage(ctx context.Context, cond string, limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("history page: limit %d: want 1 or more", limit)
	}
	ok, err := m.d.TableExists(ctx, m.db, m.table)
	if err != nil {
		return nil, fmt.Errorf("look for history table %s: %w", m.table, err)
	}
	if !ok {
		return []Record{}, nil
	}
	rows, err := m.db.QueryContext(ctx, "SELECT "+historyColumns+" FROM "+m.d.Table(m.table)+
		" WHERE "+cond+" LIMIT "+strconv.Itoa(limit))
	if err != nil {
		return nil, fmt.Errorf("read history table %s: %w", m.table, err)
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("read history table %s: %w", m.table, err)
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// Problem is one finding of Validate.
type Problem struct {
	Version int64
	File    string
	Message string
}

func (p Problem) String() string { return p.Message }

// drift finds applied migrations whose file was edited or removed.
func (m *Migrator) drift(h *history) []Problem {
	var out []Problem
	versions := make([]int64, 0, len(h.versions))
	for v, s := range h.versions {
		if s.applied {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	for _, v := range versions {
		last := h.versions[v].last
		mig := m.byVersion[v]
		switch {
		case mig == nil:
			out = append(out, Problem{Version: v, Message: fmt.Sprintf("version %d (%s) is applied but its migration file is missing; restore the file", v, last.Name)})
		case mig.Checksum != "" && last.Checksum != "" && mig.Checksum != last.Checksum:
			out = append(out, Problem{Version: v, File: mig.Source, Message: fmt.Sprintf("%s was edited after it was applied (checksum recorded %s, file now %s); revert the edit and put the change in a new migration",
				mig.Source, short(last.Checksum), short(mig.Checksum))})
		}
	}
	return out
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// Validate checks the migrations against the database: every file parses,
// every applied migration still has its file with the same checksum, no
// migration needs repair, and (unless allowed) no pending migration is
// older than the newest applied one. It changes nothing.
func (m *Migrator) Validate(ctx context.Context) ([]Problem, error) {
	h, _, err := m.loadHistory(ctx, m.db, false)
	if err != nil {
		return nil, err
	}
	var problems []Problem
	if err := m.Check(); err != nil {
		var le *LoadError
		if !errors.As(err, &le) {
			return nil, err
		}
		for _, e := range le.Errs {
			p := Problem{Message: e.Error()}
			var fe *FileError
			if errors.As(e, &fe) {
				p.File = fe.File
			}
			problems = append(problems, p)
		}
	}
	problems = append(problems, m.drift(h)...)
	for _, f := range m.failures(h, false) {
		problems = append(problems, Problem{Version: f.Version, File: f.File, Message: f.Describe()})
	}
	if !m.allowOutOfOrder {
		maxApplied := h.maxApplied()
		for _, mig := range m.migrations {
			if !h.state(mig.Version).applied && mig.Version < maxApplied {
				problems = append(problems, Problem{Version: mig.Version, File: mig.Source, Message: fmt.Sprintf(
					"%s is pending but older than the newest applied version %d (out of order); renumber it above %d or allow out-of-order migrations",
					mig, maxApplied, maxApplied)})
			}
		}
	}
	return problems, nil
}
