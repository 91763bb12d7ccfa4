package transfer

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ferrydb/ferry/database"
)

// pgLoader loads with COPY, constraints on: parents before children, a
// self-reference checked at the end of its table's one COPY, and a
// circular group's foreign keys between its tables dropped and re-added
// (validated) inside the group's transaction; a large table's secondary
// indexes and foreign keys too (see bulkRows). No superuser is needed:
// the importing user owns the tables its migrations created.
type pgLoader struct {
	conn *sql.Conn
	im   *importer
	// usedUp: the sequences (by OID) left used up, told once.
	usedUp map[uint32]bool
	// otherWay: the sequences (by OID) that count the other way from
	// the source's, told once.
	otherWay map[uint32]bool
}

// withPgx runs fn in a pgx transaction on the loader's connection.
func (l *pgLoader) withPgx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return l.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("transfer: PostgreSQL connection of type %T, want pgx", dc)
		}
		tx, err := c.Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

func (l *pgLoader) mark(ctx context.Context, tx pgx.Tx, step string, rows int64) error {
	q, args := l.im.markSQL(step, rows)
	_, err := tx.Exec(ctx, q, args...)
	return err
}

func (l *pgLoader) empty(ctx context.Context, tables []string) error {
	return l.withPgx(ctx, func(tx pgx.Tx) error {
		// The tables the migrations seeded, and the import's tables that
		// reference them, down the references: TRUNCATE needs every
		// table that references a truncated one in the same statement
		// (the seeded table's children are empty, but named all the
		// same). A table the export left out may reference one too.
		var seeded []string
		truncate := map[string]bool{}
		for _, name := range tables {
			var has bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgFrom(&l.im.table(name).Table)+")").Scan(&has); err != nil {
				return err
			}
			if has {
				seeded, truncate[name] = append(seeded, name), true
			}
		}
		for grew := len(seeded) > 0; grew; {
			grew = false
			for _, name := range tables {
				if truncate[name] {
					continue
				}
				for _, fk := range l.im.table(name).ForeignKeys {
					if truncate[fk.RefTable] {
						truncate[name], grew = true, true
						break
					}
				}
			}
		}
		var q []string
		for _, name := range tables {
			if truncate[name] {
				q = append(q, pgFrom(&l.im.table(name).Table))
			}
		}
		if len(q) > 0 {
			if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(q, ", ")); err != nil {
				return fmt.Errorf("%w (the migrations put rows in %s, emptied with the import's tables that reference them, and a table the export left out references one of those, as PostgreSQL's detail says: export without --tables/--exclude, or empty those tables by hand)", pgDetail(err), strings.Join(seeded, ", "))
			}
		}
		return l.mark(ctx, tx, stepEmptied, 0)
	})
}

// bulkRows is the size from which a table loads without its secondary
// indexes and foreign keys, re-created (and validated) after its rows
// are in, in the same transaction: an index built once from sorted rows
// and one validating join cost less than an index entry and a trigger's
// query per row.
const bulkRows = 50000

