package transfer

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ferrydb/ferry/database"
)

// maxMemoryKeys bounds the parent keys that the verification holds to
// check foreign keys as it reads the rows (8 bytes each: 8 MiB).
const maxMemoryKeys = 1 << 20

// memFK is a foreign key that the verification checks as it reads its
// table's rows, against its parent's keys held sorted in memory, instead
// of with a query afterwards (an anti-join that reads the whole table
// again, or its index). It is a key of one integer column whose parent
// is a table of this import small enough (maxMemoryKeys). A value that
// is not an integer after all leaves it undecided: the query decides.
type memFK struct {
	table, col int // the child's index in im.tables, the column's in its columns
	fki        int // the key's index in the child's foreign keys
	fk         ForeignKey
	keys       []int64
	orphans    atomic.Int64
	undecided  atomic.Bool
}

// check counts the row's value v of the key's column.
func (f *memFK) check(v int64, null, ok bool) {
	switch {
	case null: // not checked, as the databases do
	case !ok:
		f.undecided.Store(true)
	default:
		if _, found := slices.BinarySearch(f.keys, v); !found {
			f.orphans.Add(1)
		}
	}
}

// memoryFKs picks the foreign keys that the verification can check in
// memory (see memFK), their parents' keys not yet read.
func (im *importer) memoryFKs() []*memFK {
	if im.db.URL.Kind == database.Postgres {
		return nil // PostgreSQL checked them during the load
	}
	index := make(map[string]int, len(im.tables))
	for i, t := range im.tables {
		index[t.Name] = i
	}
	var out []*memFK
	var keys int64
	limit := cmp.Or(im.opts.memoryKeys, maxMemoryKeys)
	for ti, t := range im.tables {
		for fki, fk := range t.ForeignKeys {
			pi, ok := index[fk.RefTable]
			if len(fk.Columns) != 1 || !ok {
				continue
			}
			parent := im.tables[pi]
			ci := slices.IndexFunc(t.Columns, func(c Column) bool { return c.Name == fk.Columns[0] })
			pc := slices.IndexFunc(parent.Columns, func(c Column) bool { return c.Name == fk.RefColumns[0] })
			if ci < 0 || pc < 0 || !integerType(t.Columns[ci].Type) || !integerType(parent.Columns[pc].Type) ||
				keys+parent.Rows > limit {
				continue
			}
			keys += parent.Rows
			out = append(out, &memFK{table: ti, col: ci, fki: fki, fk: fk})
		}
	}
	return out
}

// integerType reports whether a column type holds integers only.
func integerType(t string) bool {
	t = strings.ToLower(strings.TrimSpace(t))
	if i := strings.IndexAny(t, "( "); i >= 0 {
		t = t[:i]
	}
	switch t {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "int2", "int4", "int8":
		return true
	}
	return false
}

// readParentKeys reads each key's parent values, sorted, through s (on
// MySQL outside any transaction: each read takes a snapshot of its own,
// once the parent's keys are re-created; see verify). A value that is
// not an integer, or more values than the manifest said, leave the key
// undecided.
func (im *importer) readParentKeys(ctx context.Context, s *snapshot, fks []*memFK) error {
	for _, f := range fks {
		table, col := f.fk.RefTable, f.fk.RefColumns[0]
		mysql := im.db.URL.Kind == database.MySQL
		if mysql {
			if err := im.restores.ready(ctx, table); err != nil {
				return err
			}
			if _, err := s.conn.ExecContext(ctx, `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`); err != nil {
				return err
			}
		}
		err := func() error {
			rows, err := s.q.QueryContext(ctx, "SELECT "+quoteIdent(im.db.URL.Kind, col)+" FROM "+quoteIdent(im.db.URL.Kind, table)+
				" WHERE "+quoteIdent(im.db.URL.Kind, col)+" IS NOT NULL")
			if err != nil {
				return err
			}
			defer rows.Close()
			var v any
			for rows.Next() {
				if err := rows.Scan(&v); err != nil {
					return err
				}
				n, ok := asInt(v)
				if !ok || len(f.keys) == maxMemoryKeys {
					f.undecided.Store(true)
					break
				}
				f.keys = append(f.keys, n)
			}
			return rows.Err()
		}()
		if mysql {
			if _, cerr := s.conn.ExecContext(ctx, `COMMIT`); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("verify table %s, foreign key %s: read %s (%s): %w", im.tables[f.table].Name, f.fk.Name, table, col, err)
		}
		slices.Sort(f.keys)
	}
	return nil
}

// memoryProblems reports the decided keys' missing parents, as orphans
// does, and returns tables without those keys, for the query to check
// the rest.
func memoryProblems(tables []TableExport, fks []*memFK) ([]Problem, []TableExport) {
	var problems []Problem
	decided := map[[2]int]bool{}
	for _, f := range fks {
		if f.undecided.Load() {
			continue
		}
		decided[[2]int{f.table, f.fki}] = true
		if n := f.orphans.Load(); n > 0 {
			problems = append(problems, orphanProblem(tables[f.table].Name, f.fk, n))
		}
	}
	rest := slices.Clone(tables)
	for i, t := range rest {
		var left []ForeignKey
		for fki, fk := range t.ForeignKeys {
			if !decided[[2]int{i, fki}] {
				left = append(left, fk)
			}
		}
		rest[i].ForeignKeys = left
	}
	return problems, rest
}
