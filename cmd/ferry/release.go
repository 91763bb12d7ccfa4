package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
	"github.com/ferrydb/ferry/server"
	"github.com/ferrydb/ferry/transfer"
)

// releasesFlag adds --releases to a command that reads the manifest.
func releasesFlag(c *cobra.Command) {
	c.Flags().String("releases", "", "release manifest file (env FERRY_RELEASES; default: the releases section of ferry.yaml)")
}

func (a *app) releaseCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "release",
		Short: "Inspect the release manifest: which releases can run on the database",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return usageErrorf("%s needs a subcommand: list (see `%s --help`)", c.CommandPath(), c.CommandPath())
		},
	}
	c.AddCommand(a.releaseListCmd())
	return group(c)
}

// releaseRow is one release in `ferry release list --json`.
type releaseRow struct {
	release.Release
	Compatible bool            `json:"compatible"`
	Newest     bool            `json:"newest_compatible"`
	Problem    release.Problem `json:"problem,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	// BreakingMigration is the contract migration that broke the release.
	BreakingMigration int64 `json:"breaking_migration,omitempty"`
	LiveInstances     int   `json:"live_instances"`
}

func (a *app) releaseListCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List every release, whether it can run on the database's schema, and why not",
		Long: `List every release of the manifest with the schema version it was built
against, the oldest it runs on, whether it is compatible with the database's
current schema version (and if not, why not and what to do), which release
is the newest compatible one (the one "ferry launch" starts), and how many
live instances each has in the fleet registry. While an import (ferry
import, ferry copy) into the database has not finished, it says so first
(imports_in_progress in --json, as in ferry status --json): launch and wait
refuse until it finishes. It exits 0 all the same, as ferry status does.

A release built against schema V runs on database version D when D is at
least its min_schema (default V) and no contract migration lies in (V, D].
See docs/releases.md.`,
		Example: "  ferry release list\n  ferry release list --json --releases deploy/releases.yaml",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			man, err := a.cfg.manifest()
			if err != nil {
				return err
			}
			if len(man.Releases) == 0 {
				return fmt.Errorf("no releases: add a releases section to %s, or pass --releases FILE (see docs/releases.md)", man.Source)
			}
			db, m, err := a.readMigrator(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := m.Check(); err != nil { // compatibility needs every contract flag
				return err
			}
			s, err := m.StatusWith(cmd.Context(), migrate.StatusOptions{Applied: -1})
			if err != nil {
				return err
			}
			live, err := release.Live(cmd.Context(), db, db.Dialect)
			if err != nil {
				return err
			}
			// The schema of an import that has not finished is there, its
			// data is not: launch and wait refuse it, so the listing says
			// so rather than show a release ready to start.
			unfinished, err := transfer.UnfinishedImports(cmd.Context(), db, m.Table())
			if err != nil {
				return err
			}
			counts := map[string]int{}
			for _, l := range live {
				counts[l.Release]++
			}
			newest, newestErr := man.NewestCompatible(release.DatabaseOf(s), m.Migrations())
			rows := []releaseRow{}
			for _, v := range man.Evaluate(release.DatabaseOf(s), m.Migrations()) {
				row := releaseRow{Release: v.Release, Compatible: v.OK, Problem: v.Problem, Reason: v.Reason, LiveInstances: counts[v.Release.Name]}
				row.Newest = newestErr == nil && v.Release.Name == newest.Name
				if v.Contract != nil {
					row.BreakingMigration = v.Contract.Version
				}
				rows = append(rows, row)
			}
			if a.json {
				doc := map[string]any{"database": db.URL.String(), "current_version": s.CurrentVersion, "manifest": man.Source, "releases": rows, "newest_compatible": nil}
				if newestErr == nil {
					doc["newest_compatible"] = newest.Name
				}
				// Ready: launch would start newest_compatible now; not while
				// an import's data is incomplete.
				doc["ready"] = newestErr == nil && len(unfinished) == 0
				if len(unfinished) > 0 { // as in ferry status --json
					doc["imports_in_progress"] = server.ImportsInProgress(unfinished)
				}
				return a.printJSON(doc)
			}
			a.printf("Database %s is at schema version %d (releases from %s)\n", db.URL, s.CurrentVersion, man.Source)
			once := ", once the import finishes"
			for _, u := range unfinished {
				label, what := "Import in progress:  ", "Import"
				if u.Copy {
					label, what, once = "Copy in progress:    ", "Copy", ", once the data is copied anew"
				}
				switch {
				case u.Stuck():
					label, once = fmt.Sprintf("%-21s", what+" failed:"), ", once the data is imported anew"
					a.printf("%s%s into the database cannot be finished, so its data is incomplete: ferry launch and ferry wait refuse it; %s\n", label, u.What(), u.Finish())
					continue
				case u.Damaged:
					label = "Import stopped:      "
				}
				a.printf("%s%s into the database has not finished, so its data is incomplete: ferry launch and ferry wait refuse until it finishes; %s\n", label, u.What(), u.IfCutShort())
			}
			a.printf("\n")
			w := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "RELEASE\tBUILT AGAINST\tRUNS ON\tCOMPATIBLE\tLIVE INSTANCES\n")
			for _, r := range rows {
				ok := "no"
				switch {
				case r.Newest:
					ok = "yes (newest)"
				case r.Compatible:
					ok = "yes"
				}
				if r.Compatible && len(unfinished) > 0 {
					ok += once
				}
				fmt.Fprintf(w, "%s\t%d\t%d and later\t%s\t%d\n", r.Name, r.Schema, r.Min(), ok, r.LiveInstances)
			}
			w.Flush()
			var why []string
			for _, r := range rows {
				if !r.Compatible {
					why = append(why, fmt.Sprintf("  %s: %s", r.Name, r.Reason))
				}
			}
			if len(why) > 0 {
				until := ""
				if len(unfinished) > 0 {
					until = " (ferry up and ferry launch refuse while the import is unfinished)"
				}
				a.printf("\nNot compatible%s:\n%s\n", until, strings.Join(why, "\n"))
			}
			return nil
		},
	}
	releasesFlag(c)
	jsonFlag(c)
	return c
}

func (a *app) launchCmd() *cobra.Command {
	var name, instanceID string
	var serve bool
	c := &cobra.Command{
		Use:   "launch [--release NAME] [-- ARGS...]",
		Short: "Start the newest release compatible with the database's schema, and register it in the fleet",
		Long: `Read the database's schema version, pick the newest release of the manifest
that can run on it (or check the one named with --release), and run its
command as a child process with ARGS appended. For a release without a
command, ARGS are the command.

While the child runs it is registered in the fleet registry (table
ferry_instances) with a heartbeat, so that "ferry up" refuses contract
migrations that would break it; it is deregistered when it exits.

The child gets the database URL in FERRY_DATABASE_URL (never on its command
line), FERRY_SCHEMA when a schema is set, and FERRY_RELEASE,
FERRY_RELEASE_SCHEMA and FERRY_INSTANCE_ID. SIGINT, SIGTERM, SIGHUP and
SIGQUIT are forwarded to it; ferry launch exits with its exit code (128 plus
the signal number when a signal killed it), so it works as a container's
entry point.

--serve also serves the migration API in the same process, with the flags
of "ferry serve" (--listen, --token-file, --read-only, --compat), until the
child exits.

Exit codes: the child's; 1 when no release could be started (none is
compatible, the command is missing); 2 for a usage error.`,
		Example: "  ferry launch\n  ferry launch --release v2 -- --port 8080\n  ferry launch --instance-id \"$POD_NAME\" -- --port 8080",
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); len(args) > 0 && dash != 0 {
				return usageErrorf("put the release's arguments after --, as in `ferry launch -- %s`", strings.Join(args, " "))
			}
			if a.cfg.InstanceTTL < 2*a.cfg.Heartbeat {
				return usageErrorf("--instance-ttl %s must be at least twice --heartbeat %s, so that one late heartbeat does not make the instance look gone", a.cfg.InstanceTTL, a.cfg.Heartbeat)
			}
			if !cmd.Flags().Changed("instance-id") {
				instanceID = a.getenv("FERRY_INSTANCE_ID")
			}
			man, err := a.cfg.manifest()
			if err != nil {
				return err
			}
			db, m, err := a.migrator(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			// No release starts on the incomplete data of an import.
			imports, err := transfer.UnfinishedImports(cmd.Context(), db, m.Table())
			if err != nil {
				return err
			}
			if len(imports) > 0 {
				return fmt.Errorf("%s into %s %s, so its data is incomplete: no release starts on it (ferry status shows it; %s)", imports[0].What(), db.URL, imports[0].Standing(), imports[0].IfCutShort())
			}
			// --serve runs the migration service beside the child, as the
			// Metaflow image runs its migration service beside the selected
			// metadata service; it stops when the child exits.
			var sidecar func(context.Context) error
			if serve {
				svc, err := a.prepareService(cmd)
				if err != nil {
					return err
				}
				defer svc.close()
				sidecar = svc.serve
			}
			// From here on signals go to the child; ferry exits when it does.
			a.detachSignals()
			res, err := release.Launch(cmd.Context(), m, release.LaunchOptions{
				Manifest: man,
				Release:  name,
				Args:     args,
				Env:      childEnv(db.URL),
				Stdin:    os.Stdin,
				Stdout:   a.stdout,
				Stderr:   a.stderr,
				Signals:  release.DefaultSignals(),
				DB:       db.DB,
				Instance: release.Instance{ID: instanceID},
				Registry: []release.Option{release.WithHeartbeat(a.cfg.Heartbeat), release.WithTTL(a.cfg.InstanceTTL), release.WithLogger(a.log)},
				Log:      a.log,
				Sidecar:  sidecar,
				Started: func(r release.Release, inst release.Instance, pid int) {
					a.eprintf("ferry: launched release %s as pid %d, instance %s\n", r, pid, inst.ID)
				},
			})
			if err != nil {
				return err
			}
			if res.ExitCode != 0 {
				return exitError{res.ExitCode}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&serve, "serve", false, "also serve the migration API (as ferry serve, with its flags) while the release runs")
	serviceFlags(c)
	c.Flags().StringVar(&name, "release", "", "run this release (default: the newest compatible one)")
	c.Flags().StringVar(&instanceID, "instance-id", "", "instance id in the fleet registry, at most 64 characters (env FERRY_INSTANCE_ID; default: random)")
	c.Flags().Duration("heartbeat", release.DefaultHeartbeat, "how often the instance's heartbeat is written (env FERRY_HEARTBEAT)")
	c.Flags().Duration("instance-ttl", release.DefaultTTL, "how long the instance counts as live without a heartbeat (env FERRY_INSTANCE_TTL)")
	releasesFlag(c)
	return c
}

// childEnv is this process's environment plus the database for the child.
// The URL with its password goes only into the environment.
func childEnv(u *database.URL) []string {
	env := append(os.Environ(), "FERRY_DATABASE_URL="+u.WithPassword())
	if u.Schema != "" {
		env = append(env, "FERRY_SCHEMA="+u.Schema)
	}
	return env
}

func (a *app) waitCmd() *cobra.Command {
	var name string
	var version int64
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "wait (--release NAME | --version V) [--timeout D]",
		Short: "Block until the database can run a release (or reaches a version); for init containers and deploy pipelines",
		Long: `Block until the database's schema can run the release named with --release
