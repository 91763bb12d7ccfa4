package transfer

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ferrydb/ferry/database"
)

// pgLoader loads with COPY, constraints on: parents before children, a
// self-reference checked at the end of its table's one COPY, and a
// circular group's foreign keys between its tables dropped and re-added
// (validated) inside the group's transaction. No superuser is needed.
type pgLoader struct {
	conn *sql.Conn
	im   *importer
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
		// Only the tables the migrations seeded: TRUNCATE needs every
		// table that references them in the same statement, and a table
		// left out of the export may.
		var q []string
		for _, name := range tables {
			from := pgFrom(&l.im.table(name).Table)
			var has bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+from+")").Scan(&has); err != nil {
				return err
			}
			if has {
				q = append(q, from)
			}
		}
		if len(q) > 0 {
			if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(q, ", ")); err != nil {
				return fmt.Errorf("%w (the migrations put rows in %s, and a table the export left out references them: export without --tables/--exclude, or empty those tables by hand)", err, strings.Join(q, ", "))
			}
		}
		return l.mark(ctx, tx, stepEmptied, 0)
	})
}

func (l *pgLoader) load(ctx context.Context, group []*TableExport, target map[string]*Table) error {
	return l.withPgx(ctx, func(tx pgx.Tx) error {
		in := map[string]bool{}
		for _, t := range group {
			in[t.Name] = true
		}
		type fk struct{ table, name, def string }
		var dropped []fk
		if len(group) > 1 {
			for _, t := range group {
				for _, f := range target[t.Name].ForeignKeys {
					if in[f.RefTable] && f.RefTable != t.Name {
						if _, err := tx.Exec(ctx, "ALTER TABLE "+quoteDouble(t.Name)+" DROP CONSTRAINT "+quoteDouble(f.Name)); err != nil {
							return fmt.Errorf("table %s: drop foreign key %s for the circular load: %w", t.Name, f.Name, err)
						}
						dropped = append(dropped, fk{t.Name, f.Name, f.Definition})
					}
				}
			}
		}
		for _, t := range group {
			// The rows are final: user triggers (audit rows, updated_at)
			// must not fire on them. Constraint triggers stay on.
			// Only those enabled now, so that one disabled on purpose
			// stays disabled.
			rows, err := tx.Query(ctx, `SELECT tgname FROM pg_trigger WHERE tgrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass
				AND NOT tgisinternal AND tgenabled = 'O'`, t.Name)
			if err != nil {
				return err
			}
			triggers, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, tg := range triggers {
				if _, err := tx.Exec(ctx, "ALTER TABLE "+quoteDouble(t.Name)+" DISABLE TRIGGER "+quoteDouble(tg)); err != nil {
					return fmt.Errorf("table %s: turn trigger %s off for the load (the importing user must own the table): %w", t.Name, tg, err)
				}
			}
			if err := l.copy(ctx, tx, t); err != nil {
				return fmt.Errorf("load table %s: %w", t.Name, err)
			}
			for _, tg := range triggers {
				if _, err := tx.Exec(ctx, "ALTER TABLE "+quoteDouble(t.Name)+" ENABLE TRIGGER "+quoteDouble(tg)); err != nil {
					return fmt.Errorf("table %s: turn trigger %s back on: %w", t.Name, tg, err)
				}
			}
			if err := l.mark(ctx, tx, stepTable+t.Name, t.Rows); err != nil {
				return err
			}
		}
		for _, f := range dropped {
			if _, err := tx.Exec(ctx, "ALTER TABLE "+quoteDouble(f.table)+" ADD CONSTRAINT "+quoteDouble(f.name)+" "+f.def); err != nil {
				return fmt.Errorf("table %s: re-create foreign key %s after the circular load: %w", f.table, f.name, err)
			}
		}
		return nil
	})
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
func appendEscaped(buf []byte, s string) []byte {
	for j := 0; j < len(s); j++ {
		switch c := s[j]; c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		case 0:
			buf = append(buf, '\\', '0')
		default:
			buf = append(buf, c)
		}
	}
	return buf
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
		// is_called false: the next nextval returns Next itself; never
		// backwards, past what the target handed out already.
		var at int64
		if err := l.conn.QueryRowContext(ctx, `SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM `+quoteDouble(s.Name)).Scan(&at); err != nil {
			return fmt.Errorf("sequence %s: %w", s.Name, err)
		}
		if s.Next <= at {
			continue
		}
		_, err := l.conn.ExecContext(ctx, `SELECT setval(`+seq+`, $2::bigint, false)`, s.Name, s.Next)
		if err != nil {
			return fmt.Errorf("sequence %s: %w", s.Name, err)
		}
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
			next := int64(1)
			for _, s := range t.Sequences {
				if s.Column == c.Name {
					next = s.Next
				}
			}
			// The next value is past both the source's counter and the
			// largest loaded value.
			_, err := l.conn.ExecContext(ctx, `SELECT setval($1, GREATEST($2::bigint, COALESCE((SELECT max(`+quoteDouble(c.Name)+`)::bigint FROM `+pgFrom(&t.Table)+`) + 1, 1)), false)`, seq.String, next)
			if err != nil {
				return fmt.Errorf("sequence %s of %s.%s: %w", seq.String, t.Name, c.Name, err)
			}
		}
	}
	return nil
}

// checkForeignKeys: PostgreSQL checked every foreign key during the load.
func (l *pgLoader) checkForeignKeys(context.Context, []TableExport) ([]Problem, error) {
	return nil, nil
}
