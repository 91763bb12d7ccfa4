package transfer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/database"
)

// Unfinished is an import into a database that started and has not
// finished: running now, or cut short and waiting to be run again.
type Unfinished struct {
	ExportID string `json:"export_id"`
	// Tables are the tables loaded so far.
	Tables []string `json:"tables_loaded"`
	// Verified says the load was verified and only the final migrations
	// are left.
	Verified bool `json:"verified"`
	// Copy says it is a ferry copy, which cannot be run again: its
	// target is to be dropped and copied anew.
	Copy bool `json:"copy,omitempty"`
	// Mismatch says its verification found the loaded rows differ from
	// the export's: it cannot be finished, and its target is to be
	// dropped and imported into anew.
	Mismatch bool `json:"verification_failed,omitempty"`
	// Damaged says its load stopped at a chunk of the export that is
	// missing or damaged: running it again helps only once the export's
	// objects are restored.
	Damaged bool `json:"export_damaged,omitempty"`
	// Refused says its load stopped at a value the target cannot take:
	// a run again meets it too, unless the value (a new export) or the
	// target's column changed; as things are, it cannot be finished.
	Refused bool `json:"value_refused,omitempty"`
	// From is where the export is, as ferry import --from takes it (""
	// when the ledger does not say: an import by an older ferry).
	From string `json:"from,omitempty"`
	// Flags are the other flags the same import needs (see
	// ImportOptions.Flags).
	Flags string `json:"flags,omitempty"`
	// KeyEnv is the environment variable the export's key came from,
	// which running it again needs set too ("" for a key from a file,
	// or none).
	KeyEnv string `json:"key_env,omitempty"`
}

// Command is the ferry import command that finishes it ("" when the
// ledger does not say where the export is).
func (u Unfinished) Command() string {
	if u.From == "" || u.Copy || u.Stuck() {
		return "" // nothing finishes it (see Finish)
	}
	return strings.TrimSpace("ferry import --from " + ShellQuote(u.From) + " " + u.Flags)
}

// ShellQuote quotes s for a POSIX shell, when it needs it (for the
// commands ferry prints to run).
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellJoin quotes each of args for a POSIX shell and joins them.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// What names it: the import of an export, or a ferry copy.
func (u Unfinished) What() string {
	if u.Copy {
		return "a ferry copy (" + u.ExportID + ")"
	}
	return "the import of export " + u.ExportID
}

// Standing says where it stands, after its name: "has not finished", or
// "cannot be finished" when it is Stuck.
func (u Unfinished) Standing() string {
	if u.Stuck() {
		return "cannot be finished"
	}
	return "has not finished"
}

// note takes in one step of its ledger rows.
func (u *Unfinished) note(step string) {
	switch {
	case step == stepVerified:
		u.Verified = true
	case step == stepCopy:
		u.Copy = true
	case step == stepMismatch:
		u.Mismatch = true
	case step == stepDamaged:
		u.Damaged = true
	case step == stepRefused:
		u.Refused = true
	case strings.HasPrefix(step, stepFrom):
		u.From = step[len(stepFrom):]
	case strings.HasPrefix(step, stepFlags):
		u.Flags = step[len(stepFlags):]
	case strings.HasPrefix(step, stepKeyEnv):
		u.KeyEnv = step[len(stepKeyEnv):]
	case len(step) > len(stepTable) && step[:len(stepTable)] == stepTable:
		u.Tables = append(u.Tables, step[len(stepTable):])
	}
}

// Stuck says that no run can finish it: its verification failed, or its
// load met a value the target cannot take. Its database is to be made
// anew. (A copy cut short cannot be finished either, but one may still be
// running.)
func (u Unfinished) Stuck() bool { return u.Mismatch || u.Refused }

// IfCutShort is what to do about it if no import is running: finish it
// (if it was cut short), or, when its verification failed, start anew.
func (u Unfinished) IfCutShort() string {
	if u.Mismatch || u.Refused || u.Damaged {
		return u.Finish()
	}
	return "if it was cut short, " + u.Finish()
}

