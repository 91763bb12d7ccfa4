package transfer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/database"
)

// What a key that matched on one engine and not on the other means when
// MySQL is one of the two: MySQL compares text by the column's
// collation, which by default ignores case, accents and trailing spaces;
// PostgreSQL and SQLite compare the characters.
const (
	collationFromMySQL = "MySQL, where these rows were exported from, matched these text keys by the column's collation (by default ignoring case, accents and trailing spaces) and %s matches them exactly: make each referencing row's key equal to its parent's on the source, and export again"
	collationIntoMySQL = "if the source's two keys differ only in case, accents or trailing spaces: MySQL compares text keys by the column's collation (by default ignoring those) and %s, where these rows were exported from, compares them exactly, so they are one key here: give the column a binary collation (COLLATE utf8mb4_bin) in a migration, or make the keys differ on the source; if they are the same key, the source holds it twice, which the target's unique key refuses"
)

// keyCollation adds what the engines' comparison of text says to a load's
// error that a key raised (a duplicate key on a MySQL target, a missing
// parent on a target fed from MySQL), when the export comes from another
// engine.
func (im *importer) keyCollation(err error) error {
	src, dst := im.m.Source.Engine, im.db.URL.Kind
	if err == nil || src == dst {
		return err
	}
	var pg *pgconn.PgError
	var my *mysql.MySQLError
	var lw *loadWarning
	sep := "; " // after PostgreSQL's detail, a sentence, a space
	if strings.HasSuffix(err.Error(), ".") {
		sep = " "
	}
	switch {
	case src == database.MySQL && errors.As(err, &pg) && pg.Code == "23503" && textual(between(pg.Detail, ")=(", ") is not present")):
		return fmt.Errorf("%w"+sep+collationFromMySQL, err, engineName(dst))
	case dst == database.MySQL && errors.As(err, &my) && my.Number == 1062 && textual(between(my.Message, "entry '", "' for key")),
		dst == database.MySQL && errors.As(err, &lw) && lw.code == 1062 && lw.textKey:
		return fmt.Errorf("%w"+sep+collationIntoMySQL, err, engineName(src))
	}
	return err
}

// between is the part of s after the first from and before the last to
// after it ("" if either is missing).
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if i := strings.LastIndex(rest, to); ok && i >= 0 {
		return rest[:i]
	}
	return ""
}

// textual reports whether a key's value, as a database error quotes it,
// could match another only by a collation: it has a letter (not a
// number, a date and time, a key of numbers).
func textual(v string) bool { return strings.ContainsFunc(v, unicode.IsLetter) }

// engineName is how an engine's name is written in messages.
func engineName(kind string) string {
	switch kind {
	case database.Postgres:
		return "PostgreSQL"
	case database.MySQL:
		return "MySQL"
	}
	return "SQLite"
}

// textKey reports whether any of table's columns holds text.
func (im *importer) textKey(table string, columns []string) bool {
	t := im.table(table)
	if t == nil {
		return false
	}
	for _, c := range t.Columns {
		if slices.Contains(columns, c.Name) && classifyType(im.db.URL.Kind, c.Type).class == cText {
			return true
		}
	}
	return false
}

// maxMemoryKeys bounds the parent keys that the verification holds to
// check foreign keys as it reads the rows (8 bytes each: 8 MiB).
const maxMemoryKeys = 1 << 20

// memFK is a foreign key that the verification checks as it reads its
// table's rows, against its parent's keys held in memory (see
// parentKeys), instead of with a query afterwards (an anti-join that
// reads the whole table again, or its index). It is a key of one
// column, of an integer type on both sides, whose parent is a table of
// this import small enough (maxMemoryKeys in all). A value that is not
// an integer after all (a SQLite BLOB, text SQLite let in, a BIGINT
// UNSIGNED past int64) leaves it undecided: the query decides.
type memFK struct {
	table, col int // the child's index in im.tables, the column's in its columns
	fki        int // the key's index in the child's foreign keys
	fk         ForeignKey
	parent     *parentKeys
	// skip: the parent's keys are undecided; set before the rows are
	// read, read-only after.
	skip      bool
	orphans   atomic.Int64
	undecided atomic.Bool
}

// parentKeys are the values of a parent's column that foreign keys
// reference; read once however many keys reference them.
type parentKeys struct {
	table, col string
	rows       int64 // the manifest's count
	read       bool  // the keys are in (or undecided)
	undecided  bool
	count      int     // how many keys
	keys       []int64 // sorted; nil when dense holds them
	// dense: the keys as a bitmap from base, when that takes no more
	// memory than keys (ids counted from 1 mostly are): a key is found
	// without a search.
	dense []uint64
	base  int64
}

// index turns the sorted keys into dense, when it fits.
func (p *parentKeys) index() {
	p.count = len(p.keys)
	if len(p.keys) == 0 {
		return
	}
	span := uint64(p.keys[len(p.keys)-1]) - uint64(p.keys[0])
	if span/64 >= uint64(len(p.keys)) {
		return
	}
	p.base, p.dense = p.keys[0], make([]uint64, span/64+1)
	for _, k := range p.keys {
		off := uint64(k) - uint64(p.base)
		p.dense[off/64] |= 1 << (off % 64)
	}
	p.keys = nil
}

