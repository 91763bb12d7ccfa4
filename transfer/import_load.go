package transfer

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/ferrydb/ferry/database"
)

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
func (t *TableExport) convert(row []value, secret bool) error {
	for i, f := range t.conv {
		if f == nil {
			continue
		}
		v, err := f(row[i])
		if err != nil && secret {
			// The reason names the value, which the export encrypted.
			return fmt.Errorf("column %s: a value does not fit the column's type, %s (not shown: the table is encrypted in the export): %w", t.Columns[i].Name, t.Columns[i].Type, errValue)
		}
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

// load runs under the migration lock: empty, load, sequences, verify.
func (im *importer) load(ctx context.Context, groups [][]*Table) error {
	m := im.m
	// Another run of this import may have held the lock first: what it
	// did is in the ledger.
	done, err := im.readLedger(ctx)
	if err != nil {
		return err
	}
	var meanwhile []string // tables the plan lists, loaded by the other run
	for step := range done {
		if table, ok := strings.CutPrefix(step, stepTable); ok && !hasStep(im.done, step) {
			meanwhile = append(meanwhile, table)
		}
	}
	im.done = done
	// Why an earlier run stopped (a damaged chunk, a value the target
	// cannot take) no longer holds once this one goes on: its load says
	// so again if it still does.
	for _, step := range []string{stepDamaged, stepRefused} {
		if !hasStep(done, step) {
			continue
		}
		if _, err := im.db.ExecContext(ctx, "DELETE FROM "+im.ledger+" WHERE export_id = "+im.db.Dialect.Placeholder(1)+" AND step = "+im.db.Dialect.Placeholder(2), m.ID, step); err != nil {
			return fmt.Errorf("update the import ledger: %w", err)
		}
		delete(done, step)
	}
	if len(meanwhile) > 0 {
		slices.Sort(meanwhile)
		im.rep.Steps = append(im.rep.Steps, "not loaded by this run: "+strings.Join(meanwhile, ", ")+" (another run of this import loaded them while this one waited for the migration lock)")
	}
	if _, ok := done[stepVerified]; ok {
		im.log.Info("another run of this import loaded and verified it meanwhile", "export", m.ID)
		// The plan made before the lock is not what this run did.
		im.rep.Steps = []string{"nothing to load: another run of this import loaded and verified it while this one waited for the migration lock"}
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
		if err := lacking(m, target, im.db.URL.Kind); err != nil {
			if im.direct != nil {
				// As below: a copy leaves nothing of itself in the ledger.
				if _, derr := im.db.ExecContext(ctx, "DELETE FROM "+im.ledger+" WHERE export_id = "+im.db.Dialect.Placeholder(1), m.ID); derr != nil {
					return derr
				}
			}
			// Fixed migrations would not match those the target applied.
			return fmt.Errorf("%w; nothing was loaded, but the target was migrated to version %d with them: drop it, create it empty, fix the migrations, and import (or copy) again", err, m.Source.SchemaVersion)
		}
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
				return fmt.Errorf("%w: the mapping renames or leaves out table %s, which an empty target at the export's version has: leave tables out with %s --exclude instead", ErrMapping, te.Name, im.excludeWith())
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
		// The verification checks the foreign keys the target declares
		// (MySQL and SQLite load with their checks off), not the list
		// the export carries: that is input, and a key left out of it
		// would let rows without a parent through.
		te.ForeignKeys = tt.ForeignKeys
	}
	// The statement that resumes the paused workloads at the end must
	// run here: checked before anything is loaded, not after.
	if err := im.prepareResume(ctx); err != nil {
		return fmt.Errorf("%w: nothing was loaded", err)
	}
	// One loader per job, each on a connection of its own (SQLite has one
	// writer: one loader).
	jobs := max(im.opts.Jobs, 1)
	if im.db.URL.Kind == database.SQLite || im.direct != nil {
		jobs = 1 // a copy reads its source through one connection
	}
	// No more loaders than groups to load: each holds a connection.
	left := 0
	for _, g := range groups {
		if !hasStep(im.done, stepTable+g[0].Name) {
			left++
		}
	}
	var loaders []loader
	var conns []*sql.Conn
	for range max(min(jobs, left), 1) {
		conn, err := im.db.Conn(ctx)
		if err != nil {
			return tooManyConns(err, jobs)
		}
		defer discard(conn) // the loaders change its session's settings
		loaders, conns = append(loaders, newLoader(im.db.URL.Kind, conn, im)), append(conns, conn)
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
	// Nothing of the load outlives it: a load that fails stops the key
	// re-creations still running (a re-run puts the keys back).
	rctx, stopRestores := context.WithCancel(ctx)
	im.restores.ctx = rctx
	defer func() {
		stopRestores()
		_ = im.restores.wait()
	}()
	if err := im.loadGroups(ctx, groups, loaders, byName); err != nil {
		return im.stopped(ctx, err)
	}
	// The verification opens --jobs connections of its own: only the
	// first loader's stays (for the checks of foreign keys and sequences).
	for _, c := range conns[1:] {
		discard(c)
	}
	im.log.Info("tables loaded", "export", m.ID, "tables", len(im.tables), "jobs", jobs, "duration", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	problems, err := im.verify(ctx, ld)
	if err != nil {
		return im.stopped(ctx, err)
	}
	im.log.Info("tables verified", "export", m.ID, "problems", len(problems), "duration", time.Since(began).Round(time.Millisecond))
	im.rep.Problems = append(im.rep.Problems, problems...)
	// The keys are back before anything is said of the data, so that a
	// target left for a look after a mismatch has them.
	if err := im.restores.wait(); err != nil {
		return err
	}
	if err := mismatch(problems); err != nil {
		// For ferry status, and for a re-run to say it cannot help.
		if merr := im.mark(ctx, nil, stepMismatch, int64(len(problems))); merr != nil {
			return fmt.Errorf("%w (and %v)", err, merr)
		}
		u := Unfinished{ExportID: m.ID, Copy: im.direct != nil, Mismatch: true}
		return fmt.Errorf("%w; %s", err, u.Finish())
	}
	// After the keys are back: MySQL's ALTER TABLE ... AUTO_INCREMENT
	// would wait for their ALTER, and the verification with it.
	if err := ld.schemaSequences(ctx, m.Sequences); err != nil {
		return fmt.Errorf("set sequences: %w", err)
	}
	if err := ld.sequences(ctx, im.tableValues()); err != nil {
		return fmt.Errorf("set sequences: %w", err)
	}
	behind, err := checkSequences(ctx, im.db, im.tableValues(), m.Sequences, ownTables(im.mig.Table()))
	if err != nil {
		return fmt.Errorf("verify sequences: %w", err)
	}
	im.rep.Problems = append(im.rep.Problems, behind...)
	if err := mismatch(behind); err != nil {
		return err
	}
	// The verified mark and the workloads' resumption commit together.
	tx, err := im.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if q := m.Quiesce; q != nil && !im.opts.KeepPaused {
		statement := cmp.Or(im.opts.Resume, q.Resume)
		if err := q.runIn(ctx, tx, statement); err != nil {
			if im.direct == nil && len(im.opts.Flags) > 0 {
				// What status says to run again: not this statement.
				tx.Rollback()
				var flags []string
				for i := 0; i < len(im.opts.Flags); i++ {
					switch im.opts.Flags[i] {
					case "--resume-recorded":
					case "--resume":
						i++ // and its statement
					default:
						flags = append(flags, im.opts.Flags[i])
					}
				}
				if rerr := im.recordFlags(context.WithoutCancel(ctx), nil, append(flags, "--resume", "SQL")); rerr != nil {
					im.log.Warn("could not record the flags to run the import again with", "error", rerr)
				}
			}
			return fmt.Errorf("resume the workloads the export paused: %w (import again with --resume giving a corrected statement, or with --keep-paused to leave them paused and resume them by hand)", err)
		}
		im.rep.WorkloadsResumed = len(q.Paused)
		q.warnIdle(im.log, "the statement resuming the workloads")
	} else if q != nil {
		for _, p := range q.Paused {
			im.rep.WorkloadsLeftPaused = append(im.rep.WorkloadsLeftPaused, json.RawMessage(compactJSON(p)))
		}
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
	// A group whose load drops its foreign keys (a large table's) locks
	// the tables they reference exclusively until it commits (PostgreSQL
	// drops a foreign key's triggers on the referenced table too), while a
	// group loading with its foreign keys on reads those tables' keys.
	// So a group that drops foreign keys to P never runs beside another
	// group referencing P: it would wait all of the other's load, or
	// deadlock with it.
	locks := &loadLocks{parents: make([][]string, len(groups)), drops: make([]bool, len(groups)),
		exclusive: map[string]bool{}, shared: map[string]int{}}
	parents, drops := locks.parents, locks.drops
	for gi, g := range groups {
		seen := map[int]bool{}
		for _, t := range g {
			te := im.table(t.Name)
			for _, fk := range te.ForeignKeys {
				pg, ok := groupOf[fk.RefTable]
				if ok && pg == gi {
					continue
				}
				if !slices.Contains(parents[gi], fk.RefTable) {
					parents[gi] = append(parents[gi], fk.RefTable)
				}
				drops[gi] = drops[gi] || im.bulk(te)
				if !ok || seen[pg] || finished[pg] {
					continue
				}
				seen[pg] = true
				waits[gi]++
				dependents[pg] = append(dependents[pg], gi)
			}
		}
	}
	canStart, hold := locks.canStart, locks.hold
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
		for firstErr == nil && len(idle) > 0 {
			i := slices.IndexFunc(ready, canStart)
			if i < 0 {
				break // what is ready waits for a running group's parents
			}
			gi, ld := ready[i], idle[len(idle)-1]
			ready, idle = slices.Delete(ready, i, i+1), idle[:len(idle)-1]
			hold(gi, 1)
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
		hold(r.gi, -1)
		if r.err != nil {
			if firstErr == nil {
				firstErr = im.keyCollation(r.err)
				if ctx.Err() == nil { // not interrupted: something to name
					im.rep.Problems = append(im.rep.Problems, loadProblem(groups[r.gi], firstErr))
				}
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

// feed calls fn with every row of table t: from the export's chunks,
// checked against the manifest, or, for a copy, straight from the
// source's snapshot. A row too long to hold goes to stream instead, when
// it is not nil and the row's values load as they are; stream reads
// every value of the row (in order, each value's reader before the next).
func (im *importer) feed(ctx context.Context, t *TableExport, fn func([]value) error, stream func(*streamRow) error) error {
	src := t // the exported table whose rows t loads
	var proj []value
	if t.src != nil {
		src, proj = t.src, make([]value, len(t.Columns))
	}
	if proj != nil || t.conv != nil || im.direct != nil {
		stream = nil
	}
	var n, size int64
	var canon, text []byte
	t.fedSum, t.fed = rowSum{}, false
	// The text sum (see textHash) of rows loaded into MySQL as they are
	// exported, and their lines' row checksum, the manifest's if all is
	// well.
	textOK := im.text != nil && im.db.URL.Kind == database.MySQL && !im.cross() && proj == nil && t.conv == nil &&
		!slices.ContainsFunc(t.Columns, func(c Column) bool { return mysqlFloat(c.Type) })
	var lines rowSum
	var sl *slicer
	if textOK {
		sl = newSlicer(database.MySQL, &t.Table, im.opts.largeRow)
	}
	t.textSum, t.textFed = rowSum{}, false
	secret := im.m.Encryption.encrypts(src.Name)
	counted := func(bytes int64) {
		n++
		size += bytes
		if n%50000 == 0 {
			im.progress(Progress{Op: "load", Table: t.Name, Rows: n, Bytes: size, Total: t.Rows})
		}
	}
	each := func(line []byte, sr *streamRow, where string, failed func(error) error) error {
		if sr != nil {
			textOK = false // a row too long to hold
			err := stream(sr)
			if err == nil {
				err = sr.finish()
			}
			if se := (*errStream)(nil); errors.As(err, &se) {
				return failed(fmt.Errorf("%w (the table's row %d)", se.err, n+1))
			}
			if err != nil {
				return err
			}
			counted(sr.n)
			return nil
		}
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
		if textOK && sl != nil && sl.mayFlag(row) {
			textOK = false // the verification may read the row in slices
		}
		if textOK {
			if text, textOK = appendRowText(text[:0], row); textOK {
				im.text.add(&t.textSum, text)
				if im.direct == nil {
					lines.add(line)
				}
			}
			if cap(text) > 4<<20 {
				text = nil // after a large value
			}
		}
		if t.conv != nil {
			// The exported values, in the canonical forms of the target's
			// types: the verification compares the loaded rows with them,
			// so a conversion that changed a value is caught too.
			canon = t.canonLine(canon[:0], row)
			t.fedSum.add(canon[:len(canon)-1])
			if err := t.convert(row, secret); err != nil {
				return failed(fmt.Errorf("%s: the table's row %d%s: %w", where, n+1, keyOf(t, row, secret), err))
			}
		}
		if err := fn(row); err != nil {
			return err
		}
		counted(int64(len(line)) + 1)
		return nil
	}
	var err error
	if im.direct != nil {
		err = im.direct.rows(ctx, src, func(line []byte) error {
			return each(line, nil, "from the source", func(err error) error { return err })
		})
		t.Rows = src.Rows
	} else {
		// Where the verification compares the loaded rows with these
		// rows rather than with the manifest, these must be the
		// manifest's rows.
		err = im.readLines(ctx, src, stream != nil, proj != nil || t.conv != nil, each)
	}
	if err != nil {
		return err
	}
	t.fed = t.conv != nil
	// A copy's row checksum is its rows', summed as they were read.
	t.textFed = textOK && (im.direct != nil || lines.String() == src.RowChecksum)
	im.progress(Progress{Op: "load", Table: t.Name, Rows: n, Bytes: size, Total: t.Rows, Done: true})
	return nil
}

// keyOf is row's primary key for a message, " (id 17)", to find the
// row by; "" for a table without one, or whose values the export
// encrypts.
func keyOf(t *TableExport, row []value, secret bool) string {
	if secret || len(t.PrimaryKey) == 0 {
		return ""
	}
	var parts []string
	for _, k := range t.PrimaryKey {
		i := slices.IndexFunc(t.Columns, func(c Column) bool { return c.Name == k })
		if i < 0 || i >= len(row) {
			return ""
		}
		v := show(row[i])
		if row[i].kind == kInt {
			v = row[i].s
		}
		parts = append(parts, k+" "+v)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// readLines calls fn with every row line of exported table t's chunks,
// checked against the manifest (each chunk's sha256 and row count, and,
// with sum, the table's row checksum), decrypted when they are encrypted;
// with stream, a row too long to hold comes as a streamRow instead of a
// line.
func (im *importer) readLines(ctx context.Context, t *TableExport, stream, sum bool, fn func(line []byte, sr *streamRow, where string, failed func(error) error) error) error {
	ncol := 0
	if stream {
		ncol = len(t.Columns)
	}
	var rows rowSum
	for _, c := range t.Chunks {
		var n int64
		more := func() error {
			return fmt.Errorf("%w: %s/%s holds more than the %d rows the manifest says: the export was changed after it was taken", ErrCorrupt, im.m.ID, c.Name, c.Rows)
		}
		var key age.Identity
		if im.m.Encryption.encrypts(t.Name) {
			key = im.key
		}
		r, err := im.st.openChunk(ctx, im.m.ID, c, key)
		if err != nil {
			return &chunkError{t.Name, c.Name, err}
		}
		if im.opts.largeRow > 0 {
			r.bufferSize(int(im.opts.largeRow)) // tests
		}
		r.maxRow = im.opts.maxWholeRow
		for {
			line, sr, err := r.next(ncol)
			if errors.Is(err, io.EOF) {
				break
			}
			if n++; err == nil && n > c.Rows {
				err = more()
			}
			if err == nil && sum {
				if sr != nil {
					err = errors.New("transfer: a streamed row where the row checksum is summed") // feed streams no row then
				} else {
					rows.add(line)
				}
			}
			if err == nil {
				err = fn(line, sr, im.m.ID+"/"+c.Name, r.failed)
			}
			if err != nil {
				r.close()
				return &chunkError{t.Name, c.Name, err}
			}
		}
		r.close()
		if n != c.Rows {
			return &chunkError{t.Name, c.Name, fmt.Errorf("%w: %s/%s holds %d rows, the manifest says %d: the export was changed after it was taken", ErrCorrupt, im.m.ID, c.Name, n, c.Rows)}
		}
	}
	if got := rows.String(); sum && got != t.RowChecksum {
		return fmt.Errorf("%w: the rows of table %s's chunks add up to row checksum %s, the manifest says %s: the export was changed after it was taken (`ferry export verify` names the chunk)", ErrCorrupt, t.Name, got, t.RowChecksum)
	}
	return nil
}

// stopped records in the ledger why the load or the verification stopped
// with err, when no run can go past it as things are, for ferry status and
// the release gate: a value the target cannot take (every run meets it),
// or a chunk missing or damaged (a run helps once the export is
// restored). It returns err, with what to do for a damaged export.
func (im *importer) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err // interrupted: a run again goes on
	}
	switch {
	case errors.Is(err, ErrValue):
		if merr := im.mark(ctx, nil, stepRefused, 0); merr != nil {
			im.log.Warn("could not record in the import ledger that the load met a value the target cannot take", "error", merr)
		}
		if im.mapped {
			// A fresh import would run the same migrations again.
			return fmt.Errorf("%w (the target had its schema, at version %d, before this import: where one of its own migrations made the column narrower, no migration after it helps a fresh import, which runs that one too; change the value at the source and export again)", err, im.rep.StartVersion)
		}
	case errors.Is(err, ErrCorrupt) && im.direct == nil:
		if merr := im.mark(ctx, nil, stepDamaged, 0); merr != nil {
			im.log.Warn("could not record in the import ledger that the export is damaged", "error", merr)
		}
		if !slices.ContainsFunc(im.rep.Problems, func(p Problem) bool { return p.What == "chunk" }) {
			im.rep.Problems = append(im.rep.Problems, loadProblem(nil, err)) // met by the verification
		}
		return fmt.Errorf("%w; the tables loaded before it stay loaded: %s", err, damagedAdvice(im.rep.Store+"/"+im.m.ID, "the same import again"))
	}
	return err
}

// A chunkError is the error met in a chunk of an exported table: the
// table and chunk go into the report's problems (loadProblem) as well as
// into the message, which the wrapped error's is.
type chunkError struct {
	table, chunk string
	err          error
}

func (e *chunkError) Error() string { return e.err.Error() }
func (e *chunkError) Unwrap() error { return e.err }

// loadProblem is the report's problem for err, which stopped the load of
// group: named by table and chunk where they are known, so that a script
// reading --json needs no error text to find them. What is "chunk" for a
// damaged export (as `ferry export verify` says), "value" for a value the
// target cannot take, "load" for anything else.
func loadProblem(group []*Table, err error) Problem {
	p := Problem{What: "load", Detail: err.Error()}
	names := make([]string, len(group))
	for i, t := range group {
		names[i] = t.Name
	}
	p.Table = strings.Join(names, ", ")
	if ce := (*chunkError)(nil); errors.As(err, &ce) {
		p.Table, p.Chunk = ce.table, ce.chunk
	}
	switch {
	case errors.Is(err, ErrCorrupt):
		p.What = "chunk"
	case errors.Is(err, ErrValue):
		p.What = "value"
	}
	return p
}

// readChunks calls fn with every decoded row of exported table t.
func (im *importer) readChunks(ctx context.Context, t *TableExport, fn func([]value) error) error {
	return im.readLines(ctx, t, false, true, func(line []byte, _ *streamRow, where string, failed func(error) error) error {
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

// anyFK reports whether any table has foreign keys.
func anyFK(tables []TableExport) bool {
	return slices.ContainsFunc(tables, func(t TableExport) bool { return len(t.ForeignKeys) > 0 })
}

// loadLocks is loadGroups' rule for the tables the groups reference.
type loadLocks struct {
	parents [][]string // per group, the tables outside it that it references
	drops   []bool     // per group: its load drops its foreign keys
	// exclusive: referenced by a running group that dropped its foreign
	// keys; shared: by how many running groups with theirs on.
	exclusive map[string]bool
	shared    map[string]int
}

// canStart reports whether group gi may start beside the running ones.
func (l *loadLocks) canStart(gi int) bool {
	for _, p := range l.parents[gi] {
		if l.exclusive[p] || (l.drops[gi] && l.shared[p] > 0) {
			return false
		}
	}
	return true
}

// hold records group gi starting (n 1) or ending (n -1).
func (l *loadLocks) hold(gi, n int) {
	for _, p := range l.parents[gi] {
		if l.drops[gi] {
			l.exclusive[p] = n > 0
		} else {
			l.shared[p] += n
		}
	}
}