// Finish says how to finish it once it was cut short.
func (u Unfinished) Finish() string {
	if u.Refused {
		fix := "change the value at the source and export again, or the target column's type with a migration; then drop the database, create it empty, and import again"
		if u.Copy {
			fix = "change the value at the source, or the target column's type with a migration; then drop the database, create it empty, and copy again"
		}
		return "its load stopped at a value the target cannot take, which running it again meets too, so it cannot be finished: " + fix
	}
	if u.Copy && u.Mismatch {
		return "its verification found the rows it loaded differ from the source's, and a copy cannot be finished: drop the database, create it empty, and copy again (" + targetCauses + ")"
	}
	if u.Copy {
		return "a copy cannot be finished: drop the database, create it empty, and copy again"
	}
	if u.Mismatch {
		return "its verification found the rows it loaded differ from the export's, so it cannot be finished: drop the database, create it empty, and import again (`ferry export verify` checks the export; if it is whole, " + targetCauses + ")"
	}
	again := "the same import again"
	if u.Command() != "" {
		again = "`" + u.Command() + "` again"
	}
	if u.KeyEnv != "" {
		again += " with " + u.KeyEnv + " set (as it was for the run that started it)"
	}
	if u.Damaged {
		from := cmp.Or(u.From, "STORE/"+u.ExportID)
		return "it stopped at a chunk of the export that is missing or damaged: " + damagedAdvice(from, again)
	}
	return "run " + again + " to finish it (it migrates the database to the latest version itself)"
}

// targetCauses is what in a target changes rows as they go in, which a
// verification then finds differ: to look for before importing again.
const targetCauses = "look in the target for what changed the rows as they went in: a trigger, a column default or generated column, a collation that took two keys for one"

// damagedAdvice says what to do about the export at from (STORE/ID) whose
// chunk stopped a load: again is the import to run again, "... again".
func damagedAdvice(from, again string) string {
	return "`ferry export verify " + ShellQuote(from) + "` names every damaged chunk; restore the export's objects from a copy of the store and run " + again + " (it goes on from where it stopped), or drop the database, create it empty, and import a new export"
}

// Unfinished returns the imports into db (whose history table is
// history) that started and did not finish, from the import ledger. A
// database that never had an import has none. Until they finish, the
// database's data is incomplete: no release should start on it.
func UnfinishedImports(ctx context.Context, db *database.DB, history string) ([]Unfinished, error) {
	exists, err := tableExists(ctx, db, ledgerTable(history))
	if err != nil {
		return nil, err
	}
	if !exists {
		// MySQL's information_schema leaves out the tables the role has
		// no privilege on: a role granted SELECT table by table would
		// never see the ledger, and would take an unfinished import for
		// none. Ask the table itself: "no such table" is none; "denied"
		// is unknown, and unknown is not ready.
		if db.URL.Kind != database.MySQL {
			return nil, nil
		}
		if exists, err = ledgerVisible(ctx, db, ledgerTable(history)); err != nil || !exists {
			return nil, err
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT export_id, step FROM `+db.Dialect.Table(ledgerTable(history)))
	if err != nil {
		return nil, err
	}
	byID := map[string]*Unfinished{}
	done := map[string]bool{}
	for rows.Next() {
		var id, step string
		if err := rows.Scan(&id, &step); err != nil {
			rows.Close()
			return nil, err
		}
		u := byID[id]
		if u == nil {
			u = &Unfinished{ExportID: id, Tables: []string{}}
			byID[id] = u
		}
		done[id] = done[id] || step == stepDone
		u.note(step)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	var out []Unfinished
	for id, u := range byID {
		if !done[id] {
			sort.Strings(u.Tables)
			out = append(out, *u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExportID < out[j].ExportID })
	return out, nil
}

// ledgerVisible tells, on MySQL, a ledger that does not exist (false)
// from one that does (true, created since information_schema was asked)
// and from one the role may not see: an error naming the missing grant.
func ledgerVisible(ctx context.Context, db *database.DB, name string) (bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT 1 FROM "+db.Dialect.Table(name)+" LIMIT 0")
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return true, closeRows(rows)
	case errors.As(err, &me) && me.Number == 1146: // ER_NO_SUCH_TABLE
		return false, nil
	case errors.As(err, &me) && me.Number == 1142: // ER_TABLEACCESS_DENIED_ERROR
		return false, fmt.Errorf("cannot tell whether an import into the database has not finished: the role has no privilege on the import ledger %s, and MySQL does not say whether a table it may not read exists; grant the role SELECT on the database (or on that table, if it exists): %w", name, err)
	default:
		return false, err
	}
}

// tableExists reports whether db has table name (in its current schema),
// with one cheap query: status and launch ask on every run.
func tableExists(ctx context.Context, db *database.DB, name string) (bool, error) {
	var q string
	switch db.URL.Kind {
	case database.Postgres:
		q = `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = $1`
	case database.MySQL:
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`
	default:
		q = `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`
	}
	var n int
	if err := db.QueryRowContext(ctx, q, name).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}
