// Package compat lets ferry take over, and live beside, databases managed by
// goose and golang-migrate: it reads their version tables (for
// migrate.Migrator.Adopt) and keeps them up to date as ferry changes the
// schema (as a migrate.HistoryMirror), so that the tool, and services that
// read its table, still see the right version.
//
// The tables are created exactly as the tools create them.
package compat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/migrate"
)

// Tool names, as used by `ferry adopt --from` and `--history`.
const (
	ToolGoose         = "goose"
	ToolGolangMigrate = "golang-migrate"
)

// Table is another tool's version table.
type Table interface {
	migrate.HistoryMirror
	// Exists reports whether the table is there.
	Exists(ctx context.Context, q dialect.Querier) (bool, error)
	// Read returns the migrations the tool considers applied. known lists
	// the migrations ferry loaded (golang-migrate records only the current
	// version, which Read expands into the applied set).
	Read(ctx context.Context, q dialect.Querier, known []*migrate.Migration) ([]migrate.Adopted, error)
	// Tool is ToolGoose or ToolGolangMigrate.
	Tool() string
	// Name is the table's name.
	Name() string
}

// ErrNoTable is returned by Read when the tool's table does not exist.
var ErrNoTable = errors.New("version table not found")

// New returns the version table of tool ("goose" or "golang-migrate") in a
// database of dialect d. table "" means the tool's default name.
func New(tool string, d dialect.Dialect, table string) (Table, error) {
	switch tool {
	case ToolGoose:
		if table == "" {
			table = "goose_db_version"
		}
		return &Goose{d: d, table: table}, nil
	case ToolGolangMigrate:
		if table == "" {
			table = "schema_migrations"
		}
		return &GolangMigrate{d: d, table: table}, nil
	}
	return nil, fmt.Errorf("unknown tool %q: use %s or %s", tool, ToolGoose, ToolGolangMigrate)
}

// Goose is goose's version table (goose_db_version): one row per applied
// migration, and a version 0 row written when the table is created.
type Goose struct {
	d     dialect.Dialect
	table string
}

// Tool implements Table.
func (g *Goose) Tool() string { return ToolGoose }

// Name implements Table.
func (g *Goose) Name() string { return g.table }

// Exists implements Table.
func (g *Goose) Exists(ctx context.Context, q dialect.Querier) (bool, error) {
	return g.d.TableExists(ctx, q, g.table)
}

// createSQL is goose's own CREATE TABLE for the dialect.
func (g *Goose) createSQL() string {
	t := g.d.Table(g.table)
	if g.d.Name() == "sqlite" {
		return `CREATE TABLE ` + t + ` (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	)`
	}
	// PostgreSQL and MySQL share goose's definition.
	return `CREATE TABLE ` + t + ` (
		id serial NOT NULL,
		version_id bigint NOT NULL,
		is_applied boolean NOT NULL,
		tstamp timestamp NULL default now(),
		PRIMARY KEY(id)
	)`
}

// Ensure implements migrate.HistoryMirror: it creates the table as goose
// does, with goose's initial version 0 row.
func (g *Goose) Ensure(ctx context.Context, q migrate.Querier) error {
	ok, err := g.Exists(ctx, q)
	if err != nil || ok {
		return err
	}
	if _, err := q.ExecContext(ctx, g.createSQL()); err != nil {
		return fmt.Errorf("create %s: %w", g.table, err)
	}
	return g.insert(ctx, q, 0)
}

func (g *Goose) insert(ctx context.Context, q migrate.Querier, v int64) error {
	p := g.d.Placeholder
	if _, err := q.ExecContext(ctx, "INSERT INTO "+g.d.Table(g.table)+" (version_id, is_applied) VALUES ("+p(1)+", "+p(2)+")", v, true); err != nil {
		return fmt.Errorf("insert version %d into %s: %w", v, g.table, err)
	}
	return nil
}

// Record implements migrate.HistoryMirror the way goose does: a row for an
// applied migration, its rows deleted when it is reverted.
func (g *Goose) Record(ctx context.Context, q migrate.Querier, c migrate.MirrorChange) error {
	if c.Applied {
		return g.insert(ctx, q, c.Version)
	}
	if _, err := q.ExecContext(ctx, "DELETE FROM "+g.d.Table(g.table)+" WHERE version_id = "+g.d.Placeholder(1), c.Version); err != nil {
		return fmt.Errorf("delete version %d from %s: %w", c.Version, g.table, err)
	}
	return nil
}