func (l *pgLoader) load(ctx context.Context, group []*TableExport, target map[string]*Table) error {
	return l.withPgx(ctx, func(tx pgx.Tx) error {
		in := map[string]bool{}
		for _, t := range group {
			in[t.Name] = true
		}
		type fk struct{ table, name, ref, def string }
		var dropped []fk
		var indexes []string // their definitions
		for _, t := range group {
			bulk := l.im.bulk(t) && !t.Partitioned
			commented := map[string]bool{}
			if bulk {
				// A comment on a foreign key would not come back with it.
				rows, err := tx.Query(ctx, `SELECT conname FROM pg_constraint WHERE contype = 'f' AND obj_description(oid, 'pg_constraint') IS NOT NULL
					AND conrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass`, t.Name)
				if err != nil {
					return err
				}
				names, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					return err
				}
				for _, n := range names {
					commented[n] = true
				}
			}
			for _, f := range target[t.Name].ForeignKeys {
				// Between the tables of a circular group (their rows
				// reference each other's), or of a large table.
				if (len(group) > 1 && in[f.RefTable] && f.RefTable != t.Name) || (bulk && f.Definition != "" && !commented[f.Name]) {
					dropped = append(dropped, fk{t.Name, f.Name, f.RefTable, f.Definition})
				}
			}
			if bulk {
				defs, err := l.dropIndexes(ctx, tx, t.Name)
				if err != nil {
					return fmt.Errorf("table %s: %w", t.Name, err)
				}
				indexes = append(indexes, defs...)
			}
		}
		// Foreign keys lock the tables they reference: always in one
		// order, so that two groups loading at once cannot deadlock.
		slices.SortFunc(dropped, func(a, b fk) int {
			return cmp.Or(strings.Compare(a.ref, b.ref), strings.Compare(a.table, b.table), strings.Compare(a.name, b.name))
		})
		for _, f := range dropped {
			if _, err := tx.Exec(ctx, "ALTER TABLE "+quoteDouble(f.table)+" DROP CONSTRAINT "+quoteDouble(f.name)); err != nil {
				return fmt.Errorf("table %s: drop foreign key %s for the load: %w", f.table, f.name, err)
			}
		}
		for _, t := range group {
			// The rows are final: user triggers (audit rows, updated_at)
			// must not fire on them. Constraint triggers stay on.
			// Only those that would fire now (enabled, or ALWAYS), so
			// that one disabled on purpose, or for replicas only, stays
			// so; each comes back as it was.
			rows, err := tx.Query(ctx, `SELECT tgname, tgenabled = 'A' FROM pg_trigger WHERE tgrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass
				AND NOT tgisinternal AND tgenabled IN ('O', 'A')`, t.Name)
			if err != nil {
				return err
			}
			type trigger struct {
				name   string
				always bool
			}
			triggers, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (trigger, error) {
				var tg trigger
				err := r.Scan(&tg.name, &tg.always)
				return tg, err
			})
			if err != nil {
				return err
			}
			for _, tg := range triggers {
				if _, err := tx.Exec(ctx, "ALTER TABLE "+quoteDouble(t.Name)+" DISABLE TRIGGER "+quoteDouble(tg.name)); err != nil {
					return fmt.Errorf("table %s: turn trigger %s off for the load (the importing user must own the table): %w", t.Name, tg.name, err)
				}
			}
			if err := l.copy(ctx, tx, t); err != nil {
				return fmt.Errorf("load table %s: %w", t.Name, rowSecurity(l.im.detail(t.Name, err)))
			}
			for _, tg := range triggers {
				enable := " ENABLE TRIGGER "
				if tg.always {
					enable = " ENABLE ALWAYS TRIGGER "
				}
				if _, err := tx.Exec(ctx, "ALTER TABLE "+quoteDouble(t.Name)+enable+quoteDouble(tg.name)); err != nil {
					return fmt.Errorf("table %s: turn trigger %s back on: %w", t.Name, tg.name, err)
				}
			}
			if err := l.mark(ctx, tx, stepTable+t.Name, t.Rows); err != nil {
				return err
			}
		}
		for _, def := range indexes {
			if _, err := tx.Exec(ctx, def); err != nil {
				return fmt.Errorf("re-create an index after the load: %s: %w", def, err)
			}
		}
		for _, f := range dropped {
			if _, err := tx.Exec(ctx, "ALTER TABLE "+quoteDouble(f.table)+" ADD CONSTRAINT "+quoteDouble(f.name)+" "+f.def); err != nil {
				return fmt.Errorf("table %s: re-create foreign key %s after the load: %w", f.table, f.name, l.im.detail(f.table, err))
			}
		}
		if len(indexes)+len(dropped) > 0 {
			l.im.log.Info("indexes and foreign keys re-created after the load", "tables", len(group), "table", group[0].Name, "indexes", len(indexes), "foreign_keys", len(dropped))
		}
		return nil
	})
}

