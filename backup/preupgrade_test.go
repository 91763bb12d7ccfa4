package backup

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// TestPreUpgrade: no backup when nothing is pending; a backup before
// anything is applied otherwise, reported in the upgrade's outcome; a failed
// backup stops a required upgrade with nothing applied, and lets an auto
// upgrade go on.
func TestPreUpgrade(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := tctx(t)
		seed(t, db.DB)
		store, dir := newStore(t)
		files := schemaMigrations(db.Kind)
		pre := &PreUpgrade{Store: store, DB: db.DB, Mode: ModeRequired}
		var seen []string
		pre.OnBackup = func(m *Manifest) { seen = append(seen, m.ID) }
		// up upgrades through the engine's pipeline with the backup step,
		// and returns what the backup step did (never nil).
		up := func(mode Mode, files map[string]string) (*migrate.BackupOutcome, error) {
			pre.Mode = mode
			m := newMigrator(t, db.DB, migrationsDir(t, files))
			out, err := m.Upgrade(ctx, migrate.UpOptions{}, migrate.Pipeline{Backup: pre.Backup})
			if out.Backup == nil {
				return &migrate.BackupOutcome{}, err
			}
			return out.Backup, err
		}

		rec, err := up(ModeRequired, files)
		if err != nil || rec.ID != "" || rec.Restore != "" {
			t.Fatalf("up to date: backup %q, %v", rec.ID, err)
		}
		if l, _, _ := store.List(ctx); len(l) != 0 {
			t.Fatalf("a backup was taken with nothing to apply: %v", l)
		}

		files["00004_x.sql"] = "-- +ferry up\nCREATE TABLE x (id INTEGER);\nINSERT INTO x (id) VALUES (1);\n"
		rec, err = up(ModeRequired, files)
		if err != nil {
			t.Fatal(err)
		}
		man, err := store.Manifest(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if man == nil || man.Reason != ReasonBeforeUpgrade || man.SchemaVersion != 3 || man.Upgrade == nil ||
			man.Upgrade.From != 3 || man.Upgrade.To != 4 || len(man.Upgrade.Migrations) != 1 || len(seen) != 1 || seen[0] != man.ID {
			t.Fatalf("pre-upgrade backup: %+v (seen %v)", man, seen)
		}
		for _, tc := range man.Tables {
			if strings.HasSuffix(tc.Name, "x") && !strings.HasSuffix(tc.Name, "ex") {
				t.Errorf("the backup already has table %s of the upgrade", tc.Name)
			}
		}
		if want := RestoreCommand(man.ID, store.String(), db.DB.URL); rec.Restore != want || !strings.Contains(want, " --database ") {
			t.Errorf("restore command %q, want %q", rec.Restore, want)
		}

		// A failing migration: the error names the backup and the command,
		// and still unwraps to the engine's error.
		files["00005_bad.sql"] = "-- +ferry up\nCREATE TABLE y (id INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
		rec, err = up(ModeAuto, files)
		var me *migrate.MigrationError
		var ue *migrate.UpgradeError
		if !errors.As(err, &me) || !errors.As(err, &ue) || ue.Backup.ID != rec.ID || !strings.Contains(err.Error(), rec.Restore) || rec.ID == "" {
			t.Fatalf("failed upgrade error: %v", err)
		}
		delete(files, "00005_bad.sql")
		if db.Kind == "mysql" {
			if _, err := db.ExecContext(ctx, "DROP TABLE y"); err != nil {
				t.Fatal(err)
			}
			if _, err := newMigrator(t, db.DB, migrationsDir(t, map[string]string{"00005_bad.sql": "-- +ferry up\nSELECT 1;\n"})).Repair(ctx, 5, migrate.MarkPending); err != nil {
				t.Fatal(err)
			}
		}

		// The store breaks: a file where its directory was.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
			t.Fatal(err)
		}
		files["00006_z.sql"] = "-- +ferry up\nCREATE TABLE z (id INTEGER);\n"
		rec, err = up(ModeRequired, files)
		if !errors.Is(err, ErrBackupFailed) || rec.ID != "" {
			t.Fatalf("required upgrade with a failing backup: %v", err)
		}
		if ok, _ := db.Dialect.TableExists(ctx, db, "z"); ok {
			t.Fatal("a required upgrade whose backup failed applied a migration")
		}
		rec, err = up(ModeAuto, files)
		if err != nil || rec.Err == nil || rec.ID != "" {
			t.Fatalf("auto upgrade with a failing backup: backup err %v, %v", rec.Err, err)
		}
		if ok, _ := db.Dialect.TableExists(ctx, db, "z"); !ok {
			t.Fatal("an auto upgrade whose backup failed did not go on")
		}
	})
}

func TestParseModeAndRestoreCommand(t *testing.T) {
	for in, want := range map[string]Mode{"auto": ModeAuto, "REQUIRED": ModeRequired, " off": ModeOff} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseMode("sometimes"); err == nil || !strings.Contains(err.Error(), "auto, required or off") {
		t.Errorf("ParseMode(sometimes): %v", err)
	}
	if got := RestoreCommand("20261121T193000Z-ab12cd", "file:///var/my backups", nil); got != "ferry backup restore 20261121T193000Z-ab12cd --store 'file:///var/my backups' --yes" {
		t.Errorf("quoted command: %s", got)
	}
	// The database is named when its URL can be printed whole, never with
	// a password.
	for url, want := range map[string]string{
		"sqlite:/var/app data/app.db":                " --database 'sqlite:/var/app data/app.db' --yes",
		"postgres://app@db:5432/app?schema=billing":  " --database postgres://app@db:5432/app --schema billing --yes",
		"postgres://app:s3cret@db:5432/app":          " --yes",
		"postgres://app@db:5432/app?sslpassword=x":   " --yes",
		"mysql://app:pw@db:3306/app?sslmode=require": " --yes",
	} {
		u, err := database.Parse(url)
		if err != nil {
			t.Fatal(err)
		}
		got := RestoreCommand("20261121T193000Z-ab12cd", "file:///b", u)
		if got != "ferry backup restore 20261121T193000Z-ab12cd --store file:///b"+want || strings.Contains(got, "s3cret") {
			t.Errorf("RestoreCommand for %s = %s", u, got)
		}
	}
}
