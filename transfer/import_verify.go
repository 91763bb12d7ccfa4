package transfer

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferrydb/ferry/database"
)

// expectedSum is the row checksum a loaded table must show: the
// manifest's, or, for a table mapped onto a newer target, that of the
// exported rows as loaded (their kept columns), read again from the
// export; "" when a cast makes the database's form of a value differ (the
// row count is compared alone).
func (im *importer) expectedSum(ctx context.Context, t *TableExport) (string, error) {
	if t.src == nil {
		return t.RowChecksum, nil
	}
	if t.canon != nil {
		// Across engines: the canonical checksum of the exported rows,
		// summed as they were fed, or read again when an earlier run
		// loaded the table.
		if t.fed {
			return t.fedSum.String(), nil
		}
		var sum rowSum
		var line []byte
		row := make([]value, len(t.Columns))
		err := im.readChunks(ctx, t.src, func(vals []value) error {
			for i, k := range t.keep {
				row[i] = vals[k]
			}
			line = t.canonLine(line[:0], row)
			sum.add(line[:len(line)-1])
			return nil
		})
		return sum.String(), err
	}
	for i, c := range t.Columns {
		if c.Type != t.src.Columns[t.keep[i]].Type {
			return "", nil
		}
	}
	var sum rowSum
	var line []byte
	row := make([]any, len(t.Columns))
	err := im.readChunks(ctx, t.src, func(vals []value) error {
		for i, k := range t.keep {
			row[i] = vals[k].any()
		}
		line = appendRow(line[:0], row)
		sum.add(line[:len(line)-1])
		return nil
	})
	return sum.String(), err
}

