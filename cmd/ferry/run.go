package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server/api"
	"github.com/ferrydb/ferry/transfer"
)

func (a *app) upCmd() *cobra.Command {
	var to int64
	var dryRun, allowOOO, force bool
	c := &cobra.Command{
		Use:   "up",
		Short: "Apply pending migrations",
		Long: `Apply the pending migrations in version order, up to --to if given.

ferry first takes the database-wide migration lock, so that when a whole
fleet runs "ferry up" at start-up exactly one process applies each migration;
the others wait (--lock-timeout), find the work done, and exit 0.

On PostgreSQL and SQLite each migration runs in one transaction with its
history row. On MySQL, and for migrations marked no-transaction, statements
run one by one and the history records progress; if one fails, later runs
refuse to continue until "ferry repair".

On PostgreSQL and MySQL a statement that waits more than --ddl-lock-timeout
(5s) for a lock on a table gives up instead of making every query on that
table queue behind it; what it was part of is rolled back and tried again
after a pause, up to --ddl-retries times, then ferry exits 1 naming the
sessions in the way. Once before the migrations, --preflight waits for (or
refuses) transactions open longer than the timeout that hold locks on the
tables they name.

--dry-run prints the exact SQL that would run, in order, and changes nothing.

A contract migration (-- +ferry contract) breaks releases built against an
older schema. While such a release has live instances in the fleet registry
(see "ferry status" and "ferry launch"), "ferry up" applies the migrations
below the contract migration, refuses the contract migration naming the
release and its instances, and exits 1. Stop or upgrade those instances and
run it again, or pass --force to apply it anyway. With --contract-wait D it
waits up to D for those instances to leave the registry, checking again
every few seconds without holding the migration lock, then applies it (for a
deploy pipeline's contract step). Expand migrations never wait.

Backups: when a backup store is configured (--store, FERRY_BACKUP_STORE or
backup_store in ferry.yaml), up takes a backup of the database first, under
the migration lock and only when there is something to apply. --backup says
what a failed backup means: auto (the default with a store: warn and go on),
required (stop, nothing applied) or off. --backup=auto or required without a
configured store uses ./ferry-backups. If the upgrade then fails, the error
ends with the exact command that restores the database to its state before
the upgrade.

SIGINT or SIGTERM stops at the next safe point (between statements of a
transactional migration, which is then rolled back; after a non-transactional
one finishes) and releases the lock. A second signal exits at once.`,
		Example: "  ferry up\n  ferry up --to 20261101120000\n  ferry up --dry-run\n  FERRY_DATABASE_URL=postgres://app@db/app ferry up",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("to") && to <= 0 {
				return usageErrorf("--to %d: give the version of a migration (leave --to out to apply every pending migration)", to)
			}
			if allowOOO {
				a.cfg.AllowOutOfOrder = true
			}
			ctx := cmd.Context()
			mig := a.migrator
			if dryRun {
				mig = a.readMigrator
			}
			db, m, err := mig(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			opts := migrate.UpOptions{To: to}
			a.upTo = to
			if dryRun {
				plan, err := m.PlanUp(ctx, opts)
				if err != nil {
					return targetError(err)
				}
				if err := a.printPlan(plan); err != nil {
					return err
				}
				return a.lintPlan(ctx, db, m, plan)
			}
			if err := refuseDuringImport(ctx, db, m, "up", "the schema"); err != nil {
				return err
			}
			p, err := a.pipeline(ctx, db, force)
			if err != nil {
				return err
			}
			defer p.close()
			lintRep, err := a.lintGate(&p.Pipeline, db)
			if err != nil {
				return err
			}
			out, err := a.upgradeWaiting(ctx, m, opts, p.Pipeline, a.cfg.ContractWait)
			err = targetError(err)
			extra := map[string]any{}
			if r := *lintRep; r != nil {
				extra["lint"] = api.FromLintReport(r)
			}
			if p.store == nil {
				return a.reportWith(out.Result, err, "up", extra)
			}
			info := map[string]any{"store": p.store.String()}
			if b := out.Backup; b != nil {
				if b.ID != "" {
					info["id"], info["restore_command"] = b.ID, b.Restore
				}
				if b.Err != nil {
					info["error"] = b.Err.Error()
				}
			}
			extra["backup"] = info
			return a.reportWith(out.Result, err, "up", extra)
		},
	}
	int64Flag(c.Flags(), &to, "to", "", 0, "apply migrations up to and including this version")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the SQL that would run and change nothing")
	c.Flags().BoolVar(&allowOOO, "allow-out-of-order", false, "apply pending migrations older than the newest applied one (env FERRY_ALLOW_OUT_OF_ORDER)")
	c.Flags().BoolVar(&force, "force", false, "apply contract migrations even while releases they break have live instances")
	c.Flags().Duration("contract-wait", 0, "when a contract migration is held by live instances of a release it breaks, wait up to this long for them to leave, then apply it (0: refuse at once; env FERRY_CONTRACT_WAIT)")
	c.Flags().String("lint", "warn", "lint the pending migrations first: warn (show findings, go on), error (refuse, applying nothing, when a finding is an error) or off (env FERRY_LINT; ferry.yaml lint.mode)")
	c.Flags().String("backup", "", "take a backup before applying: auto, required or off (env FERRY_BACKUP; default auto when a backup store is configured, off otherwise)")
	c.Flags().String("store", "", storeHelp)
	jsonFlag(c)
	return c
}

