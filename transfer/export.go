package transfer

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/migrate"
)

// DefaultChunkBytes is the size of a chunk's rows before compression at
// which an export starts the table's next chunk.
const DefaultChunkBytes = 64 << 20

// Options are common to export and import.
type Options struct {
	// Logger receives progress and outcome records; nil discards them.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// FerryVersion is recorded in manifests.
	FerryVersion string
	// Progress, if set, is called as tables advance (from several
	// goroutines when Jobs > 1, never at once).
	Progress func(Progress)
	// largeRow: a row whose text and binary values add up to more bytes
	// is read in slices (default defaultLargeRow; tests lower it).
	largeRow int64
	// maxWholeRow: the longest row line an import holds whole (default
	// maxWholeRow; tests lower it).
	maxWholeRow int64
}

// Progress is a table's progress.
type Progress struct {
	// Op is "export", "load" or "verify".
	Op    string `json:"op"`
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
	// Bytes are the rows' encoded bytes (before compression).
	Bytes int64 `json:"bytes"`
	// Total is the table's row count when known (import), else -1.
	Total int64 `json:"total"`
	Done  bool  `json:"done"`
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// ExportOptions adjust Export.
type ExportOptions struct {
	Options
	// Tables, if not empty, are the only tables exported; Exclude are left
	// out. ferry's own tables (history, lock, import ledger) never are.
	Tables, Exclude []string
	// Jobs is how many tables are read at once (default 1). PostgreSQL
	// workers share one exported snapshot; MySQL and SQLite read through
	// one connection, whose snapshot is the only consistent one.
	Jobs int
	// ChunkBytes is the encoded size at which a table's next chunk starts
	// (default DefaultChunkBytes).
	ChunkBytes int64
	// Encrypt is "", EncryptAll or EncryptSensitive; Sensitive names the
	// sensitive tables (or table.columns); Recipients are whom the
	// export's key is encrypted to (age recipients, or a passphrase's).
	Encrypt    string
	Sensitive  []string
	Recipients []age.Recipient
	// Quiesce, if set, pauses the source's other workloads first.
	Quiesce *Quiesce
	// Window, if set, exports only recent rows, closed under foreign keys
	// (see Window).
	Window *Window
	// Compression is how chunks are compressed: CompressS2 (the default,
	// for "") or CompressGzip.
	Compression string
	// splitRows is the estimated size from which a table is read in key
	// ranges (default 200,000; tests lower it).
	splitRows int64
}

const defaultSplitRows = 200000

// ownTables reports whether name is one of ferry's tables for history
// table h: the history, its lock, the import ledger and its keys table
// (MySQL).
func ownTables(h string) func(string) bool {
	return func(name string) bool {
		return name == h || name == h+"_lock" || name == ledgerTable(h) || name == keysTable(h)
	}
}

// Export writes the tables of db into a new export in st, read in one
// snapshot while writers keep running, and returns its manifest. It holds
// the migration lock of mig (whose history table it reads) throughout, so
// that no upgrade changes the schema under it. Nothing is left in the
// store when it fails.
func Export(ctx context.Context, st *Store, db *database.DB, mig *migrate.Migrator, opts ExportOptions) (*Manifest, error) {
	start := opts.now()
	if err := checkSource(ctx, db, mig, "--database"); err != nil {
		return nil, err
	}
	m := newManifest(ctx, start, db, mig, opts.FerryVersion)
	switch opts.Compression {
	case "", CompressS2:
		m.Compression = CompressS2
	case CompressGzip:
		m.Format = 1 // as older ferry wrote it, and reads it
	default:
		return nil, fmt.Errorf("compression %q: ferry compresses exports with %s or %s", opts.Compression, CompressS2, CompressGzip)
	}
	log := opts.logger()
	var notResumed error // --resume-source failed on a complete export
	err := mig.WithLock(ctx, func(context.Context, migrate.Querier) error {
		if err := readSource(ctx, db, mig, m, log); err != nil {
			return err
		}
		log.Info("export started", "id", m.ID, "database", db.URL.String(), "store", st.String(), "schema_version", m.Source.SchemaVersion)
		// The key first: an encrypted export's list of paused workloads
		// is sealed with it from the start.
		var key *age.X25519Identity
		if opts.Encrypt != "" {
			var sum string
			var err error
			if key, sum, err = st.newExportKey(ctx, m.ID, opts.Recipients); err != nil {
				return err
			}
			m.Encryption = &Encryption{Mode: opts.Encrypt, Key: keyName, KeySHA256: sum}
		}
		if opts.Quiesce != nil {
			if err := unresumed(ctx, st, db); err != nil {
				return err
			}
			// What would stop the export once they are paused stops it
			// before: the tables selected, the window's columns.
			if err := precheck(ctx, db, m, opts); err != nil {
				return err
			}
			q := *opts.Quiesce
			if key != nil {
				q.sealTo, q.KeySHA256 = key.Recipient(), m.Encryption.KeySHA256
			}
			if err := q.pause(ctx, st, db, m.ID); err != nil {
				return err
			}
			m.Quiesce = &q
			log.Info("workloads paused", "id", m.ID, "paused", len(q.Paused))
			q.warnIdle(log, "--pause")
		}
		if err := exportTables(ctx, st, db, m, key, opts); err != nil {
			return err
		}
		if m.Quiesce != nil && m.Quiesce.ResumeSource {
			if err := m.Quiesce.run(ctx, db, m.Quiesce.Resume); err != nil {
				notResumed = err // the export stands: said once its manifest is written
				return nil
			}
			m.Quiesce.ResumedOnSource = true
			if err := m.Quiesce.save(ctx, st, m.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		keep := false
		if m.Quiesce != nil && !m.Quiesce.ResumedOnSource {
			// The export failed: the source goes back to work.
			if rerr := m.Quiesce.run(context.WithoutCancel(ctx), db, m.Quiesce.Resume); rerr != nil {
				keep = true // quiesce.json is what ferry export resume reads
				err = fmt.Errorf("%w; and the %d workloads it paused were NOT resumed: its --resume failed (%v): run ferry export resume %s --resume SQL%s with a corrected statement", err, m.Quiesce.Count(), rerr, st.At(m.ID), m.Quiesce.KeyFlags())
			} else if m.Quiesce.Count() > 0 {
				err = fmt.Errorf("%w; the %d workloads it paused were resumed", err, m.Quiesce.Count())
			}
		}
		if !keep {
			if derr := st.s.DeletePrefix(context.WithoutCancel(ctx), m.ID+"/"); derr != nil {
				log.Warn("could not delete the partial export", "id", m.ID, "error", derr)
			}
		}
		return nil, db.URL.Redact(fmt.Errorf("export of %s: %w", db.URL, err))
	}
	m.DurationMS = opts.now().Sub(start).Milliseconds()
	if err := st.writeManifest(ctx, m); err != nil {
		if m.Quiesce != nil && !m.Quiesce.ResumedOnSource {
			// Keep the list of paused workloads for ferry export resume.
			return nil, fmt.Errorf("%w; the workloads it paused are still paused: ferry export resume %s --resume-recorded%s resumes them", err, st.At(m.ID), m.Quiesce.KeyFlags())
		}
		_ = st.s.DeletePrefix(context.WithoutCancel(ctx), m.ID+"/")
		return nil, err
	}
	log.Info("export done", "id", m.ID, "tables", len(m.Tables), "rows", m.Rows(), "size", m.Size(), "duration_ms", m.DurationMS)
	if notResumed != nil {
		return m, fmt.Errorf("%w: %d workloads are still paused on the source: --resume failed there: %v; run the corrected statement with ferry export resume %s --resume SQL%s (or resume them by hand), and give it to the import too (ferry import --resume SQL)",
			ErrSourceNotResumed, m.Quiesce.Count(), db.URL.Redact(notResumed), st.At(m.ID), m.Quiesce.KeyFlags())
	}
	return m, nil
}

// exported selects the tables of all to export (--tables, --exclude),
// and names those left out; a table no chunk file can be named after is
// an error.
func exported(all []*Table, opts ExportOptions) (tables []*Table, leftOut []string, err error) {
	if tables, err = selectTables(all, opts.Tables, opts.Exclude); err != nil {
		return nil, nil, err
	}
	for _, t := range all {
		if !slices.Contains(tables, t) {
			leftOut = append(leftOut, t.Name)
		}
	}
	for _, t := range tables {
		if strings.ContainsAny(t.Name, "/\\") || t.Name == "." || t.Name == ".." {
			return nil, nil, fmt.Errorf("table %q: ferry cannot name a chunk file after it; leave it out with --exclude", t.Name)
		}
	}
	return tables, leftOut, nil
}

// precheck reads db's catalog (outside the snapshot, which is taken
// after the pause) and checks against it what exportTables checks
// against the snapshot's: the table selection, table names, the
// encrypted tables and the window's time columns.
func precheck(ctx context.Context, db *database.DB, m *Manifest, opts ExportOptions) error {
	all, err := catalog(ctx, db, db.URL.Kind, ownTables(m.Source.HistoryTable))
	if err != nil {
		return err
	}
	tables, leftOut, err := exported(all, opts)
	if err != nil {
		return err
	}
	byName := map[string]*Table{}
	chosen := make([]TableExport, len(tables))
	for i, t := range tables {
		byName[t.Name], chosen[i] = t, TableExport{Table: *t}
	}
	if opts.Encrypt != "" {
		if _, err := encryptedTables(opts.Encrypt, opts.Sensitive, chosen, leftOut); err != nil {
			return err
		}
	}
	if opts.Window != nil {
		return windowColumns(db.URL.Kind, byName, opts.Window)
	}
	return nil
}

// unresumed refuses to pause db's workloads while an export of db that did
// not finish (killed) left some paused, unresumed: this export would find
// them paused, record none of them, and its import would resume none,
// while the killed export's store holds the only list.
func unresumed(ctx context.Context, st *Store, db *database.DB) error {
	ids, err := st.Incomplete(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		q, err := st.Quiesce(ctx, id)
		if err != nil {
			return err
		}
		if q != nil && !q.ResumedOnSource && q.Count() > 0 && q.Source == db.URL.String() {
			return fmt.Errorf("export %s of this database did not finish, and the %d workloads it paused were never resumed: this export would find them paused and record none of them, so its import would resume none; run ferry export resume %s --resume-recorded%s first (its store holds the only list), then export again", id, q.Count(), st.At(id), q.KeyFlags())
		}
	}
	return nil
}

// ErrSourceNotResumed is wrapped by the error of an export that is
// complete (its manifest written, and returned with the error) but whose
// --resume-source failed: the workloads it paused are still paused on the
// source.
var ErrSourceNotResumed = errors.New("the export is complete, but the workloads it paused were not resumed on the source")

// newManifest starts the manifest of an export of db taken at start.
func newManifest(ctx context.Context, start time.Time, db *database.DB, mig *migrate.Migrator, ferryVersion string) *Manifest {
	m := &Manifest{
		Format:       2, // S2 chunks; 1 with gzip's, 3 when encrypted (see ManifestFormat)
		ID:           newID(start),
		CreatedAt:    start.UTC(),
		FerryVersion: ferryVersion,
		Source: Source{
			Engine:       db.URL.Kind,
			Database:     db.URL.String(),
			HistoryTable: mig.Table(),
		},
	}
	if m.FerryVersion == "" {
		m.FerryVersion = "dev"
	}
	if si, ok := db.Dialect.(dialect.ServerInfo); ok {
		m.Source.ServerVersion, _ = si.ServerVersion(ctx, db)
	}
	return m
}

// ErrNoSource is wrapped by the error for a source that is not a
// database ferry manages: missing, or without applied migrations.
var ErrNoSource = errors.New("no source to read")

// checkSource refuses, before anything is written to it, a source that
// does not exist or that ferry does not manage: an export of it could not
// be imported through the migrations.
func checkSource(ctx context.Context, db *database.DB, mig *migrate.Migrator, flag string) error {
	if db.Absent {
		return fmt.Errorf("%w: the SQLite database %s does not exist", ErrNoSource, db.URL.Database)
	}
	status, err := mig.Status(ctx)
	if err != nil {
		return err
	}
	if status.AppliedCount == 0 {
		return fmt.Errorf("%w: %s has no applied ferry migrations (history table %s), so no target could be given its schema through the migrations; point %s at the service's database, and --table at its history table if it is not %s", ErrNoSource, db.URL, mig.Table(), flag, mig.Table())
	}
	return nil
}

// ErrIncompleteSource is wrapped by the error for a source into which
// an import (or a copy) started and did not finish.
var ErrIncompleteSource = errors.New("the source's data is incomplete")

// readSource records the source's schema version and applied migrations;
// it refuses a source with an unrepaired failed migration, or with an
// import into it that has not finished. The caller holds the migration
// lock, so they stay as read.
func readSource(ctx context.Context, db *database.DB, mig *migrate.Migrator, m *Manifest, log *slog.Logger) error {
	status, err := mig.StatusWith(ctx, migrate.StatusOptions{})
	if err != nil {
		return err
	}
	if len(status.Failed) > 0 {
		f := status.Failed[0]
		return fmt.Errorf("migration %d failed and is not repaired; an export of a half-applied schema could not be imported: repair it first (ferry status)", f.Version)
	}
	// An export of a half-imported database would carry the gap into the
	// next one, which would then say it is whole.
	unfinished, err := UnfinishedImports(ctx, db, mig.Table())
	switch {
	case err != nil:
		log.Warn("cannot tell whether an import into the source has not finished; if one has not, this export's data is incomplete", "error", err)
	case len(unfinished) > 0:
		u := unfinished[0]
		return fmt.Errorf("%w: %s into it has not finished (ferry status shows it), and an export of it would pass the missing rows on as if none were missing: %s, then try again", ErrIncompleteSource, u.What(), u.Finish())
	}
	m.Source.SchemaVersion = status.CurrentVersion
	m.Source.Migrations = []AppliedMigration{}
	for _, a := range status.Applied {
		m.Source.Migrations = append(m.Source.Migrations, AppliedMigration{Version: a.Version, Name: a.Name, Checksum: a.Checksum})
	}
	return nil
}

// exportTables opens the snapshot, reads the catalog in it, and exports
// every selected table.
func exportTables(ctx context.Context, st *Store, db *database.DB, m *Manifest, key *age.X25519Identity, opts ExportOptions) error {
	jobs := max(opts.Jobs, 1)
	if db.URL.Kind == database.SQLite && jobs > 1 {
		opts.logger().Warn("--jobs does not apply to SQLite; this export reads through one connection, in one snapshot", "jobs", jobs)
		jobs = 1
	}
	snaps, why, err := openSnapshots(ctx, db, jobs, true, &m.Snapshot)
	if err != nil {
		return err
	}
	if why != nil {
		opts.logger().Warn("this export reads through one connection, in one snapshot: "+unaligned(why), "jobs", jobs, "error", why)
	}
	jobs = len(snaps)
	defer func() {
		for _, s := range snaps {
			s.close()
		}
	}()
	tables, err := catalog(ctx, snaps[0].q, db.URL.Kind, ownTables(m.Source.HistoryTable))
	if err != nil {
		return err
	}
	if tables, m.LeftOut, err = exported(tables, opts); err != nil {
		return err
	}
	if db.URL.Kind == database.Postgres {
		if m.Sequences, err = schemaSequences(ctx, snaps[0].q, ownTables(m.Source.HistoryTable)); err != nil {
			return err
		}
	}
	m.Tables = make([]TableExport, len(tables))
	for i, t := range tables {
		m.Tables[i] = TableExport{Table: *t}
	}
	if key != nil {
		tables, err := encryptedTables(opts.Encrypt, opts.Sensitive, m.Tables, m.LeftOut)
		if err != nil {
			return err
		}
		m.Encryption.Tables = tables
		if opts.Encrypt == EncryptSensitive {
			for _, name := range tables {
				if !slices.ContainsFunc(opts.Sensitive, func(s string) bool { return s == name || strings.HasPrefix(s, name+".") }) {
					opts.logger().Info("encrypting a table that is not named sensitive: a foreign key joins one of its columns to a sensitive one", "table", name)
				}
			}
		}
	}
	filters := map[string]rowFilter{}
	if opts.Window != nil {
		if m.Window, filters, err = resolveWindow(ctx, snaps[0].q, db.URL.Kind, m.Tables, opts.Window, m.Snapshot.At); err != nil {
			return err
		}
		for i := range m.Tables {
			m.Tables[i].Filter = filters[m.Tables[i].Name].desc
		}
	}
	chunkBytes := opts.ChunkBytes
	if chunkBytes <= 0 {
		chunkBytes = DefaultChunkBytes
	}
	// The work: whole tables, and a large table with a single integer
	// key in key ranges, one per job, all read in the same snapshot.
	tables = make([]*Table, len(m.Tables)) // now the manifest's copies
	for i := range m.Tables {
		tables[i] = &m.Tables[i].Table
	}
	parts, counts, err := listParts(ctx, snaps[0].q, db.URL.Kind, tables, func(int) int64 { return -1 }, jobs, cmp.Or(opts.splitRows, defaultSplitRows))
	if err != nil {
		return err
	}
	states := make([]*tableState, len(m.Tables))
	for i := range states {
		states[i] = &tableState{parts: counts[i], filter: filters[m.Tables[i].Name], compression: m.compression()}
	}
	var progressMu sync.Mutex
	progress := func(p Progress) {
		if opts.Progress != nil {
			progressMu.Lock()
			opts.Progress(p)
			progressMu.Unlock()
		}
	}
	err = eachPart(ctx, snaps, parts, func(ctx context.Context, s *snapshot, p part) error {
		t := &m.Tables[p.t]
		var to age.Recipient
		if m.Encryption.encrypts(t.Name) {
			to = key.Recipient()
		}
		if err := exportPart(ctx, st, s, m.ID, db.URL.Kind, t, states[p.t], p.rng, chunkBytes, opts.largeRow, to, progress); err != nil {
			return fmt.Errorf("table %s: %w", t.Name, rowSecurity(err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if db.URL.Kind == database.MySQL {
		for _, t := range m.Tables {
			if slices.ContainsFunc(t.Columns, func(c Column) bool { return mysqlFloat(c.Type) }) {
				// Older ferry reads a FLOAT with six digits: its
				// verification would fail once the rows were loaded.
				m.formatAtLeast(3)
				break
			}
		}
	}
	if key == nil {
		return nil
	}
	return m.seal(key.Recipient())
}

// rowSecurity adds what to do to PostgreSQL's refusal to read or load a
// table whose row-level security policies apply to the role.
func rowSecurity(err error) error {
	var e *pgconn.PgError
	if !errors.As(err, &e) || !strings.Contains(e.Message, "row-level security") {
		return err
	}
	return fmt.Errorf("%w: ferry reads and loads every row of a table, and its row-level security policies apply to this role: run ferry as a role with BYPASSRLS (or as the table's owner, if the table does not FORCE ROW LEVEL SECURITY)", err)
}

// ErrSelection is wrapped by the error for --tables, --exclude or
// --sensitive naming what is not there, or leaving nothing to export.
var ErrSelection = errors.New("the tables selected do not fit the database")

// selectTables applies --tables and --exclude; a name that is not a table
// is an error, not silence.
func selectTables(all []*Table, only, exclude []string) ([]*Table, error) {
	names := map[string]bool{}
	for _, t := range all {
		names[t.Name] = true
	}
	for _, n := range append(slices.Clone(only), exclude...) {
		if !names[n] {
			return nil, fmt.Errorf("%w: no table %q to export (tables: %s)", ErrSelection, n, strings.Join(slices.Sorted(mapKeys(names)), ", "))
		}
	}
	var out []*Table
	kept := map[string]bool{}
	for _, t := range all {
		if (len(only) == 0 || slices.Contains(only, t.Name)) && !slices.Contains(exclude, t.Name) {
			out = append(out, t)
			kept[t.Name] = true
		}
	}
	// A kept table whose foreign key points at a table left out could not
	// be imported with its constraints on: say so now.
	for _, t := range out {
		for _, fk := range t.ForeignKeys {
			if !kept[fk.RefTable] {
				return nil, fmt.Errorf("%w: table %s references %s (foreign key %s), which --tables/--exclude leave out: its rows could not be imported with the constraint on; export %s too", ErrSelection, t.Name, fk.RefTable, fk.Name, fk.RefTable)
			}
		}
	}
	if len(out) == 0 && len(all) > 0 {
		return nil, fmt.Errorf("%w: --tables and --exclude leave no table to export", ErrSelection)
	}
	return out, nil
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// snapshot is one connection reading in the export's snapshot.
type snapshot struct {
	pool  *sql.DB // MySQL: the connection's own pool (see textTimesConn)
	conn  *sql.Conn
	tx    *sql.Tx
	q     querier // tx, or conn inside a transaction begun by hand
	raw   bool    // the transaction was begun by hand
	mysql bool    // the session's time zone was set
}

func (s *snapshot) close() {
	if s.tx != nil {
		_ = s.tx.Rollback()
	}
	if s.raw {
		_, _ = s.conn.ExecContext(context.Background(), "ROLLBACK")
	}
	if s.conn != nil {
		if s.mysql {
			discard(s.conn) // its session's time zone and isolation level die with it
		} else {
			_ = s.conn.Close()
		}
	}
	if s.pool != nil {
		_ = s.pool.Close()
	}
}

// textTimesConn is a MySQL connection whose dates and times are the
// server's text (database.Options.TextTimes): its queries select them as
// they are. Other connections parse them, so the export's queries CAST
// them to text there, zero dates and all.
type textTimesConn struct{ *sql.Conn }

func hasTextTimes(q querier) bool {
	_, ok := q.(textTimesConn)
	return ok
}

// discard closes conn without giving it back to the pool, so that the
// session settings ferry changed on it (time zone, foreign key checks,
// isolation level) never reach a later user of the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// tooManyConns says what to do when the server refuses one of n
// connections for its connection limit.
func tooManyConns(err error, n int) error {
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "too many clients") && !strings.Contains(msg, "too many connections") && !strings.Contains(msg, "remaining connection slots") {
		return err
	}
	return fmt.Errorf("%w (ferry holds a connection per job, %d here, and one or two more: the migration lock's, and during an import's verification a loader's; lower --jobs, or raise the role's or the server's connection limit)", err, n)
}

// openSnapshots opens n connections reading one snapshot and describes
// it in snap. On MySQL the n connections share one snapshot only when
// aligned is set and the server can align them (see openMySQLSnapshots);
// otherwise it opens one, and why tells why. Unaligned (a verification,
// on a target that nothing else writes), each of n MySQL connections
// has a snapshot of its own.
func openSnapshots(ctx context.Context, db *database.DB, n int, aligned bool, snap *Snapshot) (_ []*snapshot, why error, _ error) {
	if db.URL.Kind == database.MySQL {
		return openMySQLSnapshots(ctx, db, n, aligned, snap, nil)
	}
	var out []*snapshot
	fail := func(err error) ([]*snapshot, error, error) {
		for _, s := range out {
			s.close()
		}
		return nil, nil, fmt.Errorf("open a snapshot: %w", tooManyConns(err, n))
	}
	for i := 0; i < n; i++ {
		conn, err := db.Conn(ctx)
		if err != nil {
			return fail(err)
		}
		s := &snapshot{conn: conn}
		out = append(out, s)
		if db.URL.Kind == database.Postgres {
			if s.tx, err = conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}); err != nil {
				return fail(err)
			}
			s.q = s.tx
			if i == 0 {
				var at time.Time
				if err := s.tx.QueryRowContext(ctx, `SELECT pg_export_snapshot(), now()`).Scan(&snap.ID, &at); err != nil {
					return fail(err)
				}
				snap.Method, snap.At = "exported-snapshot", at.UTC()
			} else if _, err := s.tx.ExecContext(ctx, `SET TRANSACTION SNAPSHOT '`+snap.ID+`'`); err != nil {
				return fail(err)
			}
			// Text forms that do not depend on the session's settings.
			// row_security off: a table whose policies would hide rows
			// from this role is an error, not an export of what it sees
			// (as pg_dump does).
			if _, err := s.tx.ExecContext(ctx, `SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; SET LOCAL row_security = off`); err != nil {
				return fail(err)
			}
			continue
		}
		// SQLite. BEGIN by hand: ferry's SQLite transactions begin
		// IMMEDIATE, which would hold off every writer for the whole
		// export. A deferred one only reads (writers go on in WAL mode).
		if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
			return fail(err)
		}
		s.raw, s.q = true, conn
		var tables int
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&tables); err != nil {
			return fail(err)
		}
		snap.Method, snap.At = "read-transaction", time.Now().UTC()
	}
	return out, nil, nil
}

// alignWait bounds how long the export waits for MariaDB to hold
// commits (BACKUP STAGE waits for running DDL and commits to finish, and
// commits queue behind it meanwhile); past it, the export reads through
// one connection.
const alignWait = 2 * time.Second

// openMySQLSnapshots opens n connections, each in a consistent-snapshot
// transaction. MySQL has no snapshot that sessions share, so with
// aligned set the n snapshots are made one by beginning them while
// MariaDB holds every commit (BACKUP STAGE BLOCK_COMMIT, MariaDB 10.4.1
// and later, RELOAD privilege): writers pause for the milliseconds that
// takes, and no commit falls between two snapshots. Where the server
// cannot (MySQL, no privilege, a long DDL running), it opens one
// connection and returns why. between, if not nil, runs after each
// snapshot but the last has begun (tests).
func openMySQLSnapshots(ctx context.Context, db *database.DB, n int, aligned bool, snap *Snapshot, between func(context.Context) error) (_ []*snapshot, why error, _ error) {
	var out []*snapshot
	closeAll := func() {
		for _, s := range out {
			s.close()
		}
		out = nil
	}
	fail := func(err error) ([]*snapshot, error, error) {
		closeAll()
		return nil, nil, fmt.Errorf("open a snapshot: %w", tooManyConns(err, n))
	}
	// Each connection in a pool of its own, whose times are text: the
	// rows are read without a CAST of every date and time (a sixth of
	// the server's work on a table with one).
	for range n {
		pool, err := db.TextTimes(ctx)
		if err != nil {
			return fail(err)
		}
		s := &snapshot{pool: pool, mysql: true}
		out = append(out, s)
		if s.conn, err = pool.Conn(ctx); err != nil {
			return fail(err)
		}
		for _, set := range []string{`SET SESSION time_zone = '+00:00'`, `SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ`} {
			if _, err := s.conn.ExecContext(ctx, set); err != nil {
				return fail(err)
			}
		}
		// MySQL 8 answers information_schema.tables (AUTO_INCREMENT, the
		// counter the export carries) from a cache up to a day old;
		// MariaDB has no such cache, nor the variable.
		_, _ = s.conn.ExecContext(ctx, `SET SESSION information_schema_stats_expiry = 0`)
	}
	method, release := "consistent-snapshot", func() {}
	if n > 1 && aligned {
		r, err := holdCommits(ctx, db)
		if err != nil {
			why = err
			for _, s := range out[1:] {
				s.close()
			}
			out = out[:1]
		} else {
			method, release = "aligned-consistent-snapshots", sync.OnceFunc(r)
			defer release()
		}
	}
	for i, s := range out {
		// By hand: database/sql's BeginTx cannot ask for the snapshot
		// to be taken now rather than at the first read.
		if _, err := s.conn.ExecContext(ctx, `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`); err != nil {
			return fail(err)
		}
		s.raw, s.q = true, textTimesConn{s.conn}
		if between != nil && i < len(out)-1 {
			if err := between(ctx); err != nil {
				return fail(err)
			}
		}
	}
	release()
	var at string
	if err := out[0].conn.QueryRowContext(ctx, `SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ')`).Scan(&at); err != nil {
		return fail(err)
	}
	snap.Method = method
	snap.At, _ = time.Parse(time.RFC3339Nano, at)
	return out, why, nil
}

// unaligned says in words why MySQL snapshots could not be lined up.
func unaligned(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1227: // ER_SPECIFIC_ACCESS_DENIED_ERROR
			return "lining up the snapshots of several connections (BACKUP STAGE) needs the RELOAD privilege"
		case 1064: // ER_PARSE_ERROR
			return "this server has no BACKUP STAGE to line up the snapshots of several connections (MySQL, or MariaDB before 10.4.1)"
		case 1205: // ER_LOCK_WAIT_TIMEOUT
			return fmt.Sprintf("BACKUP STAGE, which lines up the snapshots of several connections, waited more than %s for another session (a DDL statement or LOCK TABLES that is running)", alignWait)
		}
	}
	return "the snapshots of several connections could not be lined up with BACKUP STAGE"
}

// holdCommits holds every commit of the MariaDB server until release is
// called (which never fails: the server ends the hold when the
// connection goes).
func holdCommits(ctx context.Context, db *database.DB) (release func(), _ error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	end := func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `BACKUP STAGE END`)
		discard(conn) // its lock_wait_timeout dies with it
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`SET SESSION lock_wait_timeout = %d`, int(alignWait.Seconds()))); err != nil {
		discard(conn)
		return nil, err
	}
	for _, stage := range []string{`BACKUP STAGE START`, `BACKUP STAGE BLOCK_COMMIT`} {
		if _, err := conn.ExecContext(ctx, stage); err != nil {
			end()
			return nil, fmt.Errorf("%s: %w", stage, err)
		}
	}
	return end, nil
}

