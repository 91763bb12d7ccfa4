package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server/api"
)

var (
	lintFormats  = []string{"text", "json", "github", "sarif"}
	lintFailOns  = []string{"error", "warning", "info", "never"}
	lintDocsBase = "https://github.com/ferrydb/ferry/blob/main/docs/lint"
)

func (a *app) lintCmd() *cobra.Command {
	var format, failOn, target string
	var pending, trace, listRules bool
	var startAfter int64
	c := &cobra.Command{
		Use:   "lint",
		Short: "Check migrations for changes that lock busy tables or break the running release",
		Long: `Check the migrations' SQL for changes that would stall production (a lock
that blocks reads or writes while a table is rewritten, scanned or indexed)
or break the release still running during a rolling deploy (a renamed or
dropped column, a NOT NULL column its INSERTs do not fill). Each finding
names the rule, the file, line and column, what happens, and the safe
alternative; docs/lint has a page per rule.

The rules depend on the server version: --target "postgres 15" (or
lint.target in ferry.yaml); with --pending or --trace ferry reads it from
the database. Without either, lint assumes the oldest version each engine
still supports (postgres 14, mysql 8.4, sqlite 3.35).

By default every migration is checked (after lint.start_after in
ferry.yaml); --pending checks only those not applied to --database.
Migrations before the checked ones still teach lint the schema: which
tables exist and the current type of each column.

--trace applies each pending migration, statement by statement, to a
scratch database on the same server (created, and dropped after, with the
schema the applied migrations build), never to the database itself, and
reports what the server did: on PostgreSQL the locks each statement took on
existing tables (pg_locks), the tables it rewrote (relfilenode) and scanned
(pg_stat_xact_user_tables), rolled back after; on MySQL/MariaDB the
cheapest ALGORITHM/LOCK each ALTER is accepted with; on SQLite the tables
rebuilt. Where the trace and the static rules disagree, the finding
trace-differs says so.

Suppress a finding with a comment on the line before the statement:
  -- ferry:lint-ignore RULE[,RULE] reason
or for the whole file: -- ferry:lint-ignore-file RULE reason.

Exit codes: 0 no finding at or above --fail-on, 1 findings at or above it
(or an error), 2 usage.`,
		Example: "  ferry lint\n  ferry lint --target 'postgres 12' --format github\n  ferry lint --pending --database postgres://app@db/app\n  ferry lint --trace --database postgres://app@db/app\n  ferry lint --rules",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOneOf(format, lintFormats...); err != nil {
				return usageErrorf("--format %v", err)
			}
			if a.json {
				if cmd.Flags().Changed("format") && format != "json" {
					return usageErrorf("--json and --format %s: choose one", format)
				}
				format = "json"
			}
			if listRules {
				a.json = format == "json"
				return a.printRules()
			}
			if !cmd.Flags().Changed("fail-on") && a.cfg.Lint.FailOn != "" {
				failOn = a.cfg.Lint.FailOn
			}
			if err := checkOneOf(failOn, lintFailOns...); err != nil {
				return usageErrorf("--fail-on %v", err)
			}
			u, err := a.databaseURL()
			if err != nil {
				return err
			}
			kind := u.Kind
			if a.cfg.databaseIsDefault() && (target != "" || a.cfg.Lint.Target != "") && !pending && !trace {
				// No database configured: a static lint takes its dialect
				// from the target (ferry lint --target 'postgres 12' in CI).
				t := target
				if t == "" {
					t = a.cfg.Lint.Target
				}
				if pt, err := lint.ParseTarget(t); err == nil {
					kind = pt.Engine
					if kind == "mariadb" {
						kind = database.MySQL
					}
				}
			}
			cfg, err := a.cfg.lintConfig(kind, target)
			if err != nil {
				return usageError{err}
			}
			if cmd.Flags().Changed("start-after") {
				cfg.StartAfter = startAfter
			}
			ctx := cmd.Context()
			var rep *lint.Report
			if pending || trace {
				db, m, err := a.readMigrator(ctx)
				if err != nil {
					return err
				}
				defer db.Close()
				if err := m.Check(); err != nil {
					return err // a file lint cannot read is never a pass
				}
				st, err := m.Status(ctx)
				if err != nil {
					return err
				}
				if target == "" && a.cfg.Lint.Target == "" {
					if cfg.Target, err = lint.ServerTarget(ctx, db.DB, u.Kind); err != nil {
						return err
					}
				}
				cfg.Only = map[int64]bool{}
				for _, v := range st.Pending {
					cfg.Only[v] = true
				}
				if rep, err = lint.Check(m.Migrations(), cfg); err != nil {
					return err
				}
				if trace {
					if err := lint.Trace(ctx, rep, lint.TraceSource{DB: db, Migrations: m.Migrations(), Applied: applied(st), Schema: a.cfg.Schema, Log: a.log}, cfg); err != nil {
						return err
					}
				}
			} else {
				if kind != u.Kind {
					// The dialect comes from the target: only its syntax
					// is needed, and no database is opened.
					if u, err = database.Parse(map[string]string{database.Postgres: "postgres://lint@localhost/lint", database.MySQL: "mysql://lint@localhost/lint"}[kind]); err != nil {
						return err
					}
				}
				db, err := database.OpenURL(ctx, u, database.Options{Schema: a.cfg.Schema, NoPing: true, NoCreate: true, Logger: a.log})
				if err != nil {
					return err
				}
				defer db.Close()
				m, err := migrate.New(db.DB, db.Dialect, migrate.WithDir(a.cfg.Dir), migrate.WithTable(a.cfg.Table))
				if err != nil {
					return err
				}
				if err := m.Check(); err != nil {
					return err // a file lint cannot read is never a pass
				}
				if rep, err = lint.Check(m.Migrations(), cfg); err != nil {
					return err
				}
			}
			if format == "github" || format == "sarif" {
				relativePaths(rep)
			}
			switch format {
			case "json":
				err = a.printJSON(api.FromLintReport(rep))
			case "github":
				err = lint.WriteGitHub(a.stdout, rep)
				if err == nil {
					a.eprintf("%s\n", rep.Summary())
				}
			case "sarif":
				err = lint.WriteSARIF(a.stdout, rep, version, lintDocsBase)
			default:
				err = lint.WriteText(a.stdout, rep)
			}
			if err != nil {
				return err
			}
			if failOn != "never" {
				sev, _ := lint.ParseSeverity(failOn)
				if rep.Count(sev) > 0 {
					return exitError{exitFailure}
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "text", "output: text, json, github (workflow annotations) or sarif (code scanning)")
	c.Flags().StringVar(&failOn, "fail-on", "error", "exit 1 when a finding is at least this severe: error, warning, info or never (ferry.yaml lint.fail_on)")
	c.Flags().StringVar(&target, "target", "", `server the rules assume, e.g. "postgres 15", "mysql 8.0.29", "mariadb 10.11" (ferry.yaml lint.target; default: read from the database with --pending/--trace, else the oldest supported version)`)
	c.Flags().BoolVar(&pending, "pending", false, "check only the migrations not yet applied to the database")
	c.Flags().BoolVar(&trace, "trace", false, "also apply the pending migrations to a scratch copy of the schema on the same server and report the locks, rewrites and scans observed (implies --pending)")
	c.Flags().BoolVar(&listRules, "rules", false, "list the rules and exit")
	int64Flag(c.Flags(), &startAfter, "start-after", "", 0, "check only migrations after this version (ferry.yaml lint.start_after)")
	jsonFlag(c)
	return c
}

// relativePaths makes absolute file names relative to the working
// directory, which CI annotations and code scanning need to attach
// findings to the repository's files.
func relativePaths(rep *lint.Report) {
	wd, err := os.Getwd()
	if err != nil {
		return
	}
	for i, f := range rep.Findings {
		if filepath.IsAbs(f.File) {
			if r, err := filepath.Rel(wd, f.File); err == nil && !strings.HasPrefix(r, "..") {
				rep.Findings[i].File = r
			}
		}
	}
}

// applied returns the applied versions of a status.
func applied(st *migrate.Status) map[int64]bool {
	out := make(map[int64]bool, len(st.Applied))
	for _, a := range st.Applied {
		out[a.Version] = true
	}
	return out
}

func (a *app) printRules() error {
	rs := lint.Rules()
	if a.json {
		type rule struct {
			ID       string   `json:"id"`
			Severity string   `json:"severity"`
			Dialects []string `json:"dialects"`
			Summary  string   `json:"summary"`
			Doc      string   `json:"doc"`
		}
		var out []rule
		for _, r := range rs {
			out = append(out, rule{r.ID, r.Severity.String(), r.Dialects, r.Summary, r.DocPath()})
		}
		return a.printJSON(out)
	}
	tw := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSEVERITY\tDIALECTS\tCATCHES")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Severity, strings.Join(r.Dialects, ","), r.Summary)
	}
	return tw.Flush()
}

// lintGate sets p.Check to lint the pending migrations as --lint says,
// and returns where the report will be once the check has run.
func (a *app) lintGate(p *migrate.Pipeline, db *database.DB) (**lint.Report, error) {
	rep := new(*lint.Report)
	if a.cfg.LintMode == "off" {
		return rep, nil
	}
	cfg, err := a.cfg.lintConfig(db.URL.Kind, "")
	if err != nil {
		return nil, usageError{err}
	}
	var failOn lint.Severity
	if a.cfg.LintMode == "error" {
		failOn = lint.Error
	}
	p.Check = lint.Gate(cfg, failOn, func(r *lint.Report) {
		*rep = r
		if len(r.Findings) > 0 && !a.json && !a.serving && failOn == 0 {
			a.eprintf("ferry: lint of the pending migrations (--lint warn: applying anyway; --lint error refuses):\n")
			lint.WriteText(a.stderr, r)
		}
	})
	return rep, nil
}

// lintPending lints the pending migrations for a status document; nil
// when none is pending or lint is off.
func (a *app) lintPending(ctx context.Context, db *database.DB, m *migrate.Migrator, pending []int64) (*lint.Report, error) {
	if len(pending) == 0 || a.cfg.LintMode == "off" {
		return nil, nil
	}
	// Status must answer even when lint cannot: a lint problem is a
	// warning here, not a failed status.
	cfg, err := a.cfg.lintConfig(db.URL.Kind, "")
	if err == nil && cfg.Target.Engine == "" {
		cfg.Target, err = lint.ServerTarget(ctx, db.DB, db.URL.Kind)
	}
	if err != nil {
		a.log.Warn("lint of the pending migrations skipped", "error", err)
		return nil, nil
	}
	cfg.Only = map[int64]bool{}
	for _, v := range pending {
		cfg.Only[v] = true
	}
	rep, err := lint.Check(m.Migrations(), cfg)
	if err != nil {
		a.log.Warn("lint of the pending migrations skipped", "error", err)
		return nil, nil
	}
	return rep, nil
}

// lintPlan shows, after a dry run's plan, what the real run's lint would
// say, and fails as --lint error would.
func (a *app) lintPlan(ctx context.Context, db *database.DB, m *migrate.Migrator, plan *migrate.Plan) error {
	if a.json || len(plan.Migrations) == 0 {
		return nil
	}
	var versions []int64
	for _, mig := range plan.Migrations {
		versions = append(versions, mig.Version)
	}
	rep, err := a.lintPending(ctx, db, m, versions)
	if err != nil || rep == nil || len(rep.Findings) == 0 {
		return err
	}
	a.eprintf("ferry: lint of these migrations (--lint %s):\n", a.cfg.LintMode)
	if err := lint.WriteText(a.stderr, rep); err != nil {
		return err
	}
	if a.cfg.LintMode == "error" && rep.Count(lint.Error) > 0 {
		a.eprintf("ferry: with --lint error, ferry up would refuse these migrations and apply nothing\n")
		return exitError{exitFailure}
	}
	return nil
}
