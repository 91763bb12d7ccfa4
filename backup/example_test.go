package backup_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

// Take a backup before an upgrade, learn its id from the Recorder, and
// restore it into another database.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)

	db, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"), database.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := backup.OpenStore(ctx, filepath.Join(dir, "backups"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	files := fstest.MapFS{
		"00001_users.sql": {Data: []byte("-- +ferry up\nCREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO users (name) VALUES ('ada'), ('linus');\n")},
		"00002_email.sql": {Data: []byte("-- +ferry up\nALTER TABLE users ADD COLUMN email TEXT;\n")},
	}
	pre := &backup.PreUpgrade{Store: store, DB: db, Mode: backup.ModeRequired}
	m, err := migrate.New(db.DB, db.Dialect, migrate.WithFS(files, "migrations"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		log.Fatal(err)
	}
	// The upgrade to version 2, with a backup first.
	out, err := m.Upgrade(ctx, migrate.UpOptions{}, migrate.Pipeline{Backup: pre.Backup})
	if err != nil {
		log.Fatal(err) // a *migrate.UpgradeError: it says how to restore
	}
	taken, err := store.Manifest(ctx, out.Backup.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("backup before the upgrade:", taken.Reason, "at schema version", taken.SchemaVersion)

	copyDB, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "copy.db"), database.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer copyDB.Close()
	res, err := backup.Restore(ctx, store, taken.ID, copyDB, backup.RestoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	var n int
	copyDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n)
	fmt.Println("restored copy: schema version", res.SchemaVersion, "with", n, "users")
	// Output:
	// backup before the upgrade: before-upgrade at schema version 1
	// restored copy: schema version 1 with 2 users
}