(by the compatibility rule, see "ferry release list"), or until it is at
version V or later (--version). Both are range checks: a release waiting on a
newer but still compatible schema is ready at once.

ferry checks with exponential backoff and jitter (100ms up to 2s) until
--timeout (default 10m; 0 waits for ever). A database that cannot be reached
yet is waited for too, saying why, and so is one whose import (ferry import,
ferry copy) has not finished: its schema is there, its data is not. The
timeout is a hard bound: it cuts a check in flight, a connection attempt
included.

Exit codes: 0 ready; 1 on timeout, with the current version, the version
needed and the migrations not applied yet; 1 at once, without waiting, when
the release can never run on this database (a contract migration already
broke it, or a version is unknown); 2 for a usage error.`,
		Example: "  ferry wait --release v2 --timeout 5m\n  ferry wait --version 20261101120000",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			byRelease, byVersion := cmd.Flags().Changed("release"), cmd.Flags().Changed("version")
			if byRelease == byVersion {
				return usageErrorf("say what to wait for: --release NAME or --version V (one of them)")
			}
			if timeout < 0 {
				return usageErrorf("--timeout must not be negative")
			}
			var r release.Release
			if byRelease {
				man, err := a.cfg.manifest()
				if err != nil {
					return err
				}
				if r, err = man.Release(name); err != nil {
					return err
				}
			}
			// No connection first: a database that is not up yet is
			// waited for like a schema that is not there yet.
			db, m, err := a.newMigrator(cmd.Context(), connectLater)
			if err != nil {
				return err
			}
			defer db.Close()
			target := fmt.Sprintf("schema version %d", version)
			if byRelease {
				target = "release " + r.String()
			}
			limit := "no timeout"
			if timeout > 0 {
				limit = "timeout " + timeout.String()
			}
			said := false // the import that blocks it was named
			opts := release.WaitOptions{Timeout: timeout, Waiting: func(s *migrate.Status) {
				if !said {
					a.eprintf("ferry: waiting for %s; the database is at version %d (%s)\n", target, s.CurrentVersion, limit)
				}
			}, Retrying: func(err error) {
				a.eprintf("ferry: waiting for %s; the database cannot be read yet, retrying (%s): %v\n", target, limit, err)
			}}
			// The schema of an import that has not finished is there, its
			// data is not (yet): not ready, as ferry launch refuses it.
			opts.Blocked = func(ctx context.Context) (string, error) {
				imports, err := transfer.UnfinishedImports(ctx, db, m.Table())
				if err != nil || len(imports) == 0 {
					return "", err
				}
				for _, u := range imports {
					if u.Stuck() {
						return "", fmt.Errorf("%w: %s into it cannot be finished: %s", release.ErrNeverReady, u.What(), u.Finish())
					}
				}
				why := fmt.Sprintf("%s into it has not finished, so its data is incomplete (ferry status shows it; %s)", imports[0].What(), imports[0].IfCutShort())
				if !said {
					said = true
					a.eprintf("ferry: waiting for %s: %s (%s)\n", target, why, limit)
				}
				return why, nil
			}
			var res *release.WaitResult
			if byRelease {
				res, err = release.WaitForRelease(cmd.Context(), m, r, opts)
			} else {
				res, err = release.WaitForVersion(cmd.Context(), m, version, opts)
			}
			if a.json {
				doc := map[string]any{"ready": err == nil, "target": target}
				if res != nil {
					doc["current_version"], doc["waited_ms"] = res.Version, res.Waited.Milliseconds()
				}
				return a.printOutcome(doc, err)
			}
			if err != nil {
				return err
			}
			a.printf("ready: the database is at version %d; %s can run (waited %s)\n", res.Version, target, fmtDuration(res.Waited))
			return nil
		},
	}
	c.Flags().StringVar(&name, "release", "", "wait until this release can run")
	int64Flag(c.Flags(), &version, "version", "", 0, "wait until the schema is at this version or later")
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (0: never)")
	releasesFlag(c)
	jsonFlag(c)
	return c
}
