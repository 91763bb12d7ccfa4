// Package advice turns the engine's errors, which say what happened, into
// what an operator should do next, in terms of ferry's commands. The CLI
// and the migration service's answers use it; the library packages do not
// name commands, flags or variables.
package advice

import (
	"errors"
	"fmt"

	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// Repair is the advice for a migration that needs repair.
func Repair(f migrate.Failure) string {
	if f.State == migrate.StateRunning {
		return "" // in progress right now: nothing to do but wait
	}
	if f.Operation == migrate.OpDown {
		return fmt.Sprintf("check the database, then either finish reverting it by hand and run `ferry repair %d --mark pending`, or restore what was reverted and run `ferry repair %d --mark applied`", f.Version, f.Version)
	}
	return fmt.Sprintf("check the database, then either complete the rest of it by hand and run `ferry repair %d --mark applied`, or undo what took effect and run `ferry repair %d --mark pending` so that it runs again", f.Version, f.Version)
}

// Explain returns err's message followed by the advice for it (For, and
// more when not nil). A failed upgrade that had a backup taken keeps its
// restore instructions last.
func Explain(err error, more func(error) string) string {
	adv := func(e error) string {
		if more != nil {
			if s := more(e); s != "" {
				return s
			}
		}
		return For(e)
	}
	var ue *migrate.UpgradeError
	if errors.As(err, &ue) && ue.Backup != nil {
		return fmt.Sprintf("%v%s\nbackup %s was taken before this upgrade; to return the database to its state before the upgrade, run:\n  %s",
			ue.Err, adv(ue.Err), ue.Backup.ID, ue.Backup.Restore)
	}
	return err.Error() + adv(err)
}

// For returns the advice for err, as a clause to append to its message
// ("" when there is nothing to add).
func For(err error) string {
	var me *migrate.MigrationError
	var nr *migrate.NeedsRepairError
	var lt *migrate.LockTimeoutError
	var cb *release.ContractBlockedError
	var wt *release.WaitTimeoutError
	switch {
	case errors.As(err, &me):
		if me.RolledBack && errors.Is(err, migrate.ErrLockWait) {
			return "" // its message says what to do: nothing of the migration is wrong
		}
		if me.RolledBack {
			return "; fix the migration and run `ferry up` again"
		}
		f := migrate.Failure{Version: me.Version, Operation: me.Operation, State: migrate.StateFailed}
		return "; " + Repair(f)
	case errors.As(err, &nr):
		if len(nr.Failures) == 1 {
			if r := Repair(nr.Failures[0]); r != "" {
				return "; " + r
			}
			return "; it is being applied right now: wait for it (`ferry status` shows the lock holder)"
		}
		return "; `ferry status` shows each with the command that resolves it (`ferry repair VERSION --mark applied|pending`)"
	case errors.As(err, &lt):
		return "; raise --lock-timeout, or check `ferry status` for a stuck holder"
	case errors.Is(err, migrate.ErrConnectionLost):
		return "; `ferry status` shows what is recorded, `ferry up` goes on from there, and a migration shown as interrupted needs `ferry repair`"
	case errors.Is(err, migrate.ErrOutOfOrder):
		return " (--allow-out-of-order)"
	case errors.Is(err, migrate.ErrNoDir):
		return " (create it with `ferry init`, or point --dir / FERRY_DIR at yours)"
	case errors.As(err, &cb):
		return "\n`ferry status` lists the live instances; `ferry up --force` applies the contract migration anyway and breaks them"
	case errors.As(err, &wt):
		switch {
		case len(wt.Failed) > 0:
			return "; `ferry status` shows how to repair it"
		case wt.Blocked != "":
			return ""
		case wt.LastErr == nil && wt.Latest >= wt.Need:
			return fmt.Sprintf("; apply them with `ferry up --to %d` (or find out why the deploy step that runs `ferry up` has not)", wt.Need)
		}
	}
	return ""
}
