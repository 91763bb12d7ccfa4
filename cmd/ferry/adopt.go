package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/compat"
)

func (a *app) adoptCmd() *cobra.Command {
	var from, table string
	c := &cobra.Command{
		Use:   "adopt --from goose|golang-migrate",
		Short: "Take over a database that goose or golang-migrate managed, without re-running anything",
		Long: `Record the migrations that goose (table goose_db_version) or golang-migrate
(table schema_migrations) applied in ferry's history, so that ferry takes
the database over without running them again. Point --dir at the same
migration files: ferry reads goose and golang-migrate files as they are.

adopt is idempotent: versions ferry already has are skipped. A migration
golang-migrate left dirty is recorded as failed, to be resolved with
"ferry repair".

To keep the tool's table up to date as ferry applies migrations (so that the
tool, or a service that reads its table, still sees the right version), run
ferry with --history goose or --history golang-migrate (ferry serve
--compat metaflow does this for goose).`,
		Example: "  ferry adopt --from goose --dir db/migrations\n  ferry status\n  ferry up --history goose",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageErrorf("say which tool managed the database: --from goose or --from golang-migrate")
			}
			ctx := cmd.Context()
			db, m, err := a.migrator(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			t, err := compat.New(from, db.Dialect, table)
			if err != nil {
				return usageErrorf("%v", err)
			}
			if err := refuseDuringImport(ctx, db, m, "adopt", "the history"); err != nil {
				return err
			}
			list, err := t.Read(ctx, db, m.Migrations())
			if errors.Is(err, compat.ErrNoTable) {
				return fmt.Errorf("%s has no table %s in %s: nothing to adopt (is --from right, or does the tool use another table name? --table)", from, t.Name(), db.URL)
			}
			if err != nil {
				return err
			}
			res, err := m.Adopt(ctx, from, list)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			for _, mg := range res.Migrations {
				a.printf("adopted %d %s\n", mg.Version, mg.Name)
			}
			if len(res.Migrations) == 0 {
				a.printf("nothing new to adopt from %s; at version %d\n", t.Name(), res.To)
			} else {
				a.printf("ferry's history now matches %s: at version %d\n", t.Name(), res.To)
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "the tool that managed the database: goose or golang-migrate (required)")
	c.Flags().StringVar(&table, "table-of-tool", "", "the tool's version table, if not its default name")
	jsonFlag(c)
	return c
}