// selectList returns the SELECT of t's columns in the forms the row
// format carries exactly (see format.go), ordered by its key.
func selectList(kind string, t *Table, where, flag string, sl *slicer, textTimes bool) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		e := columnExpr(kind, c, textTimes)
		if sl != nil && sl.sliced(i) {
			e = sl.capped(i, e) // read again, in slices
		}
		b.WriteString(e)
	}
	if flag != "" {
		// A condition's value for each row, after its columns.
		b.WriteString(", CASE WHEN " + flag + " THEN 1 ELSE 0 END")
	}
	if sl != nil {
		b.WriteString(", " + sl.flag())
	}
	if kind == database.Postgres {
		// ONLY: an inheriting table's rows are its own table's.
		b.WriteString(" FROM " + pgFrom(t))
	} else {
		b.WriteString(" FROM " + quoteIdent(kind, t.Name))
	}
	if where != "" {
		b.WriteString(" WHERE " + where)
	}
	if len(t.PrimaryKey) > 0 {
		b.WriteString(" ORDER BY ")
		for i, k := range t.PrimaryKey {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(kind, k))
		}
	}
	return b.String()
}

// columnExpr is column c as the export reads it.
func columnExpr(kind string, c Column, textTimes bool) string {
	q := quoteIdent(kind, c.Name)
	switch kind {
	case database.Postgres:
		switch c.Type {
		case "bytea", "boolean", "smallint", "integer", "bigint":
			return q
		}
		return q + "::text"
	case database.SQLite:
		// An expression has no declared type, so the driver returns the
		// stored value as it is, not converted by the column's declared
		// type (DATETIME text parsed into a time, say).
		return "+" + q
	}
	// Dates and times as MySQL stores them, zero dates and all: a
	// connection that parses them (parseTime) would change what a time
	// cannot represent.
	if !textTimes && mysqlTemporal(c.Type) {
		return "CAST(" + q + " AS CHAR)"
	}
	// MySQL prints a FLOAT with six significant digits (0.1234567 as
	// 0.123457): as a double, every digit of its value, and the sign of a
	// zero (which adding 0 would lose), written back in the shortest form
	// that is the same single-precision float (float32Raw).
	if mysqlFloat(c.Type) {
		return "(" + q + " * 1e0)"
	}
	return q
}

