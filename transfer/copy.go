package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

// CopyOptions adjust Copy.
type CopyOptions struct {
	Options
	// Tables and Exclude select tables, as for Export.
	Tables, Exclude []string
	// Plan reports what the copy would do and changes nothing.
	Plan bool
	// Mapping allows lossy conversions across engines (casts).
	Mapping *Mapping
	// Window, if set, copies only recent rows, closed under foreign keys
	// (see Window).
	Window *Window
	// bulkRows: see ImportOptions.
	bulkRows int64
}

// Copy copies the tables of src into dst, an empty database (of any
// engine: values are converted as for Import), with no store between them: an export's snapshot read straight
// into an import's load. dst is migrated to src's schema version with
// dmig's migrations (their checksums must match what src applied), loaded
// and verified under its migration lock, then migrated to its latest
// version. src's migration lock is held throughout, so no upgrade runs on
// either side meanwhile. Everything that can be checked before writing is
// checked first: both databases reachable, different,
// dst empty, the migrations compatible.
//
// A copy that stops half way cannot be resumed (the source has moved on):
// drop dst, create it empty, and copy again.
// ErrSameDatabase is wrapped by the error for a copy whose target is its
// source.
var ErrSameDatabase = errors.New("a copy to itself")

func Copy(ctx context.Context, src *database.DB, smig *migrate.Migrator, dst *database.DB, dmig *migrate.Migrator, opts CopyOptions) (*ImportReport, error) {
	start := opts.now()
	for _, db := range []*database.DB{src, dst} {
		if err := db.Ping(ctx); err != nil {
			return nil, err
		}
	}
	same, err := sameDatabase(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	if same {
		return nil, fmt.Errorf("%w: %s is the database %s: give the new, empty database as the target", ErrSameDatabase, dst.URL, src.URL)
	}
	m := newManifest(ctx, start, src, smig, opts.FerryVersion)
	rep := &ImportReport{ExportID: m.ID, Store: "(none: copied directly)", Source: src.URL.String(), Target: dst.URL.String(), Engine: src.URL.Kind, TargetEngine: dst.URL.Kind,
		Tables: []TableReport{}, Problems: []Problem{}, Steps: []string{}}
	if err := checkSource(ctx, src, smig, "--from"); err != nil {
		return nil, err
	}
	err = smig.WithLock(ctx, func(context.Context, migrate.Querier) error {
		if err := readSource(ctx, src, smig, m, opts.logger()); err != nil {
			return err
		}
		rep.ExportVersion = m.Source.SchemaVersion
		snaps, _, err := openSnapshots(ctx, src, 1, false, &m.Snapshot)
		if err != nil {
			return err
		}
		defer snaps[0].close()
		tables, err := catalog(ctx, snaps[0].q, src.URL.Kind, ownTables(m.Source.HistoryTable))
		if err != nil {
			return err
		}
		if tables, err = selectTables(tables, opts.Tables, opts.Exclude); err != nil {
			return err
		}
		if src.URL.Kind == database.Postgres {
			if m.Sequences, err = schemaSequences(ctx, snaps[0].q, ownTables(m.Source.HistoryTable)); err != nil {
				return err
			}
		}
		m.Tables = make([]TableExport, len(tables))
		for i, t := range tables {
			m.Tables[i] = TableExport{Table: *t, Rows: -1}
		}
		filters := map[string]rowFilter{}
		if opts.Window != nil {
			if m.Window, filters, err = resolveWindow(ctx, snaps[0].q, src.URL.Kind, m.Tables, opts.Window, m.Snapshot.At); err != nil {
				return err
			}
			for i := range m.Tables {
				m.Tables[i].Filter = filters[m.Tables[i].Name].desc
			}
		}
		estimates, err := rowEstimates(ctx, snaps[0].q, src.URL.Kind)
		if err != nil {
			return err
		}
		im := &importer{m: m, db: dst, mig: dmig, opts: ImportOptions{Options: opts.Options, Plan: opts.Plan, Mapping: opts.Mapping, bulkRows: opts.bulkRows}, rep: rep,
			log: opts.logger(), ledger: dst.Dialect.Table(ledgerTable(dmig.Table())), text: newTextHash(),
			direct: &directSource{q: snaps[0].q, kind: src.URL.Kind, filters: filters, estimates: estimates}}
		if err := im.run(ctx); err != nil {
			im.finalVersion(ctx)
			return err
		}
		return nil
	})
	rep.DurationMS = opts.now().Sub(start).Milliseconds()
	if err != nil {
		return rep, dst.URL.Redact(src.URL.Redact(fmt.Errorf("copy of %s into %s: %w", src.URL, dst.URL, err)))
	}
	return rep, nil
}

// sameDatabase reports whether a and b are one database, however their
// URLs name it (localhost or 127.0.0.1, a relative or an absolute path):
// a server connection of a's must be visible from b, in the same database
// (and PostgreSQL schema).
func sameDatabase(ctx context.Context, a, b *database.DB) (bool, error) {
	if a.URL.Kind != b.URL.Kind {
		return false, nil
	}
	if a.URL.Kind == database.SQLite {
		pa, _ := filepath.Abs(a.URL.Database)
		pb, _ := filepath.Abs(b.URL.Database)
		if pa == pb {
			return true, nil
		}
		sa, errA := os.Stat(pa)
		sb, errB := os.Stat(pb)
		return errA == nil && errB == nil && os.SameFile(sa, sb), nil
	}
	conn, err := a.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var id int64
	var schema string
	seen := 0
	switch a.URL.Kind {
	case database.Postgres:
		if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid(), current_schema()`).Scan(&id, &schema); err != nil {
			return false, err
		}
		err = b.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND datname = current_database() AND $2 = current_schema()`, id, schema).Scan(&seen)
	default:
		if err := conn.QueryRowContext(ctx, `SELECT CONNECTION_ID()`).Scan(&id); err != nil {
			return false, err
		}
		err = b.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.processlist WHERE id = ? AND db = DATABASE()`, id).Scan(&seen)
	}
	if err != nil {
		return false, fmt.Errorf("compare source and target: %w", err)
	}
	return seen > 0, nil
}

// directSource reads a copy's rows from the source's snapshot, counting
// and summing them into the table's manifest entry as they go, for the
// verification that follows the load.
type directSource struct {
	q    querier
	kind string
	// filters are a window's (see Window), by table.
	filters map[string]rowFilter
	// estimates are the source's estimates of its tables' rows (the
	// planner's statistics), by table.
	estimates map[string]int64
}

// rowEstimates returns the statistics' row count of every table q sees
// (PostgreSQL's reltuples, MySQL's TABLE_ROWS; nothing for SQLite).
func rowEstimates(ctx context.Context, q querier, kind string) (map[string]int64, error) {
	query := ""
	switch kind {
	case database.Postgres:
		query = `SELECT c.relname, GREATEST(c.reltuples, 0)::bigint FROM pg_class c
			WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')`
	case database.MySQL:
		query = `SELECT TABLE_NAME, COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`
	default:
		return map[string]int64{}, nil
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			rows.Close()
			return nil, err
		}
		out[name] = n
	}
	return out, closeRows(rows)
}

func (d *directSource) rows(ctx context.Context, t *TableExport, fn func(line []byte) error) error {
	f := d.filters[t.Name]
	r, err := readRowsWhere(ctx, d.q, d.kind, &t.Table, f.where, f.flag, nil)
	if err != nil {
		return fmt.Errorf("read table %s from the source: %w", t.Name, err)
	}
	defer r.close()
	var sum rowSum
	var n int64
	var line []byte
	for {
		ok, err := r.next()
		if err != nil {
			return fmt.Errorf("read table %s from the source: %w", t.Name, err)
		}
		if !ok {
			break
		}
		if f.keep != nil && !f.keep(r.values(), r.flagged == 1) {
			continue
		}
		line = r.appendRow(line[:0])
		line = line[:len(line)-1]
		sum.add(line)
		n++
		if err := fn(line); err != nil {
			return err
		}
	}
	t.Rows, t.RowChecksum = n, sum.String()
	return nil
}
