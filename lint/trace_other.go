package lint

import (
	"context"
	"slices"
	"strings"

	"github.com/ferrydb/ferry/migrate"
)

// mysqlProbes are the ALGORITHM/LOCK clauses tried on each ALTER, cheapest
// first. MySQL and MariaDB refuse a clause they cannot honour, without
// changing anything, so the first accepted is the cheapest possible.
var mysqlProbes = []string{"ALGORITHM=INSTANT", "ALGORITHM=INPLACE, LOCK=NONE", "ALGORITHM=INPLACE, LOCK=SHARED", "ALGORITHM=COPY"}

func (t *tracer) mysql(ctx context.Context, m *migrate.Migration) ([]Observation, error) {
	existing := map[string]bool{}
	rows, err := t.db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		existing[strings.ToLower(n)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Observation
	for _, st := range m.Up.Statements {
		o := t.observation(m, st)
		toks := tokenize(st.SQL, mysqlDialect)
		cur := &cursor{toks: toks}
		alter := cur.accept("alter", "table")
		index := !alter && cur.accept("create") && (cur.accept("unique") || cur.accept("fulltext") || cur.accept("spatial") || true) && cur.accept("index")
		tbl := ""
		if alter {
			tbl, _ = (&cursor{toks: toks, i: cur.i}).name()
		} else if index {
			c := &cursor{toks: toks, i: cur.i}
			c.name()
			if c.accept("using") {
				c.next()
			}
			if c.accept("on") {
				tbl, _ = c.name()
			}
		}
		if t.outside(st.SQL) {
			o.Note = outsideNote
			out = append(out, o)
			continue
		}
		probe := (alter || index) && !has(toks, "algorithm") && !has(toks, "lock") && !cur.done()
		if alter {
			// RENAME TO and partition maintenance take no ALGORITHM.
			probe = probe && !has(toks, "partition")
		}
		if !probe {
			o.Note = "run, not probed: only ALTER TABLE and CREATE INDEX without their own ALGORITHM or LOCK are"
			if _, err := t.db.ExecContext(ctx, st.SQL); err != nil {
				o.Err = err.Error()
				out = append(out, o)
				return out, &stmtError{st.Line, err}
			}
			out = append(out, o)
			continue
		}
		sqlText := strings.TrimRight(strings.TrimSpace(st.SQL), ";")
		var lastErr error
		for _, p := range mysqlProbes {
			clause := ", " + p
			if index {
				clause = " " + strings.ReplaceAll(p, ", ", " ")
			}
			if _, err := t.db.ExecContext(ctx, sqlText+clause); err != nil {
				lastErr = err
				continue
			}
			o.Algorithm, lastErr = strings.TrimPrefix(p, "ALGORITHM="), nil
			break
		}
		if tbl != "" && !existing[strings.ToLower(tbl)] {
			o.Note = "on a table created in this migration: no rows, no running release"
		}
		if lastErr != nil {
			o.Err = lastErr.Error()
			out = append(out, o)
			return out, &stmtError{st.Line, lastErr}
		}
		out = append(out, o)
	}
	return out, nil
}

func (t *tracer) sqlite(ctx context.Context, m *migrate.Migration) ([]Observation, error) {
	conn, err := t.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	tables := func() (map[string]int64, error) {
		rows, err := conn.QueryContext(ctx, `SELECT name, rootpage FROM sqlite_master WHERE type = 'table'`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var n string
			var p int64
			if err := rows.Scan(&n, &p); err != nil {
				return nil, err
			}
			out[strings.ToLower(n)] = p
		}
		return out, rows.Err()
	}
	before, err := tables()
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
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
		if _, err := conn.ExecContext(ctx, st.SQL); err != nil {
			o.Err = err.Error()
			conn.ExecContext(ctx, "ROLLBACK")
			return append(out, o), &stmtError{st.Line, err}
		}
		out = append(out, o)
	}
	after, err := tables()
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, err
	}
	// A rebuild spans statements (create, copy, drop, rename): it shows on
	// the migration's last statement that touched the table.
	for name, page := range before {
		if p, ok := after[name]; ok && p != page {
			// The statement that renames a table into the name completes a
			// rebuild; failing that, the last one that names the table.
			i := -1
			for j, st := range m.Up.Statements {
				c := &cursor{toks: tokenize(st.SQL, sqliteDialect)}
				if c.accept("alter", "table") {
					c.name()
					if c.accept("rename", "to") {
						if to, _ := c.name(); strings.EqualFold(to, name) {
							i = j
						}
					}
				}
			}
			for j := len(out) - 1; i < 0 && j >= 0; j-- {
				if strings.Contains(strings.ToLower(m.Up.Statements[j].SQL), name) {
					i = j
				}
			}
			if i < 0 {
				i = len(out) - 1
			}
			out[i].Rewritten = append(out[i].Rewritten, name)
			slices.Sort(out[i].Rewritten)
		}
	}
	return out, nil
}

func sortObservation(o *Observation) {
	for _, ls := range [][]TableLock{o.Locks, o.Held} {
		slices.SortFunc(ls, func(a, b TableLock) int { return strings.Compare(a.Table+a.Mode, b.Table+b.Mode) })
	}
	slices.Sort(o.Rewritten)
	slices.Sort(o.Scanned)
}
