package backup

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
)

// pgDriver backs up PostgreSQL with pg_dump's custom format (compressed by
// pg_dump itself) and restores with pg_restore.
type pgDriver struct {
	db *database.DB
	s  settings
}

func (p *pgDriver) object() Object {
	return Object{Name: "dump.pgcustom", Format: "pg_dump-custom", Compression: "none"}
}

func (p *pgDriver) serverMajor(ctx context.Context) (int, error) {
	var num string
	if err := p.db.QueryRowContext(ctx, "SHOW server_version_num").Scan(&num); err != nil {
		return 0, fmt.Errorf("read the PostgreSQL server version: %w", err)
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, fmt.Errorf("server_version_num %q: %w", num, err)
	}
	return pgRelease(n/10000, n/100%100), nil
}

// pgRelease makes PostgreSQL versions comparable: 15.x -> 1500, 9.6 -> 906
// (before version 10 a major release had two numbers).
func pgRelease(major, minor int) int {
	if major >= 10 {
		return major * 100
	}
	return major*100 + minor
}

// pgReleaseName prints a pgRelease: 15, or 9.6.
func pgReleaseName(r int) string {
	if r >= 1000 {
		return strconv.Itoa(r / 100)
	}
	return fmt.Sprintf("%d.%d", r/100, r%100)
}

func pgInstallHint(release int) string {
	major := pgReleaseName(release)
	return fmt.Sprintf("install the PostgreSQL %s client tools (Debian/Ubuntu: apt-get install postgresql-client-%s; RHEL/Fedora: dnf install postgresql%s; macOS: brew install postgresql@%s), or set FERRY_BACKUP_TOOL_DIR to the directory that holds them", major, major, major, major)
}

// pgTool finds name and checks that its major version is at least the
// server's (pg_dump refuses newer servers; pg_restore must read what a
// pg_dump as new as the server wrote).
func (p *pgDriver) pgTool(ctx context.Context, name string, min int) (*tool, error) {
	server, err := p.serverMajor(ctx)
	if err != nil {
		return nil, err
	}
	if min < server {
		min = server
	}
	n, path, err := findTool(p.s.toolDir, name)
	if err != nil {
		return nil, fmt.Errorf("%w; %s", err, pgInstallHint(min))
	}
	line, err := toolVersion(ctx, path)
	if err != nil {
		return nil, err
	}
	major, minor, ok := parseMajorMinor(line, "(PostgreSQL)")
	if !ok {
		return nil, fmt.Errorf("%w: cannot read the version of %s from %q", ErrTool, path, line)
	}
	release := pgRelease(major, minor)
	if release < min {
		return nil, fmt.Errorf("%w: %s (%s) is version %s, older than the PostgreSQL %s it must work with; %s", ErrTool, name, path, pgReleaseName(release), pgReleaseName(min), pgInstallHint(min))
	}
	return &tool{name: n, path: path, version: strings.TrimSpace(strings.TrimPrefix(line, n)), major: release, minor: minor}, nil
}

func (p *pgDriver) dumpTool(ctx context.Context) (*tool, error) { return p.pgTool(ctx, "pg_dump", 0) }

func (p *pgDriver) loadTool(ctx context.Context) (*tool, error) {
	return p.pgTool(ctx, "pg_restore", 0)
}

func (p *pgDriver) runner(t *tool) *runner {
	return &runner{tool: t, env: pgEnv(p.db.URL, p.db.URL.Database), secret: p.db.URL.Password()}
}