// dropIndexes drops the indexes of table that no constraint owns (not
// the primary key, unique or exclusion constraints), in tx, and returns
// their definitions.
func (l *pgLoader) dropIndexes(ctx context.Context, tx pgx.Tx, table string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(i.relname), pg_get_indexdef(i.oid)
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
		WHERE x.indrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass
		  AND NOT x.indisprimary AND x.indisvalid
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
		  -- Only what pg_get_indexdef says all of: not the replica
		  -- identity or the CLUSTER index, no comment, no tablespace of its
		  -- own, no statistics target.
		  AND NOT x.indisreplident AND NOT x.indisclustered AND i.reltablespace = 0
		  AND obj_description(i.oid, 'pg_class') IS NULL
		  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.oid AND a.attstattarget > 0)
		ORDER BY i.relname`, table)
	if err != nil {
		return nil, err
	}
	type index struct{ name, def string }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var ix index
		err := r.Scan(&ix.name, &ix.def)
		return ix, err
	})
	if err != nil {
		return nil, err
	}
	var defs []string
	for _, ix := range found {
		if _, err := tx.Exec(ctx, "DROP INDEX "+ix.name); err != nil {
			return nil, fmt.Errorf("drop index %s for the load: %w", ix.name, err)
		}
		defs = append(defs, ix.def)
	}
	return defs, nil
}

// pgDetail adds what PostgreSQL says about the row an error is about
// (its DETAIL, "Key (user_id)=(99) is not present in table users", and
// its CONTEXT, "COPY runs, line 2") to the error, which prints neither.
func pgDetail(err error) error {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return err
	}
	var more []string
	if e.Detail != "" {
		more = append(more, e.Detail)
	}
	if e.Where != "" {
		more = append(more, "at "+e.Where)
	}
	if len(more) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s", err, strings.Join(more, "; "))
}

// detail is pgDetail(err) for an error about a row of table, or, when
// the export encrypts the table, what of it names no value: PostgreSQL's
// DETAIL ("Failing row contains (...)", "Key (email)=(...)") and the row
// its CONTEXT quotes are the row's values, which the export encrypted.
func (im *importer) detail(table string, err error) error {
	if !im.m.Encryption.encrypts(table) {
		return pgDetail(err)
	}
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return err
	}
	where, _, _ := strings.Cut(e.Where, ": ") // "COPY s, line 3", without the line
	if where != "" {
		where = " at " + where
	}
	msg := err.Error()
	if strings.HasPrefix(e.Code, "22") {
		// A data exception quotes the value: `invalid input syntax for
		// type uuid: "..."`.
		if head, _, ok := strings.Cut(e.Message, `: "`); ok {
			msg = strings.Replace(msg, e.Message, head+": (the value is not shown)", 1)
		}
	}
	return redacted{err, msg + where + " (PostgreSQL's detail is not shown: it holds the row's values, which the export encrypts)"}
}

// copy streams table t's rows into one COPY, in COPY's text format.
func (l *pgLoader) copy(ctx context.Context, tx pgx.Tx, t *TableExport) error {
	pr, pw := io.Pipe()
	fed := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, 256<<10)
		var buf []byte
		err := l.im.feed(ctx, t, func(row []value) error {
			buf = appendCopyRow(buf[:0], row, bw)
			_, err := bw.Write(buf)
			if cap(buf) > 4<<20 {
				buf = nil // after a large value
			}
			return err
		}, func(sr *streamRow) (err error) {
			buf, err = writeStreamRow(bw, buf[:0], sr, appendCopyRow, `\\x`)
			return err
		})
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		fed <- err
	}()
	_, err := tx.Conn().PgConn().CopyFrom(ctx, pr, "COPY "+quoteDouble(t.Name)+" "+columnList(database.Postgres, t)+" FROM STDIN")
	pr.CloseWithError(io.ErrClosedPipe)
	if ferr := <-fed; ferr != nil && ferr != io.ErrClosedPipe {
		return ferr // the export's error explains the COPY's
	}
	return err
}

// appendEscaped appends s with the backslash escapes COPY's text format
// and LOAD DATA's default format share (a NUL, which PostgreSQL text
// cannot hold, as \0 for LOAD DATA).
func appendEscaped[S string | []byte](buf []byte, s S) []byte {
	// The runs between escapes are copied whole: most values have none.
	start := 0
	for j := 0; j < len(s); j++ {
		var esc byte
		switch s[j] {
		case '\\':
			esc = '\\'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case '\t':
			esc = 't'
		case 0:
			esc = '0'
		default:
			continue
		}
		buf = append(buf, s[start:j]...)
		buf = append(buf, '\\', esc)
		start = j + 1
	}
	return append(buf, s[start:]...)
}

