package main

import (
	"time"

	"errors"
	"fmt"
	"github.com/ferrydb/ferry/server/api"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/client"
	"github.com/ferrydb/ferry/server"
)

func (a *app) remoteCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "remote",
		Short: "Ask a migration service (ferry serve, or Metaflow's) for status or an upgrade",
		Long: `Talk to a running migration service over HTTP: ferry serve, or the Metaflow
metadata service's migration service. The client retries with backoff while
the service restarts, and never sends an upgrade twice: if the answer is
lost, it reads the outcome from the status.

The service's URL comes from --base-url or FERRY_BASE_URL; a password in it
(http://ferry:TOKEN@host:8082) is used as the token. Otherwise the token
comes from FERRY_TOKEN, --token-file, or --token (visible to other users in
the process list: prefer the others).`,
	}
	pf := c.PersistentFlags()
	pf.String("base-url", "", "the migration service, e.g. http://migrations.internal:8082 (env FERRY_BASE_URL)")
	pf.String("token-file", "", "file holding the token (env FERRY_TOKEN_FILE)")
	pf.String("token", "", "the token (prefer FERRY_TOKEN or --token-file)")
	pf.String("api", "auto", "which routes to use: auto, v1 (ferry) or metaflow")
	c.AddCommand(a.remoteStatusCmd(), a.remoteUpgradeCmd(), a.remoteHistoryCmd())
	return group(c)
}

// remoteClient builds the client from flags and environment.
func (a *app) remoteClient(cmd *cobra.Command) (*client.Client, error) {
	if a.cfg.BaseURL == "" {
		return nil, usageErrorf("say which service: --base-url http://host:8082 (or FERRY_BASE_URL)")
	}
	opts := []client.Option{client.WithLogger(a.log)}
	apiMode, _ := cmd.Flags().GetString("api")
	opts = append(opts, client.WithAPI(client.API(apiMode)))
	token, _ := cmd.Flags().GetString("token")
	if token == "" {
		token = a.getenv("FERRY_TOKEN")
	}
	if token == "" && a.cfg.TokenFile != "" {
		toks, err := server.LoadTokens(a.cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		token = toks[0].Secret
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	cl, err := client.New(a.cfg.BaseURL, opts...)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return cl, nil
}

func (a *app) remoteStatusCmd() *cobra.Command {
	var exitCode bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the service's schema status",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.remoteClient(cmd)
			if err != nil {
				return err
			}
			s, err := cl.Summary(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(s); err != nil {
					return err
				}
			} else {
				a.printSummary(cl.BaseURL(), s)
			}
			if exitCode && !s.IsUpToDate {
				return exitError{exitPending}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&exitCode, "exit-code", false, "exit 3 when the schema is not up to date or an import into the database has not finished")
	jsonFlag(c)
	return c
}

func (a *app) remoteHistoryCmd() *cobra.Command {
	var after int64
	var limit int
	var all bool
	c := &cobra.Command{
		Use:   "history",
		Short: "Show the service's history table, a page at a time",
		Long: `Show rows of the service's history table (ferry's service only), oldest
first: up to --limit rows after the row with id --after. The last line says
how to get the next page; --all pages through everything.`,
		Example: "  ferry remote history --base-url http://ferry:8082\n  ferry remote history --after 1200 --limit 50\n  ferry remote history --all --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usageErrorf("--limit %d: want 1 to 1000", limit)
			}
			cl, err := a.remoteClient(cmd)
			if err != nil {
				return err
			}
			var rows []api.HistoryRow
			for {
				page, err := cl.HistoryPage(cmd.Context(), after, limit)
				if err != nil {
					return err
				}
				// A service older than paging answers every row whatever
				// was asked: take what it sent, once.
				if len(page) > limit || len(page) > 0 && page[len(page)-1].ID <= after {
					return fmt.Errorf("%s does not page its history (it answered %d rows for --limit %d after id %d): it predates /v1/history?after=&limit=; upgrade it, or read GET /v1/history whole", cl.BaseURL(), len(page), limit, after)
				}
				rows = append(rows, page...)
				if len(page) > 0 {
					after = page[len(page)-1].ID
				}
				if !all || len(page) < limit {
					break
				}
			}
			if a.json {
				return a.printJSON(nonNilRows(rows))
			}
			for _, r := range rows {
				line := fmt.Sprintf("%6d  %d %s  %s %s  %s  %dms  %s", r.ID, r.Version, r.Name, r.Operation, r.State, r.AppliedAt.Format(time.RFC3339), r.DurationMS, r.AppliedBy)
				if r.Error != "" {
					line += "  error: " + r.Error
				}
				a.printf("%s\n", line)
			}
			if !all && len(rows) == limit {
				a.printf("(more: ferry remote history --base-url %s --after %d --limit %d)\n", cl.BaseURL(), after, limit)
			}
			return nil
		},
	}
	int64Flag(c.Flags(), &after, "after", "", 0, "show rows after the one with this id")
	c.Flags().IntVar(&limit, "limit", 100, "rows per page, 1 to 1000")
	c.Flags().BoolVar(&all, "all", false, "page through the whole history")
	jsonFlag(c)
	return c
}