// dump exports a snapshot in a repeatable-read transaction, runs pg_dump
// on that snapshot, and counts rows in the same snapshot while it runs, so
// that the counts and the dump agree exactly even with writers running.
func (p *pgDriver) dump(ctx context.Context, t *tool, w io.Writer) (*dumpResult, error) {
	conn, err := p.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	defer tx.Rollback()
	var snapshot string
	if err := tx.QueryRowContext(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	type counted struct {
		res *dumpResult
		err error
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan counted, 1)
	go func() {
		res := &dumpResult{consistency: "snapshot"}
		tables, err := p.countable(cctx, tx)
		if err == nil {
			var counts map[string]int64
			counts, err = countAll(cctx, tx, tables)
			res.tables = sortedCounts(counts)
		}
		if err == nil {
			res.schemaVersion, err = schemaVersion(cctx, tx, p.db.Dialect, p.s.table)
		}
		done <- counted{res, err}
	}()
	err = p.runner(t).run(ctx, []string{"--format=custom", "--snapshot=" + snapshot, "--no-password"}, nil, w)
	if err != nil {
		cancel()
		<-done
		return nil, err
	}
	c := <-done
	if c.err != nil {
		return nil, fmt.Errorf("count rows in the dump's snapshot: %w", c.err)
	}
	return c.res, nil
}

// userSchemaFilter selects the namespaces (alias n) that hold user objects.
const userSchemaFilter = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'`

// notExtensionMember excludes objects that belong to an extension.
func notExtensionMember(catalog, alias string) string {
	return `NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '` + catalog + `'::regclass AND dep.objid = ` + alias + `.oid AND dep.deptype = 'e')`
}

// countable returns the tables whose rows pg_dump dumps, by display name
// (schema.table) with their quoted names.
func (p *pgDriver) countable(ctx context.Context, q dialect.Querier) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT n.nspname || '.' || c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND `+userSchemaFilter+` AND `+notExtensionMember("pg_class", "c"))
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, quoted string
		if err := rows.Scan(&name, &quoted); err != nil {
			return nil, err
		}
		out[name] = quoted
	}
	return out, rows.Err()
}

func (p *pgDriver) relations(ctx context.Context, q dialect.Querier) ([]string, error) {
	return queryStrings(ctx, q, `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relpersistence <> 't' AND `+userSchemaFilter+` AND `+notExtensionMember("pg_class", "c")+`
ORDER BY 1`)
}

func (p *pgDriver) countRows(ctx context.Context, q dialect.Querier, _ []string) (map[string]int64, error) {
	tables, err := p.countable(ctx, q)
	if err != nil {
		return nil, err
	}
	return countAll(ctx, q, tables)
}

// clean drops every user schema but public with everything in it, and
// everything in public (extensions, tables, views, sequences, routines,
// types), in one transaction. public itself stays, with its owner, ACL and
// comment, because pg_dump does not recreate it.
func (p *pgDriver) clean(ctx context.Context, conn dialect.Querier) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	// Qualified names below: regprocedure and regtype print the schema
	// when it is not on the search_path.
	if _, err := conn.ExecContext(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
		return err
	}
	var stmts []string
	add := func(query, format string) error {
		names, err := queryStrings(ctx, conn, query)
		if err != nil {
			return fmt.Errorf("list objects to drop: %w", err)
		}
		for _, n := range names {
			stmts = append(stmts, fmt.Sprintf(format, n))
		}
		return nil
	}
	steps := []struct{ query, format string }{
		{`SELECT quote_ident(n.nspname) FROM pg_namespace n WHERE n.nspname <> 'public' AND ` + userSchemaFilter + ` AND ` + notExtensionMember("pg_namespace", "n"),
			"DROP SCHEMA IF EXISTS %s CASCADE"},
		{`SELECT quote_ident(e.extname) FROM pg_extension e WHERE e.extnamespace = 'public'::regnamespace`,
			"DROP EXTENSION IF EXISTS %s CASCADE"},
		{`SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END
	|| ' IF EXISTS public.' || quote_ident(c.relname)
FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND NOT c.relispartition AND ` + notExtensionMember("pg_class", "c") + `
ORDER BY c.relkind IN ('S') , c.oid`,
			"DROP %s CASCADE"},
		{`SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND ` + notExtensionMember("pg_proc", "p"),
			"DROP ROUTINE IF EXISTS %s CASCADE"},
		{`SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END || ' IF EXISTS ' || t.oid::regtype::text
FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
  AND (t.typtype IN ('e', 'r', 'd') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
  AND ` + notExtensionMember("pg_type", "t"),
			"DROP %s CASCADE"},
	}
	for _, s := range steps {
		// Each step lists what is left after the previous ones dropped
		// theirs (CASCADE takes dependants along).
		stmts = stmts[:0]
		if err := add(s.query, s.format); err != nil {
			return err
		}
		for _, st := range stmts {
			if _, err := conn.ExecContext(ctx, st); err != nil {
				return fmt.Errorf("empty the target database: %s: %w", st, err)
			}
		}
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// load runs pg_restore in one transaction: it restores everything or
// nothing.
func (p *pgDriver) load(ctx context.Context, t *tool, r io.Reader, _ func(context.Context, dialect.Querier) error) error {
	return p.runner(t).run(ctx, []string{"--single-transaction", "--exit-on-error", "--no-password", "--dbname=" + p.db.URL.Database}, r, io.Discard)
}

// scratch creates an empty database with the source's encoding and
// locale, from template0 as pg_restore wants.
func (p *pgDriver) scratch(ctx context.Context) (*database.DB, func(context.Context) error, error) {
	var enc, collate, ctype string
	if err := p.db.QueryRowContext(ctx, `SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = current_database()`).Scan(&enc, &collate, &ctype); err != nil {
		return nil, nil, fmt.Errorf("read database encoding: %w", err)
	}
	name := scratchName()
	q := p.db.Dialect.QuoteIdent
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	if _, err := p.db.ExecContext(ctx, "CREATE DATABASE "+q(name)+" TEMPLATE template0 ENCODING "+lit(enc)+" LC_COLLATE "+lit(collate)+" LC_CTYPE "+lit(ctype)); err != nil {
		return nil, nil, fmt.Errorf("create scratch database %s on %s (Verify needs CREATEDB): %w", name, p.db.URL.Address(), err)
	}
	drop := func(ctx context.Context) error {
		_, err := p.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q(name)+" WITH (FORCE)")
		return err
	}
	db, err := database.OpenURL(ctx, p.db.URL.WithDatabase(name), database.Options{})
	if err != nil {
		_ = drop(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return db, func(ctx context.Context) error { db.Close(); return drop(ctx) }, nil
}