// verify re-reads every table (in one snapshot; on MySQL, in one per
// connection) and compares it with the manifest; it also checks foreign
// keys where the load turned them off.
func (im *importer) verify(ctx context.Context, ld loader) ([]Problem, error) {
	jobs := max(im.opts.Jobs, 1)
	if im.db.URL.Kind == database.SQLite {
		jobs = 1
	}
	var snap Snapshot
	snaps, _, err := openSnapshots(ctx, im.db, jobs, false, &snap)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range snaps {
			s.close()
		}
	}()
	if im.db.URL.Kind == database.MySQL {
		// A part's read may queue behind the ALTER re-creating its
		// table's keys (restorer), which waits for the part being read
		// on another connection: no lock_wait_timeout of the URL's.
		for _, s := range snaps {
			if _, err := s.conn.ExecContext(ctx, keysLockWait); err != nil {
				return nil, err
			}
		}
	}
	// Whole tables, and a large table with an integer key in key ranges
	// read in parallel (in one snapshot on PostgreSQL; in a snapshot per
	// connection on MySQL, on a target the import's lock keeps to itself);
	// the row checksum adds up in any order.
	tables := make([]*Table, len(im.tables))
	for i, t := range im.tables {
		tables[i] = &t.Table
	}
	parts, _, err := listParts(ctx, snaps[0].q, im.db.URL.Kind, tables, func(i int) int64 { return im.tables[i].Rows }, jobs, cmp.Or(im.opts.splitRows, defaultSplitRows))
	if err != nil {
		return nil, err
	}
	if im.db.URL.Kind == database.MySQL {
		// The first snapshot read the split tables' key bounds: the
		// snapshots end now, and each part has one of its own, so that
		// no connection holds a table an ALTER waits for while it waits
		// for that ALTER (see restorer.ready).
		for _, s := range snaps {
			if _, err := s.conn.ExecContext(ctx, `COMMIT`); err != nil {
				return nil, err
			}
		}
	}
	if im.opts.partsListed != nil {
		im.opts.partsListed()
	}
	// Foreign keys to small parents are checked as the rows go by.
	fks := im.memoryFKs()
	if err := im.readParentKeys(ctx, snaps[0], fks); err != nil {
		return nil, err
	}
	tableFKs := make([][]*memFK, len(im.tables))
	for _, f := range fks {
		tableFKs[f.table] = append(tableFKs[f.table], f)
	}
	// Tables this run fed as exported into MySQL are compared by their
	// text sums (see textHash), and read again the canonical way if those
	// differ.
	text := make([]*textHash, len(im.tables))
	for i, te := range im.tables {
		if te.textFed {
			text[i] = im.text
		}
	}
	sums := make([]rowSum, len(im.tables))
	counts := make([]int64, len(im.tables))
	seen := make([]atomic.Int64, len(im.tables)) // for progress, as the parts go
	var mu sync.Mutex
	read := func(ctx context.Context, s *snapshot, p part) error {
		te := im.tables[p.t]
		tick := func(n int64) {
			im.progress(Progress{Op: "verify", Table: te.Name, Rows: seen[p.t].Add(n), Total: te.Rows})
		}
		if im.db.URL.Kind == database.MySQL {
			// The re-creation of the table's keys goes first, if one runs;
			// this connection waits for it outside any transaction.
			if err := im.restores.ready(ctx, te.Name); err != nil {
				return err
			}
			// A snapshot per part, ended with it: a connection that waits
			// for work holds no table, so the re-creation of a table's
			// keys (see restorer), which waits for its readers, never
			// waits for one that waits for another reader behind it.
			if _, err := s.conn.ExecContext(ctx, `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`); err != nil {
				return err
			}
		}
		sum, n, err := sumRows(ctx, s.q, im.db.URL.Kind, &te.Table, p.rng, te.canon, text[p.t], im.opts.largeRow, tableFKs[p.t], tick)
		if err != nil {
			return fmt.Errorf("verify table %s: %w", te.Name, rowSecurity(err))
		}
		if im.db.URL.Kind == database.MySQL {
			if _, err := s.conn.ExecContext(ctx, `COMMIT`); err != nil {
				return err
			}
		}
		mu.Lock()
		sums[p.t].merge(sum)
		counts[p.t] += n
		mu.Unlock()
		return nil
	}
	if err := eachPart(ctx, snaps, parts, read); err != nil {
		return nil, err
	}
	var again []part
	for i, te := range im.tables {
		switch {
		case text[i] == nil || counts[i] != te.Rows:
			// Compared line by line, or a count that says it all.
		case sums[i] == te.textSum:
			im.log.Debug("rows match the rows loaded, by their text sum", "table", te.Name)
		default:
			im.log.Info("the rows read back do not match the rows loaded by their text sum; reading the table again to compare each row's line with the export's", "table", te.Name)
			text[i], tableFKs[i] = nil, nil // checked the first time
			sums[i], counts[i] = rowSum{}, 0
			seen[i].Store(0)
			for _, p := range parts {
				if p.t == i {
					again = append(again, p)
				}
			}
		}
	}
	if len(again) > 0 {
		if err := eachPart(ctx, snaps, again, read); err != nil {
			return nil, err
		}
	}
	var problems []Problem
	for i, te := range im.tables {
		want, err := im.expectedSum(ctx, te)
		if err != nil {
			return nil, err
		}
		if n := counts[i]; n != te.Rows {
			problems = append(problems, Problem{Table: te.Name, What: "rows", Want: fmt.Sprint(te.Rows), Got: fmt.Sprint(n)})
		} else if got := sums[i].String(); text[i] == nil && want != "" && got != want {
			problems = append(problems, Problem{Table: te.Name, What: "row_checksum", Want: want, Got: got, Detail: "the rows loaded differ from the rows exported"})
		}
		im.progress(Progress{Op: "verify", Table: te.Name, Rows: counts[i], Total: te.Rows, Done: true})
	}
	for _, f := range fks {
		if !f.skip && !f.undecided.Load() {
			im.log.Info("foreign key checked as the rows were read", "table", im.tables[f.table].Name, "foreign_key", f.fk.Name, "parent_keys", f.parent.count)
		}
	}
	fk, err := keyProblems(ctx, ld, im.tableValues(), fks)
	if err != nil {
		return nil, fmt.Errorf("check foreign keys: %w", err)
	}
	for i, p := range fk {
		if p.keyColumns != "" && im.textKey(p.Table, strings.Split(p.keyColumns, ",")) && im.m.Source.Engine == database.MySQL && im.db.URL.Kind != database.MySQL {
			fk[i].Detail += "; " + fmt.Sprintf(collationFromMySQL, engineName(im.db.URL.Kind))
		}
	}
	return append(problems, fk...), nil
}