// Read implements Table. A version is applied when its latest row says so
// (goose's older releases recorded reverts as is_applied = false rows).
func (g *Goose) Read(ctx context.Context, q dialect.Querier, _ []*migrate.Migration) ([]migrate.Adopted, error) {
	ok, err := g.Exists(ctx, q)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoTable, g.table)
	}
	rows, err := q.QueryContext(ctx, "SELECT version_id, is_applied, tstamp FROM "+g.d.Table(g.table)+" ORDER BY id DESC")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", g.table, err)
	}
	defer rows.Close()
	seen := map[int64]bool{}
	var out []migrate.Adopted
	for rows.Next() {
		var v int64
		var applied bool
		var ts sql.NullTime
		if err := rows.Scan(&v, &applied, &ts); err != nil {
			return nil, fmt.Errorf("read %s: %w", g.table, err)
		}
		if seen[v] {
			continue
		}
		seen[v] = true
		if applied && v > 0 {
			out = append(out, migrate.Adopted{Version: v, AppliedAt: ts.Time})
		}
	}
	return out, rows.Err()
}

// Version returns goose's current version: the latest applied row's
// version, 0 if none. It is what `goose version` prints.
func (g *Goose) Version(ctx context.Context, q dialect.Querier) (int64, error) {
	rows, err := q.QueryContext(ctx, "SELECT version_id, is_applied FROM "+g.d.Table(g.table)+" ORDER BY id DESC")
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", g.table, err)
	}
	defer rows.Close()
	skip := map[int64]bool{}
	for rows.Next() {
		var v int64
		var applied bool
		if err := rows.Scan(&v, &applied); err != nil {
			return 0, err
		}
		if skip[v] {
			continue
		}
		if applied {
			return v, nil
		}
		skip[v] = true
	}
	return 0, rows.Err()
}

// GolangMigrate is golang-migrate's version table (schema_migrations): one
// row with the current version and a dirty flag.
type GolangMigrate struct {
	d     dialect.Dialect
	table string
}

// Tool implements Table.
func (g *GolangMigrate) Tool() string { return ToolGolangMigrate }

// Name implements Table.
func (g *GolangMigrate) Name() string { return g.table }

// Exists implements Table.
func (g *GolangMigrate) Exists(ctx context.Context, q dialect.Querier) (bool, error) {
	return g.d.TableExists(ctx, q, g.table)
}

// Ensure implements migrate.HistoryMirror, creating the table as
// golang-migrate does.
func (g *GolangMigrate) Ensure(ctx context.Context, q migrate.Querier) error {
	ok, err := g.Exists(ctx, q)
	if err != nil || ok {
		return err
	}
	t := g.d.Table(g.table)
	stmts := []string{`CREATE TABLE IF NOT EXISTS ` + t + ` (version bigint not null primary key, dirty boolean not null)`}
	if g.d.Name() == "sqlite" {
		stmts = []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (version uint64,dirty bool)`,
			`CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON ` + t + ` (version)`,
		}
	}
	for _, s := range stmts {
		if _, err := q.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create %s: %w", g.table, err)
		}
	}
	return nil
}

// Record implements migrate.HistoryMirror the way golang-migrate does: the
// table holds only the current version.
func (g *GolangMigrate) Record(ctx context.Context, q migrate.Querier, c migrate.MirrorChange) error {
	t := g.d.Table(g.table)
	if _, err := q.ExecContext(ctx, "DELETE FROM "+t); err != nil {
		return fmt.Errorf("update %s: %w", g.table, err)
	}
	if c.Current == 0 {
		return nil
	}
	p := g.d.Placeholder
	if _, err := q.ExecContext(ctx, "INSERT INTO "+t+" (version, dirty) VALUES ("+p(1)+", "+p(2)+")", c.Current, false); err != nil {
		return fmt.Errorf("update %s: %w", g.table, err)
	}
	return nil
}

// Read implements Table: golang-migrate records only the current version,
// so every known migration up to it counts as applied, and a dirty current
// version is adopted as failed (it stopped part-way).
func (g *GolangMigrate) Read(ctx context.Context, q dialect.Querier, known []*migrate.Migration) ([]migrate.Adopted, error) {
	ok, err := g.Exists(ctx, q)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoTable, g.table)
	}
	var current int64
	var dirty bool
	err = q.QueryRowContext(ctx, "SELECT version, dirty FROM "+g.d.Table(g.table)+" LIMIT 1").Scan(&current, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", g.table, err)
	}
	now := time.Now().UTC()
	var out []migrate.Adopted
	found := false
	for _, m := range known {
		if m.Version > current {
			break
		}
		found = found || m.Version == current
		out = append(out, migrate.Adopted{Version: m.Version, AppliedAt: now, Dirty: dirty && m.Version == current})
	}
	if !found {
		out = append(out, migrate.Adopted{Version: current, AppliedAt: now, Dirty: dirty})
	}
	return out, nil
}
