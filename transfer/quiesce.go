package transfer

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"filippo.io/age"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/store"
)

// Quiesce pauses the source's other workloads for an export, and says how
// to resume exactly those: the jobs, schedules or DAGs a service runs,
// paused as the managed-Airflow guides pause every DAG and keep the list.
//
// Select returns the workloads to pause, one row each, on the source;
// Pause pauses one and Resume resumes one, each run with the row's values
// as its arguments (placeholders in the database's own style: $1 on
// PostgreSQL, ? on MySQL and SQLite). The export pauses them before its
// snapshot, so the export holds them paused; an import resumes them on the
// target once its data is loaded and verified. The paused set is written
// to the store (quiesce.json) before anything is paused, so that a killed
// export leaves the list behind: `ferry export resume` resumes it on the
// source.
type Quiesce struct {
	Select string `json:"select"`
	Pause  string `json:"pause"`
	Resume string `json:"resume"`
	// Paused are the rows Select returned, each in the row format. In an
	// encrypted export they are stored sealed (PausedSealed, like a row
	// checksum: see Manifest.seal), PausedCount of them, and Paused is
	// empty until unseal opens them with the export's key.
	Paused       []json.RawMessage `json:"paused"`
	PausedSealed string            `json:"paused_sealed,omitempty"`
	PausedCount  int               `json:"paused_count,omitempty"`
	// KeySHA256 is the sealing key's checksum (Encryption.KeySHA256), for
	// a killed export that left no manifest.
	KeySHA256 string `json:"key_sha256,omitempty"`
	// ResumeSource resumes them on the source too once the export is
	// taken (for an export that is not a move); they are always resumed
	// on the source when the export fails.
	ResumeSource    bool `json:"resume_source"`
	ResumedOnSource bool `json:"resumed_on_source"`
	// Source is the database paused (its URL without secrets).
	Source string `json:"source,omitempty"`
	// sealTo, when set, seals Paused as the record is written.
	sealTo age.Recipient
	// idle counts the rows for which the last statement run changed no
	// row (see warnIdle).
	idle int
}

// warnIdle warns when the last statement run (what: "--pause") changed
// nothing for some of the paused rows: a WHERE that matches nothing, its
// arguments in another order than the select's columns, workloads that
// are not in this database.
func (q *Quiesce) warnIdle(log *slog.Logger, what string) {
	if q.idle > 0 {
		log.Warn(what+" changed no row for some of the paused workloads: check its WHERE, and that its arguments are the select's columns in their order (MySQL also counts a row already in the state it sets as unchanged)", "workloads", len(q.Paused), "unchanged", q.idle)
	}
}

// MarshalJSON writes the record, its paused rows sealed when sealTo is set.
func (q Quiesce) MarshalJSON() ([]byte, error) {
	type plain Quiesce // without this method
	p := plain(q)
	switch {
	case q.PausedSealed != "":
		p.Paused = []json.RawMessage{} // sealed as read: kept so, opened or not
	case q.sealTo != nil && len(q.Paused) > 0: // an empty list has nothing to hide
		list, err := json.Marshal(q.Paused)
		if err != nil {
			return nil, err
		}
		if p.PausedSealed, err = sealString(q.sealTo, string(list)); err != nil {
			return nil, err
		}
		p.Paused, p.PausedCount = []json.RawMessage{}, len(q.Paused)
	}
	return json.Marshal(p)
}

// unseal opens a sealed list of paused rows with the export's key.
func (q *Quiesce) unseal(key age.Identity) error {
	if q.PausedSealed == "" || len(q.Paused) > 0 {
		return nil
	}
	list, err := unsealString(key, q.PausedSealed)
	if err != nil {
		return fmt.Errorf("%w: the sealed list of paused workloads: %v", ErrCorrupt, err)
	}
	var rows []json.RawMessage
	if err := json.Unmarshal([]byte(list), &rows); err != nil || len(rows) != q.PausedCount {
		return fmt.Errorf("%w: the sealed list of paused workloads holds %d rows, not %d (%v)", ErrCorrupt, len(rows), q.PausedCount, err)
	}
	q.Paused = rows
	return nil
}