func (a *app) downCmd() *cobra.Command {
	var n int
	var to int64
	var dryRun bool
	c := &cobra.Command{
		Use:   "down",
		Short: "Revert applied migrations",
		Long: `Revert the most recently applied migration (-n for more, --to to revert every
migration above a version; --to 0 reverts all). Each migration to revert must
have a down part; ferry checks all of them before reverting any.`,
		Example: "  ferry down\n  ferry down -n 3\n  ferry down --to 5\n  ferry down --dry-run",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			toSet := cmd.Flags().Changed("to")
			if toSet && cmd.Flags().Changed("steps") {
				return usageErrorf("use -n or --to, not both")
			}
			if toSet && to < 0 {
				return usageErrorf("--to %d: give a version to revert down to (0 reverts every migration)", to)
			}
			if n < 1 {
				return usageErrorf("-n must be at least 1")
			}
			mig := a.migrator
			if dryRun {
				mig = a.readMigrator
			}
			db, m, err := mig(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if dryRun {
				steps := n
				if toSet {
					steps = 0
				}
				plan, err := m.PlanDown(cmd.Context(), steps, to)
				if err != nil {
					return targetError(err)
				}
				return a.printPlan(plan)
			}
			if err := refuseDuringImport(cmd.Context(), db, m, "down", "the schema"); err != nil {
				return err
			}
			var res *migrate.Result
			if toSet {
				res, err = m.DownTo(cmd.Context(), to)
				err = targetError(err)
			} else {
				res, err = m.Down(cmd.Context(), n)
			}
			return a.report(res, err, "down")
		},
	}
	intFlag(c.Flags(), &n, "steps", "n", 1, "number of migrations to revert")
	int64Flag(c.Flags(), &to, "to", "", 0, "revert every migration above this version")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the SQL that would run and change nothing")
	jsonFlag(c)
	return c
}

func (a *app) redoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "redo",
		Short: "Revert the most recently applied migration and apply it again",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, m, err := a.migrator(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := refuseDuringImport(cmd.Context(), db, m, "redo", "the schema"); err != nil {
				return err
			}
			res, err := m.Redo(cmd.Context())
			return a.report(res, err, "redo")
		},
	}
	jsonFlag(c)
	return c
}

