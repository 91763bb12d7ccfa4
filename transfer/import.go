package transfer

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/migrate"
)

// querier is what reading the catalog and rows needs.
type querier = dialect.Querier

// ImportOptions adjust Import.
type ImportOptions struct {
	Options
	// Plan reports what the import would do and changes nothing.
	Plan bool
	// Mapping says what to do where a target at a newer version differs
	// from the export (see Mapping); nil maps by name only.
	Mapping *Mapping
	// Identities open an encrypted export (age identities, or a
	// passphrase's).
	Identities []age.Identity
	// Jobs is how many connections load and verify at once (default 1):
	// tables in parallel (SQLite loads through one), a table once the
	// tables it references are in; and a large PostgreSQL table verified
	// in key ranges.
	Jobs int
	// splitRows: see ExportOptions.
	splitRows int64
	// bulkRows is the row count from which a table loads without its
	// secondary indexes and foreign keys (default bulkRows; tests lower
	// it).
	bulkRows int64
	// noLoadData loads MySQL with INSERTs, as when the server refuses
	// LOAD DATA LOCAL INFILE (tests).
	noLoadData bool
	// KeepPaused leaves the workloads the export paused (Quiesce) paused
	// in the target; by default they are resumed once the data is
	// verified.
	KeepPaused bool
}

// ImportReport is what an import did (or, with Plan, would do).
type ImportReport struct {
	ExportID string `json:"export_id"`
	Store    string `json:"store"`
	// Source is the source database's URL, for a copy ("" for an import).
	Source string `json:"source,omitempty"`
	// Target is the database's URL without secrets.
	Target string `json:"target"`
	// Engine is the export's (the source's) engine, TargetEngine the
	// target's.
	Engine       string `json:"engine"`
	TargetEngine string `json:"target_engine"`
	// StartVersion is the target's schema version before, ExportVersion
	// the export's, FinalVersion the target's after (its latest
	// migration).
	StartVersion  int64 `json:"start_version"`
	ExportVersion int64 `json:"export_version"`
	FinalVersion  int64 `json:"final_version"`
	// Resumed says an earlier run of this import was cut short and this
	// one went on from its ledger.
	Resumed bool `json:"resumed"`
	// Planned is set for Plan: nothing was changed.
	Planned bool `json:"planned,omitempty"`
	// Steps are the import's steps, in order, in words.
	Steps  []string      `json:"steps"`
	Tables []TableReport `json:"tables"`
	// Verified is true once every table's rows, checksums and foreign
	// keys matched the manifest.
	Verified bool `json:"verified"`
	// WorkloadsResumed is how many workloads the export paused were
	// resumed in the target.
	WorkloadsResumed int       `json:"workloads_resumed"`
	Problems         []Problem `json:"problems"`
	DurationMS       int64     `json:"duration_ms"`
}

// TableReport is one table of an import.
type TableReport struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
	// Columns maps the export's columns onto the target's.
	Columns []ColumnMapping `json:"columns"`
	// Group is the step the table is loaded in; tables of a circular
	// reference share one.
	Group int `json:"group"`
	// Skipped: an earlier, cut-short run of this import loaded it.
	Skipped bool `json:"skipped,omitempty"`
}

// ColumnMapping says where an exported column goes.
type ColumnMapping struct {
	// From is the exported column ("" for a target column the export
	// has no value for), To the target's ("" for a column left out).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Note says what happens to it: "renamed (mapping)", "new in the
	// target: its default", ...
	Note string `json:"note,omitempty"`
}

// ErrMapping is wrapped by the error of an import into a newer target
// whose differences from the export no mapping resolves; the error lists
// them all.
var ErrMapping = errors.New("the export does not map onto the target")

// ErrNotEmpty is wrapped by Import's error when the target already has a
// schema or tables of its own.
var ErrNotEmpty = errors.New("target database is not empty")

// ledger steps.
const (
	stepStarted  = "started"
	stepEmptied  = "emptied"
	stepVerified = "verified"
	stepDone     = "done"
	stepTable    = "table:"
)

func ledgerTable(history string) string { return history + "_import" }

// Import loads export id of st into db, whose migrations mig knows:
//
//  1. the target, which must be empty, is migrated to the export's schema
//     version with these migrations (their checksums must match the ones
//     the source applied);
//  2. holding the migration lock, every table is emptied of what the
//     migrations may have seeded and loaded, parents before children, each
//     table (or circular group of tables) in one transaction with its
//     ledger row, sequences are set past the loaded maximum, and every
//     table's row count, row checksum and foreign keys are verified
//     against the manifest;
//  3. the target is migrated to its latest version, so that the data goes
//     through the real migrations.
//
// A re-run after a crash goes on from the ledger (table <history>_import):
// loaded tables are not loaded again, and none is half loaded. The error
// wraps ErrMismatch when verification fails (the report lists the
// problems), ErrCorrupt for a damaged export, ErrNotEmpty for a target
// that has a schema already.
func Import(ctx context.Context, st *Store, id string, db *database.DB, mig *migrate.Migrator, opts ImportOptions) (*ImportReport, error) {
	start := opts.now()
	m, err := st.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	rep := &ImportReport{ExportID: id, Store: st.String(), Target: db.URL.String(), Engine: m.Source.Engine, TargetEngine: db.URL.Kind,
		ExportVersion: m.Source.SchemaVersion, Tables: []TableReport{}, Problems: []Problem{}, Steps: []string{}}
	im := &importer{st: st, m: m, db: db, mig: mig, opts: opts, rep: rep, log: opts.logger(),
		ledger: db.Dialect.Table(ledgerTable(mig.Table()))}
	err = im.run(ctx)
	rep.DurationMS = opts.now().Sub(start).Milliseconds()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (interrupted: run the same command again; it goes on from where it stopped)", err)
		}
		return rep, db.URL.Redact(fmt.Errorf("import of export %s into %s: %w", id, db.URL, err))
	}
	return rep, nil
}

