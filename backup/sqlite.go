package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	sqlitedrv "modernc.org/sqlite"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
)

// liteDriver backs up SQLite with VACUUM INTO, which copies the database
// inside one read transaction (consistent while writers run), and restores
// with SQLite's backup API, which replaces the live database's pages in
// one write transaction.
type liteDriver struct {
	db *database.DB
	s  settings
}

func (l *liteDriver) object() Object {
	return Object{Name: "database.sqlite.gz", Format: "sqlite-database", Compression: "gzip"}
}

func (l *liteDriver) engine(ctx context.Context) (*tool, error) {
	var v string
	if err := l.db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return nil, err
	}
	return &tool{name: "sqlite", version: v + " (VACUUM INTO, backup API)"}, nil
}

func (l *liteDriver) dumpTool(ctx context.Context) (*tool, error) { return l.engine(ctx) }
func (l *liteDriver) loadTool(ctx context.Context) (*tool, error) { return l.engine(ctx) }

// tempDir makes a private temporary directory (under TMPDIR) for copies.
func tempDir() (string, func(), error) {
	dir, err := os.MkdirTemp("", "ferry-backup-")
	if err != nil {
		return "", nil, fmt.Errorf("temporary directory for the database copy (set TMPDIR to a directory with room): %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

func (l *liteDriver) dump(ctx context.Context, _ *tool, w io.Writer) (*dumpResult, error) {
	dir, cleanup, err := tempDir()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	copyPath := filepath.Join(dir, "copy.db")
	if _, err := l.db.ExecContext(ctx, "VACUUM INTO ?", copyPath); err != nil {
		return nil, fmt.Errorf("VACUUM INTO a temporary copy: %w", err)
	}
	cp, err := database.Open(ctx, "sqlite:"+copyPath, database.Options{})
	if err != nil {
		return nil, err
	}
	res := &dumpResult{consistency: "copy"}
	counts, err := l.countRows(ctx, cp, nil)
	if err == nil {
		res.schemaVersion, err = schemaVersion(ctx, cp, cp.Dialect, l.s.table)
	}
	cp.Close()
	if err != nil {
		return nil, err
	}
	res.tables = sortedCounts(counts)
	f, err := os.Open(copyPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return nil, err
	}
	return res, nil
}

func (l *liteDriver) relations(ctx context.Context, q dialect.Querier) ([]string, error) {
	return queryStrings(ctx, q, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")
}

func (l *liteDriver) countRows(ctx context.Context, q dialect.Querier, _ []string) (map[string]int64, error) {
	names, err := queryStrings(ctx, q, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	quoted := map[string]string{}
	for _, n := range names {
		quoted[n] = l.db.Dialect.QuoteIdent(n)
	}
	return countAll(ctx, q, quoted)
}

// clean does nothing: the backup API replaces the whole database.
func (l *liteDriver) clean(context.Context, dialect.Querier) error { return nil }

// load writes the database file from r to a temporary copy, lets
// beforeSwap adjust the copy, and copies it over the live database with
// the backup API in one write transaction.
func (l *liteDriver) load(ctx context.Context, _ *tool, r io.Reader, beforeSwap func(context.Context, dialect.Querier) error) error {
	dir, cleanup, err := tempDir()
	if err != nil {
		return err
	}
	defer cleanup()
	copyPath := filepath.Join(dir, "restore.db")
	f, err := os.OpenFile(copyPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	cp, err := database.Open(ctx, "sqlite:"+copyPath, database.Options{})
	if err != nil {
		return err
	}
	var check string
	err = cp.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check)
	if err == nil && check != "ok" {
		err = fmt.Errorf("%w: the database in the backup fails SQLite's quick_check: %s", ErrCorrupt, check)
	}
	if err == nil && beforeSwap != nil {
		err = beforeSwap(ctx, cp)
	}
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	type restorer interface {
		NewRestore(srcURI string) (*sqlitedrv.Backup, error)
	}
	return conn.Raw(func(dc any) error {
		rs, ok := dc.(restorer)
		if !ok {
			return errors.New("the SQLite driver does not offer the backup API")
		}
		b, err := rs.NewRestore(copyPath)
		if err != nil {
			return fmt.Errorf("start restore: %w", err)
		}
		for {
			more, err := b.Step(-1)
			if err != nil {
				b.Finish()
				return fmt.Errorf("restore: %w", err)
			}
			if !more {
				break
			}
		}
		return b.Finish()
	})
}

func (l *liteDriver) scratch(ctx context.Context) (*database.DB, func(context.Context) error, error) {
	dir, cleanup, err := tempDir()
	if err != nil {
		return nil, nil, err
	}
	db, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "verify.db"), database.Options{})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return db, func(context.Context) error { db.Close(); cleanup(); return nil }, nil
}
