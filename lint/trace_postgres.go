package lint

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/migrate"
)

// pgRel is a table as the trace sees it.
type pgRel struct {
	name     string
	filenode int64
}

// pgQuerier is a connection or a transaction.
type pgQuerier interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

func (t *tracer) postgres(ctx context.Context, m *migrate.Migration) ([]Observation, error) {
	conn, err := t.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var q pgQuerier = conn
	var tx *sql.Tx
	if !m.NoTransaction {
		if tx, err = conn.BeginTx(ctx, nil); err != nil {
			return nil, err
		}
		defer tx.Rollback()
		q = tx
	}
	rels, err := pgRels(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []Observation
	for _, st := range m.Up.Statements {
		o := t.observation(m, st)
		if t.outside(st.SQL) {
			o.Note = outsideNote
			out = append(out, o)
			continue
		}
		locksBefore, err := pgLocks(ctx, q, rels)
		if err != nil {
			return nil, err
		}
		scansBefore, err := pgScans(ctx, q)
		if err != nil {
			return nil, err
		}
		if _, err := q.ExecContext(ctx, st.SQL); err != nil {
			o.Err = err.Error()
			out = append(out, o)
			return out, &stmtError{st.Line, err}
		}
		if tx == nil {
			o.Note = "ran outside a transaction (-- +ferry no-transaction): its locks and scans end with it, so only rewrites are seen"
		} else {
			locks, err := pgLocks(ctx, q, rels)
			if err != nil {
				return nil, err
			}
			for l := range locks {
				switch {
				case !locksBefore[l]:
					o.Locks = append(o.Locks, l)
				case names(st.SQL, l.Table):
					o.Held = append(o.Held, l)
				}
			}
			scans, err := pgScans(ctx, q)
			if err != nil {
				return nil, err
			}
			for oid, n := range scans {
				if r, ok := rels[oid]; ok && n > scansBefore[oid] {
					o.Scanned = append(o.Scanned, r.name)
				}
			}
		}
		after, err := pgRels(ctx, q)
		if err != nil {
			return nil, err
		}
		for oid, r := range rels {
			a, ok := after[oid]
			if !ok {
				continue
			}
			if a.filenode != r.filenode {
				o.Rewritten = append(o.Rewritten, r.name)
			}
			// A rename shows under the new name from here on.
			rels[oid] = a
		}
		sortObservation(&o)
		out = append(out, o)
	}
	if tx != nil {
		// Roll the traced transaction back, then apply the migration for
		// real so that the next one sees its schema.
		if err := tx.Rollback(); err != nil {
			return nil, err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback()
		if err := t.execAll(ctx, tx, m.Up.Statements); err != nil {
			return nil, err
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pgRels returns the user tables (plain, partitioned, materialized views)
// by oid.
func pgRels(ctx context.Context, q pgQuerier) (map[int64]pgRel, error) {
	rows, err := q.QueryContext(ctx, `SELECT c.oid::int8, c.relname, c.relfilenode::int8 FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`)
	if err != nil {
		return nil, fmt.Errorf("read pg_class: %w", err)
	}
	defer rows.Close()
	out := map[int64]pgRel{}
	for rows.Next() {
		var oid int64
		var r pgRel
		if err := rows.Scan(&oid, &r.name, &r.filenode); err != nil {
			return nil, err
		}
		out[oid] = r
	}
	return out, rows.Err()
}

// pgLocks returns the table locks this session holds on the given tables.
func pgLocks(ctx context.Context, q pgQuerier, rels map[int64]pgRel) (map[TableLock]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT relation::int8, mode FROM pg_locks
		WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		return nil, fmt.Errorf("read pg_locks: %w", err)
	}
	defer rows.Close()
	out := map[TableLock]bool{}
	for rows.Next() {
		var oid int64
		var mode string
		if err := rows.Scan(&oid, &mode); err != nil {
			return nil, err
		}
		if r, ok := rels[oid]; ok {
			out[TableLock{Table: r.name, Mode: mode}] = true
		}
	}
	return out, rows.Err()
}

// pgScans returns this transaction's sequential scans per table oid.
func pgScans(ctx context.Context, q pgQuerier) (map[int64]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT relid::int8, seq_scan FROM pg_stat_xact_user_tables`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_xact_user_tables: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var oid, n int64
		if err := rows.Scan(&oid, &n); err != nil {
			return nil, err
		}
		out[oid] = n
	}
	return out, rows.Err()
}

// names reports whether a statement names a table (a whole word of it).
func names(sql, table string) bool {
	for _, tk := range tokenize(sql, postgresDialect) {
		if (tk.kind == tWord || tk.kind == tIdent) && strings.EqualFold(tk.text, table) {
			return true
		}
	}
	return false
}