func nonNilRows(r []api.HistoryRow) []api.HistoryRow {
	if r == nil {
		return []api.HistoryRow{}
	}
	return r
}

func (a *app) printSummary(base string, s *client.Summary) {
	a.printf("Service:          %s\n", base)
	a.printf("Current version:  %s\n", s.CurrentVersion)
	var why []string
	if len(s.ImportsInProgress) > 0 {
		why = append(why, unfinishedWhat(s.ImportsInProgress)+" has not finished")
	}
	if s.ImportsError != "" {
		why = append(why, "whether an import has not finished is unknown")
	}
	if len(s.Unapplied) > 0 {
		why = append(why, "unapplied: "+strings.Join(s.Unapplied, ", "))
	}
	up := "yes"
	if !s.IsUpToDate {
		up = "no"
		if len(why) > 0 {
			up += " (" + strings.Join(why, "; ") + ")"
		}
	}
	a.printf("Up to date:       %s\n", up)
	a.printf("In progress:      %v\n", s.MigrationInProgress)
	a.printImports(s.ImportsInProgress)
	if s.ImportsError != "" {
		a.printf("Imports:          unknown: %s\n", s.ImportsError)
	}
}

func (a *app) remoteUpgradeCmd() *cobra.Command {
	var to int64
	c := &cobra.Command{
		Use:   "upgrade",
		Short: "Ask the service to apply pending migrations; exit 1 unless the schema is then up to date",
		Long: `Ask the service to apply pending migrations (up to --to with ferry's /v1
API). Prints the status before and after. Exits 1 when the upgrade failed or
the schema is not up to date afterwards (with --to: not at that version or
later).`,
		Example: "  FERRY_TOKEN=... ferry remote upgrade --base-url http://migrations:8082\n  ferry remote upgrade --base-url http://ferry:$TOKEN@migrations:8082 --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("to") && to <= 0 {
				return usageErrorf("--to %d: give the version of a migration (leave --to out to apply every pending migration)", to)
			}
			cl, err := a.remoteClient(cmd)
			if err != nil {
				return err
			}
			o, err := cl.Upgrade(cmd.Context(), to)
			if err != nil {
				var he *client.HTTPError
				if errors.As(err, &he) && he.Code == 404 {
					return fmt.Errorf("%w (is the service read-only?)", err)
				}
				if errors.As(err, &he) && he.Code == 400 {
					return usageError{err} // the service refused the request itself (--to)
				}
				return err
			}
			if a.json {
				if err := a.printJSON(o); err != nil {
					return err
				}
			} else {
				a.printf("%s", o.Result)
				if o.Uncertain {
					a.printf(" (the answer was lost; outcome read from the status)")
				}
				a.printf("\n")
				if o.Before != nil && o.After != nil {
					a.printf("version %s -> %s, applied %d\n", o.Before.CurrentVersion, o.After.CurrentVersion, o.Applied)
				}
				if o.BackupID != "" {
					a.printf("backup taken before the upgrade: %s\n", o.BackupID)
				}
			}
			if !o.OK() {
				if o.Error != "" {
					a.eprintf("ferry: %s\n", o.Error)
				} else if o.After != nil && to > 0 {
					a.eprintf("ferry: the schema is at version %s after the upgrade, below --to %d\n", o.After.CurrentVersion, to)
				} else if o.After != nil && !o.After.IsUpToDate {
					a.eprintf("ferry: the schema is not up to date after the upgrade (unapplied: %s)\n", strings.Join(o.After.Unapplied, ", "))
				}
				return exitError{exitFailure}
			}
			return nil
		},
	}
	int64Flag(c.Flags(), &to, "to", "", 0, "apply migrations up to this version (ferry's /v1 API only)")
	jsonFlag(c)
	return c
}