type importer struct {
	st     *Store
	m      *Manifest
	db     *database.DB
	mig    *migrate.Migrator
	opts   ImportOptions
	rep    *ImportReport
	log    interface{ Info(string, ...any) }
	ledger string // quoted table name
	done   map[string]int64
	key    age.Identity // the export's key, when it is encrypted
	// direct, for a copy, reads the rows from the source instead of a
	// store (st is nil then).
	direct *directSource
	// tables are what is loaded: the export's tables, or, into a target
	// at a newer version (mapped), the target's tables they map onto.
	tables []*TableExport
	mapped bool
	// progressMu keeps Progress calls apart (tables load in parallel).
	progressMu sync.Mutex
}

// mapOntoTarget maps the export onto a target that already has a schema
// (the export's version or newer): the source's applied migrations must
// be applied there too, its tables empty, and every difference resolved
// by name or by the mapping. It returns each table's column notes.
func (im *importer) mapOntoTarget(ctx context.Context, status *migrate.Status) (map[string][]ColumnMapping, error) {
	m := im.m
	applied := map[int64]string{}
	for _, a := range status.Applied {
		applied[a.Version] = a.Checksum
	}
	for _, a := range m.Source.Migrations {
		sum, ok := applied[a.Version]
		if !ok {
			return nil, fmt.Errorf("the target is at schema version %d but has not applied migration %d (%s), which the source had: it is not a later state of the source's schema", status.CurrentVersion, a.Version, a.Name)
		}
		if a.Checksum != "" && sum != "" && a.Checksum != sum && !im.cross() {
			return nil, fmt.Errorf("the target applied a different migration %d (%s) than the source: checksums %.12s and %.12s", a.Version, a.Name, sum, a.Checksum)
		}
	}
	target, err := catalog(ctx, im.db, im.db.URL.Kind, ownTables(im.mig.Table()))
	if err != nil {
		return nil, err
	}
	maps, problems := mapTables(m, target, im.db.URL.Kind, im.opts.Mapping)
	var mappingErr error
	if len(problems) > 0 {
		mappingErr = fmt.Errorf("%w at version %d (export at %d): %s; write these into a mapping file (--mapping FILE) and run again", ErrMapping, status.CurrentVersion, m.Source.SchemaVersion, strings.Join(problems, "; "))
		if !im.opts.Plan {
			return nil, mappingErr
		}
		for _, p := range problems {
			im.rep.Problems = append(im.rep.Problems, Problem{What: "mapping", Detail: p})
		}
	}
	notes := map[string][]ColumnMapping{}
	for i := range m.Tables {
		tm := maps[m.Tables[i].Name]
		if tm == nil {
			continue // left out by the mapping
		}
		t := tm.mapped()
		im.tables = append(im.tables, t)
		notes[t.Name] = tm.notes
	}
	if !im.rep.Resumed {
		// Rows of their own in the target would be mixed with the
		// export's: refused, whatever made them.
		for _, t := range im.tables {
			q := "SELECT count(*) FROM " + quoteIdent(im.db.URL.Kind, t.Name)
			var n int64
			if err := im.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
				return nil, err
			}
			if n > 0 {
				return nil, fmt.Errorf("%w: its table %s has %d rows at schema version %d, which the import would mix with the export's (rows a migration seeds count too); import into an empty database, and the export goes through the migrations", ErrNotEmpty, t.Name, n, status.CurrentVersion)
			}
		}
	}
	return notes, mappingErr
}

// expectedSum is the row checksum a loaded table must show: the
// manifest's, or, for a table mapped onto a newer target, that of the
// exported rows as loaded (their kept columns), read again from the
// export; "" when a cast makes the database's form of a value differ (the
// row count is compared alone).
func (im *importer) expectedSum(ctx context.Context, t *TableExport) (string, error) {
	if t.src == nil {
		return t.RowChecksum, nil
	}
	if t.canon != nil {
		// Across engines: the canonical checksum of the exported rows,
		// summed as they were fed, or read again when an earlier run
		// loaded the table.
		if t.fed {
			return t.fedSum.String(), nil
		}
		var sum rowSum
		var line []byte
		row := make([]value, len(t.Columns))
		err := im.readChunks(ctx, t.src, func(vals []value) error {
			for i, k := range t.keep {
				row[i] = vals[k]
			}
			line = t.canonLine(line[:0], row)
			sum.add(line[:len(line)-1])
			return nil
		})
		return sum.String(), err
	}
	for i, c := range t.Columns {
		if c.Type != t.src.Columns[t.keep[i]].Type {
			return "", nil
		}
	}
	var sum rowSum
	var line []byte
	row := make([]any, len(t.Columns))
	err := im.readChunks(ctx, t.src, func(vals []value) error {
		for i, k := range t.keep {
			row[i] = vals[k].any()
		}
		line = appendRow(line[:0], row)
		sum.add(line[:len(line)-1])
		return nil
	})
	return sum.String(), err
}

