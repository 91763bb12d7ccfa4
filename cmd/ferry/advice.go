package main

import (
	"errors"
	"fmt"

	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect/sqlite"
	"github.com/ferrydb/ferry/internal/advice"
	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/transfer"
)

// explain is err's message with the advice that goes with it.
func (a *app) explain(err error) string { return advice.Explain(err, a.advice) }

// advice is the CLI's own advice for err, beyond the engine's (see
// package internal/advice): where the database URL came from, the backup
// flags. The library's errors say what happened; the CLI knows the
// commands, flags and variables.
func (a *app) advice(err error) string {
	switch {
	case errors.Is(err, database.ErrUnreachable):
		from := a.cfg.databaseFrom
		if from == "" {
			from = "--database or FERRY_DATABASE_URL"
		}
		if u, perr := database.Parse(a.cfg.Database); perr == nil && u.Kind == database.SQLite {
			return fmt.Sprintf(" (check the file's path in the database URL, from %s)", from)
		}
		return fmt.Sprintf(" (check that the server is running and that the database URL, from %s, is right)", from)
	case errors.Is(err, backup.ErrBackupFailed) && (errors.Is(err, backup.ErrInvalidStore) || errors.Is(err, backup.ErrDriverNotLinked)):
		return "; fix the backup store (--store, FERRY_BACKUP_STORE or backup_store), or upgrade without a backup with --backup=off"
	case errors.Is(err, backup.ErrBackupFailed):
		return "; fix the cause and run again, or upgrade without a backup with --backup=auto or off"
	}
	if first := errors.Is(err, transfer.ErrFirstMigrations); first || errors.Is(err, transfer.ErrFinalMigrations) {
		// ferry up refuses while the import is unfinished: running the
		// import again is what runs the migrations left and finishes it.
		again := "run the same `ferry import` again: it goes on from the verified data and runs the migrations left (`ferry up` refuses while the import is unfinished; a `ferry copy` cannot be finished: drop the target, create it empty and copy again)"
		var me *migrate.MigrationError
		if first && (errors.As(err, &me) && !me.RolledBack || errors.Is(err, migrate.ErrNeedsRepair)) {
			// Part of a migration took effect (MySQL's DDL), or an earlier
			// run's failure is recorded. The target held nothing before
			// the import: making it anew is simpler and surer than
			// repairing what a migration of the wrong engine half did.
			return "; simplest, as nothing was loaded yet and the database held nothing before the import: drop it, create it empty, and run the same `ferry import` (or `ferry copy`) again with --dir naming this engine's migrations of the release (`ferry up` refuses while the import is unfinished)"
		}
		if first {
			again = "run the same `ferry import` again (with --dir naming the target engine's migrations): nothing was loaded yet, and it goes on from there (`ferry up` refuses while the import is unfinished; after a `ferry copy`, drop the target, create it empty and copy again)"
		}
		switch {
		case errors.As(err, &me) && !me.RolledBack:
			return "; " + advice.Repair(migrate.Failure{Version: me.Version, Operation: me.Operation, State: migrate.StateFailed}) + ", then " + again
		case errors.As(err, &me):
			return "; fix the migration and " + again
		}
		return "; " + again // not a migration's failure: the lock, a lost connection
	}
	if errors.Is(err, transfer.ErrValue) {
		// The load rolled back; the next run meets the same value.
		return "; running it again meets the same value: change the value at the source (and export again), or the target column's type with a migration, then drop this database, create it empty, and import (or copy) again"
	}
	if u, perr := database.Parse(a.cfg.Database); perr == nil && u.Kind == database.SQLite && sqlite.New().IsBusy(err) {
		// SQLite has one writer; a write transaction as long as an
		// import's table or a long migration keeps readers out too once
		// it spills to the file (outside WAL mode).
		return "; another process has been writing to the SQLite file for longer than the busy timeout (10 s unless the URL sets one): an import, a copy or a long migration, most likely; run this again once it ends, or wait longer with the database URL parameter _pragma=busy_timeout(60000) (milliseconds)"
	}
	var lf *lint.FindingsError
	if errors.As(err, &lf) {
		return "\nferry lint --pending shows each finding's safe alternative (docs/lint has a page per rule); rewrite the migration, suppress a finding you have checked with a comment \"-- ferry:lint-ignore RULE reason\" before the statement, or apply anyway with --lint warn"
	}
	return ""
}