// mysqlFloat reports whether a MySQL column type is FLOAT, a
// single-precision float.
func mysqlFloat(columnType string) bool { return mysqlTypeName(columnType) == "float" }

// float32Raw writes a FLOAT read as a double in the shortest form of its
// single-precision value: 0.1234567, not 0.12345670163631439 (which a
// decimal(10,2) column could not take from a FLOAT's 19.99), and 0.123457
// for what an older ferry exported as that, so that its exports still
// verify.
var float32Raw = rawCol{
	conv: func(b []byte) any { return rawText(shortestFloat32(b)) },
	enc:  func(buf, b []byte) []byte { return appendRawText(buf, shortestFloat32(b)) },
}

func shortestFloat32(b []byte) []byte {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return b
	}
	f = float64(float32(f))
	out := strconv.AppendFloat(nil, f, 'g', -1, 32)
	if back, _ := strconv.ParseFloat(string(out), 64); math.Abs(back) > math.MaxFloat32 {
		// The largest FLOAT's shortest form, 3.4028235e+38, is past it as
		// a decimal, which MySQL refuses: its every digit instead.
		return strconv.AppendFloat(nil, f, 'g', -1, 64)
	}
	return out
}

// mysqlTemporal reports whether a MySQL column type is a date or time.
func mysqlTemporal(columnType string) bool {
	t := strings.ToLower(columnType)
	for _, p := range []string{"date", "datetime", "timestamp", "time"} {
		if t == p || strings.HasPrefix(t, p+"(") {
			return true
		}
	}
	return false
}

