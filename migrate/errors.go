package migrate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors a run can return; check them with errors.Is. The errors say what
// happened (version, file, line, statement, state); what to do about it is
// for the program that ran the engine to say.
var (
	// ErrNeedsRepair: a non-transactional migration failed or was
	// interrupted, and nothing runs past it until Repair (see
	// *NeedsRepairError).
	ErrNeedsRepair = errors.New("a migration needs repair")
	// ErrOutOfOrder: a pending migration is older than the newest applied
	// one and out-of-order application is not allowed (see
	// *OutOfOrderError).
	ErrOutOfOrder = errors.New("pending migration is older than the newest applied one")
	// ErrNoDown: a migration to revert has no down part.
	ErrNoDown = errors.New("migration has no down part")
	// ErrInterrupted: the run was cancelled and stopped at a safe point.
	ErrInterrupted = errors.New("interrupted")
	// ErrUnknownVersion: no migration or history row has this version.
	ErrUnknownVersion = errors.New("unknown version")
	// ErrNoDir: the migrations directory does not exist.
	ErrNoDir = errors.New("migrations directory does not exist")
)

// MigrationError is a failed statement or Go function of one migration.
type MigrationError struct {
	Version   int64
	Name      string
	File      string
	Operation Op // OpUp or OpDown
	// Statement is the 1-based index of the first statement whose effects
	// are not in the database (0 for a Go function or a failure outside
	// any statement), Line its line.
	Statement, Line int
	// Failed is the statement that raised Err when it is not Statement
	// (MySQL runs consecutive DML statements in one transaction, so a
	// failure rolls back the earlier ones of its group too: Statement is
	// then the first of the group, the first without effect), FailedLine
	// its line; 0 otherwise.
	Failed, FailedLine int
	// RolledBack: the migration ran in a transaction that was rolled back,
	// so nothing of it remains. Otherwise the statements before Statement
	// took effect and the migration needs repair.
	RolledBack bool
	Err        error
}

func (e *MigrationError) Error() string {
	var b strings.Builder
	verb := "migration"
	if e.Operation == OpDown {
		verb = "reverting migration"
	}
	fmt.Fprintf(&b, "%s %d (%s) failed", verb, e.Version, e.Name)
	switch {
	case e.Failed > e.Statement && e.Statement > 0:
		fmt.Fprintf(&b, " at statement %d", e.Failed)
		if e.File != "" {
			fmt.Fprintf(&b, " (%s:%d)", e.File, e.FailedLine)
		}
		fmt.Fprintf(&b, ", which ran in one transaction with %s, rolled back with it", statementRange(e.Statement, e.Failed-1))
	case e.Statement > 0:
		fmt.Fprintf(&b, " at statement %d", e.Statement)
		if e.File != "" {
			fmt.Fprintf(&b, " (%s:%d)", e.File, e.Line)
		}
	case e.File != "":
		fmt.Fprintf(&b, " (%s)", e.File)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.RolledBack && errors.Is(e.Err, ErrLockWait) {
		b.WriteString("; nothing of it was applied")
	} else if e.RolledBack {
		b.WriteString("; its transaction was rolled back, so nothing of it was applied")
	} else {
		fmt.Fprintf(&b, "; it ran without a transaction: %s", tookEffect(e.Statement, false))
	}
	return b.String()
}

func (e *MigrationError) Unwrap() error { return e.Err }

// statementRange names statements from to to: "statement 2" or
// "statements 2-4".
func statementRange(from, to int) string {
	if from == to {
		return fmt.Sprintf("statement %d", from)
	}
	return fmt.Sprintf("statements %d-%d", from, to)
}

// tookEffect says which statements of a migration that ran without a
// transaction took effect, when statement is the first without effect
// (interrupted: the one that may or may not have).
func tookEffect(statement int, interrupted bool) string {
	if statement == 0 {
		return "it stopped part-way, and some of it may have taken effect"
	}
	var done string
	switch {
	case statement == 1:
		done = "no earlier statement of it ran"
	case statement == 2:
		done = "statement 1 took effect"
	default:
		done = fmt.Sprintf("statements 1-%d took effect", statement-1)
	}
	if interrupted {
		return fmt.Sprintf("%s and statement %d may or may not have taken effect", done, statement)
	}
	return fmt.Sprintf("%s and statement %d and the ones after it did not", done, statement)
}

// Failure describes a migration that failed or was interrupted without a
// transaction and blocks further runs until it is repaired.
type Failure struct {
	Version   int64
	Name      string
	File      string
	Operation Op
	// State is StateFailed, StateInterrupted, or StateRunning (a process
	// holds the migration lock and is running it right now).
	State State
	// Statement is the first statement whose effects are not known to be
	// in the database; Line its line in File.
	Statement int
	Line      int
	Error     string
	AppliedBy string
	At        time.Time
}

// TookEffect says which statements of a failed or interrupted migration
// took effect: "statements 1-2 took effect and statement 3 and the ones
// after it did not".
func TookEffect(f Failure) string { return tookEffect(f.Statement, f.State == StateInterrupted) }

// Describe says what happened to the migration and what is known of the
// database: which statements took effect.
func (f *Failure) Describe() string {
	var b strings.Builder
	what := "migration"
	if f.Operation == OpDown {
		what = "revert of migration"
	}
	fmt.Fprintf(&b, "%s %d (%s) %s", what, f.Version, f.Name, f.State)
	if f.Statement > 0 {
		if f.State == StateFailed {
			fmt.Fprintf(&b, " at statement %d", f.Statement)
		} else {
			fmt.Fprintf(&b, " during statement %d", f.Statement)
		}
		if f.File != "" && f.Line > 0 {
			fmt.Fprintf(&b, " (%s:%d)", f.File, f.Line)
		}
	}
	fmt.Fprintf(&b, " on %s at %s", f.AppliedBy, f.At.Format(time.RFC3339))
	if f.Error != "" {
		fmt.Fprintf(&b, ": %s", f.Error)
	}
	if f.State != StateRunning {
		fmt.Fprintf(&b, "; it ran without a transaction: %s", tookEffect(f.Statement, f.State == StateInterrupted))
	}
	return b.String()
}

// NeedsRepairError is returned (wrapping ErrNeedsRepair) when a run finds
// an unresolved failed or interrupted migration.
type NeedsRepairError struct {
	Failures []Failure
}

func (e *NeedsRepairError) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		parts[i] = f.Describe()
	}
	return strings.Join(parts, "\n")
}

