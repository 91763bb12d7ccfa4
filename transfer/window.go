package transfer

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/database"
)

// Window keeps only an export's recent rows: in each table with a time
// column (Columns maps table to column), the rows whose time is at or
// after the cutoff, closed under foreign keys so that the export imports
// with every constraint on:
//
//   - the parents of kept rows are kept, in or out of their own window
//     (a recent task keeps its old run);
//   - a row of a table without a time column that references a table the
//     window filters is kept only when its parents are (the logs of a
//     dropped run are dropped too), unless a kept row references it;
//   - tables that reference nothing filtered are exported whole.
//
// The closure is computed in the export's snapshot: the keys of the kept
// rows of every filtered table that another filtered table references are
// held in memory (the rows themselves are streamed as always). A NULL
// time is outside the window.
type Window struct {
	// Since is how far back the window reaches from the snapshot's time,
	// unless Cutoff is set.
	Since  time.Duration
	Cutoff time.Time
	// Reach is how the window was asked for ("30d"), for the manifest.
	Reach string
	// Columns maps a table to its time column.
	Columns map[string]string
}

// WindowRecord is a window as the manifest records it.
type WindowRecord struct {
	Since   string            `json:"since,omitempty"`
	Cutoff  time.Time         `json:"cutoff"`
	Columns map[string]string `json:"columns"`
}

// ParseSince reads a window's reach: a duration with weeks, days, hours,
// minutes (m) or seconds ("30d", "2w", "36h", "1d12h") or a date or time
// ("2026-10-01", "2026-10-01T12:00:00Z"). It returns either the duration
// or the time.
func ParseSince(s string) (time.Duration, time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return 0, t.UTC(), nil
		}
	}
	rest, total := s, time.Duration(0)
	for _, unit := range []struct {
		suffix string
		d      time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}} {
		if i := strings.Index(rest, unit.suffix); i > 0 {
			n, err := strconv.Atoi(rest[:i])
			if err != nil || n < 0 {
				return 0, time.Time{}, fmt.Errorf("--since %q: use a duration such as 30d, 2w or 36h, or a date such as 2026-10-01", s)
			}
			if n > 100*366 {
				return 0, time.Time{}, fmt.Errorf("--since %q: more than a hundred years; give a date instead", s)
			}
			total += time.Duration(n) * unit.d
			rest = rest[i+1:]
		}
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("--since %q: use a duration such as 30d, 2w or 36h, or a date such as 2026-10-01", s)
		}
		total += d
	}
	if total <= 0 {
		return 0, time.Time{}, fmt.Errorf("--since %q: the window must reach back more than nothing", s)
	}
	return total, time.Time{}, nil
}

// ErrWindow is wrapped by the error of an export whose window names a
// table or column that is not there, or not a time.
var ErrWindow = errors.New("the window (--since) does not fit the tables")

// rowFilter is how a windowed export selects a table's rows: a WHERE
// condition, and a test of each row read.
type rowFilter struct {
	where string
	// flag is a condition read with each row (the window's), for keep.
	flag string
	keep func(row []any, flagged bool) bool
	// desc says in the manifest how the rows were selected.
	desc string
}

// keySet is the kept keys of a table's referenced columns.
type keySet map[string]struct{}

// windowClosure computes the window's filters for tables, in the snapshot
// q reads.
type windowClosure struct {
	kind     string
	tables   map[string]*Table
	cond     map[string]string // windowed table -> its SQL condition
	filtered map[string]bool   // windowed tables and every table referencing one, transitively
	// kept holds the kept keys of each referenced column set of a
	// filtered table that a filtered table references:
	// "table\x00col,col" -> keys.
	kept map[string]keySet
	// refs lists, per filtered table, the column sets other filtered
	// tables reference.
	refs map[string][][]string
	// fold compares text keys as MySQL's default collations do: case
	// and trailing spaces aside.
	fold bool
}

func refKey(table string, cols []string) string { return table + "\x00" + strings.Join(cols, ",") }

