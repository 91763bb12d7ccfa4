package backup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
)

// driver is what one database family needs for backups.
type driver interface {
	// object describes the dump object: name, format and compression
	// ("gzip" means the generic code compresses the stream).
	object() Object
	// dumpTool finds the dump tool and checks it against the server.
	dumpTool(ctx context.Context) (*tool, error)
	// loadTool finds the load tool and checks it against the server.
	loadTool(ctx context.Context) (*tool, error)
	// dump writes a consistent dump to w and returns the row counts and the
	// schema version, taken consistently with the dump.
	dump(ctx context.Context, t *tool, w io.Writer) (*dumpResult, error)
	// relations lists the user tables and views of the database.
	relations(ctx context.Context, q dialect.Querier) ([]string, error)
	// clean drops every user object of the database (run under the
	// migration lock, on its connection).
	clean(ctx context.Context, conn dialect.Querier) error
	// load reads a dump from r into the database. fixLock, when not nil,
	// must be applied to the restored data before anyone else can see it
	// (SQLite: to the copy before it replaces the database) or right after
	// the load (servers, where the lock does not live in the table).
	load(ctx context.Context, t *tool, r io.Reader, fixLock func(context.Context, dialect.Querier) error) error
	// countRows counts the rows of the named tables.
	countRows(ctx context.Context, q dialect.Querier, tables []string) (map[string]int64, error)
	// scratch creates an empty database of the same kind on the same
	// server, for Verify; drop removes it.
	scratch(ctx context.Context) (db *database.DB, drop func(context.Context) error, err error)
}

// dumpResult is what a dump learned about the database.
type dumpResult struct {
	tables        []TableCount
	schemaVersion int64
	consistency   string
}

// settings are the knobs every driver shares.
type settings struct {
	table   string // ferry's history table
	toolDir string
	log     *slog.Logger
}

func newDriver(db *database.DB, s settings) (driver, error) {
	switch db.URL.Kind {
	case database.Postgres:
		return &pgDriver{db: db, s: s}, nil
	case database.MySQL:
		return &myDriver{db: db, s: s}, nil
	case database.SQLite:
		return &liteDriver{db: db, s: s}, nil
	}
	return nil, fmt.Errorf("backups of %s databases are not supported", db.URL.Kind)
}

// schemaVersion computes the current version from the history table the
// way the engine does: a version is applied when its last applied or
// reverted record says applied. 0 when there is no history table.
func schemaVersion(ctx context.Context, q dialect.Querier, d dialect.Dialect, table string) (int64, error) {
	ok, err := d.TableExists(ctx, q, table)
	if err != nil || !ok {
		return 0, err
	}
	rows, err := q.QueryContext(ctx, "SELECT version, state FROM "+d.Table(table)+" ORDER BY id")
	if err != nil {
		return 0, fmt.Errorf("read history table %s: %w", table, err)
	}
	defer rows.Close()
	applied := map[int64]bool{}
	for rows.Next() {
		var v int64
		var state string
		if err := rows.Scan(&v, &state); err != nil {
			return 0, err
		}
		switch state {
		case "applied":
			applied[v] = true
		case "reverted":
			applied[v] = false
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var max int64
	for v, ok := range applied {
		if ok && v > max {
			max = v
		}
	}
	return max, nil
}

// countAll counts rows of tables given as already-quoted names keyed by
// their display name.
func countAll(ctx context.Context, q dialect.Querier, quoted map[string]string) (map[string]int64, error) {
	out := make(map[string]int64, len(quoted))
	names := make([]string, 0, len(quoted))
	for n := range quoted {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var c int64
		if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoted[n]).Scan(&c); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, err)
		}
		out[n] = c
	}
	return out, nil
}

func sortedCounts(m map[string]int64) []TableCount {
	out := make([]TableCount, 0, len(m))
	for n, c := range m {
		out = append(out, TableCount{Name: n, Rows: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func queryStrings(ctx context.Context, q dialect.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// lockRow is the content of ferry's one-row lock table.
type lockRow struct {
	holder, owner            string
	token, acquired, expires int64
	present                  bool
}

func readLockRow(ctx context.Context, q dialect.Querier, d dialect.Dialect, table string) (lockRow, error) {
	var r lockRow
	ok, err := d.TableExists(ctx, q, table)
	if err != nil || !ok {
		return r, err
	}
	err = q.QueryRowContext(ctx, "SELECT holder, owner, token, acquired_at, expires_at FROM "+d.Table(table)+" WHERE id = 1").
		Scan(&r.holder, &r.owner, &r.token, &r.acquired, &r.expires)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return r, nil
		}
		return r, fmt.Errorf("read lock table %s: %w", table, err)
	}
	r.present = true
	return r, nil
}

// writeLockRow makes the lock table hold exactly r, creating the table if
// the restored data has none.
func writeLockRow(ctx context.Context, q dialect.Querier, d dialect.Dialect, table string, r lockRow) error {
	ok, err := d.TableExists(ctx, q, table)
	if err != nil {
		return err
	}
	if !ok {
		// The backup may come from a database whose ferry tables lived in
		// another schema: make this one's (PostgreSQL creates it here).
		if err := d.Prepare(ctx, q); err != nil {
			return err
		}
		for _, s := range d.LockTableDDL(table) {
			if _, err := q.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("create lock table %s: %w", table, err)
			}
		}
	}
	if _, err := q.ExecContext(ctx, "DELETE FROM "+d.Table(table)); err != nil {
		return fmt.Errorf("reset lock table %s: %w", table, err)
	}
	if !r.present {
		return nil
	}
	p := d.Placeholder
	_, err = q.ExecContext(ctx, "INSERT INTO "+d.Table(table)+" (id, holder, owner, token, acquired_at, expires_at) VALUES (1, "+p(1)+", "+p(2)+", "+p(3)+", "+p(4)+", "+p(5)+")",
		r.holder, r.owner, r.token, r.acquired, r.expires)
	if err != nil {
		return fmt.Errorf("reset lock table %s: %w", table, err)
	}
	return nil
}