// KeyFlags is what ferry export resume needs besides the export to open
// a sealed list (an encrypted export's): " --identity FILE" (or a
// passphrase file), or "".
func (q *Quiesce) KeyFlags() string {
	if q.sealTo != nil || q.PausedSealed != "" {
		return " --identity FILE (or --passphrase-file FILE)"
	}
	return ""
}

// sealed reports whether the paused rows are sealed, and not opened.
func (q *Quiesce) sealed() bool { return q.PausedSealed != "" && len(q.Paused) == 0 }

// Count is the number of paused workloads, sealed or not.
func (q *Quiesce) Count() int {
	if q.sealed() {
		return q.PausedCount
	}
	return len(q.Paused)
}

const quiesceName = "quiesce.json"

// pause selects the workloads, records them in the store, and pauses them
// in one transaction.
func (q *Quiesce) pause(ctx context.Context, st *Store, db *database.DB, id string) error {
	if q.Select == "" || q.Pause == "" || q.Resume == "" {
		return errors.New("quiescing needs the three statements: --pause-select, --pause and --resume")
	}
	// A statement the database cannot run is found now, before anything
	// is paused, not by the import at the end.
	for _, st := range []struct{ what, sql string }{{"--pause", q.Pause}, {"--resume", q.Resume}} {
		ps, err := db.PrepareContext(ctx, st.sql)
		if err != nil {
			return fmt.Errorf("quiesce: %s does not prepare on the source: %w", st.what, err)
		}
		ps.Close()
	}
	q.Source = db.URL.String()
	// The select and the pauses in one transaction: what is paused is
	// what was selected.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, q.Select)
	if err != nil {
		return fmt.Errorf("quiesce: the select of the workloads to pause: %w", err)
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return err
	}
	dest := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	q.Paused = []json.RawMessage{}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return err
		}
		row := make([]any, len(dest))
		for i, v := range dest {
			if row[i], err = converter(db.URL.Kind, types[i].DatabaseTypeName())(v); err != nil {
				rows.Close()
				return fmt.Errorf("quiesce: column %d of the select: %w", i+1, err)
			}
		}
		line := appendRow(nil, row)
		q.Paused = append(q.Paused, json.RawMessage(line[:len(line)-1]))
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("quiesce: the select of the workloads to pause: %w", err)
	}
	// The list is in the store before the pauses commit: a killed export
	// leaves it for ferry export resume.
	if err := q.save(ctx, st, id); err != nil {
		return err
	}
	if err := q.runIn(ctx, tx, q.Pause); err != nil {
		return fmt.Errorf("quiesce: pause: %w", err)
	}
	return tx.Commit()
}

// save writes the quiesce record of export id to the store.
func (q *Quiesce) save(ctx context.Context, st *Store, id string) error {
	data, err := json.MarshalIndent(q, "", "  ")
	if err != nil {
		return err
	}
	return st.s.WriteAll(ctx, id+"/"+quiesceName, append(data, '\n'), "application/json")
}

// Quiesce returns the quiesce record of export id (complete or not), or
// nil when the export paused nothing.
func (s *Store) Quiesce(ctx context.Context, id string) (*Quiesce, error) {
	data, err := s.s.ReadAll(ctx, id+"/"+quiesceName)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var q Quiesce
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, id, quiesceName, err)
	}
	return &q, nil
}

// run runs statement once per paused row, in one transaction.
func (q *Quiesce) run(ctx context.Context, db *database.DB, statement string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := q.runIn(ctx, tx, statement); err != nil {
		return err
	}
	return tx.Commit()
}

