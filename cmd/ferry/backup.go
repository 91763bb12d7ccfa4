package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

const storeHelp = "backup store: a directory, or a file://, s3://, gs:// or azblob:// URL (env FERRY_BACKUP_STORE, ferry.yaml backup_store; default ./ferry-backups). Object stores need a ferry built with their tag (docs/backups.md); credentials come from the environment, never from here"

func (a *app) backupCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "backup",
		Short: "Take, list, verify, restore and prune backups of the database",
		Long: `Backups of the configured database, with the tools its operators trust:
pg_dump/pg_restore for PostgreSQL, mysqldump (or mariadb-dump)/mysql for
MySQL and MariaDB, SQLite's online backup for SQLite.

Each backup is streamed to the store (a local directory, or object storage:
s3://, gs://, azblob://) with a manifest (JSON) that records the database
(never its password), the schema version, tool and server versions, the size
and sha256 of every object, and every table's row count.

"ferry up" takes a backup first when a store is configured (see "ferry up
--help", --backup). Store credentials come from the environment (AWS_*,
GOOGLE_APPLICATION_CREDENTIALS, AZURE_*); see docs/backups.md.`,
	}
	c.PersistentFlags().String("store", "", storeHelp)
	c.AddCommand(a.backupCreateCmd(), a.backupListCmd(), a.backupVerifyCmd(), a.backupRestoreCmd(), a.backupPruneCmd())
	return group(c)
}

// openStoreFor checks that id looks like a backup id, then opens the store.
func (a *app) openStoreFor(ctx context.Context, id string) (*backup.Store, error) {
	if !backup.ValidID(id) {
		return nil, usageErrorf("%q is not a backup id (ids look like 20261121T193000Z-ab12cd; `ferry backup list` shows them)", id)
	}
	return a.openStore(ctx)
}

// openStore opens the configured store (./ferry-backups when none is).
func (a *app) openStore(ctx context.Context) (*backup.Store, error) {
	st, err := backup.OpenStore(ctx, a.cfg.BackupStore)
	if errors.Is(err, backup.ErrInvalidStore) {
		err = usageError{err} // a bad --store, FERRY_BACKUP_STORE or backup_store
	}
	return st, err
}

func (a *app) backupOptions() backup.Options {
	return backup.Options{Table: a.cfg.Table, ToolDir: a.cfg.BackupToolDir, FerryVersion: version, Logger: a.log}
}

// fmtSize prints a byte count for people.
func fmtSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (a *app) backupCreateCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "create",
		Short: "Take a backup of the database now",
		Long: `Take a backup of the configured database into the store and print its id.

PostgreSQL: pg_dump --format=custom on an exported snapshot, with row counts
taken in that same snapshot. MySQL/MariaDB: mysqldump --single-transaction
(routines, triggers and events included), gzip-compressed, with row counts
read from the dump itself. SQLite: VACUUM INTO a temporary copy, which is
consistent while writers run, gzip-compressed.

The client tool must be installed and at least as new as the server; if it
is not, the error says which package to install (FERRY_BACKUP_TOOL_DIR
points ferry at another directory of tools). The password reaches the tool
through its environment or a private option file, never its command line.`,
		Example: "  ferry backup create\n  ferry backup create --store s3://acme-backups/ferry?region=eu-west-1\n  FERRY_BACKUP_STORE=/var/backups/ferry ferry backup create --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			store, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			db, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			m, err := backup.Create(ctx, store, db, backup.CreateOptions{Options: a.backupOptions()})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"store": store.String(), "backup": m})
			}
			a.printf("backup %s created in %s\n", m.ID, store)
			a.printf("  %s stored (%s before compression), %d tables, schema version %d, %s with %s %s\n",
				fmtSize(m.Size()), fmtSize(m.RawSize()), len(m.Tables), m.SchemaVersion,
				fmtDuration(time.Duration(m.DurationMS)*time.Millisecond), m.Tool.Name, m.Tool.Version)
			return nil
		},
	}
	jsonFlag(c)
	return c
}

