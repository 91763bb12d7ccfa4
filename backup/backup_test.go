package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testdb"
)

// TestBackupVerifyRestore takes a backup with the real tools, verifies it
// (checksums and a scratch restore), restores it into a fresh database and
// compares schema dumps and table checksums; a non-empty target is refused
// without Force and left as it was.
func TestBackupVerifyRestore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := tctx(t)
		seed(t, db.DB)
		store, dir := newStore(t)
		m, err := Create(ctx, store, db.DB, CreateOptions{Options: Options{FerryVersion: "test"}})
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(m.ID) || m.Reason != ReasonManual || m.SchemaVersion != 3 || m.Database.Kind != db.Kind || m.FerryVersion != "test" ||
			m.Tool.Version == "" || m.Database.ServerVersion == "" || len(m.Objects) != 1 || len(m.Objects[0].SHA256) != 64 || m.Objects[0].Size == 0 {
			t.Fatalf("manifest: %+v", m)
		}
		want := map[string]int64{"accounts": 40, "orders": 25, "empty_one": 0, "ferry_migrations": 3}
		got := map[string]int64{}
		for _, tc := range m.Tables {
			got[strings.TrimPrefix(tc.Name, "public.")] = tc.Rows
		}
		for n, c := range want {
			if got[n] != c {
				t.Errorf("manifest rows of %s = %d, want %d (all: %v)", n, got[n], c, m.Tables)
			}
		}
		if _, ok := got["big_orders"]; ok {
			t.Error("a view was counted as a table")
		}
		data, err := os.ReadFile(filepath.Join(dir, m.ID, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var onDisk Manifest
		if err := json.Unmarshal(data, &onDisk); err != nil || onDisk.ID != m.ID {
			t.Fatalf("manifest on disk: %v %s", err, data)
		}
		list, _, err := store.List(ctx)
		if err != nil || len(list) != 1 || list[0].ID != m.ID {
			t.Fatalf("list: %v %v", list, err)
		}

		v, err := Verify(ctx, store, m.ID, db.DB, VerifyOptions{})
		if err != nil || !v.OK || !v.ChecksumsOK || !v.Restored || len(v.Tables) != len(m.Tables) {
			t.Fatalf("verify: %+v %v", v, err)
		}

		target := openURL(t, testdb.Create(t, db))
		res, err := Restore(ctx, store, m.ID, target, RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.SchemaVersion != 3 {
			t.Errorf("restored schema version %d", res.SchemaVersion)
		}
		sameDatabase(t, db.DB, target)
		if h := lockHolder(t, target); h != "" {
			t.Errorf("restored lock table claims holder %q", h)
		}

		// The target now has tables: without Force nothing happens.
		if _, err := target.ExecContext(ctx, "INSERT INTO empty_one (id) VALUES (7)"); err != nil {
			t.Fatal(err)
		}
		before := tableChecksums(t, target)
		if _, err := Restore(ctx, store, m.ID, target, RestoreOptions{}); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "--yes") {
			t.Fatalf("restore into a non-empty database: %v", err)
		}
		if after := tableChecksums(t, target); len(after) != len(before) || after["empty_one"] != before["empty_one"] {
			t.Fatalf("a refused restore changed the target: %v -> %v", before, after)
		}
		if _, err := Restore(ctx, store, m.ID, target, RestoreOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		sameDatabase(t, db.DB, target)
	})
}

// TestPostgresSchemaParameter: with ferry's tables in their own schema
// (?schema=app), a restore into the same database drops and recreates
// that schema with the rest, keeps the lock honest, and matches.
func TestPostgresSchemaParameter(t *testing.T) {
	db := testdb.New(t, "postgres")
	ctx := tctx(t)
	app := openURL(t, db.URLString+"?schema=app")
	seed(t, app)
	if ok, _ := app.Dialect.TableExists(ctx, app, "ferry_migrations"); !ok {
		t.Fatal("history table not in schema app")
	}
	store, _ := newStore(t)
	m, err := Create(ctx, store, app, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 3 {
		t.Fatalf("schema version %d", m.SchemaVersion)
	}
	before := tableChecksums(t, app)
	if _, err := app.ExecContext(ctx, "CREATE TABLE app.extra (id int); CREATE TABLE public.stray (id int); UPDATE app.accounts SET balance = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, store, m.ID, app, RestoreOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if after := tableChecksums(t, app); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("after restore:\n%v\nwant\n%v", after, before)
	}
	if h := lockHolder(t, app); h != "" {
		t.Fatalf("lock holder %q", h)
	}
	// A backup of a database without the schema setting restores into one
	// with it: the restore makes the schema for the lock table.
	plain := testdb.New(t, "postgres")
	seed(t, plain.DB)
	pm, err := Create(ctx, store, plain.DB, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := openURL(t, testdb.Create(t, plain)+"?schema=app")
	if _, err := Restore(ctx, store, pm.ID, other, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := other.Dialect.TableExists(ctx, other, "ferry_migrations_lock"); !ok {
		t.Fatal("no lock table in schema app after the restore")
	}
}