// windowColumns checks the window's time columns against tables (by
// name): each table exported, each column there, of a time type (or, in
// SQLite, one that may hold times). The error wraps ErrWindow and names
// every problem.
func windowColumns(kind string, tables map[string]*Table, w *Window) error {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(w.Columns)) {
		col := w.Columns[name]
		t := tables[name]
		if t == nil {
			problems = append(problems, fmt.Sprintf("the window's table %s is not exported", name))
			continue
		}
		c := t.column(col)
		if c == nil {
			problems = append(problems, fmt.Sprintf("the window's time column %s.%s does not exist", name, col))
			continue
		}
		switch classify(kind, c.Type).class {
		case cTimeTZ, cTime, cDate:
		case cText, cInt, cOther:
			if kind == database.SQLite {
				break // SQLite keeps times as text or Unix seconds
			}
			fallthrough
		default:
			problems = append(problems, fmt.Sprintf("the window's column %s.%s is %s, not a time", name, col, c.Type))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrWindow, strings.Join(problems, "; "))
	}
	return nil
}

// resolveWindow validates w against tables and computes each filtered
// table's filter and description.
func resolveWindow(ctx context.Context, q querier, kind string, tables []TableExport, w *Window, snapAt time.Time) (*WindowRecord, map[string]rowFilter, error) {
	cutoff := w.Cutoff
	if cutoff.IsZero() {
		cutoff = snapAt.Add(-w.Since)
	}
	rec := &WindowRecord{Cutoff: cutoff.UTC(), Columns: w.Columns}
	if w.Since > 0 && w.Cutoff.IsZero() {
		rec.Since = cmp.Or(w.Reach, w.Since.String())
	}
	wc := &windowClosure{kind: kind, tables: map[string]*Table{}, cond: map[string]string{}, filtered: map[string]bool{},
		kept: map[string]keySet{}, refs: map[string][][]string{}, fold: kind == database.MySQL}
	for i := range tables {
		wc.tables[tables[i].Name] = &tables[i].Table
	}
	if err := windowColumns(kind, wc.tables, w); err != nil {
		return nil, nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(w.Columns)) {
		col := w.Columns[name]
		t := wc.tables[name]
		if kind == database.SQLite {
			if err := notTimes(ctx, q, t, col); err != nil {
				return nil, nil, err
			}
		}
		wc.cond[name] = windowCondition(kind, t.column(col), cutoff)
		wc.filtered[name] = true
	}
	// Every table that references a filtered table is filtered too.
	for grew := true; grew; {
		grew = false
		for _, t := range wc.tables {
			if wc.filtered[t.Name] {
				continue
			}
			for _, fk := range t.ForeignKeys {
				if wc.filtered[fk.RefTable] {
					wc.filtered[t.Name], grew = true, true
					break
				}
			}
		}
	}
	for _, t := range wc.tables {
		if !wc.filtered[t.Name] {
			continue
		}
		for _, fk := range t.ForeignKeys {
			if fk.RefTable == t.Name && slices.Equal(fk.Columns, fk.RefColumns) {
				continue
			}
			if wc.filtered[fk.RefTable] && !slices.ContainsFunc(wc.refs[fk.RefTable], func(c []string) bool { return slices.Equal(c, fk.RefColumns) }) {
				wc.refs[fk.RefTable] = append(wc.refs[fk.RefTable], fk.RefColumns)
				wc.kept[refKey(fk.RefTable, fk.RefColumns)] = keySet{}
			}
		}
	}
	if err := wc.close(ctx, q); err != nil {
		return nil, nil, fmt.Errorf("the window (--since): %w", err)
	}
	filters := map[string]rowFilter{}
	for name := range wc.filtered {
		filters[name] = wc.filter(wc.tables[name])
	}
	return rec, filters, nil
}

// windowCondition is the SQL condition that a row of column c is in the
// window.
func windowCondition(kind string, c *Column, cutoff time.Time) string {
	q := quoteIdent(kind, c.Name)
	cutoff = cutoff.UTC()
	switch kind {
	case database.Postgres:
		return q + " >= '" + cutoff.Format("2006-01-02 15:04:05.999999") + "+00'"
	case database.MySQL:
		// The snapshot's session is in UTC.
		return q + " >= '" + cutoff.Format("2006-01-02 15:04:05.999999") + "'"
	}
	// By value, whatever the column's declared type: text in any of
	// SQLite's time forms (offsets included), or a number ('auto': Unix
	// seconds, or a Julian day number below 5373484.5).
	return sqliteTime(q) + " >= julianday('" + cutoff.Format("2006-01-02 15:04:05.999") + "')"
}

// sqliteTime is the Julian day of SQLite column q's value, NULL when it
// is not a time (see notTimes).
func sqliteTime(q string) string { return "julianday(" + q + ", 'auto')" }