// rowReader reads a table's rows as format values.
type rowReader struct {
	rows  *sql.Rows
	dest  []any
	ptrs  []any
	conv  []func(any) (any, error)
	row   []any
	table string
	// raw holds the columns read without a copy (PostgreSQL's bytea,
	// every MySQL column), valid until the next row: a value is not copied
	// by database/sql before it is encoded; rawCols says how (conv nil
	// for the other columns).
	raw     []sql.RawBytes
	rawCols []rawCol
	// boxed: row holds the raw columns' values too (see values).
	boxed bool
	// flagged is the flag condition's value for the row (1 or 0).
	flagged int64
	// large is the slicer's flag for the row (see slicer.flag): not
	// valid for a row read whole.
	large sql.NullString
	// extra holds the values of the query's columns after the table's.
	extra []any
}

func readRows(ctx context.Context, q querier, kind string, t *Table) (*rowReader, error) {
	return readRowsWhere(ctx, q, kind, t, "", "", nil)
}

// readRowsWhere is readRows of the rows where holds ("" for all); with a
// flag condition, each row's r.flag says whether it holds; with a slicer,
// r.large says which rows have values to read in slices (read as NULL).
func readRowsWhere(ctx context.Context, q querier, kind string, t *Table, where, flag string, sl *slicer) (*rowReader, error) {
	var extra []any
	r := &rowReader{}
	if flag != "" {
		extra = append(extra, &r.flagged)
	}
	if sl != nil {
		extra = append(extra, &r.large)
	}
	return r, r.open(ctx, q, kind, t, selectList(kind, t, where, flag, sl, hasTextTimes(q)), extra)
}

