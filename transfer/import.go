package transfer

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
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
	// memoryKeys bounds the parent keys the verification holds to check
	// foreign keys in memory (default maxMemoryKeys; tests lower it).
	memoryKeys int64
	// dropKeys loads a large MySQL table without its keys even where the
	// server would build them in one sorted pass (see sortsKeys; tests).
	dropKeys bool
	// partsListed, if set, is called once the verification has listed
	// the parts it reads; keysAlter before a re-creation of keys runs its
	// ALTER (tests).
	partsListed, keysAlter func()
	// loaded, if set, is called with a MySQL or SQLite loader's
	// connection after each of its loads (tests).
	loaded func(ctx context.Context, conn *sql.Conn)
	// KeepPaused leaves the workloads the export paused (Quiesce) paused
	// in the target; by default they are resumed once the data is
	// verified.
	KeepPaused bool
	// Resume, when not "", is run for each workload the export paused
	// instead of the export's --resume (Quiesce.Resume): a statement in
	// the target's engine, or a corrected one.
	Resume string
	// ResumeRecorded runs the export's own --resume statement, as the
	// manifest records it, for each workload it paused. An export is
	// input: the import runs no SQL read from it unless told to, and
	// refuses (ErrResumeChoice) an export with paused workloads when
	// none of KeepPaused, Resume and ResumeRecorded says what to do.
	ResumeRecorded bool
	// Flags are the command-line arguments an import cut short needs when
	// it runs again (--mapping FILE, --keep-paused, --identity FILE...),
	// recorded in the ledger for ferry status to say the whole command.
	// They must hold no secret.
	Flags []string
	// KeyEnv names the environment variable the key came from
	// (FERRY_IMPORT_PASSPHRASE...), recorded with Flags for ferry status
	// to say that the run again needs it set.
	KeyEnv string
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
	WorkloadsResumed int `json:"workloads_resumed"`
	// WorkloadsLeftPaused are the workloads the export paused that the
	// import left paused (--keep-paused), as the export's select returned
	// them: to resume by hand.
	WorkloadsLeftPaused []json.RawMessage `json:"workloads_left_paused,omitempty"`
	// LeftOut are the exported tables the mapping leaves out.
	LeftOut []string `json:"left_out,omitempty"`
	// NotExported are the source's tables the export left out (--tables,
	// --exclude): the target's are left as its migrations made them.
	NotExported []string  `json:"not_exported,omitempty"`
	Problems    []Problem `json:"problems"`
	DurationMS  int64     `json:"duration_ms"`
}

