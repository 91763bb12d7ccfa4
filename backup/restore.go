package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/migrate"
)

// ErrMismatch is returned (wrapped by *VerifyError) when the row counts of
// a verification restore differ from the manifest.
var ErrMismatch = errors.New("restored row counts do not match the manifest")

// ErrNotEmpty is returned (wrapped) by Restore when the target database
// has tables and RestoreOptions.Force is not set. Nothing was changed.
var ErrNotEmpty = errors.New("target database is not empty")

// VerifyOptions adjust Verify.
type VerifyOptions struct {
	Options
	// ChecksumsOnly checks sizes and checksums and skips the restore into
	// a scratch database.
	ChecksumsOnly bool
}

// TableCheck compares one table's rows after a verification restore with
// the manifest.
type TableCheck struct {
	Name string `json:"name"`
	// Want is the count in the manifest (-1: not in the manifest), Got the
	// count after the restore (-1: missing after the restore).
	Want int64 `json:"want_rows"`
	Got  int64 `json:"got_rows"`
	OK   bool  `json:"ok"`
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	ID          string `json:"id"`
	ChecksumsOK bool   `json:"checksums_ok"`
	// Restored is true when the backup was restored into a scratch
	// database and its row counts compared.
	Restored   bool         `json:"restored"`
	Tables     []TableCheck `json:"tables"`
	OK         bool         `json:"ok"`
	DurationMS int64        `json:"duration_ms"`
}

// VerifyError lists the tables whose counts differ.
type VerifyError struct {
	ID         string
	Mismatches []TableCheck
}

// Error lists the mismatches and says not to rely on the backup.
func (e *VerifyError) Error() string {
	parts := make([]string, 0, len(e.Mismatches))
	for _, m := range e.Mismatches {
		switch {
		case m.Got < 0:
			parts = append(parts, fmt.Sprintf("%s missing (want %d rows)", m.Name, m.Want))
		case m.Want < 0:
			parts = append(parts, fmt.Sprintf("%s not in the manifest (%d rows)", m.Name, m.Got))
		default:
			parts = append(parts, fmt.Sprintf("%s has %d rows, want %d", m.Name, m.Got, m.Want))
		}
	}
	return fmt.Sprintf("backup %s: %v: %s; do not rely on this backup, take a new one", e.ID, ErrMismatch, strings.Join(parts, ", "))
}

// Unwrap returns ErrMismatch.
func (e *VerifyError) Unwrap() error { return ErrMismatch }