// newRowReader runs query, which selects t's columns and then n more,
// read into r.extra.
func newRowReader(ctx context.Context, q querier, kind string, t *Table, query string, n int) (*rowReader, error) {
	r := &rowReader{extra: make([]any, n)}
	extra := make([]any, n)
	for i := range extra {
		extra[i] = &r.extra[i]
	}
	return r, r.open(ctx, q, kind, t, query, extra)
}

func (r *rowReader) open(ctx context.Context, q querier, kind string, t *Table, query string, extra []any) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	r.rows, r.table = rows, t.Name
	n := len(t.Columns)
	r.dest, r.ptrs, r.row = make([]any, n), make([]any, n), make([]any, n)
	for i := range r.dest {
		r.ptrs[i] = &r.dest[i]
	}
	r.ptrs = append(r.ptrs, extra...)
	types, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return err
	}
	r.conv = make([]func(any) (any, error), n)
	r.raw, r.rawCols = make([]sql.RawBytes, n), make([]rawCol, n)
	for i := range r.conv {
		r.conv[i] = converter(kind, types[i].DatabaseTypeName())
		switch {
		case kind == database.Postgres && t.Columns[i].Type == "bytea":
			r.rawCols[i], r.ptrs[i] = rawBytes, &r.raw[i]
		case kind == database.MySQL && mysqlFloat(t.Columns[i].Type):
			r.rawCols[i], r.ptrs[i] = float32Raw, &r.raw[i]
		case kind == database.MySQL:
			// go-sql-driver reads every value of a query without
			// arguments as text: taken from its buffer, not copied.
			r.rawCols[i], r.ptrs[i] = mysqlRaw(types[i].DatabaseTypeName()), &r.raw[i]
		}
	}
	return nil
}