func (a *app) backupListCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List the backups in the store, oldest first",
		Long: `List the complete backups in the store, oldest first, from their manifests.
A backup whose manifest was never written (it failed or is still running) is
not listed. A backup whose manifest cannot be read (cut short, edited) is
reported on stderr and does not hide the others.

--json prints {"store": "...", "backups": [manifest, ...], "broken": [{"id", "error"}, ...]}.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			store, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			list, broken, err := store.List(ctx)
			if err != nil {
				return err
			}
			if a.json {
				if list == nil {
					list = []*backup.Manifest{}
				}
				return a.printJSON(map[string]any{"store": store.String(), "backups": list, "broken": brokenDocs(broken)})
			}
			a.warnBroken(broken)
			if len(list) == 0 {
				a.printf("no backups in %s\n", store)
				return nil
			}
			w := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "ID\tCREATED (UTC)\tREASON\tDATABASE\tVERSION\tSIZE\tTOOL\n")
			for _, m := range list {
				reason := m.Reason
				if m.Upgrade != nil {
					reason = fmt.Sprintf("%s %d->%d", m.Reason, m.Upgrade.From, m.Upgrade.To)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s %s\t%d\t%s\t%s\n", m.ID, m.CreatedAt.Format(time.DateTime), reason,
					m.Database.Kind, m.Database.Name, m.SchemaVersion, fmtSize(m.Size()), m.Tool.Name)
			}
			return w.Flush()
		},
	}
	jsonFlag(c)
	return c
}

// warnBroken reports backups whose manifest cannot be read, on stderr.
func (a *app) warnBroken(broken []backup.Broken) {
	for _, b := range broken {
		a.eprintf("ferry: backup %s is broken and left alone: %v\n", b.ID, b.Err)
	}
}

// brokenDocs lists broken backups for JSON output.
func brokenDocs(broken []backup.Broken) []map[string]string {
	out := []map[string]string{}
	for _, b := range broken {
		out = append(out, map[string]string{"id": b.ID, "error": b.Err.Error()})
	}
	return out
}

func (a *app) backupVerifyCmd() *cobra.Command {
	var checksumsOnly bool
	c := &cobra.Command{
		Use:   "verify ID",
		Short: "Check a backup's checksums, restore it into a scratch database and compare row counts",
		Long: `Check that a backup can be restored:

1. read every object and compare its size and sha256 with the manifest;
2. restore it into a scratch database on the configured database's server
   (a new database named ferry_verify_..., dropped afterwards; a temporary
   file for SQLite), with the same tools a restore uses;
3. compare every table's row count with the count recorded at backup time.

The configured database itself is not changed. Exits 1 if anything differs.
--checksums-only does step 1 alone (no database needed).`,
		Example: "  ferry backup verify 20261121T193000Z-ab12cd\n  ferry backup verify 20261121T193000Z-ab12cd --checksums-only",
		Args:    exactArgs(1, "one backup ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.openStoreFor(ctx, args[0])
			if err != nil {
				return err
			}
			defer store.Close()
			var db *database.DB
			if !checksumsOnly {
				if db, err = a.open(ctx); err != nil {
					return err
				}
				defer db.Close()
			}
			res, err := backup.Verify(ctx, store, args[0], db, backup.VerifyOptions{Options: a.backupOptions(), ChecksumsOnly: checksumsOnly})
			if a.json && res != nil {
				doc := map[string]any{"store": store.String(), "result": res, "ok": err == nil}
				return a.printOutcome(doc, err)
			}
			if res != nil {
				if res.ChecksumsOK {
					a.printf("checksums: ok\n")
				}
				if res.Restored {
					w := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
					fmt.Fprintf(w, "TABLE\tROWS AT BACKUP\tROWS RESTORED\t\n")
					for _, t := range res.Tables {
						mark := "ok"
						if !t.OK {
							mark = "MISMATCH"
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, rowCount(t.Want), rowCount(t.Got), mark)
					}
					w.Flush()
				}
			}
			if err != nil {
				return err
			}
			if checksumsOnly {
				a.printf("backup %s: checksums ok (not restored: --checksums-only)\n", args[0])
			} else {
				a.printf("backup %s: ok, restored into a scratch database and every table's row count matches\n", args[0])
			}
			return nil
		},
	}
	c.Flags().BoolVar(&checksumsOnly, "checksums-only", false, "only check object sizes and checksums; do not restore")
	jsonFlag(c)
	return c
}

func rowCount(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func (a *app) backupRestoreCmd() *cobra.Command {
	var to string
	var yes bool
	c := &cobra.Command{
		Use:   "restore ID [--to URL] [--yes]",
		Short: "Replace the database's contents with a backup",
		Long: `Restore a backup into the configured database, or into --to URL.

ferry refuses to restore into a database that has tables unless --yes is
given: a restore replaces everything in the target. It checks the backup's
checksums before touching anything, then takes the migration lock (so no
"ferry up" runs meanwhile; it waits up to --lock-timeout), drops everything
in the target and loads the backup (PostgreSQL: pg_restore in one
transaction; MySQL: the mysql client; SQLite: the backup API in one write
transaction).