// TableReport is one table of an import.
type TableReport struct {
	Name string `json:"name"`
	// From is the exported table it loads, when the mapping renamed it.
	From string `json:"from,omitempty"`
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
var ErrMapping = errors.New("the source's tables do not map onto the target")

// ErrNotEmpty is wrapped by Import's error when the target already has a
// schema or tables of its own.
var ErrNotEmpty = errors.New("target database is not empty")

// ErrFinalMigrations is wrapped when the data was loaded and verified and
// migrating it to the latest version failed: the import is finished by
// running it again (ferry up refuses while it is unfinished).
var ErrFinalMigrations = errors.New("the import's final migrations failed")

// ErrFirstMigrations is wrapped when migrating the target to the export's
// version failed, before anything was loaded: the import goes on from
// there when it runs again (ferry up refuses while it is unfinished).
var ErrFirstMigrations = errors.New("the import's migrations to the export's version failed")

// migrationsError is a failure of the import's first or final
// migrations: its message is the migration's, and it is both kind
// (ErrFirstMigrations or ErrFinalMigrations) and the cause.
type migrationsError struct{ kind, err error }

func (e migrationsError) Error() string   { return e.err.Error() }
func (e migrationsError) Unwrap() []error { return []error{e.kind, e.err} }

// Import loads export id of st into db, whose migrations mig knows:
//
//  1. the target, which must be empty, is migrated to the export's schema
//     version with these migrations (their checksums must match the ones
//     the source applied);
//  2. holding the migration lock, every table is emptied of what the
//     migrations may have seeded and loaded, parents before children, each
//     table (or circular group of tables) in one transaction with its
//     ledger row, every table's row count, row checksum and foreign keys
//     are verified against the manifest, and sequences are set past the
//     loaded maximum and checked;
//  3. the target is migrated to its latest version, so that the data goes
//     through the real migrations.
//
// A re-run after a crash goes on from the ledger (table <history>_import):
// loaded tables are not loaded again, and none is half loaded. The error
// wraps ErrMismatch when verification fails (the report lists the
// problems), ErrCorrupt for a damaged export, ErrNotEmpty for a target
// that has a schema already (or holds this import, failed: ErrMismatch
// too).
func Import(ctx context.Context, st *Store, id string, db *database.DB, mig *migrate.Migrator, opts ImportOptions) (*ImportReport, error) {
	start := opts.now()
	m, err := st.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	rep := &ImportReport{ExportID: id, Store: st.String(), Target: db.URL.String(), Engine: m.Source.Engine, TargetEngine: db.URL.Kind,
		ExportVersion: m.Source.SchemaVersion, Tables: []TableReport{}, Problems: []Problem{}, Steps: []string{}, NotExported: m.LeftOut}
	im := &importer{st: st, m: m, db: db, mig: mig, opts: opts, rep: rep, log: opts.logger(),
		ledger: db.Dialect.Table(ledgerTable(mig.Table())), text: newTextHash()}
	err = im.run(ctx)
	rep.DurationMS = opts.now().Sub(start).Milliseconds()
	if err != nil {
		im.finalVersion(ctx)
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (interrupted: run the same command again; it goes on from where it stopped)", err)
		}
		return rep, db.URL.Redact(fmt.Errorf("import of export %s into %s: %w", id, db.URL, err))
	}
	return rep, nil
}

// finalVersion sets the report's final version to the version the target
// is at after a failed run (the latest only when it got there).
func (im *importer) finalVersion(ctx context.Context) {
	if im.rep.Planned {
		return // the version the import would reach
	}
	if st, err := im.mig.Status(context.WithoutCancel(ctx)); err == nil {
		im.rep.FinalVersion = st.CurrentVersion
	}
}

type importer struct {
	st     *Store
	m      *Manifest
	db     *database.DB
	mig    *migrate.Migrator
	opts   ImportOptions
	rep    *ImportReport
	log    *slog.Logger
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
	// castsChecked: the conversions into an empty SQLite target were
	// checked before it was migrated (see scratchCasts).
	castsChecked bool
	// keyNeeded: a plan of an encrypted export made without its key says
	// what the import needs.
	keyNeeded error
	// progressMu keeps Progress calls apart (tables load in parallel).
	progressMu sync.Mutex
	// restores re-create the keys of large MySQL tables after their load,
	// while the other tables load and the verification reads.
	restores restorer
	// text hashes rows for the text sums of a MySQL target (nil: none,
	// as for an importer of the tests).
	text *textHash
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
		mappingErr = fmt.Errorf("%w at version %d (export at %d): %s; do what each says (what a mapping settles, in a mapping file: --mapping FILE) and run again", ErrMapping, status.CurrentVersion, m.Source.SchemaVersion, strings.Join(problems, "; "))
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
			if mp := im.opts.Mapping; mp != nil && mp.Tables[m.Tables[i].Name] == drop {
				im.rep.LeftOut = append(im.rep.LeftOut, m.Tables[i].Name)
			}
			continue // left out by the mapping, or refused
		}
		t := tm.mapped()
		im.tables = append(im.tables, t)
		notes[t.Name] = tm.notes
	}
	if !im.rep.Resumed {
		// Rows of their own in the target would be mixed with the
		// export's: refused, whatever made them.
		names := make([]string, len(im.tables))
		for i, t := range im.tables {
			names[i] = t.Name
		}
		table, n, err := im.firstRows(ctx, names)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			err := fmt.Errorf("%w: its table %s has %d rows at schema version %d, which the import would mix with the export's (rows a migration seeds count too); import into an empty database, and the export goes through the migrations", ErrNotEmpty, table, n, status.CurrentVersion)
			if !im.opts.Plan {
				return nil, err
			}
			// A plan lists every refusal at once, with the mapping.
			mappingErr = errors.Join(mappingErr, err)
			im.rep.Problems = append(im.rep.Problems, Problem{Table: table, What: "rows", Want: "0", Got: fmt.Sprint(n), Detail: "the target's table holds rows of its own, which the import would mix with the export's"})
		}
	}
	return notes, mappingErr
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