// writeStreamRow writes a row read as it streams to w, in the text format
// of appendRow (COPY's or LOAD DATA's), with bytes after hexPrefix in hex:
// a text or binary value in pieces, as it is read.
func writeStreamRow(w io.Writer, buf []byte, sr *streamRow, appendRow func([]byte, []value, io.Writer) []byte, hexPrefix string) ([]byte, error) {
	var piece []byte
	one := make([]value, 1)
	for i := 0; i < sr.ncol; i++ {
		v, err := sr.next()
		if err != nil {
			return buf, err
		}
		if i > 0 {
			buf = append(buf, '\t')
		}
		if v.r == nil {
			one[0] = v
			buf = appendRow(buf, one, nil)
			buf = buf[:len(buf)-1] // its newline
			continue
		}
		enc := appendEscaped[[]byte]
		if v.kind == kBytes {
			buf, enc = append(buf, hexPrefix...), hex.AppendEncode
		}
		if piece == nil {
			piece = make([]byte, 64<<10)
		}
		for {
			n, err := v.r.Read(piece)
			if n > 0 {
				buf = enc(buf, piece[:n])
				if _, werr := w.Write(buf); werr != nil {
					return buf[:0], werr
				}
				buf = buf[:0]
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return buf, err
			}
		}
	}
	buf = append(buf, '\n')
	_, err := w.Write(buf)
	return buf[:0], err
}

// appendCopyRow appends row in COPY's text format. A large bytes value
// is written to w in pieces instead (after what buf holds so far), so
// that its hex form is never whole in memory.
func appendCopyRow(buf []byte, row []value, w io.Writer) []byte {
	for i, v := range row {
		if i > 0 {
			buf = append(buf, '\t')
		}
		switch v.kind {
		case kNull:
			buf = append(buf, `\N`...)
		case kBool:
			if v.t {
				buf = append(buf, 't')
			} else {
				buf = append(buf, 'f')
			}
		case kBytes:
			buf = append(buf, `\\x`...)
			if len(v.b) < 1<<20 || w == nil {
				buf = hex.AppendEncode(buf, v.b)
				break
			}
			for off := 0; off < len(v.b); off += 64 << 10 {
				buf = hex.AppendEncode(buf, v.b[off:min(off+64<<10, len(v.b))])
				if _, err := w.Write(buf); err != nil {
					return buf[:0] // the writer's error comes back on its next write
				}
				buf = buf[:0]
			}
		default:
			buf = appendEscaped(buf, v.s)
		}
	}
	return append(buf, '\n')
}

func (l *pgLoader) schemaSequences(ctx context.Context, seqs []Sequence) error {
	for _, s := range seqs {
		var exists bool
		if err := l.conn.QueryRowContext(ctx, `SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) IS NOT NULL`, s.Name).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			continue // dropped by a later migration of the target? not at this version
		}
		seq := `quote_ident(current_schema()) || '.' || quote_ident($1)`
		if ownTables(l.im.mig.Table())(strings.TrimSuffix(s.Name, "_id_seq")) {
			continue // ferry's own history counter (an export older than this check)
		}
		var name string
		if err := l.conn.QueryRowContext(ctx, `SELECT (`+seq+`)::regclass::text`, s.Name).Scan(&name); err != nil {
			return fmt.Errorf("sequence %s: %w", s.Name, err)
		}
		// Never backwards, past what the target handed out already, in
		// the target's own direction.
		at, err := l.counter(ctx, name, s)
		if err != nil {
			return fmt.Errorf("sequence %s: %w", s.Name, err)
		}
		if !beyond(at.step(), s.Next, at.Next) {
			continue
		}
		if err := l.setval(ctx, name, s.Next, s.UsedUp, "sequence "+s.Name); err != nil {
			return err
		}
	}
	return nil
}

// counter reads sequence seq (its catalog name, quoted as it must be) on
// the target: the value it hands out next and its increment, whose sign
// says which way "past" is: the target's sequence is the one that hands
// out the ids. src is the source's reading of it; one that counted the
// other way (a migration since turned it round) is told of, as the
// source's next value is then unlikely to be past anything the target
// hands out, and the loaded values alone set it.
func (l *pgLoader) counter(ctx context.Context, seq string, src Sequence) (Sequence, error) {
	at, err := readSequence(ctx, l.conn, seq)
	if err != nil {
		return at, err
	}
	if src.Increment == 0 || src.Increment < 0 == (at.step() < 0) {
		return at, nil
	}
	var oid uint32
	if err := l.conn.QueryRowContext(ctx, `SELECT $1::regclass::oid`, seq).Scan(&oid); err != nil {
		return at, err
	}
	if !l.otherWay[oid] {
		l.im.log.Warn("the sequence counts the other way from the source's: it is set past the loaded values in its own direction",
			"sequence", seq, "source_increment", src.Increment, "target_increment", at.step())
		if l.otherWay == nil {
			l.otherWay = map[uint32]bool{}
		}
		l.otherWay[oid] = true
	}
	return at, nil
}

