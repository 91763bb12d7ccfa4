package release_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// Which releases run on which schema version: migration 2 expands the
// schema, migration 3 contracts it.
func ExampleManifest_NewestCompatible() {
	migrations := []*migrate.Migration{
		{Version: 1, Name: "users"},
		{Version: 2, Name: "add_display_name"},
		{Version: 3, Name: "drop_name", Contract: true},
	}
	man := &release.Manifest{Releases: []release.Release{
		{Name: "v1", Schema: 1},
		{Name: "v2", Schema: 3, MinSchema: 2},
	}}
	for d := int64(1); d <= 3; d++ {
		db := release.Database{Version: d}
		r, err := man.NewestCompatible(db, migrations)
		if err != nil {
			log.Fatal(err)
		}
		v1 := release.Compatible(man.Releases[0], db, migrations)
		fmt.Printf("schema %d: newest %s; v1 compatible: %v (%s)\n", d, r.Name, v1.OK, v1.Problem)
	}
	// Output:
	// schema 1: newest v1; v1 compatible: true ()
	// schema 2: newest v2; v1 compatible: true ()
	// schema 3: newest v2; v1 compatible: false (contract)
}

// An application that embeds ferry registers itself while it runs, so that
// ferry up refuses contract migrations that would break it.
func ExampleRegister() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	db, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"), database.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	files := fstest.MapFS{
		"00001_users.sql": {Data: []byte("-- +ferry up\nCREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n")},
		"00002_drop.sql":  {Data: []byte("-- +ferry contract\n-- +ferry up\nALTER TABLE users DROP COLUMN name;\n")},
	}
	m, err := migrate.New(db.DB, db.Dialect, migrate.WithFS(files, "migrations"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		log.Fatal(err)
	}

	reg, err := release.Register(ctx, db.DB, db.Dialect, release.Instance{ID: "web-1", Release: "v1", Schema: 1})
	if err != nil {
		log.Fatal(err)
	}
	gated := migrate.Pipeline{Gate: release.Gate(db.Dialect)}
	_, err = m.Upgrade(ctx, migrate.UpOptions{}, gated)
	fmt.Println("while v1 runs:", errors.Is(err, release.ErrContractBlocked))

	if err := reg.Close(ctx); err != nil { // on shutdown
		log.Fatal(err)
	}
	out, err := m.Upgrade(ctx, migrate.UpOptions{}, gated)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after v1 stopped: at version", out.To)
	// Output:
	// while v1 runs: true
	// after v1 stopped: at version 2
}