// bulk reports whether table t is large enough to load without its
// secondary indexes and foreign keys: by its row count, or for a copy
// (which counts as it goes) by the source's estimate.
func (im *importer) bulk(t *TableExport) bool {
	rows := t.Rows
	if rows < 0 && im.direct != nil {
		src := t
		if t.src != nil {
			src = t.src
		}
		rows = im.direct.estimates[src.Name]
	}
	return rows >= cmp.Or(im.opts.bulkRows, bulkRows)
}

// convert converts a row (in t's columns) into the target's forms.
func (t *TableExport) convert(row []value) error {
	for i, f := range t.conv {
		if f == nil {
			continue
		}
		v, err := f(row[i])
		if err != nil {
			return fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
		}
		row[i] = v
	}
	return nil
}

// canonLine appends the row line of row in t's canonical forms.
func (t *TableExport) canonLine(buf []byte, row []value) []byte {
	vals := make([]any, len(row))
	for i, v := range row {
		vals[i] = t.canon[i](v.any())
	}
	return appendRow(buf, vals)
}

// table returns the loaded table named name (a target name when mapped).
func (im *importer) table(name string) *TableExport {
	for _, t := range im.tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// tableValues returns the loaded tables as values, for the loaders.
func (im *importer) tableValues() []TableExport {
	out := make([]TableExport, len(im.tables))
	for i, t := range im.tables {
		out[i] = *t
	}
	return out
}

const stepMapped = "mapped"

func (im *importer) run(ctx context.Context) error {
	m := im.m
	if err := im.checkMigrations(); err != nil {
		return err
	}
	// An encrypted export's key is opened first: a wrong key changes
	// nothing.
	if im.st != nil {
		key, err := im.st.exportKey(ctx, m, im.opts.Identities)
		if err != nil {
			return err
		}
		im.key = key
	}
	status, err := im.mig.Status(ctx)
	if err != nil {
		return err
	}
	im.rep.StartVersion = status.CurrentVersion
	im.rep.FinalVersion = status.LatestVersion
	if im.done, err = im.readLedger(ctx); err != nil {
		return err
	}
	if _, ok := im.done[stepDone]; ok {
		im.rep.Steps = append(im.rep.Steps, "nothing to do: this export was imported into this database already")
		im.rep.Verified = true
		return nil
	}
	im.rep.Resumed = len(im.done) > 0
	_, im.mapped = im.done[stepMapped]
	if !im.rep.Resumed {
		if status.AppliedCount > 0 && status.CurrentVersion >= m.Source.SchemaVersion {
			im.mapped = true // a target with the export's schema, or a newer one
		} else if err := im.checkEmpty(ctx, status); err != nil {
			return err
		}
	} else if _, verified := im.done[stepVerified]; !verified && !im.mapped && status.CurrentVersion > m.Source.SchemaVersion {
		return fmt.Errorf("the target is at schema version %d, past the export's %d, but the import's load never finished: something ran `ferry up` on it meanwhile; drop the target database, create it empty, and import again", status.CurrentVersion, m.Source.SchemaVersion)
	}
	var notes map[string][]ColumnMapping
	var mappingErr error
	if im.mapped && im.direct != nil {
		return fmt.Errorf("%w: it is at schema version %d; a copy goes into an empty database (ferry export and ferry import --mapping load into a database that has its schema)", ErrNotEmpty, status.CurrentVersion)
	}
	if im.mapped {
		if notes, err = im.mapOntoTarget(ctx, status); err != nil && (!errors.Is(err, ErrMapping) || !im.opts.Plan) {
			return err
		}
		mappingErr = err // a plan shows the mapping, problems and all
	} else {
		for i := range m.Tables {
			im.tables = append(im.tables, &m.Tables[i])
		}
	}
	loaded := make([]*Table, len(im.tables))
	for i, t := range im.tables {
		loaded[i] = &t.Table
	}
	groups := loadOrder(loaded)
	for gi, g := range groups {
		for _, t := range g {
			te := im.table(t.Name)
			cols := notes[t.Name]
			if cols == nil {
				cols = make([]ColumnMapping, len(te.Columns))
				for i, c := range te.Columns {
					cols[i] = ColumnMapping{From: c.Name, To: c.Name}
				}
			}
			_, skipped := im.done[stepTable+t.Name]
			im.rep.Tables = append(im.rep.Tables, TableReport{Name: t.Name, Rows: te.Rows, Columns: cols, Group: gi + 1, Skipped: skipped})
		}
	}
	im.plan(status, groups)
	if im.opts.Plan {
		im.rep.Planned = true
		return mappingErr
	}
	if err := im.createLedger(ctx); err != nil {
		return err
	}
	if err := im.markStart(ctx); err != nil {
		return err
	}
	if !im.mapped && status.CurrentVersion < m.Source.SchemaVersion {
		if _, err := im.mig.Up(ctx, migrate.UpOptions{To: m.Source.SchemaVersion}); err != nil {
			return fmt.Errorf("migrate the target to the export's version %d: %w", m.Source.SchemaVersion, err)
		}
	}
	if _, verified := im.done[stepVerified]; !verified {
		err := im.mig.WithLock(ctx, func(lctx context.Context, _ migrate.Querier) error {
			// Stop when the caller says so (a table's transaction rolls
			// back; the re-run goes on from the ledger), or when the lock
			// is lost.
			both, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := context.AfterFunc(lctx, cancel)
			defer stop()
			return im.load(both, groups)
		})
		if err != nil {
			return err
		}
	}
	im.rep.Verified = true
	for i := range im.rep.Tables {
		// A copy counts its rows as it loads them.
		im.rep.Tables[i].Rows = im.table(im.rep.Tables[i].Name).Rows
	}
	res, err := im.mig.Up(ctx, migrate.UpOptions{})
	if err != nil {
		return fmt.Errorf("the data is loaded and verified at version %d; migrating it to the latest version failed: %w", m.Source.SchemaVersion, err)
	}
	if res != nil && res.To > 0 {
		im.rep.FinalVersion = res.To
	}
	if done, err := im.readLedger(ctx); err == nil {
		im.done = done // another run may have finished it meanwhile
	}
	return im.mark(ctx, nil, stepDone, m.Rows())
}

// plan describes the steps in words.
func (im *importer) plan(status *migrate.Status, groups [][]*Table) {
	m := im.m
	add := func(f string, a ...any) { im.rep.Steps = append(im.rep.Steps, fmt.Sprintf(f, a...)) }
	if status.CurrentVersion < m.Source.SchemaVersion {
		add("migrate the target from version %d to the export's version %d", status.CurrentVersion, m.Source.SchemaVersion)
	}
	if w := m.Window; w != nil {
		add("the export holds only recent rows: since %s in %d tables with a time column (--since), closed under foreign keys", w.Cutoff.Format(time.RFC3339), len(w.Columns))
	}
	if im.cross() {
		add("convert every value from %s's types to the target's (%s): exact conversions as they are, checked ones value by value (a value that does not fit stops the load), lossy ones only where the mapping allows a cast", m.Source.Engine, im.db.URL.Kind)
		if !im.mapped {
			add("  (the target's types are known once it is migrated: a lossy column the mapping does not allow is refused then, before anything is loaded)")
		}
	}
	if _, ok := im.done[stepVerified]; !ok {
		switch _, ok := im.done[stepEmptied]; {
		case ok:
			add("take the migration lock (the %d tables were emptied by the earlier run)", len(im.tables))
		case im.mapped:
			add("take the migration lock; load the %d tables of the target's schema at version %d, which are empty", len(im.tables), status.CurrentVersion)
		default:
			add("take the migration lock; empty the %d tables of rows the migrations seeded", len(im.tables))
		}
		for i, g := range groups {
			var names []string
			var rows int64
			for _, t := range g {
				names = append(names, t.Name)
				if n := im.table(t.Name).Rows; n < 0 || rows < 0 {
					rows = -1
				} else {
					rows += n
				}
			}
			what := "load"
			if _, ok := im.done[stepTable+g[0].Name]; ok {
				what = "skip (loaded by the earlier run)"
			}
			cyc := ""
			if len(g) > 1 {
				cyc = " (a circular reference: one transaction)"
			}
			count := fmt.Sprintf(": %d rows", rows)
			if rows < 0 {
				count = "" // a copy counts them as it goes
			}
			add("%d. %s %s%s%s", i+1, what, strings.Join(names, ", "), count, cyc)
		}
		add("set sequences past the loaded maximum; verify row counts, row checksums and foreign keys")
	}
	if at := max(status.CurrentVersion, m.Source.SchemaVersion); status.LatestVersion > at {
		add("migrate the target from version %d to the latest, %d", at, status.LatestVersion)
	}
	if q := m.Quiesce; q != nil && !im.opts.KeepPaused {
		add("resume the %d workloads the export paused, in the target", len(q.Paused))
	}
}

// cross reports whether the export is of another engine than the target.
func (im *importer) cross() bool { return im.m.Source.Engine != im.db.URL.Kind }

// checkMigrations compares the source's applied migrations with the
// migrations here: the same versions, and, on the same engine, the same
// checksums (another engine's migrations are its own SQL).
func (im *importer) checkMigrations() error {
	local := map[int64]*migrate.Migration{}
	for _, l := range im.mig.Migrations() {
		local[l.Version] = l
	}
	for _, a := range im.m.Source.Migrations {
		l := local[a.Version]
		if l == nil {
			return fmt.Errorf("the source applied migration %d (%s), which the migrations here do not have: import with the migrations of the release the source runs, or a newer one", a.Version, a.Name)
		}
		if a.Checksum != "" && l.Checksum != "" && a.Checksum != l.Checksum && !im.cross() {
			return fmt.Errorf("migration %d (%s) is not the one the source applied: its checksum is %.12s here and %.12s in the export; import with the source's migration files", a.Version, l.Source, l.Checksum, a.Checksum)
		}
	}
	return nil
}

// checkEmpty refuses a target with a schema or tables.
func (im *importer) checkEmpty(ctx context.Context, status *migrate.Status) error {
	if status.AppliedCount > 0 || status.CurrentVersion > 0 {
		return fmt.Errorf("%w: it is at schema version %d; imports load into an empty database (loading into one that has a schema and data of its own is not supported yet): create an empty database and import into it", ErrNotEmpty, status.CurrentVersion)
	}
	tables, err := strsOwn(ctx, im.db, im.mig.Table())
	if err != nil {
		return err
	}
	if len(tables) > 0 {
		if len(tables) > 5 {
			tables = append(tables[:5], "...")
		}
		return fmt.Errorf("%w: it has tables (%s) and no ferry history; import into an empty database", ErrNotEmpty, strings.Join(tables, ", "))
	}
	return nil
}

func strsOwn(ctx context.Context, db *database.DB, history string) ([]string, error) {
	own := ownTables(history)
	var names []string
	tables, err := catalogNames(ctx, db, db.URL.Kind)
	if err != nil {
		return nil, err
	}
	for _, n := range tables {
		if !own(n) {
			names = append(names, n)
		}
	}
	return names, nil
}

func catalogNames(ctx context.Context, q querier, kind string) ([]string, error) {
	t, err := catalog(ctx, q, kind, func(string) bool { return false })
	if err != nil {
		return nil, err
	}
	out := make([]string, len(t))
	for i := range t {
		out[i] = t[i].Name
	}
	return out, nil
}

// readLedger returns this export's finished steps, and refuses when the
// ledger shows another import that did not finish.
func (im *importer) readLedger(ctx context.Context) (map[string]int64, error) {
	// Nothing is created before the checks pass: a refused import (or a
	// plan) leaves the target as it was.
	if exists, err := tableExists(ctx, im.db, ledgerTable(im.mig.Table())); err != nil {
		return nil, err
	} else if !exists {
		return map[string]int64{}, nil
	}
	rows, err := im.db.QueryContext(ctx, `SELECT export_id, step, row_count FROM `+im.ledger)
	if err != nil {
		return nil, fmt.Errorf("read the import ledger: %w", err)
	}
	done := map[string]int64{}
	others := map[string]bool{}
	otherDone := map[string]bool{}
	for rows.Next() {
		var id, step string
		var n int64
		if err := rows.Scan(&id, &step, &n); err != nil {
			rows.Close()
			return nil, err
		}
		if id == im.m.ID {
			done[step] = n
		} else {
			others[id] = true
			if step == stepDone {
				otherDone[id] = true
			}
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	for id := range others {
		if !otherDone[id] {
			return nil, fmt.Errorf("an import of export %s into this database did not finish: run that import again to finish it (a copy cannot be finished: drop this database, create it empty, and copy again)", id)
		}
	}
	if len(done) == 0 {
		for id := range otherDone {
			return nil, fmt.Errorf("%w: it holds the import of export %s already; import into a new, empty database", ErrNotEmpty, id)
		}
	}
	return done, nil
}

func (im *importer) createLedger(ctx context.Context) error {
	_, err := im.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+im.ledger+` (
		export_id VARCHAR(64) NOT NULL,
		step VARCHAR(300) NOT NULL,
		row_count BIGINT NOT NULL,
		done_at VARCHAR(40) NOT NULL,
		PRIMARY KEY (export_id, step))`)
	if err != nil {
		return fmt.Errorf("create the import ledger %s: %w", im.ledger, err)
	}
	return nil
}

// markStart records the start, and for a mapped import that it is one,
// together.
func (im *importer) markStart(ctx context.Context) error {
	tx, err := im.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := im.mark(ctx, tx, stepStarted, 0); err != nil {
		return err
	}
	if im.mapped {
		if err := im.mark(ctx, tx, stepMapped, 0); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// markSQL is the statement and arguments that record a finished step.
func (im *importer) markSQL(step string, rows int64) (string, []any) {
	// A step another run of the same import recorded first stays as it
	// was recorded.
	d := im.db.Dialect
	insert, conflict := "INSERT INTO ", " ON CONFLICT (export_id, step) DO NOTHING"
	if im.db.URL.Kind == database.MySQL {
		insert, conflict = "INSERT IGNORE INTO ", ""
	}
	return insert + im.ledger + ` (export_id, step, row_count, done_at) VALUES (` +
			d.Placeholder(1) + `, ` + d.Placeholder(2) + `, ` + d.Placeholder(3) + `, ` + d.Placeholder(4) + `)` + conflict,
		[]any{im.m.ID, step, rows, time.Now().UTC().Format(time.RFC3339Nano)}
}

// mark records step in q (a transaction), or on its own when q is nil.
func (im *importer) mark(ctx context.Context, q querier, step string, rows int64) error {
	if _, ok := im.done[step]; ok {
		return nil
	}
	if q == nil {
		q = im.db
	}
	query, args := im.markSQL(step, rows)
	if _, err := q.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("record %q in the import ledger: %w", step, err)
	}
	return nil
}

// load runs under the migration lock: empty, load, sequences, verify.
func (im *importer) load(ctx context.Context, groups [][]*Table) error {
	m := im.m
	// Another run of this import may have held the lock first: what it
	// did is in the ledger.
	done, err := im.readLedger(ctx)
	if err != nil {
		return err
	}
	im.done = done
	if _, ok := done[stepVerified]; ok {
		im.log.Info("another run of this import loaded and verified it meanwhile", "export", m.ID)
		return nil
	}
	status, err := im.mig.Status(ctx)
	if err != nil {
		return err
	}
	if !im.mapped && status.CurrentVersion != m.Source.SchemaVersion {
		return fmt.Errorf("the target is at schema version %d, not the export's %d: something ran `ferry up` or `ferry down` on it meanwhile; drop the target database, create it empty, and import again", status.CurrentVersion, m.Source.SchemaVersion)
	}
	if im.mapped && status.CurrentVersion != im.rep.StartVersion {
		return fmt.Errorf("the target moved from schema version %d to %d while the import waited: something ran `ferry up` or `ferry down` on it; run the import again to map onto its new schema", im.rep.StartVersion, status.CurrentVersion)
	}
	target, err := catalog(ctx, im.db, im.db.URL.Kind, ownTables(im.mig.Table()))
	if err != nil {
		return err
	}
	byName := map[string]*Table{}
	for _, t := range target {
		byName[t.Name] = t
	}
	if im.cross() && !im.mapped {
		// Now that the target has the export's schema in its own types:
		// how each column converts (see convert.go), refused at once for
		// every lossy one the mapping does not allow.
		maps, problems := mapTables(m, target, im.db.URL.Kind, im.opts.Mapping)
		if len(problems) > 0 {
			next := fmt.Sprintf("write these into a mapping file and run the same import again with --mapping FILE: nothing was loaded, and it goes on from version %d", m.Source.SchemaVersion)
			if im.direct != nil {
				// A copy cannot go on (its source moves on): nothing of it
				// is left in the ledger, and the target is to be made anew.
				if _, err := im.db.ExecContext(ctx, "DELETE FROM "+im.ledger+" WHERE export_id = "+im.db.Dialect.Placeholder(1), m.ID); err != nil {
					return err
				}
				next = fmt.Sprintf("nothing was loaded, but the target was migrated to version %d: drop it, create it empty, and copy again with --mapping FILE", m.Source.SchemaVersion)
			}
			return fmt.Errorf("%w: from %s into %s at version %d: %s; %s", ErrMapping, m.Source.Engine, im.db.URL.Kind, m.Source.SchemaVersion, strings.Join(problems, "; "), next)
		}
		for i, te := range im.tables {
			tm := maps[te.Name]
			if tm == nil || tm.target.Name != te.Name {
				return fmt.Errorf("%w: the mapping renames or leaves out table %s, which an empty target at the export's version has: leave tables out with ferry export --exclude instead", ErrMapping, te.Name)
			}
			im.tables[i] = tm.mapped()
			for ri := range im.rep.Tables {
				if r := &im.rep.Tables[ri]; r.Name == te.Name {
					r.Columns = tm.notes
				}
			}
		}
	}
	for _, te := range im.tables {
		tt := byName[te.Name]
		if tt == nil {
			return fmt.Errorf("the export has table %s, which the target does not have at version %d: the target's migrations are not the source's", te.Name, m.Source.SchemaVersion)
		}
		for _, c := range te.Columns {
			if tt.column(c.Name) == nil {
				return fmt.Errorf("table %s: the export has column %s, which the target does not have at version %d", te.Name, c.Name, m.Source.SchemaVersion)
			}
		}
	}
	// One loader per job, each on a connection of its own (SQLite has one
	// writer: one loader).
	jobs := max(im.opts.Jobs, 1)
	if im.db.URL.Kind == database.SQLite || im.direct != nil {
		jobs = 1 // a copy reads its source through one connection
	}
	var loaders []loader
	for range jobs {
		conn, err := im.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer discard(conn) // the loaders change its session's settings
		loaders = append(loaders, newLoader(im.db.URL.Kind, conn, im))
	}
	ld := loaders[0]
	if sl, ok := ld.(*sqlLoader); ok && sl.kind == database.MySQL {
		// Keys a cut-short run dropped for its load come back first.
		if err := sl.restorePending(ctx); err != nil {
			return fmt.Errorf("re-create the keys an earlier run of this import dropped: %w", err)
		}
	}
	if _, ok := im.done[stepEmptied]; !ok {
		var names []string
		for _, te := range im.tables {
			names = append(names, te.Name)
		}
		if err := ld.empty(ctx, names); err != nil {
			return fmt.Errorf("empty the tables before loading: %w", err)
		}
	}
	began := time.Now()
	if err := im.loadGroups(ctx, groups, loaders, byName); err != nil {
		return err
	}
	im.log.Info("tables loaded", "export", m.ID, "tables", len(im.tables), "jobs", jobs, "duration", time.Since(began).Round(time.Millisecond))
	if err := ld.schemaSequences(ctx, m.Sequences); err != nil {
		return fmt.Errorf("set sequences: %w", err)
	}
	if err := ld.sequences(ctx, im.tableValues()); err != nil {
		return fmt.Errorf("set sequences: %w", err)
	}
	began = time.Now()
	problems, err := im.verify(ctx, ld)
	if err != nil {
		return err
	}
	im.log.Info("tables verified", "export", m.ID, "problems", len(problems), "duration", time.Since(began).Round(time.Millisecond))
	im.rep.Problems = problems
	if err := mismatch(problems); err != nil {
		return err
	}
	// The verified mark and the workloads' resumption commit together.
	tx, err := im.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if q := m.Quiesce; q != nil && !im.opts.KeepPaused {
		if err := q.runIn(ctx, tx, q.Resume); err != nil {
			return fmt.Errorf("resume the workloads the export paused: %w (import again with --keep-paused to leave them paused, and resume them by hand)", err)
		}
		im.rep.WorkloadsResumed = len(q.Paused)
	}
	if err := im.mark(ctx, tx, stepVerified, m.Rows()); err != nil {
		return err
	}
	return tx.Commit()
}

// loadGroups loads the groups not loaded yet, each in one transaction,
// as many at once as there are loaders: a group starts once every group
// it references has committed (PostgreSQL checks each foreign key as the
// rows go in). The first error stops the others (their transactions roll
// back) and is returned.
func (im *importer) loadGroups(ctx context.Context, groups [][]*Table, loaders []loader, target map[string]*Table) error {
	groupOf := map[string]int{}
	for gi, g := range groups {
		for _, t := range g {
			groupOf[t.Name] = gi
		}
	}
	waits := make([]int, len(groups))        // groups a group still waits for
	dependents := make([][]int, len(groups)) // groups waiting for a group
	finished := make([]bool, len(groups))
	for gi, g := range groups {
		finished[gi] = hasStep(im.done, stepTable+g[0].Name)
	}
	for gi, g := range groups {
		seen := map[int]bool{}
		for _, t := range g {
			for _, fk := range im.table(t.Name).ForeignKeys {
				pg, ok := groupOf[fk.RefTable]
				if !ok || pg == gi || seen[pg] || finished[pg] {
					continue
				}
				seen[pg] = true
				waits[gi]++
				dependents[pg] = append(dependents[pg], gi)
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		gi  int
		ld  loader
		err error
	}
	results := make(chan result)
	idle := slices.Clone(loaders)
	var ready []int
	left := 0
	for gi := range groups {
		if finished[gi] {
			continue
		}
		left++
		if waits[gi] == 0 {
			ready = append(ready, gi)
		}
	}
	running := 0
	var firstErr error
	for left > 0 || running > 0 {
		for firstErr == nil && len(ready) > 0 && len(idle) > 0 {
			gi, ld := ready[0], idle[len(idle)-1]
			ready, idle = ready[1:], idle[:len(idle)-1]
			var tables []*TableExport
			for _, t := range groups[gi] {
				tables = append(tables, im.table(t.Name))
			}
			running++
			left--
			go func() { results <- result{gi, ld, ld.load(ctx, tables, target)} }()
		}
		if running == 0 {
			break // nothing runs and nothing can start: an error stopped it
		}
		r := <-results
		running--
		idle = append(idle, r.ld)
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
				cancel() // the others roll back; a re-run goes on from the ledger
			}
			continue
		}
		for _, d := range dependents[r.gi] {
			if waits[d]--; waits[d] == 0 {
				ready = append(ready, d)
			}
		}
		slices.Sort(ready) // in the load order, as far as the references allow
	}
	return firstErr
}

func hasStep(done map[string]int64, step string) bool {
	_, ok := done[step]
	return ok
}

// feed calls fn with every row of table t: from the export's chunks,
// checked against the manifest, or, for a copy, straight from the
// source's snapshot.
func (im *importer) feed(ctx context.Context, t *TableExport, fn func([]value) error) error {
	src := t // the exported table whose rows t loads
	var proj []value
	if t.src != nil {
		src, proj = t.src, make([]value, len(t.Columns))
	}
	var n, size int64
	var canon []byte
	t.fedSum, t.fed = rowSum{}, false
	each := func(line []byte, where string, failed func(error) error) error {
		row, err := decodeRow(line, len(src.Columns))
		if err != nil {
			return failed(fmt.Errorf("%w: %s: %v", ErrCorrupt, where, err))
		}
		if proj != nil {
			for i, k := range t.keep {
				proj[i] = row[k]
			}
			row = proj
		}
		if t.conv != nil {
			// The exported values, in the canonical forms of the target's
			// types: the verification compares the loaded rows with them,
			// so a conversion that changed a value is caught too.
			canon = t.canonLine(canon[:0], row)
			t.fedSum.add(canon[:len(canon)-1])
			if err := t.convert(row); err != nil {
				return failed(fmt.Errorf("%s: the table's row %d: %w", where, n+1, err))
			}
		}
		if err := fn(row); err != nil {
			return err
		}
		n++
		size += int64(len(line)) + 1
		if n%50000 == 0 {
			im.progress(Progress{Op: "load", Table: t.Name, Rows: n, Bytes: size, Total: t.Rows})
		}
		return nil
	}
	var err error
	if im.direct != nil {
		err = im.direct.rows(ctx, src, func(line []byte) error {
			return each(line, "from the source", func(err error) error { return err })
		})
		t.Rows = src.Rows
	} else {
		err = im.readLines(ctx, src, each)
	}
	if err != nil {
		return err
	}
	t.fed = t.conv != nil
	im.progress(Progress{Op: "load", Table: t.Name, Rows: n, Bytes: size, Total: t.Rows, Done: true})
	return nil
}

// readLines calls fn with every row line of exported table t's chunks,
// checked against the manifest, decrypted when they are encrypted.
func (im *importer) readLines(ctx context.Context, t *TableExport, fn func(line []byte, where string, failed func(error) error) error) error {
	for _, c := range t.Chunks {
		var key age.Identity
		if im.m.Encryption.encrypts(t.Name) {
			key = im.key
		}
		r, err := im.st.openChunk(ctx, im.m.ID, c, key)
		if err != nil {
			return err
		}
		for {
			line, err := r.line()
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil {
				err = fn(line, im.m.ID+"/"+c.Name, r.failed)
			}
			if err != nil {
				r.close()
				return err
			}
		}
		r.close()
	}
	return nil
}

// readChunks calls fn with every decoded row of exported table t.
func (im *importer) readChunks(ctx context.Context, t *TableExport, fn func([]value) error) error {
	return im.readLines(ctx, t, func(line []byte, where string, failed func(error) error) error {
		row, err := decodeRow(line, len(t.Columns))
		if err != nil {
			return failed(fmt.Errorf("%w: %s: %v", ErrCorrupt, where, err))
		}
		return fn(row)
	})
}

func (im *importer) progress(p Progress) {
	if im.opts.Progress != nil {
		im.progressMu.Lock()
		defer im.progressMu.Unlock()
		im.opts.Progress(p)
	}
}

// verify re-reads every table in one snapshot and compares it with the
// manifest; it also checks foreign keys where the load turned them off.
func (im *importer) verify(ctx context.Context, ld loader) ([]Problem, error) {
	jobs := max(im.opts.Jobs, 1)
	if im.db.URL.Kind == database.SQLite {
		jobs = 1
	}
	var snap Snapshot
	snaps, err := openSnapshots(ctx, im.db, jobs, &snap)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range snaps {
			s.close()
		}
	}()
	// Whole tables, and a large PostgreSQL table in key ranges read in
	// parallel in the one snapshot; the row checksum adds up in any order.
	tables := make([]*Table, len(im.tables))
	for i, t := range im.tables {
		tables[i] = &t.Table
	}
	parts, _, err := listParts(ctx, snaps[0].q, im.db.URL.Kind, tables, func(i int) int64 { return im.tables[i].Rows }, jobs, cmp.Or(im.opts.splitRows, defaultSplitRows))
	if err != nil {
		return nil, err
	}
	sums := make([]rowSum, len(im.tables))
	counts := make([]int64, len(im.tables))
	seen := make([]atomic.Int64, len(im.tables)) // for progress, as the parts go
	var mu sync.Mutex
	err = eachPart(ctx, snaps, parts, func(ctx context.Context, s *snapshot, p part) error {
		te := im.tables[p.t]
		tick := func(n int64) {
			im.progress(Progress{Op: "verify", Table: te.Name, Rows: seen[p.t].Add(n), Total: te.Rows})
		}
		sum, n, err := sumRows(ctx, s.q, im.db.URL.Kind, &te.Table, p.rng, te.canon, tick)
		if err != nil {
			return fmt.Errorf("verify table %s: %w", te.Name, err)
		}
		mu.Lock()
		sums[p.t].merge(sum)
		counts[p.t] += n
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	var problems []Problem
	for i, te := range im.tables {
		want, err := im.expectedSum(ctx, te)
		if err != nil {
			return nil, err
		}
		if n := counts[i]; n != te.Rows {
			problems = append(problems, Problem{Table: te.Name, What: "rows", Want: fmt.Sprint(te.Rows), Got: fmt.Sprint(n)})
		} else if got := sums[i].String(); want != "" && got != want {
			problems = append(problems, Problem{Table: te.Name, What: "row_checksum", Want: want, Got: got, Detail: "the rows loaded differ from the rows exported"})
		}
		im.progress(Progress{Op: "verify", Table: te.Name, Rows: counts[i], Total: te.Rows, Done: true})
	}
	fk, err := ld.checkForeignKeys(ctx, im.tableValues())
	if err != nil {
		return nil, fmt.Errorf("check foreign keys: %w", err)
	}
	return append(problems, fk...), nil
}

// sumRows reads the rows of rng (nil: all) of t and returns their row
// checksum and count; canon, if set, puts each column's values in their
// canonical form first.
func sumRows(ctx context.Context, q querier, kind string, t *Table, rng *keyRange, canon []func(any) any, tick func(rows int64)) (rowSum, int64, error) {
	var sum rowSum
	var n int64
	r, err := readRange(ctx, q, kind, t, rng, "", "")
	if err != nil {
		return sum, 0, err
	}
	defer r.close()
	var line []byte
	for {
		ok, err := r.next()
		if err != nil {
			return sum, n, err
		}
		if !ok {
			return sum, n, nil
		}
		for i, c := range canon {
			r.row[i] = c(r.row[i])
		}
		line = appendRow(line[:0], r.row)
		sum.add(line[:len(line)-1])
		if n++; n%50000 == 0 {
			tick(50000)
		}
		if cap(line) > 4<<20 {
			line = nil // after a large value
		}
	}
}

// columnList quotes t's columns for an INSERT or COPY.
func columnList(kind string, t *TableExport) string {
	q := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		q[i] = quoteIdent(kind, c.Name)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// loader is one engine's way of loading.
type loader interface {
	// empty deletes every row of tables, in one transaction with the
	// ledger's "emptied" step.
	empty(ctx context.Context, tables []string) error
	// load loads a group of tables in one transaction with their ledger
	// rows.
	load(ctx context.Context, group []*TableExport, target map[string]*Table) error
	// schemaSequences sets the schema's sequences (owned by a column or
	// not) to the source's values.
	schemaSequences(ctx context.Context, seqs []Sequence) error
	// sequences sets every column's counter past the loaded rows.
	sequences(ctx context.Context, tables []TableExport) error
	// checkForeignKeys finds rows whose parent is missing, where the
	// load did not have the database check them.
	checkForeignKeys(ctx context.Context, tables []TableExport) ([]Problem, error)
}

func newLoader(kind string, conn *sql.Conn, im *importer) loader {
	switch kind {
	case database.Postgres:
		return &pgLoader{conn: conn, im: im}
	}
	return &sqlLoader{conn: conn, im: im, kind: kind, noLoadData: im.opts.noLoadData}
}

// inTx runs fn in a transaction on conn with a deferred rollback.
func inTx(ctx context.Context, conn *sql.Conn, fn func(tx *sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// markTables records the tables of a group as loaded, in q.
func (im *importer) markTables(ctx context.Context, q querier, group []*TableExport) error {
	for _, t := range group {
		if err := im.mark(ctx, q, stepTable+t.Name, t.Rows); err != nil {
			return err
		}
	}
	return nil
}

// anyFK reports whether any table has foreign keys.
func anyFK(tables []TableExport) bool {
	return slices.ContainsFunc(tables, func(t TableExport) bool { return len(t.ForeignKeys) > 0 })
}