// setval sets sequence seq (its catalog name, quoted as it must be) so
// that its next nextval returns next, or, usedUp, none. A next one past
// the sequence's bound in its direction (its maximum, or the minimum of
// one that counts down) by at most its increment is a sequence the
// source used up (a serial column's integer counter at 2147483647): it
// is left used up, its next nextval failing as the source's would. One
// further past is a target whose sequence is narrower than the source's,
// which cannot hand out what the source would: an error, with what to
// do.
func (l *pgLoader) setval(ctx context.Context, seq string, next int64, usedUp bool, what string) error {
	var lo, hi, step int64
	var oid uint32
	if err := l.conn.QueryRowContext(ctx, `SELECT seqrelid, seqmin, seqmax, seqincrement FROM pg_sequence WHERE seqrelid = $1::regclass`, seq).Scan(&oid, &lo, &hi, &step); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// How far next is past the bound, and how far one nextval goes: as
	// unsigned differences, which int64 cannot hold across its range.
	bound, side, gap, reach := hi, "maximum", uint64(next-hi), uint64(step)
	if step < 0 {
		bound, side, gap, reach = lo, "minimum", uint64(lo-next), uint64(-step)
	}
	called := false
	if usedUp || beyond(step, next, bound) {
		// One step past the bound is the source's own sequence used up
		// only where the source is PostgreSQL too (a serial's integer at
		// 2147483647); another engine's counter is no sequence with a
		// bound: it is the target's that is narrower.
		if !usedUp && (gap > reach || l.im.m.Source.Engine != database.Postgres) {
			return fmt.Errorf("%s: the source's next value, %d, is past the target's %s, %d (its column or sequence is narrower than the source's): widen it (ALTER SEQUENCE %s AS bigint, and its column) and run the import again", what, next, side, bound, seq)
		}
		next, called = bound, true
		if !l.usedUp[oid] {
			l.im.log.Warn("the sequence is used up, as the source's was: its next value would be past its "+side, "sequence", seq, side, bound)
		}
		if l.usedUp == nil {
			l.usedUp = map[uint32]bool{}
		}
		l.usedUp[oid] = true
	}
	if _, err := l.conn.ExecContext(ctx, `SELECT setval($1::regclass, $2::bigint, $3)`, seq, next, called); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (l *pgLoader) sequences(ctx context.Context, tables []TableExport) error {
	for _, t := range tables {
		for _, c := range t.Columns {
			var seq sql.NullString
			if err := l.conn.QueryRowContext(ctx, `SELECT pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident($1), $2)`, t.Name, c.Name).Scan(&seq); err != nil {
				return err
			}
			if !seq.Valid {
				continue
			}
			what := fmt.Sprintf("sequence %s of %s.%s", seq.String, t.Name, c.Name)
			var src Sequence
			found := false
			for _, s := range t.Sequences {
				if s.Column == c.Name {
					src, found = s, true
				}
			}
			// Never backwards: schemaSequences may have set it further
			// (the source's counter read again later in the export, a
			// service writing meanwhile: sequences are not in a snapshot).
			at, err := l.counter(ctx, seq.String, src)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			step := at.step()
			next, usedUp := at.Next, src.UsedUp
			if found {
				next = src.Next
			}
			// The next value is past both the source's counter and every
			// loaded value, in the sequence's direction: past the largest
			// for one that counts up, the smallest for one that counts
			// down.
			edge := "max"
			if step < 0 {
				edge = "min"
			}
			var top sql.NullInt64
			if err := l.conn.QueryRowContext(ctx, `SELECT `+edge+`(`+quoteDouble(c.Name)+`)::bigint FROM `+pgFrom(&t.Table)).Scan(&top); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if top.Valid && !usedUp {
				past, ok := pastValue(step, top.Int64)
				next, usedUp = furthest(step, next, past), !ok // no bigint past it
			}
			if !usedUp && !beyond(step, next, at.Next) {
				continue
			}
			if err := l.setval(ctx, seq.String, next, usedUp, what); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkForeignKeys: PostgreSQL checked every foreign key during the load.
func (l *pgLoader) checkForeignKeys(context.Context, []TableExport) ([]Problem, error) {
	return nil, nil
}