func (a *app) baselineCmd() *cobra.Command {
	var allowMissing bool
	c := &cobra.Command{
		Use:   "baseline VERSION",
		Short: "Record every migration up to VERSION as applied without running it",
		Long: `Record every migration up to and including VERSION as applied, without
running it. Use it once when ferry takes over a database whose schema already
has those changes; later migrations then apply normally.

VERSION must be the version of a migration file; --allow-missing accepts
another (every migration below it is recorded), for a directory whose
files before a version were deleted.`,
		Example: "  ferry baseline 12",
		Args:    exactArgs(1, "one VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVersion(args[0])
			if err != nil {
				return err
			}
			db, m, err := a.migrator(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := refuseDuringImport(cmd.Context(), db, m, "baseline", "the history"); err != nil {
				return err
			}
			res, err := m.Baseline(cmd.Context(), v, migrate.BaselineOptions{AllowMissing: allowMissing})
			if errors.Is(err, migrate.ErrUnknownVersion) {
				return usageErrorf("%v; pass --allow-missing to record every migration below it anyway", err)
			}
			return a.report(res, err, "baseline")
		},
	}
	c.Flags().BoolVar(&allowMissing, "allow-missing", false, "accept a VERSION that no migration file has")
	jsonFlag(c)
	return c
}

func (a *app) repairCmd() *cobra.Command {
	var mark string
	c := &cobra.Command{
		Use:   "repair VERSION --mark applied|pending",
		Short: "Resolve a failed or interrupted migration after fixing the database by hand",
		Long: `Resolve a migration that failed or was interrupted without a transaction (on
MySQL, or marked no-transaction). ferry status shows which statement failed
and which took effect. Fix the database by hand first, then say what you did:

  --mark applied   you completed the rest of the migration by hand
  --mark pending   you undid what took effect; the next "ferry up" runs the
                   whole migration again

For a failed revert (down), --mark applied means the migration is still in
place, --mark pending that you completed the revert.`,
		Example: "  ferry status\n  ferry repair 7 --mark pending\n  ferry up",
		Args:    exactArgs(1, "one VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVersion(args[0])
			if err != nil {
				return err
			}
			if mark != string(migrate.MarkApplied) && mark != string(migrate.MarkPending) {
				return usageErrorf("say what you did with --mark applied (you completed the migration by hand) or --mark pending (you undid it, so it runs again)")
			}
			db, m, err := a.migrator(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			// Not refused during an unfinished import, unlike the other
			// commands that write: repair changes no schema, only resolves
			// a migration that failed, and it is what the import's own
			// advice says to run when one of its migrations failed part
			// way (the import then goes on when run again).
			res, err := m.Repair(cmd.Context(), v, migrate.RepairMark(mark))
			err = targetError(err) // a version no file and no history has
			return a.report(res, err, "repair")
		},
	}
	c.Flags().StringVar(&mark, "mark", "", "applied or pending (required)")
	jsonFlag(c)
	return c
}

func (a *app) validateCmd() *cobra.Command {
	var allowOOO bool
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check migration files against the database",
		Long: `Check that every migration file parses, every applied migration still has its
file with the same checksum (comments and whitespace do not count), no
migration needs repair, and no pending migration is older than the newest
applied one (unless --allow-out-of-order). Prints one line per problem and
exits 1 if there is any. Changes nothing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if allowOOO {
				a.cfg.AllowOutOfOrder = true
			}
			var problems []string
			db, m, err := a.readMigrator(cmd.Context())
			var le *migrate.LoadError
			switch {
			case errors.As(err, &le):
				for _, e := range le.Errs {
					problems = append(problems, e.Error())
				}
			case err != nil:
				return err
			default:
				defer db.Close()
				ps, err := m.Validate(cmd.Context())
				if err != nil {
					return err
				}
				for _, p := range ps {
					problems = append(problems, p.Message)
				}
			}
			if a.json {
				if err := a.printJSON(map[string]any{"valid": len(problems) == 0, "problems": nonNil(problems)}); err != nil {
					return err
				}
			} else {
				for _, p := range problems {
					a.printf("%s\n", p)
				}
				if len(problems) == 0 {
					a.printf("ok: %d migrations, all valid\n", len(m.Migrations()))
				}
			}
			if len(problems) > 0 {
				return exitError{exitFailure}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&allowOOO, "allow-out-of-order", false, "do not report pending migrations older than the newest applied one")
	jsonFlag(c)
	return c
}

func (a *app) historyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "history",
		Short: "Show every row of the history table: each apply, revert, baseline and repair",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, m, err := a.readMigrator(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			recs, err := m.History(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(api.FromRecords(recs))
			}
			w := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "ID\tVERSION\tNAME\tOPERATION\tSTATE\tAT (UTC)\tDURATION\tBY\tERROR\n")
			for _, r := range recs {
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Version, r.Name, r.Operation, r.State,
					r.AppliedAt.Format(time.DateTime), fmtDuration(r.Duration), r.AppliedBy, r.Error)
			}
			return w.Flush()
		},
	}
	jsonFlag(c)
	return c
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func parseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, usageErrorf("version %q is not a positive integer", s)
	}
	return v, nil
}

// refuseDuringImport refuses `ferry command`, which would change what
// (the schema, or the history), while an import (or a copy) into db has not
// finished. An import loads its data at the export's schema version and
// migrates it itself: a change under it drops or hides what it loaded, or
// leaves it unable to go on.
func refuseDuringImport(ctx context.Context, db *database.DB, m *migrate.Migrator, command, what string) error {
	imports, err := transfer.UnfinishedImports(ctx, db, m.Table())
	if err != nil {
		return err
	}
	if len(imports) > 0 {
		return fmt.Errorf("%s into %s %s: ferry %s would change %s under it; %s", imports[0].What(), db.URL, imports[0].Standing(), command, what, imports[0].IfCutShort())
	}
	return nil
}

// targetError turns an engine error about an unknown target version (a
// typo in --to) into a usage error.
func targetError(err error) error {
	if errors.Is(err, migrate.ErrUnknownVersion) {
		return usageError{err}
	}
	return err
}

func (a *app) printPlan(p *migrate.Plan) error {
	if a.json {
		type step struct {
			Version    int64    `json:"version"`
			Name       string   `json:"name"`
			File       string   `json:"file,omitempty"`
			Statements []string `json:"statements"`
		}
		steps := []step{}
		for _, m := range p.Migrations {
			s := step{Version: m.Version, Name: m.Name, File: m.Source, Statements: []string{}}
			sec := m.Up
			if p.Operation == migrate.OpDown {
				sec = m.Down
			}
			if sec != nil {
				for _, st := range sec.Statements {
					s.Statements = append(s.Statements, st.Display())
				}
			}
			steps = append(steps, s)
		}
		return a.printJSON(map[string]any{"operation": p.Operation, "dry_run": true, "migrations": steps})
	}
	return p.WriteSQL(a.stdout)
}

// report prints a run's result, or returns its error. Even a failed run
// may have applied migrations before the failure; they are reported too.
func (a *app) report(res *migrate.Result, err error, what string) error {
	return a.reportWith(res, err, what, nil)
}

// reportWith is report with extra fields for the JSON document.
func (a *app) reportWith(res *migrate.Result, err error, what string, extra map[string]any) error {
	if a.json && res != nil {
		doc := map[string]any{"result": api.FromResult(res), "ok": err == nil}
		for k, v := range extra {
			doc[k] = v
		}
		return a.printOutcome(doc, err)
	}
	if res != nil {
		for _, m := range res.Migrations {
			switch m.Operation {
			case migrate.OpBaseline:
				a.printf("recorded %d %s as applied (baseline)\n", m.Version, m.Name)
			case migrate.OpRepair:
				a.printf("repaired %d %s\n", m.Version, m.Name)
			}
		}
		if err == nil {
			switch {
			case len(res.Migrations) == 0 && what == "up" && a.upTo > 0:
				a.printf("nothing to apply up to version %d; at version %d\n", a.upTo, res.To)
			case len(res.Migrations) == 0 && what == "up":
				msg := fmt.Sprintf("already up to date at version %d", res.To)
				if res.LastAppliedBy != "" {
					msg += " (applied by " + res.LastAppliedBy + ")"
				}
				a.printf("%s\n", msg)
			case len(res.Migrations) == 0:
				a.printf("nothing to do; at version %d\n", res.To)
			default:
				a.printf("now at version %d\n", res.To)
			}
			if waited := res.LockWaited; waited > time.Second {
				a.printf("(waited %s for the migration lock)\n", waited.Round(time.Millisecond))
			}
		}
	}
	return err
}

// printOutcome prints doc as JSON, with err's message under "error", and
// returns the failure exit code when err is not nil.
func (a *app) printOutcome(doc map[string]any, err error) error {
	if err != nil {
		doc["error"] = a.explain(err)
	}
	if lw := api.FromLockWait(err); lw != nil {
		doc["lock_wait"] = lw
	}
	if perr := a.printJSON(doc); perr != nil {
		return perr
	}
	if err != nil {
		return exitErrorAfterPrint(a, err)
	}
	return nil
}

// exitErrorAfterPrint repeats err (already in the JSON document) on stderr
// and returns the failure exit code.
func exitErrorAfterPrint(a *app, err error) error {
	a.eprintf("ferry: %s\n", a.explain(err))
	return exitError{exitFailure}
}
