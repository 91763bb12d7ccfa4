package main

import (
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/internal/advice"
	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
	"github.com/ferrydb/ferry/server"
	"github.com/ferrydb/ferry/server/api"
	"github.com/ferrydb/ferry/transfer"
)

// recentApplied is how many applied migrations human status output shows
// without --all.
const recentApplied = 10

func (a *app) statusCmd() *cobra.Command {
	var exitCode, all bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the current and latest version, applied, pending and failed migrations, and the lock holder",
		Long: `Show the schema's current version (the highest applied), the latest
available version, whether the schema is up to date, the applied migrations
(when, how long, by whom), pending and failed migrations, migrations whose
file is missing, who holds the migration lock right now, and the live
instances of each release in the fleet registry (see "ferry launch").
With migrations pending, it also counts their lint findings (under "lint"
in --json; "ferry lint --pending" shows them; FERRY_LINT=off or
lint.mode: off leaves lint out).

status changes nothing, not even creating the history table.

--json prints a document with at least current_version, latest_version,
is_up_to_date, pending (an array of versions) and applied.
--exit-code exits 3 when migrations are pending or failed, or an import
into the database has not finished (its data is incomplete), for scripts.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, m, err := a.readMigrator(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			// People read the most recent applied migrations; --all and
			// --json list every one.
			opts := migrate.StatusOptions{Applied: recentApplied}
			if all || a.json {
				opts.Applied = 0
			}
			s, err := m.StatusWith(cmd.Context(), opts)
			if err != nil {
				return err
			}
			live, err := release.Live(cmd.Context(), db, db.Dialect)
			if err != nil {
				return err
			}
			fleet := release.ByRelease(live)
			unfinished, err := transfer.UnfinishedImports(cmd.Context(), db, m.Table())
			if err != nil {
				return err
			}
			imports := server.ImportsInProgress(unfinished)
			lintRep, err := a.lintPending(cmd.Context(), db, m, s.Pending)
			if err != nil {
				return err
			}
			if a.json {
				if fleet == nil {
					fleet = []release.ReleaseInstances{}
				}
				doc := api.FromStatus(s, db.URL.String(), fleet)
				doc.Lint = api.FromLintReport(lintRep)
				doc.SetImports(imports, nil)
				if err := a.printJSON(doc); err != nil {
					return err
				}
			} else {
				a.printStatus(db.URL.String(), s, unfinishedWhat(imports))
				if lintRep != nil && len(lintRep.Findings) > 0 {
					a.printf("Lint:             %d errors, %d warnings in the pending migrations (ferry lint --pending shows them)\n", lintRep.Count(lint.Error), lintRep.Count(lint.Warning)-lintRep.Count(lint.Error))
				}
				a.printImports(imports)
				a.printFleet(fleet)
			}
			// As /db_schema_status and remote status: not up to date
			// while an import has not finished.
			if exitCode && (!s.IsUpToDate || len(imports) > 0) {
				return exitError{exitPending}
			}
			return nil
		},
	}
	jsonFlag(c)
	c.Flags().BoolVar(&exitCode, "exit-code", false, "exit 3 when the schema is not up to date or an import has not finished")
	c.Flags().BoolVar(&all, "all", false, fmt.Sprintf("list every applied migration, not only the %d most recent (--json always lists all)", recentApplied))
	return c
}

// printImports says which imports into the database did not finish
// (ferry status; ferry remote status, from the service's document).
func (a *app) printImports(imports []api.ImportInProgress) {
	for _, u := range imports {
		state := fmt.Sprintf("%d tables loaded", len(u.TablesLoaded))
		if len(u.TablesLoaded) == 1 {
			state = "1 table loaded"
		}
		if u.Verified {
			state = "loaded and verified; the final migrations are left"
		}
		if u.ValueRefused || u.VerificationFailed {
			// No run finishes it: the advice is the document's (older
			// services' documents have none: what it was before).
			advice := u.Advice
			if advice == "" && u.ValueRefused {
				advice = "its load stopped at a value the target cannot take, which running it again meets too, so it cannot be finished: drop this database, create it empty, and import again once the value or the column is changed"
			} else if advice == "" {
				advice = "its verification found the rows it loaded differ from the export's, and it cannot be finished: drop this database, create it empty, and import again (`ferry export verify` checks the export first)"
			}
			if u.Copy {
				a.printf("Copy failed:         %s: %s\n", u.ExportID, advice)
			} else {
				a.printf("Import failed:       export %s: %s\n", u.ExportID, advice)
			}
			continue
		}
		if u.Copy {
			a.printf("Copy in progress:    %s (%s): the data is incomplete until it finishes; if no copy is running, it was cut short and cannot be finished: drop this database, create it empty, and run the copy again\n", u.ExportID, state)
			continue
		}
		command := u.Command
		if command == "" {
			command = "ferry import --from STORE/" + u.ExportID // an import by a ferry that did not record it
		}
		again := "`" + command + "` again"
		if u.KeyEnv != "" {
			again += " with " + u.KeyEnv + " set (as it was for the run that started it)"
		}
		if u.ExportDamaged {
			from := "STORE/" + u.ExportID
			if u.From != "" {
				from = u.From
			}
			a.printf("Import stopped:      export %s (%s): it stopped at a chunk of the export that is missing or damaged (`ferry export verify %s` names every one): restore the export's objects from a copy of the store and run %s, or drop this database, create it empty, and import a new export\n", u.ExportID, state, transfer.ShellQuote(from), again)
			continue
		}
		a.printf("Import in progress:  export %s (%s): the data is incomplete until it finishes; if no import is running, run %s\n", u.ExportID, state, again)
	}
}

// unfinishedWhat names the unfinished imports' kind for the up-to-date
// line: "an import", "a copy", or "" when there is none.
func unfinishedWhat(imports []api.ImportInProgress) string {
	switch {
	case len(imports) == 0:
		return ""
	case !slices.ContainsFunc(imports, func(u api.ImportInProgress) bool { return !u.Copy }):
		return "a copy"
	}
	return "an import"
}

// printStatus prints s; importing is unfinishedWhat of the imports into
// the database (printImports says which).
func (a *app) printStatus(dbURL string, s *migrate.Status, importing string) {
	w := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Database:\t%s (%s)\n", dbURL, s.Dialect)
	fmt.Fprintf(w, "History table:\t%s\n", s.HistoryTable)
	fmt.Fprintf(w, "Current version:\t%d\n", s.CurrentVersion)
	fmt.Fprintf(w, "Latest version:\t%d\n", s.LatestVersion)
	// A running migration whose process holds the lock is in progress,
	// not broken.
	var running, broken []migrate.Failure
	for _, f := range s.Failed {
		if f.State == migrate.StateRunning {
			running = append(running, f)
		} else {
			broken = append(broken, f)
		}
	}
	upToDate := "yes"
	switch {
	case len(broken) > 0:
		upToDate = fmt.Sprintf("no (%d failed, %d pending)", len(broken), len(s.Pending))
	case len(running) > 0:
		upToDate = fmt.Sprintf("no (migrating now: %d running, %d pending)", len(running), len(s.Pending))
	case importing != "": // its last migrations may be pending: the import runs them
		upToDate = fmt.Sprintf("no (%s has not finished; %d pending)", importing, len(s.Pending))
		if len(s.Pending) == 0 {
			upToDate = fmt.Sprintf("no (%s has not finished)", importing)
		}
	case len(s.Pending) > 0:
		upToDate = fmt.Sprintf("no (%d pending)", len(s.Pending))
	}
	fmt.Fprintf(w, "Up to date:\t%s\n", upToDate)
	fmt.Fprintf(w, "Migration lock:\t%s\n", s.Lock)
	w.Flush()

	if len(s.Applied) > 0 {
		applied := s.Applied
		if len(applied) < s.AppliedCount {
			a.printf("\nApplied (the %d most recent of %d; --all lists every one):\n", len(applied), s.AppliedCount)
		} else {
			a.printf("\nApplied:\n")
		}
		w = tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "  VERSION\tNAME\tAPPLIED AT (UTC)\tDURATION\tBY\tHOW\n")
		for _, m := range applied {
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s\t%s\n", m.Version, m.Name, m.AppliedAt.Format(time.DateTime),
				fmtDuration(m.Duration), m.AppliedBy, m.Operation)
		}
		w.Flush()
	}
	if len(s.PendingMigrations) > 0 {
		a.printf("\nPending:\n")
		w = tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
		for _, p := range s.PendingMigrations {
			fmt.Fprintf(w, "  %d\t%s\t%s\n", p.Version, p.Name, p.File)
			if p.LastError != "" {
				fmt.Fprintf(w, "  \t  last attempt failed and was rolled back: %s\n", p.LastError)
			}
		}
		w.Flush()
	}
	for _, f := range running {
		a.printf("\nIn progress:\n  %d %s: running", f.Version, f.Name)
		if f.Statement > 0 {
			a.printf(" statement %d", f.Statement)
			if f.File != "" {
				a.printf(" (%s:%d)", f.File, f.Line)
			}
		}
		a.printf(", by %s since %s\n", f.AppliedBy, f.At.Format(time.RFC3339))
	}
	if len(broken) > 0 {
		a.printf("\nNeeds repair:\n")
		for _, f := range broken {
			a.printf("  %d %s: %s", f.Version, f.Name, f.State)
			if f.Statement > 0 {
				a.printf(" at statement %d", f.Statement)
				if f.File != "" {
					a.printf(" (%s:%d)", f.File, f.Line)
				}
			}
			a.printf(", by %s at %s\n", f.AppliedBy, f.At.Format(time.RFC3339))
			if f.Error != "" {
				a.printf("    error: %s\n", f.Error)
			}
			a.printf("    known: it ran without a transaction, so %s\n", migrate.TookEffect(f))
			if hint := advice.Repair(f); hint != "" {
				a.printf("    next: %s\n", hint)
			}
		}
	}
	if len(s.Missing) > 0 {
		a.printf("\nApplied but missing their file:\n")
		for _, m := range s.Missing {
			a.printf("  %d %s\n", m.Version, m.Name)
		}
	}
}

// printFleet lists the live instances per release.
func (a *app) printFleet(fleet []release.ReleaseInstances) {
	if len(fleet) == 0 {
		a.printf("\nLive instances: none registered\n")
		return
	}
	a.printf("\nLive instances:\n")
	w := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "  RELEASE\tBUILT AGAINST\tHOST\tID\tPID\tSTARTED (UTC)\tLAST HEARTBEAT\n")
	for _, g := range fleet {
		for _, l := range g.Instances {
			fmt.Fprintf(w, "  %s\t%d\t%s\t%s\t%d\t%s\t%s ago\n", l.Release, l.Schema, l.Host, l.ID, l.PID,
				l.StartedAt.Format(time.DateTime), fmtDuration(l.SinceHeartbeat))
		}
	}
	w.Flush()
}