// sumRows reads the rows of rng (nil: all) of t and returns their row
// checksum and count; canon, if set, puts each column's values in their
// canonical form first; text, if set, makes it their text sum instead
// (see textHash; MySQL only). A row with large values is read in slices
// (see slicer) when no column needs a canonical form (largeRow: see
// Options), but for a text sum, which such a row spoils. Each row's value
// of each of fks (this table's) is checked on the way.
func sumRows(ctx context.Context, q querier, kind string, t *Table, rng *keyRange, canon []func(any) any, text *textHash, largeRow int64, fks []*memFK, tick func(rows int64)) (rowSum, int64, error) {
	var sum rowSum
	var n int64
	var sl *slicer
	if canon == nil {
		sl = newSlicer(kind, t, largeRow)
	}
	r, err := readRange(ctx, q, kind, t, rng, "", "", sl)
	if err != nil {
		return sum, 0, err
	}
	defer r.close()
	var large []rowKey
	var line []byte
	for {
		ok, err := r.next()
		if err != nil {
			return sum, n, err
		}
		if !ok {
			break
		}
		if n++; n%50000 == 0 {
			tick(50000)
		}
		for _, f := range fks {
			f.check(r.intAt(f.col))
		}
		if text != nil {
			line = line[:0]
			for i, b := range r.raw {
				switch {
				case b == nil:
					line = appendText(line, classNull, b)
				case r.rawCols[i].class == classNone:
					line = append(line, classOther) // the import feeds no such table
				default:
					line = appendText(line, r.rawCols[i].class, b)
				}
			}
			if sl != nil && r.large.Valid {
				line = append(line, classOther) // nor such a row
			}
			text.add(&sum, line)
			if cap(line) > 4<<20 {
				line = nil // after a large value
			}
			continue
		}
		if sl != nil && r.large.Valid {
			large = append(large, sl.key(r.large.String, r.values()))
			continue
		}
		if canon != nil {
			row := r.values()
			for i, c := range canon {
				row[i] = c(row[i])
			}
			line = appendRow(line[:0], row)
		} else {
			line = r.appendRow(line[:0])
		}
		sum.add(line[:len(line)-1])
		if cap(line) > 4<<20 {
			line = nil // after a large value
		}
	}
	if err := r.close(); err != nil {
		return sum, n, err
	}
	for _, k := range large {
		h, err := sl.writeRow(ctx, q, k, nil)
		if err != nil {
			return sum, n, err
		}
		sum.addHash(h)
	}
	return sum, n, nil
}