// notTimes refuses a SQLite time column that holds values that are not
// times: the window would leave their rows out without a word.
func notTimes(ctx context.Context, q querier, t *Table, col string) error {
	c := quoteIdent(database.SQLite, col)
	var n int64
	var sample sql.NullString
	err := q.QueryRowContext(ctx, "SELECT count(*), CAST(min("+c+") AS TEXT) FROM "+quoteIdent(database.SQLite, t.Name)+
		" WHERE "+c+" IS NOT NULL AND "+sqliteTime(c)+" IS NULL").Scan(&n, &sample)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: the window's column %s.%s holds values that are not times (%d of them, %q among them), which the window would leave out with their rows: make them times (or NULL, which is outside the window), or window the table by another column", ErrWindow, t.Name, col, n, sample.String)
	}
	return nil
}

// parentFKs are t's foreign keys into filtered tables (a self-reference
// on its own key aside).
func (wc *windowClosure) parentFKs(t *Table) []ForeignKey {
	var out []ForeignKey
	for _, fk := range t.ForeignKeys {
		if wc.filtered[fk.RefTable] && !(fk.RefTable == t.Name && slices.Equal(fk.Columns, fk.RefColumns)) {
			out = append(out, fk)
		}
	}
	return out
}

// keyCols reads the columns of some column lists of a table's rows.
type keyCols struct {
	sets [][]string // column lists
	idx  [][]int    // their indexes in the read columns
	read *Table     // t with only the columns read
}

func newKeyCols(t *Table, sets [][]string) *keyCols {
	kc := &keyCols{sets: sets, read: &Table{Name: t.Name, Partitioned: t.Partitioned}}
	pos := map[string]int{}
	for _, set := range sets {
		var idx []int
		for _, c := range set {
			i, ok := pos[c]
			if !ok {
				i = len(kc.read.Columns)
				pos[c] = i
				kc.read.Columns = append(kc.read.Columns, *t.column(c))
			}
			idx = append(idx, i)
		}
		kc.idx = append(kc.idx, idx)
	}
	return kc
}

// key encodes the values at idx of row as a key; false when one is NULL.
func (wc *windowClosure) key(buf []byte, row []any, idx []int) ([]byte, bool) {
	buf = buf[:0]
	for _, i := range idx {
		v := row[i]
		if v == nil {
			return buf, false
		}
		if wc.fold {
			switch x := v.(type) {
			case rawText:
				v = strings.ToLower(strings.TrimRight(string(x), " "))
			case string:
				v = strings.ToLower(strings.TrimRight(x, " "))
			}
		}
		buf = appendValue(buf, v)
		buf = append(buf, 0)
	}
	return buf, true
}

// each reads t's rows where holds and calls fn with the row.
func (kc *keyCols) each(ctx context.Context, q querier, kind, where string, fn func(row []any) error) error {
	r, err := readRowsWhere(ctx, q, kind, kc.read, where, "", nil)
	if err != nil {
		return err
	}
	defer r.close()
	for {
		ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(r.values()); err != nil {
			return err
		}
	}
}