func (e *NeedsRepairError) Unwrap() error { return ErrNeedsRepair }

// onlyRunning reports whether every failure may be a migration running
// right now in another process (read without the lock, a running row may
// even have ended between two reads): none of them is a settled failure.
func (e *NeedsRepairError) onlyRunning() bool {
	for _, f := range e.Failures {
		if f.State == StateFailed {
			return false
		}
	}
	return true
}

// OutOfOrderError is returned (wrapping ErrOutOfOrder) when pending
// migrations are older than the newest applied one.
type OutOfOrderError struct {
	Pending    []*Migration
	MaxApplied int64
}

func (e *OutOfOrderError) Error() string {
	names := make([]string, len(e.Pending))
	for i, m := range e.Pending {
		names[i] = m.String()
	}
	return fmt.Sprintf("%v: %s pending but version %d is already applied; renumber them above %d, or allow out-of-order migrations",
		ErrOutOfOrder, strings.Join(names, ", "), e.MaxApplied, e.MaxApplied)
}

func (e *OutOfOrderError) Unwrap() error { return ErrOutOfOrder }

// failures lists the blocked versions of h. lockHeld says whether some
// process holds the lock right now (a running row is then in progress, not
// interrupted); a run holding the lock itself passes false.
func (m *Migrator) failures(h *history, lockHeld bool) []Failure {
	var out []Failure
	versions := make([]int64, 0, len(h.versions))
	for v, s := range h.versions {
		if s.blocked != nil {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	for _, v := range versions {
		r := h.versions[v].blocked
		f := Failure{
			Version: v, Name: r.Name, Operation: r.Operation, State: r.State,
			Statement: r.Statement, Error: r.Error, AppliedBy: r.AppliedBy, At: r.AppliedAt,
		}
		if mig := m.byVersion[v]; mig != nil {
			_ = mig.parse() // for the statement's line; a bad file just has none
			sec, _ := mig.parts(r.Operation)
			if sec != nil {
				f.File = sec.File
			}
			f.Line = mig.statementLine(sec, r.Statement)
		}
		if r.State == StateRunning && !lockHeld {
			f.State = StateInterrupted
		}
		out = append(out, f)
	}
	return out
}