func (q *Quiesce) runIn(ctx context.Context, tx *sql.Tx, statement string) error {
	q.idle = 0
	for i, raw := range q.Paused {
		var n []json.RawMessage
		if err := json.Unmarshal(raw, &n); err != nil {
			return fmt.Errorf("paused row %d: %w", i+1, err)
		}
		vals, err := decodeRow(raw, len(n))
		if err != nil {
			return fmt.Errorf("paused row %d: %w", i+1, err)
		}
		args := make([]any, len(vals))
		for j, v := range vals {
			args[j] = v.any()
		}
		res, err := tx.ExecContext(ctx, statement, args...)
		if err != nil {
			shown := compactJSON(raw)
			if q.sealTo != nil || q.PausedSealed != "" {
				shown = "(not shown: the export encrypts it)"
				err = redacted{err, quotedValue.ReplaceAllString(err.Error(), "$1 (not shown: the export encrypts it) $2")}
			}
			return fmt.Errorf("paused row %d %s: %w", i+1, shown, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			q.idle++
		}
	}
	return nil
}

// ResumeOptions says how Store.ResumeSource resumes.
type ResumeOptions struct {
	// Force resumes on a database other than the one the export recorded
	// pausing (the same one under another name).
	Force bool
	// Statement, when not "", is run for each workload instead of the
	// export's --resume (a corrected one); the export's, as the store
	// records it, runs only when Recorded (a store is input).
	Statement string
	Recorded  bool
	// Identities open an encrypted export's key, which seals its list.
	Identities []age.Identity
	// Log, if set, is told of workloads the statement changed nothing for.
	Log *slog.Logger
}

// ResumeSource resumes, on the source db, the workloads a killed or failed
// export of id paused, from the list it left in the store, and records
// that it did: a second run resumes nothing. db must be the database the
// export paused, unless opts.Force. Without a statement to run (see
// ResumeOptions) the error wraps ErrResumeChoice and names the export's.
func (s *Store) ResumeSource(ctx context.Context, id string, db *database.DB, opts ResumeOptions) (int, error) {
	if !ValidID(id) {
		return 0, fmt.Errorf("%q is not an export id", id)
	}
	q, err := s.Quiesce(ctx, id)
	if err != nil {
		return 0, err
	}
	if q == nil {
		return 0, fmt.Errorf("export %s paused nothing (it has no %s)", id, quiesceName)
	}
	if q.ResumedOnSource {
		return 0, nil
	}
	statement := opts.Statement
	if statement == "" && !opts.Recorded {
		return 0, fmt.Errorf("%w: export %s paused %d workloads on %s, and the store records the statement that resumes them: %s; ferry runs no SQL read from a store unless told to: run it with --resume-recorded, or give one of yours with --resume SQL", ErrResumeChoice, id, q.Count(), q.Source, q.Resume)
	}
	if q.Source != "" && q.Source != db.URL.String() && !opts.Force {
		return 0, fmt.Errorf("export %s paused workloads on %s, not on %s: give that database (or --force if it is the same one under another name)", id, q.Source, db.URL)
	}
	if q.sealed() {
		key, err := s.openKey(ctx, id, &Encryption{Mode: "its list of paused workloads is sealed", Key: keyName, KeySHA256: q.KeySHA256}, opts.Identities)
		if err != nil {
			return 0, err
		}
		if err := q.unseal(key); err != nil {
			return 0, err
		}
	}
	if statement == "" {
		statement = q.Resume
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if err := q.runIn(ctx, tx, statement); err != nil {
		return 0, fmt.Errorf("resume the workloads export %s paused: %w (give a corrected statement with --resume SQL)", id, err)
	}
	if q.idle == len(q.Paused) && q.idle > 0 && !opts.Force {
		// Recorded as resumed, they could not be resumed with a corrected
		// statement.
		return 0, fmt.Errorf("resume the workloads export %s paused: the statement changed no row for any of the %d: nothing is recorded; check its WHERE and that its arguments are the select's columns in their order, and run again (if they were resumed by hand already, --force records them as resumed)", id, q.idle)
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if opts.Log != nil {
		q.warnIdle(opts.Log, "the statement resuming the workloads")
	}
	q.ResumedOnSource = true
	if err := q.save(ctx, s, id); err != nil {
		return len(q.Paused), fmt.Errorf("resumed %d workloads, but could not record it: %w", len(q.Paused), err)
	}
	return len(q.Paused), nil
}

// pausedList is the paused workloads for a message: each row as the
// select returned it, the first 20; of a sealed list, only how many.
func (q *Quiesce) pausedList() string {
	if q.sealed() {
		return "not shown: the export encrypts them"
	}
	var rows []string
	for i, p := range q.Paused {
		if i == 20 {
			rows = append(rows, fmt.Sprintf("and %d more: see the manifest", len(q.Paused)-20))
			break
		}
		rows = append(rows, compactJSON(p))
	}
	return strings.Join(rows, ", ")
}

// compactJSON is raw on one line (a manifest's JSON is indented).
func compactJSON(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