// close computes the kept keys: the window's rows and their parents,
// then, until nothing changes, the rows whose parents are kept and the
// parents of rows kept.
func (wc *windowClosure) close(ctx context.Context, q querier) error {
	type scan struct {
		t       *Table
		kc      *keyCols
		parents []ForeignKey
		nrefs   int // the first nrefs sets of kc are the table's referenced column lists
	}
	scans := map[string]*scan{}
	for name := range wc.filtered {
		t := wc.tables[name]
		s := &scan{t: t, parents: wc.parentFKs(t), nrefs: len(wc.refs[name])}
		sets := slices.Clone(wc.refs[name])
		for _, fk := range s.parents {
			sets = append(sets, fk.Columns)
		}
		s.kc = newKeyCols(t, sets)
		scans[name] = s
	}
	var buf []byte
	// keepRow adds a kept row's own keys and its parents' keys; it
	// reports whether a key was new.
	keepRow := func(s *scan, row []any) bool {
		grew := false
		for i, idx := range s.kc.idx {
			var ok bool
			if buf, ok = wc.key(buf, row, idx); !ok {
				continue
			}
			set := wc.kept[refKey(s.t.Name, s.kc.sets[i])]
			if i >= s.nrefs {
				fk := s.parents[i-s.nrefs]
				set = wc.kept[refKey(fk.RefTable, fk.RefColumns)]
			}
			if _, ok := set[string(buf)]; !ok {
				set[string(buf)] = struct{}{}
				grew = true
			}
		}
		return grew
	}
	names := slices.Sorted(maps.Keys(wc.filtered))
	for _, name := range names {
		if cond, ok := wc.cond[name]; ok {
			s := scans[name]
			if len(s.kc.sets) == 0 {
				// Nothing references its rows and it references no
				// filtered table: its condition alone decides, as it is
				// exported (and a query of no columns is not SQL).
				continue
			}
			if err := s.kc.each(ctx, q, wc.kind, cond, func(row []any) error { keepRow(s, row); return nil }); err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
		}
	}
	// Only tables another filtered table references need their kept keys;
	// a table nothing references is decided row by row as it is
	// exported, from its parents' keys.
	for grew := true; grew; {
		grew = false
		for _, name := range names {
			s := scans[name]
			if s.nrefs == 0 {
				continue
			}
			_, windowed := wc.cond[name]
			err := s.kc.each(ctx, q, wc.kind, "", func(row []any) error {
				if wc.keptBySet(s.t.Name, s.kc.sets[:s.nrefs], s.kc.idx[:s.nrefs], row) ||
					(!windowed && wc.parentsKept(s.parents, s.kc.idx[s.nrefs:], row)) {
					if keepRow(s, row) {
						grew = true
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
		}
	}
	return nil
}

// keptBySet reports whether one of the row's referenced keys is kept.
func (wc *windowClosure) keptBySet(table string, sets [][]string, idx [][]int, row []any) bool {
	var buf []byte
	for i, set := range sets {
		var ok bool
		if buf, ok = wc.key(buf, row, idx[i]); !ok {
			continue
		}
		if _, ok := wc.kept[refKey(table, set)][string(buf)]; ok {
			return true
		}
	}
	return false
}

// parentsKept reports whether every parent the row references (in the
// filtered tables) is kept.
func (wc *windowClosure) parentsKept(fks []ForeignKey, idx [][]int, row []any) bool {
	var buf []byte
	for i, fk := range fks {
		var ok bool
		if buf, ok = wc.key(buf, row, idx[i]); !ok {
			continue // NULL: no parent
		}
		if _, ok := wc.kept[refKey(fk.RefTable, fk.RefColumns)][string(buf)]; !ok {
			return false
		}
	}
	return true
}

// filter is how table t's exported rows are selected.
func (wc *windowClosure) filter(t *Table) rowFilter {
	cond, windowed := wc.cond[t.Name]
	refs, parents := wc.refs[t.Name], wc.parentFKs(t)
	idxOf := func(cols []string) []int {
		var idx []int
		for _, c := range cols {
			idx = append(idx, slices.IndexFunc(t.Columns, func(x Column) bool { return x.Name == c }))
		}
		return idx
	}
	var refIdx, parIdx [][]int
	for _, set := range refs {
		refIdx = append(refIdx, idxOf(set))
	}
	for _, fk := range parents {
		parIdx = append(parIdx, idxOf(fk.Columns))
	}
	var why []string
	if windowed {
		why = append(why, cond)
	} else {
		var names []string
		for _, fk := range parents {
			if !slices.Contains(names, fk.RefTable) {
				names = append(names, fk.RefTable)
			}
		}
		why = append(why, "rows whose parents in "+strings.Join(names, ", ")+" are kept")
	}
	if len(refs) > 0 {
		why = append(why, "rows that kept rows reference")
	}
	desc := "window: " + strings.Join(why, ", and ")
	switch {
	case len(refs) > 0:
		// Rows other rows reference (their kept keys), and the table's
		// own rule: the window, or kept parents. A row whose referenced
		// key is NULL has no kept key but may be in.
		f := rowFilter{desc: desc}
		if windowed {
			f.flag = cond
		}
		f.keep = func(row []any, in bool) bool {
			if wc.keptBySet(t.Name, refs, refIdx, row) {
				return true
			}
			if windowed {
				return in
			}
			return wc.parentsKept(parents, parIdx, row)
		}
		return f
	case windowed:
		return rowFilter{desc: desc, where: cond}
	default:
		return rowFilter{desc: desc, keep: func(row []any, _ bool) bool { return wc.parentsKept(parents, parIdx, row) }}
	}
}