// asInt is an integer the driver returned (int32, int64, uint64, or
// MySQL's text).
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case []byte:
		return parseInt(x)
	}
	return 0, false
}

// intAt returns column i of the row as an integer: null if it is NULL,
// ok false if it is not an integer.
func (r *rowReader) intAt(i int) (n int64, null, ok bool) {
	if r.rawCols[i].conv != nil {
		if r.raw[i] == nil {
			return 0, true, true
		}
		n, ok = parseInt(r.raw[i])
		return n, false, ok
	}
	if r.row[i] == nil {
		return 0, true, true
	}
	if _, blob := r.row[i].([]byte); blob {
		// A SQLite BLOB (MySQL's text is raw, above): never equal to an
		// integer, whatever its bytes spell.
		return 0, false, false
	}
	n, ok = asInt(r.row[i])
	return n, false, ok
}

// rawCol reads a column from the driver's buffer: conv turns it into a
// format value, enc appends its encoding without one (no value boxed in
// an interface for every column of every row). class is how the
// verification's text hash reads the column (see appendText): classNone
// (the zero value) for a column whose text is not what the export holds
// (a FLOAT's), or that no text hash reads (PostgreSQL's).
type rawCol struct {
	conv  func([]byte) any
	enc   func(buf, b []byte) []byte
	class byte
}

var rawBytes = rawCol{
	conv:  func(b []byte) any { return b },
	enc:   appendBytes,
	class: classBytes,
}

// mysqlRaw returns how a MySQL column's text, as the driver's buffer
// holds it, becomes a format value (see converter).
func mysqlRaw(dbType string) rawCol {
	switch strings.ToUpper(dbType) {
	case "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "BIT", "GEOMETRY":
		return rawBytes
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR":
		return rawCol{
			conv: func(b []byte) any {
				if n, ok := parseInt(b); ok {
					return n
				}
				return rawText(b) // an unsigned BIGINT past int64
			},
			enc: func(buf, b []byte) []byte {
				if n, ok := parseInt(b); ok {
					return strconv.AppendInt(buf, n, 10)
				}
				return appendRawText(buf, b)
			},
			class: classInt,
		}
	}
	return rawCol{conv: func(b []byte) any { return rawText(b) }, enc: appendRawText, class: classText}
}

// parseInt parses a decimal int64 without a string.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		if len(b) == 20 && b[0] == '-' {
			n, err := strconv.ParseInt(string(b), 10, 64)
			return n, err == nil
		}
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// converter returns the function that turns what the driver gives for a
// column into a format value.
func converter(kind, dbType string) func(any) (any, error) {
	if kind != database.MySQL {
		return plain
	}
	// go-sql-driver returns every value of a query without arguments as
	// its text, in bytes; the column's type says what the bytes are.
	switch strings.ToUpper(dbType) {
	case "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "BIT", "GEOMETRY":
		return func(v any) (any, error) {
			if b, ok := v.([]byte); ok {
				return b, nil
			}
			return plain(v)
		}
	case "DATE":
		return mysqlTime("2006-01-02")
	case "DATETIME", "TIMESTAMP":
		return mysqlTime("2006-01-02 15:04:05.999999")
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR":
		return func(v any) (any, error) {
			if b, ok := v.([]byte); ok {
				if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
					return n, nil
				}
				return string(b), nil // an unsigned BIGINT past int64
			}
			return plain(v)
		}
	}
	return func(v any) (any, error) {
		if b, ok := v.([]byte); ok {
			return string(b), nil
		}
		return plain(v)
	}
}

