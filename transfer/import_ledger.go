package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferrydb/ferry/database"
)

// ledger steps.
const (
	stepStarted  = "started"
	stepEmptied  = "emptied"
	stepVerified = "verified"
	// stepMismatch: the verification found the loaded rows differ from
	// the export's; running the import again cannot change rows already
	// loaded.
	stepMismatch = "mismatch"
	// stepDamaged: the load stopped at a chunk missing from the store or
	// not as the manifest says; a run after the export's objects are
	// restored goes on (and deletes the mark).
	stepDamaged = "damaged"
	// stepRefused: the load stopped at a value the target cannot take
	// (ErrValue), which a run again meets too unless the target's column
	// changed (and deletes the mark once its load begins).
	stepRefused = "refused"
	stepDone    = "done"
	stepTable   = "table:"
	// stepFrom + where the export is (--from): ferry before it ignores
	// the row.
	stepFrom = "from:"
	// stepFlags + the flags the same import needs when it runs again
	// (ImportOptions.Flags).
	stepFlags = "flags:"
	// stepKeyEnv + the variable the key came from (ImportOptions.KeyEnv).
	stepKeyEnv = "keyenv:"
	// stepCopy marks the run of a ferry copy, which cannot be run again
	// (its source has moved on): what to do about one cut short differs.
	stepCopy = "copy"
)

func ledgerTable(history string) string { return history + "_import" }

// ErrOtherImport is wrapped by the error of an import (or copy) into a
// database that holds another import that has not finished.
var ErrOtherImport = errors.New("another import into the database has not finished")

const stepMapped = "mapped"

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
	others := map[string]*Unfinished{} // other imports, as status sees them
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
			continue
		}
		u := others[id]
		if u == nil {
			u = &Unfinished{ExportID: id}
			others[id] = u
		}
		u.note(step)
		otherDone[id] = otherDone[id] || step == stepDone
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	if _, ok := done[stepMismatch]; ok {
		// (A copy has an id of its own each run: an earlier one is one
		// of the others below.)
		return nil, fmt.Errorf("%w: an earlier run of this import found that the rows it loaded differ from the export's (%w), and running it again cannot change rows already loaded: drop this database, create it empty, and import again (`ferry export verify` checks the export; if it is whole, %s)", ErrNotEmpty, ErrMismatch, targetCauses)
	}
	for id, u := range others {
		switch {
		case otherDone[id]:
		case u.Stuck() || u.Copy:
			return nil, fmt.Errorf("%w: %s into this database cannot be finished: %s; one import at a time into a database", ErrOtherImport, u.What(), u.Finish())
		default:
			return nil, fmt.Errorf("%w: %s into this database has not finished (it is running, or it was cut short): %s; one import at a time into a database", ErrOtherImport, u.What(), u.IfCutShort())
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
	// The schema the migrations go into (PostgreSQL's ?schema=) may not
	// be there yet: `ferry up` would create it first too.
	if err := im.db.Dialect.Prepare(ctx, im.db); err != nil {
		return err
	}
	// A step names a table: on MySQL compared as bytes, not in the
	// database's collation, which would take table Acc's step for acc's
	// (and the re-run of a cut import would load acc again).
	step := "VARCHAR(300)"
	if im.db.URL.Kind == database.MySQL {
		step += " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	}
	_, err := im.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+im.ledger+` (
		export_id VARCHAR(64) NOT NULL,
		step `+step+` NOT NULL,
		row_count BIGINT NOT NULL,
		done_at VARCHAR(40) NOT NULL,
		PRIMARY KEY (export_id, step))`)
	if err != nil {
		// Two imports started at once: PostgreSQL's CREATE TABLE IF NOT
		// EXISTS fails on its catalog's unique index in the one that
		// waited for the other to create it.
		if exists, terr := tableExists(ctx, im.db, ledgerTable(im.mig.Table())); terr == nil && exists {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("create the import ledger %s: %w", im.ledger, err)
	}
	if im.db.URL.Kind == database.MySQL {
		// A ledger an older ferry made.
		var collation string
		err := im.db.QueryRowContext(ctx, `SELECT COALESCE(collation_name, '') FROM information_schema.columns
			WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'step'`, ledgerTable(im.mig.Table())).Scan(&collation)
		if err == nil && collation != "utf8mb4_bin" {
			if _, err := im.db.ExecContext(ctx, `ALTER TABLE `+im.ledger+` MODIFY step `+step+` NOT NULL`); err != nil {
				return fmt.Errorf("compare the import ledger's steps as bytes: %w", err)
			}
		}
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
	// Where the export is, for status to say the command that finishes
	// an import cut short (once; the step column holds 300 characters).
	from := stepFrom + im.rep.Store + "/" + im.m.ID
	recorded := false
	for step := range im.done {
		recorded = recorded || strings.HasPrefix(step, stepFrom)
	}
	if im.direct == nil && !recorded && len(from) <= 300 {
		if err := im.mark(ctx, tx, from, 0); err != nil {
			return err
		}
	}
	if im.direct == nil && len(im.opts.Flags) > 0 {
		if err := im.recordFlags(ctx, tx, im.opts.Flags); err != nil {
			return err
		}
	}
	if im.direct == nil && im.opts.KeyEnv != "" && im.m.Encryption != nil {
		if err := im.mark(ctx, tx, stepKeyEnv+im.opts.KeyEnv, 0); err != nil {
			return err
		}
	}
	if im.direct != nil {
		if err := im.mark(ctx, tx, stepCopy, 0); err != nil {
			return err
		}
	}
	if im.mapped {
		if err := im.mark(ctx, tx, stepMapped, 0); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// recordFlags records flags as those the import needs when it runs again,
// in place of an earlier run's, in q (a transaction), or on its own when
// q is nil.
func (im *importer) recordFlags(ctx context.Context, q querier, flags []string) error {
	if q == nil {
		q = im.db
	}
	if _, err := q.ExecContext(ctx, "DELETE FROM "+im.ledger+" WHERE export_id = "+im.db.Dialect.Placeholder(1)+" AND step LIKE 'flags:%'", im.m.ID); err != nil {
		return err
	}
	for step := range im.done {
		if strings.HasPrefix(step, stepFlags) {
			delete(im.done, step) // deleted: mark records these, the same or not
		}
	}
	return im.mark(ctx, q, stepFlags+recordedFlags(flags), 0)
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

func hasStep(done map[string]int64, step string) bool {
	_, ok := done[step]
	return ok
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

// recordedFlags is flags as the ledger's step holds them (300
// characters): shell-quoted, each argument too long to fit (a long
// --resume statement) replaced by "...", for the operator to give again.
func recordedFlags(flags []string) string {
	out := slices.Clone(flags)
	for len(stepFlags+shellJoin(out)) > 300 {
		longest := 0
		for i := range out {
			if len(out[i]) > len(out[longest]) {
				longest = i
			}
		}
		if out[longest] == "..." {
			return "..."
		}
		out[longest] = "..."
	}
	return shellJoin(out)
}