// Verify checks backup id: the size and sha256 of every object, then
// (unless ChecksumsOnly) a restore into a scratch database on server's
// server (a new database, dropped afterwards; a temporary file for SQLite)
// and a comparison of every table's row count with the manifest. server
// must be of the backup's kind; only its server and credentials are used.
// The error wraps ErrCorrupt or ErrMismatch when the backup is bad; the
// result is returned with it.
func Verify(ctx context.Context, store *Store, id string, server *database.DB, opts VerifyOptions) (*VerifyResult, error) {
	start := time.Now()
	m, err := store.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{ID: id, Tables: []TableCheck{}}
	defer func() { res.DurationMS = time.Since(start).Milliseconds() }()
	if err := store.CheckObjects(ctx, m); err != nil {
		return res, err
	}
	res.ChecksumsOK = true
	if opts.ChecksumsOnly {
		res.OK = true
		return res, nil
	}
	if err := sameKind(m, server); err != nil {
		return res, err
	}
	s := opts.settings()
	drv, err := newDriver(server, s)
	if err != nil {
		return res, err
	}
	scratch, drop, err := drv.scratch(ctx)
	if err != nil {
		return res, server.URL.Redact(err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := drop(dctx); err != nil {
			s.log.Warn("could not drop the scratch database", "error", err)
		}
	}()
	sdrv, err := newDriver(scratch, s)
	if err != nil {
		return res, err
	}
	t, err := loadTool(ctx, sdrv, m)
	if err != nil {
		return res, server.URL.Redact(err)
	}
	r, closeDump, err := openDump(ctx, store, m)
	if err != nil {
		return res, err
	}
	err = sdrv.load(ctx, t, r, nil)
	closeDump()
	if err != nil {
		return res, server.URL.Redact(fmt.Errorf("restore backup %s into a scratch database: %w", id, err))
	}
	res.Restored = true
	got, err := sdrv.countRows(ctx, scratch, nil)
	if err != nil {
		return res, err
	}
	res.Tables = compareCounts(m.Tables, got)
	var bad []TableCheck
	for _, c := range res.Tables {
		if !c.OK {
			bad = append(bad, c)
		}
	}
	if len(bad) > 0 {
		return res, &VerifyError{ID: id, Mismatches: bad}
	}
	res.OK = true
	return res, nil
}

func compareCounts(want []TableCount, got map[string]int64) []TableCheck {
	out := []TableCheck{}
	seen := map[string]bool{}
	for _, w := range want {
		seen[w.Name] = true
		g, ok := got[w.Name]
		if !ok {
			g = -1
		}
		out = append(out, TableCheck{Name: w.Name, Want: w.Rows, Got: g, OK: ok && g == w.Rows})
	}
	for n, g := range got {
		if !seen[n] {
			out = append(out, TableCheck{Name: n, Want: -1, Got: g})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sameKind(m *Manifest, db *database.DB) error {
	if m.Database.Kind != db.URL.Kind {
		return fmt.Errorf("backup %s is of a %s database, but %s is %s; point --database (or --to) at a %s database", m.ID, m.Database.Kind, db.URL, db.URL.Kind, m.Database.Kind)
	}
	return nil
}

// loadTool finds the load tool; for PostgreSQL it must also be at least
// as new as the pg_dump that wrote the backup.
func loadTool(ctx context.Context, d driver, m *Manifest) (*tool, error) {
	t, err := d.loadTool(ctx)
	if err != nil {
		return nil, err
	}
	if m.Database.Kind == database.Postgres {
		if major, minor, ok := parseMajorMinor(m.Tool.Version, "(PostgreSQL)"); ok && t.major < pgRelease(major, minor) {
			r := pgRelease(major, minor)
			return nil, fmt.Errorf("%w: pg_restore %s cannot read a backup written by pg_dump %s; %s", ErrTool, pgReleaseName(t.major), pgReleaseName(r), pgInstallHint(r))
		}
	}
	return t, nil
}

// RestoreOptions adjust Restore.
type RestoreOptions struct {
	Options
	// Force restores into a database that has tables, replacing them.
	// Without it Restore refuses such a target and changes nothing.
	Force bool
	// LockTimeout is how long to wait for the migration lock (default
	// migrate.DefaultLockTimeout).
	LockTimeout time.Duration
}

// RestoreResult describes a finished restore.
type RestoreResult struct {
	ID            string `json:"id"`
	Target        string `json:"target"`
	SchemaVersion int64  `json:"schema_version"`
	Tables        int    `json:"tables"`
	DurationMS    int64  `json:"duration_ms"`
}

// Restore replaces the contents of target with backup id. It refuses a
// target that has tables unless opts.Force, checks the backup's checksums
// before touching anything, and then, holding the migration lock of
// target (so that no upgrade runs meanwhile), drops everything in target
// and loads the backup: PostgreSQL with pg_restore in one transaction,
// MySQL with the mysql client, SQLite with the backup API in one write
// transaction.
//
// Afterwards the history table is the backup's (it is the truth of the
// restored schema) and the lock table claims no holder. If the load fails
// on a server, target may be left empty: fix the cause and run the restore
// again.
func Restore(ctx context.Context, store *Store, id string, target *database.DB, opts RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	s := opts.settings()
	m, err := store.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := sameKind(m, target); err != nil {
		return nil, err
	}
	drv, err := newDriver(target, s)
	if err != nil {
		return nil, err
	}
	t, err := loadTool(ctx, drv, m)
	if err != nil {
		return nil, target.URL.Redact(err)
	}
	if !opts.Force {
		if err := checkEmpty(ctx, drv, target, target.DB, s.table, m.ID); err != nil {
			return nil, err
		}
	}
	s.log.Info("checking backup checksums", "id", id)
	if err := store.CheckObjects(ctx, m); err != nil {
		return nil, err
	}
	mopts := []migrate.Option{
		migrate.WithFS(fstest.MapFS{}, "(restore)"),
		migrate.WithTable(s.table),
		migrate.WithLogger(s.log),
	}
	if opts.LockTimeout > 0 {
		mopts = append(mopts, migrate.WithLockTimeout(opts.LockTimeout))
	}
	mig, err := migrate.New(target.DB, target.Dialect, mopts...)
	if err != nil {
		return nil, err
	}
	lockTable := s.table + "_lock"
	err = mig.WithLock(ctx, func(ctx context.Context, conn migrate.Querier) error {
		if !opts.Force {
			// An upgrade may have run while we waited for the lock.
			if err := checkEmpty(ctx, drv, target, conn, s.table, m.ID); err != nil {
				return err
			}
		}
		saved, err := readLockRow(ctx, conn, target.Dialect, lockTable)
		if err != nil {
			return err
		}
		s.log.Info("emptying the target database", "target", target.URL.String())
		if err := drv.clean(ctx, conn); err != nil {
			return err
		}
		r, closeDump, err := openDump(ctx, store, m)
		if err != nil {
			return err
		}
		defer closeDump()
		s.log.Info("loading the backup", "id", id, "tool", t.path)
		fix := func(ctx context.Context, q dialect.Querier) error {
			return writeLockRow(ctx, q, target.Dialect, lockTable, saved)
		}
		if target.URL.Kind == database.SQLite {
			// The lease lock lives in the database: put this run's lease
			// into the copy, so the lock stays held across the swap.
			return drv.load(ctx, t, r, fix)
		}
		if err := drv.load(ctx, t, r, nil); err != nil {
			return err
		}
		return fix(ctx, conn)
	})
	if err != nil {
		return nil, target.URL.Redact(fmt.Errorf("restore backup %s into %s: %w", id, target.URL, err))
	}
	res := &RestoreResult{ID: id, Target: target.URL.String(), Tables: len(m.Tables)}
	if res.SchemaVersion, err = schemaVersion(ctx, target, target.Dialect, s.table); err != nil {
		return nil, err
	}
	res.DurationMS = time.Since(start).Milliseconds()
	s.log.Info("restore done", "id", id, "target", res.Target, "schema_version", res.SchemaVersion, "duration_ms", res.DurationMS)
	return res, nil
}

// checkEmpty refuses a target with tables other than ferry's own empty
// history and lock tables.
func checkEmpty(ctx context.Context, drv driver, target *database.DB, q dialect.Querier, table, id string) error {
	rels, err := drv.relations(ctx, q)
	if err != nil {
		return fmt.Errorf("look at the target database: %w", err)
	}
	var found []string
	for _, r := range rels {
		bare := r[strings.LastIndexByte(r, '.')+1:]
		if bare == table+"_lock" {
			continue
		}
		if bare == table {
			var n int64
			if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+target.Dialect.Table(table)).Scan(&n); err == nil && n == 0 {
				continue
			}
		}
		found = append(found, r)
	}
	if len(found) == 0 {
		return nil
	}
	list := found
	if len(list) > 5 {
		list = append(list[:5:5], "... ("+strconv.Itoa(len(found))+" in all)")
	}
	return fmt.Errorf("%w: %s has %s; restoring backup %s replaces everything in it. If that is what you want, run the restore again with --yes",
		ErrNotEmpty, target.URL, strings.Join(list, ", "), id)
}