// mysqlTime formats the times of a connection that parses them
// (parseTime=true) as MySQL prints them, in the session's UTC.
func mysqlTime(layout string) func(any) (any, error) {
	return func(v any) (any, error) {
		switch x := v.(type) {
		case time.Time:
			return x.UTC().Format(layout), nil
		case []byte:
			return string(x), nil
		}
		return plain(v)
	}
}

func plain(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, []byte, int64, float64, bool:
		return v, nil
	case int32:
		return int64(x), nil
	case int:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case uint64:
		// MySQL's BIGINT UNSIGNED: past int64, its digits as text.
		if x > math.MaxInt64 {
			return strconv.FormatUint(x, 10), nil
		}
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.999999999Z07:00"), nil
	}
	return nil, fmt.Errorf("value of Go type %T, which the export format does not carry", v)
}

// next reads the next row; false at the end (check err). Its values are
// values(), its line appendRow.
func (r *rowReader) next() (bool, error) {
	if !r.rows.Next() {
		return false, r.rows.Err()
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		return false, err
	}
	r.boxed = false
	for i, v := range r.dest {
		if r.rawCols[i].conv != nil {
			continue
		}
		x, err := r.conv[i](v)
		if err != nil {
			return false, fmt.Errorf("column %d: %w", i+1, err)
		}
		r.row[i] = x
	}
	return true, nil
}

// values returns the row's values, valid until the next row.
func (r *rowReader) values() []any {
	if !r.boxed {
		for i, c := range r.rawCols {
			switch {
			case c.conv == nil:
			case r.raw[i] == nil:
				r.row[i] = nil
			default:
				r.row[i] = c.conv(r.raw[i])
			}
		}
		r.boxed = true
	}
	return r.row
}

// appendRow appends the row's line, as appendRow(buf, r.values()) would.
func (r *rowReader) appendRow(buf []byte) []byte {
	buf = append(buf, '[')
	for i, c := range r.rawCols {
		if i > 0 {
			buf = append(buf, ',')
		}
		switch {
		case c.conv == nil:
			buf = appendValue(buf, r.row[i])
		case r.raw[i] == nil:
			buf = append(buf, "null"...)
		default:
			buf = c.enc(buf, r.raw[i])
		}
	}
	return append(buf, ']', '\n')
}

func (r *rowReader) close() error { return r.rows.Close() }

// exportTable writes table t into chunks of at most chunkBytes encoded
// bytes each, filling in t's rows, checksum and chunks.
// tableState gathers the parts of a table exported in key ranges.
type tableState struct {
	mu     sync.Mutex
	parts  int // not yet finished
	sum    rowSum
	chunks int // chunk numbers handed out
	bytes  int64
	filter rowFilter // a window's; zero for every row

	compression string
}

// nextChunk names the table's next chunk.
func (ts *tableState) nextChunk(table string) string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.chunks++
	return chunkName(table, ts.chunks, ts.compression)
}