// has reports whether v is one of the keys.
func (p *parentKeys) has(v int64) bool {
	if p.dense != nil {
		// Below base, the difference wraps around: past the map, or, near
		// the ends of int64, onto one of its bits past the last key,
		// which are clear.
		off := uint64(v) - uint64(p.base)
		return off/64 < uint64(len(p.dense)) && p.dense[off/64]&(1<<(off%64)) != 0
	}
	_, found := slices.BinarySearch(p.keys, v)
	return found
}

// check counts the row's value v of the key's column.
func (f *memFK) check(v int64, null, ok bool) {
	switch {
	case null || f.skip: // NULL is not checked, as the databases do
	case !ok:
		f.undecided.Store(true)
	default:
		if !f.parent.has(v) {
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
	parents := map[[2]string]*parentKeys{}
	var keys int64
	limit := cmp.Or(im.opts.memoryKeys, maxMemoryKeys)
	for ti, t := range im.tables {
		for fki, fk := range t.ForeignKeys {
			pi, ok := index[fk.RefTable]
			if len(fk.Columns) != 1 || len(fk.RefColumns) != 1 || !ok || t.Rows == 0 {
				continue
			}
			parent := im.tables[pi]
			ci := slices.IndexFunc(t.Columns, func(c Column) bool { return c.Name == fk.Columns[0] })
			pc := slices.IndexFunc(parent.Columns, func(c Column) bool { return c.Name == fk.RefColumns[0] })
			if ci < 0 || pc < 0 || !integerType(t.Columns[ci].Type) || !integerType(parent.Columns[pc].Type) {
				continue
			}
			at := [2]string{parent.Name, fk.RefColumns[0]}
			p := parents[at]
			if p == nil {
				if keys+parent.Rows > limit {
					continue
				}
				keys += parent.Rows
				p = &parentKeys{table: parent.Name, col: fk.RefColumns[0], rows: parent.Rows}
				parents[at] = p
			}
			out = append(out, &memFK{table: ti, col: ci, fki: fki, fk: fk, parent: p})
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

// readParentKeys reads the keys' parent values, sorted, through s (on
// MySQL outside any transaction: each read takes a snapshot of its own,
// once the parent's keys are re-created; see verify), before any row of
// a child is read. A value that is not an integer, or more values than
// the manifest said, leave the parent's keys undecided.
func (im *importer) readParentKeys(ctx context.Context, s *snapshot, fks []*memFK) error {
	kind := im.db.URL.Kind
	for _, f := range fks {
		p := f.parent
		if p.read {
			f.skip = p.undecided
			continue // read for another key
		}
		if kind == database.MySQL {
			if err := im.restores.ready(ctx, p.table); err != nil {
				return err
			}
			if _, err := s.conn.ExecContext(ctx, `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`); err != nil {
				return err
			}
		}
		p.keys = make([]int64, 0, p.rows)
		err := func() error {
			col := quoteIdent(kind, p.col)
			rows, err := s.q.QueryContext(ctx, "SELECT "+col+" FROM "+quoteIdent(kind, p.table)+" WHERE "+col+" IS NOT NULL")
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
				if _, blob := v.([]byte); blob && kind != database.MySQL {
					ok = false // a SQLite BLOB is no integer to its foreign key
				}
				if !ok || int64(len(p.keys)) == p.rows {
					p.undecided = true
					break
				}
				p.keys = append(p.keys, n)
			}
			return rows.Err()
		}()
		if kind == database.MySQL {
			if _, cerr := s.conn.ExecContext(ctx, `COMMIT`); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("verify table %s, foreign key %s: read %s (%s): %w", im.tables[f.table].Name, f.fk.Name, p.table, p.col, err)
		}
		if p.undecided {
			p.keys = nil
		}
		slices.Sort(p.keys)
		p.index()
		p.read = true
		f.skip = p.undecided
	}
	return nil
}

// keyProblems reports the rows whose parent is missing, per foreign key
// in the order of the tables and of their keys: a key checked in memory
// (fks) as counted, every other through ld's query.
func keyProblems(ctx context.Context, ld loader, tables []TableExport, fks []*memFK) ([]Problem, error) {
	counted := map[[2]int]int64{}
	for _, f := range fks {
		if !f.skip && !f.undecided.Load() {
			counted[[2]int{f.table, f.fki}] = f.orphans.Load()
		}
	}
	var problems []Problem
	for ti, t := range tables {
		for fki, fk := range t.ForeignKeys {
			if n, ok := counted[[2]int{ti, fki}]; ok {
				if n > 0 {
					problems = append(problems, orphanProblem(t.Name, fk, n))
				}
				continue
			}
			one := t
			one.ForeignKeys = []ForeignKey{fk}
			ps, err := ld.checkForeignKeys(ctx, []TableExport{one})
			if err != nil {
				return nil, err
			}
			problems = append(problems, ps...)
		}
	}
	return problems, nil
}