// checkSequences finds counters that would hand out an id already taken:
// every serial or identity column's sequence (PostgreSQL), AUTO_INCREMENT
// (MySQL) and sqlite_sequence row (SQLite) must be past every loaded
// value and the source's counter, and every other sequence of the schema
// at the source's value or past it. Past is in the counter's direction:
// a PostgreSQL sequence with a negative increment counts down, and must
// be below the smallest loaded value; the others count up.
func checkSequences(ctx context.Context, db *database.DB, tables []TableExport, schemaSeqs []Sequence, own func(string) bool) ([]Problem, error) {
	var problems []Problem
	behind := func(table, detail string, step, next, want int64) {
		if beyond(step, want, next) {
			rel := ">="
			if step < 0 {
				rel = "<="
			}
			problems = append(problems, Problem{Table: table, What: "sequence", Want: fmt.Sprintf("%s %d", rel, want), Got: fmt.Sprint(next), Detail: detail})
		}
	}
	sourceNext := func(t TableExport, col string) int64 {
		for _, s := range t.Sequences {
			if s.Column == col {
				return s.Next
			}
		}
		return 1
	}
	switch db.URL.Kind {
	case database.Postgres:
		for _, t := range tables {
			for _, c := range t.Columns {
				var seq sql.NullString
				if err := db.QueryRowContext(ctx, `SELECT pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident($1), $2)`, t.Name, c.Name).Scan(&seq); err != nil {
					return nil, err
				}
				if !seq.Valid {
					continue
				}
				// seq is the catalog's name for it, quoted as it must be.
				at, err := readSequence(ctx, db, seq.String)
				if err != nil {
					return nil, fmt.Errorf("sequence %s: %w", seq.String, err)
				}
				if at.UsedUp {
					continue // no bigint past it
				}
				step, edge := at.step(), "max"
				if step < 0 {
					edge = "min"
				}
				var top sql.NullInt64
				if err := db.QueryRowContext(ctx, `SELECT `+edge+`(`+quoteDouble(c.Name)+`)::bigint FROM `+pgFrom(&t.Table)).Scan(&top); err != nil {
					return nil, err
				}
				want, ok := int64(0), false
				for _, s := range t.Sequences {
					if s.Column == c.Name {
						want, ok = s.Next, true
					}
				}
				if top.Valid {
					past, more := pastValue(step, top.Int64)
					if !more {
						continue // a loaded value is the last bigint: none past it
					}
					if !ok || beyond(step, past, want) {
						want, ok = past, true
					}
				}
				if ok {
					behind(t.Name, fmt.Sprintf("sequence %s of column %s", seq.String, c.Name), step, at.Next, want)
				}
			}
		}
		for _, s := range schemaSeqs {
			if own(strings.TrimSuffix(s.Name, "_id_seq")) {
				continue
			}
			at, err := readSequence(ctx, db, quoteDouble(s.Name))
			if err != nil {
				var exists bool
				if e := db.QueryRowContext(ctx, `SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) IS NOT NULL`, s.Name).Scan(&exists); e == nil && !exists {
					continue // not at this version (see schemaSequences)
				}
				return nil, fmt.Errorf("sequence %s: %w", s.Name, err)
			}
			if !at.UsedUp {
				behind("", "sequence "+s.Name, at.step(), at.Next, s.Next)
			}
		}
	case database.MySQL:
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		defer discard(conn)
		// MySQL 8 caches AUTO_INCREMENT in information_schema for a day;
		// MariaDB has no such cache (nor the variable).
		_, _ = conn.ExecContext(ctx, `SET SESSION information_schema_stats_expiry = 0`)
		for _, t := range tables {
			// As text: an unsigned BIGINT's counter and values pass int64.
			var col string
			var next, top sql.NullString
			err := conn.QueryRowContext(ctx, `SELECT c.column_name, t.auto_increment FROM information_schema.columns c
				JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
				WHERE c.table_schema = DATABASE() AND c.table_name = ? AND c.extra LIKE '%auto_increment%'`, t.Name).Scan(&col, &next)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(`+quoteMySQL(col)+`), 0) FROM `+quoteMySQL(t.Name)).Scan(&top); err != nil {
				return nil, err
			}
			n, ok1 := new(big.Int).SetString(next.String, 10)
			want, ok2 := new(big.Int).SetString(top.String, 10)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("AUTO_INCREMENT of %s.%s: %q past %q is not a number", t.Name, col, next.String, top.String)
			}
			want.Add(want, big.NewInt(1))
			if src := big.NewInt(sourceNext(t, col)); src.Cmp(want) > 0 {
				want = src
			}
			// MySQL's counter stops at the type's largest value: a table
			// that holds it hands out no more ids, whatever the counter.
			if n.Cmp(want) < 0 && n.String() != top.String {
				problems = append(problems, Problem{Table: t.Name, What: "sequence", Want: ">= " + want.String(), Got: n.String(), Detail: "AUTO_INCREMENT of column " + col})
			}
		}
	default:
		// SQLite makes sqlite_sequence with the first AUTOINCREMENT table.
		var counters int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'`).Scan(&counters); err != nil || counters == 0 {
			return problems, err
		}
		for _, t := range tables {
			var seq sql.NullInt64
			err := db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = ?`, t.Name).Scan(&seq)
			if errors.Is(err, sql.ErrNoRows) {
				continue // not an AUTOINCREMENT table
			}
			if err != nil {
				return nil, err
			}
			var top int64
			if err := db.QueryRowContext(ctx, `SELECT COALESCE(max(rowid), 0) FROM `+quoteIdent(database.SQLite, t.Name)).Scan(&top); err != nil {
				return nil, err
			}
			want := top + 1
			for _, s := range t.Sequences {
				want = max(want, s.Next)
			}
			behind(t.Name, "sqlite_sequence", 1, seq.Int64+1, want)
		}
	}
	return problems, nil
}