// exportPart writes table t's rows (those of rng, or all) into chunks of
// at most chunkBytes encoded bytes each, and adds them to t; the last
// part to finish sets the table's checksum.
func exportPart(ctx context.Context, st *Store, s *snapshot, id, kind string, t *TableExport, ts *tableState, rng *keyRange, chunkBytes, largeRow int64, to age.Recipient, progress func(Progress)) error {
	sl := newSlicer(kind, &t.Table, largeRow)
	r, err := readRange(ctx, s.q, kind, &t.Table, rng, ts.filter.where, ts.filter.flag, sl)
	if err != nil {
		return err
	}
	defer r.close()
	keep := ts.filter.keep
	var sum rowSum
	var cw *chunkWriter
	var line []byte
	var rows, bytesOut int64
	var chunks []Chunk
	// Rows with large values, read after the others (the connection is
	// the query's until then).
	var large []rowKey
	// endRow counts a written row and starts the next chunk when this
	// one is full.
	endRow := func(n int) error {
		rows++
		bytesOut += int64(n)
		if rows%50000 == 0 {
			progress(Progress{Op: "export", Table: t.Name, Rows: rows, Bytes: bytesOut, Total: -1})
		}
		if cw.raw < chunkBytes {
			return nil
		}
		c, err := cw.finish()
		if err != nil {
			return err
		}
		chunks = append(chunks, c)
		cw = nil
		progress(Progress{Op: "export", Table: t.Name, Rows: rows, Bytes: bytesOut, Total: -1})
		return nil
	}
	newChunk := func() (err error) {
		if cw == nil {
			cw, err = st.newChunk(ctx, id, ts.nextChunk(t.Name), to)
		}
		return err
	}
	for {
		ok, err := r.next()
		if err != nil {
			if cw != nil {
				cw.abort()
			}
			return err
		}
		if !ok {
			break
		}
		if keep != nil && !keep(r.values(), r.flagged == 1) {
			continue
		}
		if sl != nil && r.large.Valid {
			large = append(large, sl.key(r.large.String, r.values()))
			continue
		}
		line = r.appendRow(line[:0])
		sum.add(line[:len(line)-1])
		if err := newChunk(); err != nil {
			return err
		}
		if err := cw.write(line); err != nil {
			cw.abort()
			return err
		}
		n := len(line)
		if cap(line) > 4<<20 {
			line = nil // after a large value: do not keep its buffer for the rest
		}
		if err := endRow(n); err != nil {
			return err
		}
	}
	if err := r.close(); err != nil {
		if cw != nil {
			cw.abort()
		}
		return err
	}
	for _, k := range large {
		if err := newChunk(); err != nil {
			return err
		}
		var n int
		h, err := sl.writeRow(ctx, s.q, k, func(b []byte) error {
			n += len(b)
			return cw.writePiece(b)
		})
		if err == nil {
			err = cw.writePiece([]byte{'\n'})
		}
		if err != nil {
			cw.abort()
			return err
		}
		cw.rows++
		sum.addHash(h)
		if err := endRow(n + 1); err != nil {
			return err
		}
	}
	if cw != nil {
		c, err := cw.finish()
		if err != nil {
			return err
		}
		chunks = append(chunks, c)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t.Rows += rows
	t.Chunks = append(t.Chunks, chunks...)
	ts.sum.merge(sum)
	ts.bytes += bytesOut
	if ts.parts--; ts.parts == 0 {
		sort.Slice(t.Chunks, func(a, b int) bool { return t.Chunks[a].Name < t.Chunks[b].Name })
		if t.Chunks == nil {
			t.Chunks = []Chunk{}
		}
		t.RowChecksum = ts.sum.String()
		progress(Progress{Op: "export", Table: t.Name, Rows: t.Rows, Bytes: ts.bytes, Total: t.Rows, Done: true})
	}
	return nil
}

// keyRange is a part of a table: lo <= key < hi.
type keyRange struct {
	col    string
	lo, hi int64
}

// splitTable splits a table of at least minRows rows (rows when known,
// else the planner's estimate: pass -1) with a single integer primary key
// into n key ranges of equal width, or returns none.
func splitTable(ctx context.Context, q querier, kind string, t *Table, rows int64, n int, minRows int64) ([]keyRange, error) {
	if n < 2 || len(t.PrimaryKey) != 1 || kind == database.SQLite {
		return nil, nil
	}
	col := t.column(t.PrimaryKey[0])
	if col == nil || !integerKey(kind, col.Type) {
		return nil, nil
	}
	est := float64(rows)
	if rows < 0 && kind == database.MySQL {
		// InnoDB's estimate.
		if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(table_rows), 0) FROM information_schema.tables
			WHERE table_schema = DATABASE() AND table_name = ?`, t.Name).Scan(&est); err != nil {
			return nil, err
		}
	} else if rows < 0 {
		// The planner's estimate; a table never analyzed has none (-1):
		// then its size, at a guess of 100 bytes a row.
		if err := q.QueryRowContext(ctx, `SELECT CASE WHEN reltuples >= 0 THEN reltuples ELSE pg_relation_size(oid) / 100.0 END
			FROM pg_class WHERE oid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass`, t.Name).Scan(&est); err != nil {
			return nil, err
		}
	}
	if est < float64(minRows) {
		return nil, nil
	}
	var lo, hi sql.NullInt64
	k := quoteIdent(kind, col.Name)
	bounds := `SELECT min(` + k + `)::bigint, max(` + k + `)::bigint FROM ` + pgFrom(t)
	if kind == database.MySQL {
		bounds = `SELECT MIN(` + k + `), MAX(` + k + `) FROM ` + quoteIdent(kind, t.Name)
	}
	if err := q.QueryRowContext(ctx, bounds).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	if !lo.Valid || hi.Int64-lo.Int64 < int64(n) || hi.Int64 == math.MaxInt64 {
		return nil, nil
	}
	width := (hi.Int64 - lo.Int64 + 1) / int64(n)
	var out []keyRange
	for i := 0; i < n; i++ {
		r := keyRange{col: col.Name, lo: lo.Int64 + int64(i)*width, hi: lo.Int64 + int64(i+1)*width}
		if i == n-1 {
			r.hi = hi.Int64 + 1
		}
		out = append(out, r)
	}
	return out, nil
}

// integerKey reports whether a key column of this type splits into
// ranges of int64 bounds.
func integerKey(kind, typ string) bool {
	t := strings.ToLower(typ)
	if kind == database.Postgres {
		return t == "integer" || t == "bigint" || t == "smallint"
	}
	if i := strings.IndexByte(t, '('); i >= 0 {
		if j := strings.IndexByte(t[i:], ')'); j > 0 {
			t = t[:i] + t[i+j+1:]
		}
	}
	switch strings.TrimSpace(t) {
	case "tinyint", "smallint", "mediumint", "int", "bigint",
		"tinyint unsigned", "smallint unsigned", "mediumint unsigned", "int unsigned":
		return true
	}
	return false // bigint unsigned passes int64
}

// readRange reads the rows of rng (nil: all) of t where where holds ("":
// every row).
func readRange(ctx context.Context, q querier, kind string, t *Table, rng *keyRange, where, flag string, sl *slicer) (*rowReader, error) {
	if rng != nil {
		r := fmt.Sprintf("%s >= %d AND %s < %d", quoteIdent(kind, rng.col), rng.lo, quoteIdent(kind, rng.col), rng.hi)
		if where != "" {
			r = "(" + where + ") AND " + r
		}
		where = r
	}
	return readRowsWhere(ctx, q, kind, t, where, flag, sl)
}

// chunkWriter writes one chunk: rows, compression, store.
type chunkWriter struct {
	obj  *objectWriter
	enc  io.WriteCloser // age, between compression and the object; nil when not encrypted
	comp io.WriteCloser // S2 or gzip
	raw  int64
	rows int64
	name string

	// Compression runs in its own goroutine, on blocks of rows, so that
	// reading the next rows and compressing the last ones use two cores:
	// compression is a large part of an export's CPU.
	block  []byte
	blocks chan block  // to the compressor
	free   chan []byte // back from it
	done   chan error  // the compressor's outcome, once blocks is closed
}

// block is rows for the compressor: a pooled buffer, or a single large
// row the writer waits on (ack), so that it is never copied.
type block struct {
	b   []byte
	ack chan struct{}
}

const blockSize = 256 << 10

func (c *chunkWriter) start() {
	c.blocks, c.free, c.done = make(chan block, 2), make(chan []byte, 3), make(chan error, 1)
	for i := 0; i < 3; i++ {
		c.free <- make([]byte, 0, blockSize)
	}
	c.block = <-c.free
	go func() {
		var err error
		for b := range c.blocks {
			if err == nil {
				_, err = c.comp.Write(b.b)
			}
			if b.ack != nil {
				close(b.ack)
			} else {
				c.free <- b.b[:0]
			}
		}
		c.done <- err
	}()
}

// write writes one row's line.
func (c *chunkWriter) write(line []byte) error {
	c.rows++
	return c.writePiece(line)
}

// writePiece writes part of a row (the caller counts the row).
func (c *chunkWriter) writePiece(line []byte) error {
	c.raw += int64(len(line))
	if len(line) >= blockSize {
		// A large row goes as it is, after the rows before it; the
		// caller reuses line, so wait until it is compressed.
		if len(c.block) > 0 {
			c.blocks <- block{b: c.block}
			c.block = <-c.free
		}
		ack := make(chan struct{})
		c.blocks <- block{b: line, ack: ack}
		<-ack
		return nil
	}
	c.block = append(c.block, line...)
	if len(c.block) >= blockSize {
		c.blocks <- block{b: c.block}
		c.block = <-c.free
	}
	return nil
}

// stop ends the compressor and returns its error.
func (c *chunkWriter) stop() error {
	if len(c.block) > 0 {
		c.blocks <- block{b: c.block}
		c.block = nil
	}
	close(c.blocks)
	return <-c.done
}

func (c *chunkWriter) abort() {
	_ = c.stop()
	c.obj.Abort()
}

func (c *chunkWriter) finish() (Chunk, error) {
	if err := c.stop(); err != nil {
		c.obj.Abort()
		return Chunk{}, err
	}
	if err := c.comp.Close(); err != nil {
		c.obj.Abort()
		return Chunk{}, err
	}
	if c.enc != nil {
		if err := c.enc.Close(); err != nil {
			c.obj.Abort()
			return Chunk{}, err
		}
	}
	if err := c.obj.Close(); err != nil {
		return Chunk{}, err
	}
	return Chunk{Name: c.name, Rows: c.rows, Size: c.obj.Size(), RawSize: c.raw, SHA256: c.obj.SHA256()}, nil
}