Afterwards the history table is the backup's, so "ferry status" shows the
schema version of the backup, and the migration lock claims no holder. Stop
the application's writers first: what they write during the restore is lost.
If the load fails on a server, the target may be left empty: fix the cause
and run the same command again.`,
		Example: "  ferry backup restore 20261121T193000Z-ab12cd --yes\n  ferry backup restore 20261121T193000Z-ab12cd --to postgres://app@db-staging/app_copy",
		Args:    exactArgs(1, "one backup ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if to != "" {
				// Errors and advice name --to as the URL's source.
				a.cfg.Database, a.cfg.databaseFrom = to, "--to"
			}
			if _, err := a.databaseURL(); err != nil {
				return err
			}
			store, err := a.openStoreFor(ctx, args[0])
			if err != nil {
				return err
			}
			defer store.Close()
			db, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := backup.Restore(ctx, store, args[0], db, backup.RestoreOptions{Options: a.backupOptions(), Force: yes, LockTimeout: a.cfg.LockTimeout})
			if err != nil {
				if errors.Is(err, migrate.ErrLockTimeout) {
					return fmt.Errorf("%w; an upgrade is running: let it finish, then restore", err)
				}
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"store": store.String(), "result": res})
			}
			a.printf("restored backup %s into %s: schema version %d, %d tables (%s)\n", res.ID, res.Target, res.SchemaVersion, res.Tables,
				fmtDuration(time.Duration(res.DurationMS)*time.Millisecond))
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "restore into this database URL instead of the configured one (the password may come from ${VAR} in ferry.yaml or FERRY_DATABASE_URL instead)")
	c.Flags().BoolVar(&yes, "yes", false, "restore even though the target database has tables, replacing them")
	jsonFlag(c)
	return c
}

func (a *app) backupPruneCmd() *cobra.Command {
	var keep int
	var dryRun bool
	c := &cobra.Command{
		Use:   "prune --keep N",
		Short: "Delete all but the newest N backups",
		Long: `Delete all but the newest N complete backups from the store (N at least 1).
--dry-run prints what would be deleted and deletes nothing. Backups taken
before upgrades count like any other. A backup whose manifest cannot be read
is reported and left alone.`,
		Example: "  ferry backup prune --keep 14\n  ferry backup prune --keep 3 --dry-run",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("keep") {
				return usageErrorf("say how many backups to keep with --keep N")
			}
			if keep < 1 {
				return usageErrorf("--keep must be at least 1, got %d: prune never deletes every backup", keep)
			}
			ctx := cmd.Context()
			store, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			pruned, err := store.Prune(ctx, keep, dryRun)
			if pruned == nil {
				pruned = &backup.Pruned{}
			}
			ids := []string{}
			for _, m := range pruned.Deleted {
				ids = append(ids, m.ID)
			}
			if a.json {
				doc := map[string]any{"store": store.String(), "deleted": ids, "broken": brokenDocs(pruned.Broken), "dry_run": dryRun, "ok": err == nil}
				return a.printOutcome(doc, err)
			}
			a.warnBroken(pruned.Broken)
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			for _, id := range ids {
				a.printf("%s %s\n", verb, id)
			}
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				a.printf("nothing to prune: at most %d backups in %s\n", keep, store)
			}
			return nil
		},
	}
	intFlag(c.Flags(), &keep, "keep", "", 0, "number of newest backups to keep (required, at least 1)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be deleted and delete nothing")
	jsonFlag(c)
	return c
}

// preUpgrade returns the backup preflight for `ferry up` and its store,
// or nil when the backup mode (--backup, FERRY_BACKUP, ferry.yaml; by
// default auto when a store is configured) is off.
func (a *app) preUpgrade(ctx context.Context) (*backup.PreUpgrade, *backup.Store, error) {
	mode := backup.Mode(a.cfg.Backup)
	if mode == "" {
		mode = backup.ModeOff
		if a.cfg.BackupStore != "" {
			mode = backup.ModeAuto
		}
	}
	if mode == backup.ModeOff {
		return nil, nil, nil
	}
	store, err := a.openStore(ctx)
	if err != nil {
		// A location that cannot name a store, or names one this build
		// does not have, is a mistake in the configuration: never a
		// reason to upgrade without a backup.
		misconfigured := errors.Is(err, backup.ErrInvalidStore) || errors.Is(err, backup.ErrDriverNotLinked)
		if mode == backup.ModeAuto && !misconfigured {
			// As for a backup that fails later: warn and upgrade without.
			a.log.Warn("cannot open the backup store; upgrading without a backup (--backup=auto; use --backup=required to stop instead)", "error", err)
			return nil, nil, nil
		}
		if mode == backup.ModeAuto {
			return nil, nil, fmt.Errorf("%w, so nothing was applied: %w", backup.ErrBackupFailed, err)
		}
		return nil, nil, fmt.Errorf("%w, so nothing was applied (--backup=required): %w", backup.ErrBackupFailed, err)
	}
	return &backup.PreUpgrade{Store: store, Mode: mode, Options: a.backupOptions()}, store, nil
}
