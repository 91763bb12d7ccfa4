package backup

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/migrate"
)

// Options are shared by Create, Verify and Restore.
type Options struct {
	// Table is ferry's history table (default migrate.DefaultTable); the
	// lock table is Table + "_lock".
	Table string
	// ToolDir, when set, is where pg_dump, pg_restore, mysqldump and mysql
	// are taken from instead of PATH.
	ToolDir string
	// FerryVersion is recorded in manifests.
	FerryVersion string
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger
	// Now returns the current time (default time.Now); for tests.
	Now func() time.Time
}

func (o Options) settings() settings {
	s := settings{table: o.Table, toolDir: o.ToolDir, log: o.Logger}
	if s.table == "" {
		s.table = migrate.DefaultTable
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

// CreateOptions adjust Create.
type CreateOptions struct {
	Options
	// Reason is recorded in the manifest (default ReasonManual).
	Reason string
	// Upgrade describes the upgrade a ReasonBeforeUpgrade backup precedes.
	Upgrade *UpgradeInfo
}

// Create takes a backup of db into store and returns its manifest. The
// dump is streamed from the tool through compression and a sha256 into the
// store; the manifest is written last, so a failed backup leaves no listed
// backup behind (its partial objects are deleted).
func Create(ctx context.Context, store *Store, db *database.DB, opts CreateOptions) (*Manifest, error) {
	s := opts.settings()
	drv, err := newDriver(db, s)
	if err != nil {
		return nil, err
	}
	start := opts.now()
	t, err := drv.dumpTool(ctx)
	if err != nil {
		return nil, db.URL.Redact(err)
	}
	m := &Manifest{
		Format: ManifestFormat, ID: NewID(start), CreatedAt: start,
		Reason: opts.Reason, FerryVersion: opts.FerryVersion, Upgrade: opts.Upgrade,
		Database: DatabaseInfo{Kind: db.URL.Kind, Name: db.URL.Database, Address: db.URL.Address(), URL: db.URL.String(), HistoryTable: s.table},
		Tool:     ToolInfo{Name: t.name, Version: t.version},
	}
	if m.Reason == "" {
		m.Reason = ReasonManual
	}
	if m.FerryVersion == "" {
		m.FerryVersion = "dev"
	}
	if si, ok := db.Dialect.(dialect.ServerInfo); ok {
		m.Database.ServerVersion, _ = si.ServerVersion(ctx, db)
	}
	s.log.Info("backup started", "id", m.ID, "database", db.URL.String(), "store", store.String(), "tool", t.path)
	obj := drv.object()
	ow, err := store.newObject(ctx, m.ID, obj.Name, "application/octet-stream")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Manifest, error) {
		ow.Abort()
		if derr := store.deletePrefix(context.WithoutCancel(ctx), m.ID+"/"); derr != nil {
			s.log.Warn("could not delete the partial backup", "id", m.ID, "error", derr)
		}
		return nil, db.URL.Redact(fmt.Errorf("backup of %s: %w", db.URL, err))
	}
	raw := &countingWriter{}
	var sink io.Writer = ow
	var gz *gzip.Writer
	if obj.Compression == "gzip" {
		// Fastest level: the dump streams at disk speed and text still
		// shrinks several times.
		gz, _ = gzip.NewWriterLevel(ow, gzip.BestSpeed)
		sink = gz
	}
	raw.w = sink
	res, err := drv.dump(ctx, t, raw)
	if err != nil {
		return fail(err)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return fail(err)
		}
	}
	if err := ow.Close(); err != nil {
		return fail(fmt.Errorf("store %s/%s: %w", m.ID, obj.Name, err))
	}
	obj.Size, obj.RawSize, obj.SHA256 = ow.Size(), raw.n, ow.SHA256()
	m.Objects = []Object{obj}
	m.Tables, m.SchemaVersion, m.Consistency = res.tables, res.schemaVersion, res.consistency
	if m.Tables == nil {
		m.Tables = []TableCount{}
	}
	m.DurationMS = opts.now().Sub(start).Milliseconds()
	if err := store.writeManifest(ctx, m); err != nil {
		return fail(err)
	}
	s.log.Info("backup done", "id", m.ID, "size", m.Size(), "raw_size", m.RawSize(), "duration_ms", m.DurationMS)
	return m, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// openDump opens the backup's dump object, decompressed, checked against
// the manifest as it is read.
func openDump(ctx context.Context, store *Store, m *Manifest) (io.Reader, func(), error) {
	if len(m.Objects) != 1 {
		return nil, nil, fmt.Errorf("backup %s has %d objects; this ferry restores backups of one object", m.ID, len(m.Objects))
	}
	obj := m.Objects[0]
	rc, err := store.openObject(ctx, m.ID, obj)
	if err != nil {
		return nil, nil, err
	}
	switch obj.Compression {
	case "none":
		return rc, func() { rc.Close() }, nil
	case "gzip":
		gz, err := gzip.NewReader(rc)
		if err != nil {
			rc.Close()
			return nil, nil, fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, m.ID, obj.Name, err)
		}
		// Read the compressed object to its end, so that its checksum is
		// checked even when the gzip stream ends early.
		return &drainReader{gz: gz, under: rc}, func() { gz.Close(); rc.Close() }, nil
	}
	rc.Close()
	return nil, nil, fmt.Errorf("backup %s: unknown compression %q", m.ID, obj.Compression)
}

// drainReader reads the gzip stream and, at its end, the rest of the
// underlying checked object.
type drainReader struct {
	gz    *gzip.Reader
	under io.Reader
}

func (d *drainReader) Read(p []byte) (int, error) {
	n, err := d.gz.Read(p)
	if errors.Is(err, io.EOF) {
		if _, derr := io.Copy(io.Discard, d.under); derr != nil {
			return n, derr
		}
	} else if err != nil {
		// A damaged gzip stream: prefer the checksum's verdict.
		if _, derr := io.Copy(io.Discard, d.under); derr != nil {
			return n, derr
		}
		return n, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return n, err
}

func scratchName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "ferry_verify_" + hex.EncodeToString(b)
}