func (im *importer) run(ctx context.Context) error {
	m := im.m
	if err := im.checkMigrations(); err != nil {
		return err
	}
	// The export's --resume is SQL of the source's engine, placeholders
	// and all: it is not run on another engine at the end of a load.
	if q := m.Quiesce; q != nil && q.Count() > 0 && !im.opts.KeepPaused && im.opts.Resume == "" && im.cross() {
		return fmt.Errorf("%w: it paused %d workloads (%s), and its --resume statement is %s SQL, which a %s target is not given: import with --resume giving the statement for %[5]s, or with --keep-paused and resume them in the target by hand (the export's statement: %[6]s); nothing was changed", ErrResumeEngine, q.Count(), q.pausedList(), m.Source.Engine, im.db.URL.Kind, q.Resume)
	}
	if err := im.resumeChosen(); err != nil && !im.opts.Plan {
		return err
	}
	var planErr error // what the import would stop at, said after the plan
	// An encrypted export's key is opened first: a wrong key changes
	// nothing.
	if im.st != nil {
		key, err := im.st.exportKey(ctx, m, im.opts.Identities)
		if errors.Is(err, ErrKey) && im.opts.Plan {
			// A plan reads the manifest, which is not encrypted: the
			// key is the import's to open. A wrong one fails the plan,
			// once it is printed.
			if len(im.opts.Identities) > 0 {
				planErr = err
			}
			im.keyNeeded, err = err, nil
		}
		if err != nil {
			return err
		}
		im.key = key
		if key != nil {
			if err := m.unseal(key); err != nil {
				return err
			}
		}
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
	if im.st != nil {
		// A chunk not in the store is found before anything changes (a
		// damaged one only as it is read): every table's, since a
		// verification that compares converted or mapped rows reads a
		// loaded table's chunks again.
		missing, err := im.st.missingChunks(ctx, m)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			im.rep.Problems = append(im.rep.Problems, missing...)
			more := ""
			if len(missing) > 1 {
				more = fmt.Sprintf(" (and %d more chunks)", len(missing)-1)
			}
			again := "export again"
			if len(im.done) > 0 {
				again = "drop the database, create it empty, and import a new export" // this one's is begun
			}
			err := fmt.Errorf("%w: %s%s: nothing was changed; restore the export's objects from a copy of the store, or %s (`ferry export verify %s` checks every chunk)", ErrCorrupt, missing[0].Detail, more, again, ShellQuote(im.rep.Store+"/"+m.ID))
			if !im.opts.Plan {
				return err
			}
			planErr = errors.Join(planErr, err) // said after the plan
		}
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
		if len(status.Missing) > 0 && !im.opts.Plan {
			im.log.Warn("the target has applied migrations that the migrations here do not have: they are an older release's, and the target's schema is what the rows are mapped onto", "missing_version", status.Missing[0].Version, "missing", len(status.Missing))
		}
		if status.CurrentVersion > m.Source.SchemaVersion && !im.opts.Plan {
			im.log.Warn("the target is past the export's version: its migrations ran on empty tables, not on these rows (a backfill did nothing for them); import into an empty database for the rows to go through them", "export_version", m.Source.SchemaVersion, "target_version", status.CurrentVersion)
		}
		mappingErr = err // a plan shows the mapping, problems and all
	} else {
		for i := range m.Tables {
			im.tables = append(im.tables, &m.Tables[i])
		}
		if err := im.unusedMapping(); err != nil {
			if !im.opts.Plan {
				return err
			}
			mappingErr = err
			im.rep.Problems = append(im.rep.Problems, Problem{What: "mapping", Detail: err.Error()})
		}
	}
	if im.cross() && !im.mapped && !im.rep.Resumed && status.CurrentVersion < m.Source.SchemaVersion {
		problems, ok, err := im.scratchCasts(ctx)
		if errors.Is(err, ErrMapping) && im.opts.Plan {
			// A plan shows the mapping, this problem with the others.
			mappingErr = errors.Join(mappingErr, err)
			im.rep.Problems = append(im.rep.Problems, Problem{What: "mapping", Detail: err.Error()})
			err = nil
		}
		if err != nil {
			return err
		}
		im.castsChecked = ok
		if len(problems) > 0 {
			mappingErr = errors.Join(mappingErr, fmt.Errorf("%w: from %s into %s at version %d: %s; write these into a mapping file and run again with --mapping FILE: nothing was changed", ErrMapping, m.Source.Engine, im.db.URL.Kind, m.Source.SchemaVersion, strings.Join(problems, "; ")))
			if !im.opts.Plan {
				return mappingErr
			}
			for _, p := range problems {
				im.rep.Problems = append(im.rep.Problems, Problem{What: "mapping", Detail: p})
			}
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
			from := ""
			if te.src != nil && te.src.Name != t.Name {
				from = te.src.Name
			}
			im.rep.Tables = append(im.rep.Tables, TableReport{Name: t.Name, From: from, Rows: te.Rows, Columns: cols, Group: gi + 1, Skipped: skipped})
		}
	}
	var resumeErr error
	if _, verified := im.done[stepVerified]; im.opts.Plan && !verified && im.resumeChosen() == nil && status.CurrentVersion >= m.Source.SchemaVersion {
		// The target has the export's tables: the statement that resumes
		// the paused workloads is checked now, as the import checks it
		// before its load (a re-run whose load was verified has none).
		if resumeErr = im.prepareResume(ctx); resumeErr != nil {
			im.rep.Problems = append(im.rep.Problems, Problem{What: "resume", Detail: resumeErr.Error()})
			resumeErr = fmt.Errorf("%w: nothing was changed", resumeErr)
		}
	}
	im.plan(status, groups)
	if im.opts.Plan {
		im.rep.Planned = true
		// A plan that says the import would refuse fails as it would.
		return errors.Join(mappingErr, im.resumeChosen(), resumeErr, planErr)
	}
	// The check for other imports and this one's mark are one step, under
	// the migration lock: two imports of different exports started at once
	// each passed the check before the other's mark, and then each refused
	// for the other's, for good.
	err = im.mig.WithLock(ctx, func(context.Context, migrate.Querier) error {
		if err := im.createLedger(ctx); err != nil {
			return err
		}
		done, err := im.readLedger(ctx)
		if err != nil {
			return err
		}
		for step, n := range done {
			im.done[step] = n // another run of this import's
		}
		return im.markStart(ctx)
	})
	if err != nil {
		return err
	}
	if !im.mapped && status.CurrentVersion < m.Source.SchemaVersion {
		if _, err := im.mig.Up(ctx, migrate.UpOptions{To: m.Source.SchemaVersion}); err != nil {
			return fmt.Errorf("migrate the target to the export's version %d: %w", m.Source.SchemaVersion, migrationsError{ErrFirstMigrations, err})
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
		// The report says the version it is really at, not the latest
		// (finalVersion reads it; this, if it cannot).
		im.rep.FinalVersion = max(status.CurrentVersion, m.Source.SchemaVersion)
		return fmt.Errorf("the data is loaded and verified at version %d; migrating it to the latest version failed: %w", m.Source.SchemaVersion, migrationsError{ErrFinalMigrations, err})
	}
	if res != nil && res.To > 0 {
		im.rep.FinalVersion = res.To
	}
	if done, err := im.readLedger(ctx); err == nil {
		im.done = done // another run may have finished it meanwhile
	}
	return im.mark(ctx, nil, stepDone, m.Rows())
}

// unusedMapping refuses a mapping that an import into an empty target
// would not follow: the target gets the export's schema from its
// migrations, so no table or column is renamed or left out, and a cast is
// needed only across engines.
func (im *importer) unusedMapping() error {
	mp := im.opts.Mapping
	if mp == nil {
		return nil
	}
	var unused []string
	for _, k := range slices.Sorted(maps.Keys(mp.Tables)) {
		unused = append(unused, fmt.Sprintf("tables: {%s: %s}", k, mp.Tables[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(mp.Columns)) {
		unused = append(unused, fmt.Sprintf("columns: {%s: %s}", k, mp.Columns[k]))
	}
	if !im.cross() && len(mp.Casts) > 0 {
		unused = append(unused, fmt.Sprintf("casts: [%s]", strings.Join(mp.Casts, ", ")))
	}
	if len(unused) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the mapping says %s, which an import into an empty database does not do: the target's migrations give it the export's schema (version %d) and every table and column of the export is loaded as it is; a mapping's tables and columns apply to a target already at a newer version, and its casts to one of another engine. Leave tables out with %s --exclude, drop columns in a migration, or run without --mapping: nothing was changed", ErrMapping, strings.Join(unused, ", "), im.m.Source.SchemaVersion, im.excludeWith())
}

// reachesOut matches SQLite statements that touch files outside their
// database.
var reachesOut = regexp.MustCompile(`(?i)\b(attach|vacuum|load_extension)\b`)

// scratchCasts learns how each column of the export converts into an
// empty SQLite target before the target is touched: it runs the target's
// migrations up to the export's version on a scratch in-memory database
// and maps the export onto what they make, returning the lossy
// conversions the mapping does not allow. ok is false when it could not
// tell: another engine (no scratch database of it is to be had), Go
// migrations (which may do more than change their database), SQL that
// writes files (ATTACH, VACUUM INTO), or a migration that fails there
// (the import reports it on the target).
func (im *importer) scratchCasts(ctx context.Context) (problems []string, ok bool, err error) {
	if im.db.URL.Kind != database.SQLite {
		return nil, false, nil
	}
	scratch, err := database.Open(ctx, "sqlite::memory:", database.Options{})
	if err != nil {
		return nil, false, err
	}
	defer scratch.Close()
	smig, err := im.mig.Scratch(scratch.DB, scratch.Dialect)
	if errors.Is(err, migrate.ErrScratchGo) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	for _, mg := range smig.Migrations() {
		if mg.Version > im.m.Source.SchemaVersion || mg.Up == nil {
			continue
		}
		for _, st := range mg.Up.Statements {
			if reachesOut.MatchString(st.SQL) {
				// Run twice, it would write its files twice (VACUUM INTO
				// refuses a file that is there).
				im.log.Info("a migration writes outside its database; it is not run on a scratch database, and conversions are checked once the target is migrated", "version", mg.Version, "file", mg.Source)
				return nil, false, nil
			}
		}
	}
	if _, err := smig.Up(ctx, migrate.UpOptions{To: im.m.Source.SchemaVersion}); err != nil {
		im.log.Info("the target's migrations failed on a scratch database; conversions are checked once the target is migrated", "error", err)
		return nil, false, nil
	}
	target, err := catalog(ctx, scratch, database.SQLite, ownTables(smig.Table()))
	if err != nil {
		return nil, false, err
	}
	if err := lacking(im.m, target, database.SQLite); err != nil {
		return nil, true, fmt.Errorf("%w, then run again: nothing was changed", err)
	}
	_, problems = mapTables(im.m, target, database.SQLite, im.opts.Mapping)
	return problems, true, nil
}

// plan describes the steps in words.
func (im *importer) plan(status *migrate.Status, groups [][]*Table) {
	m := im.m
	add := func(f string, a ...any) { im.rep.Steps = append(im.rep.Steps, fmt.Sprintf(f, a...)) }
	if im.keyNeeded != nil {
		add("open the export's key (this plan did not: %v)", im.keyNeeded)
	}
	switch {
	case hasStep(im.done, stepRefused):
		add("go on after an earlier run that stopped at a value the target cannot take: it stops there again unless the value or the target's column was changed since")
	case hasStep(im.done, stepDamaged):
		add("go on after an earlier run that stopped at a chunk of the export that is missing or damaged: it stops there again unless the export's objects were restored since")
	}
	if status.CurrentVersion < m.Source.SchemaVersion {
		whose := "the export's"
		if im.direct != nil {
			whose = "the source's"
		}
		add("migrate the target from version %d to %s version %d", status.CurrentVersion, whose, m.Source.SchemaVersion)
	}
	if w := m.Window; w != nil {
		what := "the export holds"
		if im.direct != nil {
			what = "the copy takes"
		}
		add("%s only recent rows: since %s in %d tables with a time column (--since), closed under foreign keys", what, w.Cutoff.Format(time.RFC3339), len(w.Columns))
	}
	if im.cross() {
		add("convert every value from %s's types to the target's (%s): exact conversions as they are, checked ones value by value (a value that does not fit stops the load), lossy ones only where the mapping allows a cast", m.Source.Engine, im.db.URL.Kind)
		switch {
		case im.mapped:
		case im.castsChecked:
			add("  (the conversions were checked against the types the target's migrations make at version %d, run on a scratch in-memory database)", m.Source.SchemaVersion)
		default:
			add("check every column's conversion once the target is migrated to version %d: this plan cannot see the target's types before its migrations make them, and a lossy conversion the mapping does not allow (a decimal into SQLite's REAL) stops the import there, before any row is loaded", m.Source.SchemaVersion)
		}
	}
	if _, ok := im.done[stepVerified]; !ok {
		switch _, ok := im.done[stepEmptied]; {
		case ok:
			add("take the migration lock (the %d tables were emptied by the earlier run)", len(im.tables))
		case im.mapped:
			empty := "which are empty"
			if slices.ContainsFunc(im.rep.Problems, func(p Problem) bool { return p.What == "rows" }) {
				empty = "which must be empty and are not (see below)"
			}
			add("take the migration lock; load the %d tables of the target's schema at version %d, %s", len(im.tables), status.CurrentVersion, empty)
			if len(status.Missing) > 0 {
				add("  (the target has %d applied migrations the migrations here do not have, from version %d: they are an older release's)", len(status.Missing), status.Missing[0].Version)
			}
			if status.CurrentVersion > m.Source.SchemaVersion {
				which := fmt.Sprintf("the migrations of versions %d to %d", m.Source.SchemaVersion+1, status.CurrentVersion)
				if m.Source.SchemaVersion+1 == status.CurrentVersion {
					which = fmt.Sprintf("the migration of version %d", status.CurrentVersion)
				}
				add("  (%s ran on the target's empty tables, not on these rows: a backfill or data change there did nothing for them; import into an empty database for the rows to go through them)", which)
			}
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
		add("verify row counts, row checksums and foreign keys; set sequences past the loaded maximum and check them")
	}
	if at := max(status.CurrentVersion, m.Source.SchemaVersion); status.LatestVersion > at {
		add("migrate the target from version %d to the latest, %d", at, status.LatestVersion)
	}
	if q := m.Quiesce; q != nil && q.Count() > 0 {
		switch {
		case im.opts.KeepPaused:
			add("leave the %d workloads the export paused paused (--keep-paused)", q.Count())
			return
		case im.opts.Resume != "":
			add("resume the %d workloads the export paused, in the target, with --resume: %s", q.Count(), im.opts.Resume)
		case im.opts.ResumeRecorded || im.direct != nil:
			add("resume the %d workloads the export paused, in the target, with the export's --resume: %s", q.Count(), q.Resume)
		default:
			add("refuse to start: %v", im.resumeChosen())
			return
		}
		if _, verified := im.done[stepVerified]; !im.opts.Plan || verified {
			return // the notes below are the plan's, on its check of the statement
		}
		switch {
		case status.CurrentVersion < m.Source.SchemaVersion:
			add("  (the statement is checked on the target once it is at version %d, before any row is loaded: this plan cannot, before the migrations make the tables)", m.Source.SchemaVersion)
		case slices.ContainsFunc(im.rep.Problems, func(p Problem) bool { return p.What == "resume" }):
			add("  (the statement does not prepare on the target: see below)")
		default:
			add("  (the statement prepares on the target)")
		}
	}
}

// prepareResume checks that the statement that resumes the workloads the
// export paused, when the import is to run one, prepares on the target:
// an import checks it before it loads anything, not after the load.
func (im *importer) prepareResume(ctx context.Context) error {
	q := im.m.Quiesce
	if q == nil || q.Count() == 0 || im.opts.KeepPaused {
		return nil // Count: a plan may not have the key that opens the list
	}
	stmt, err := im.db.PrepareContext(ctx, cmp.Or(im.opts.Resume, q.Resume))
	if err != nil {
		return fmt.Errorf("the statement that resumes the workloads the export paused does not prepare on the target: %w; give one that does with --resume SQL, or import with --keep-paused and resume them by hand", err)
	}
	stmt.Close()
	return nil
}

// excludeWith is the command that leaves tables out of this import's
// rows: the export's, or the copy's own flag.
func (im *importer) excludeWith() string {
	if im.direct != nil {
		return "ferry copy"
	}
	return "ferry export"
}

// ErrResumeEngine is wrapped by the error of an import into another
// engine of an export that paused workloads, not given a --resume
// statement of its own or --keep-paused.
var ErrResumeEngine = errors.New("the export's --resume statement is another engine's SQL")

// ErrResumeChoice is wrapped by the error of an import of an export that
// paused workloads, or of ferry export resume, when it is not told what
// to do with them.
var ErrResumeChoice = errors.New("not told how to resume the workloads the export paused")

// resumeChosen says what to do when the export paused workloads and the
// import was not told whether to run the statement the export records:
// SQL read from an export, which anyone who can write to the store can
// change, runs only when the operator says so. A copy's statement is the
// operator's own, from its command line.
func (im *importer) resumeChosen() error {
	q := im.m.Quiesce
	if q == nil || q.Count() == 0 || im.opts.KeepPaused || im.opts.Resume != "" || im.opts.ResumeRecorded || im.direct != nil {
		return nil
	}
	return fmt.Errorf("%w: it paused %d workloads (%s) and records the statement that resumes them: %s; ferry runs no SQL read from an export unless told to: import with --resume-recorded to run that statement in the target, --resume SQL to run one of your own, or --keep-paused to leave them paused; nothing was changed",
		ErrResumeChoice, q.Count(), q.pausedList(), q.Resume)
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
		// Only a target older than the export comes here (see Import).
		// Migrating one that holds rows would not make it importable:
		// its rows would still be there, changed by the migrations.
		tables, err := strsOwn(ctx, im.db, im.mig.Table())
		if err != nil {
			return err
		}
		table, n, err := im.firstRows(ctx, tables)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: it is at schema version %d, older than the export's %d, and its table %s has %d rows: an import loads into an empty database, or one at the export's version or newer whose tables are empty; import into a new, empty database (migrating this one would not empty it)", ErrNotEmpty, status.CurrentVersion, im.m.Source.SchemaVersion, table, n)
		}
		return fmt.Errorf("%w: it is at schema version %d, older than the export's %d; an import loads into an empty database, or one at the export's version or newer whose tables are empty: migrate it first (ferry up --to %d, or to the latest), or import into an empty database", ErrNotEmpty, status.CurrentVersion, im.m.Source.SchemaVersion, im.m.Source.SchemaVersion)
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

// firstRows returns the first of tables that holds rows, and how many.
func (im *importer) firstRows(ctx context.Context, tables []string) (string, int64, error) {
	for _, t := range tables {
		var n int64
		if err := im.db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(im.db.URL.Kind, t)).Scan(&n); err != nil {
			return "", 0, err
		}
		if n > 0 {
			return t, n, nil
		}
	}
	return "", 0, nil
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
