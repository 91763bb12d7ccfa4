package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/dbcompare"
	"github.com/ferrydb/ferry/internal/testdb"
)

// state is a database's schema dump and table checksums, ferry's history
// table included and its lock table (who runs an upgrade right now)
// excluded.
func state(t *testing.T, db *database.DB) (string, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	schema, err := dbcompare.Schema(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := dbcompare.Checksums(ctx, db, "ferry_migrations_lock")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sums["ferry_migrations"]; !ok && sums["public.ferry_migrations"] == "" {
		t.Fatalf("history table not compared: %v", sums)
	}
	return schema, sums
}

var restoreCommand = regexp.MustCompile(`(?m)^\s*ferry (backup restore \S+ --store \S+ --database \S+ --yes)$`)

// TestCLIFailedUpgradeRestoredByPrintedCommand: an upgrade whose second
// statement fails (on MariaDB, no transactional DDL, the first one stays)
// prints the exact restore command; running it returns schema, data and
// history to the state before the upgrade.
func TestCLIFailedUpgradeRestoredByPrintedCommand(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := context.Background()
		dir := project(t, map[string]string{
			"00001_accounts.sql": "-- +ferry up\nCREATE TABLE accounts (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, balance INTEGER NOT NULL);\nCREATE INDEX accounts_name ON accounts (name);\n",
			"00002_orders.sql":   "-- +ferry up\nCREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, amount INTEGER NOT NULL);\n",
		})
		mustRun(t, dir, db.URLString, "up")
		for i := 1; i <= 30; i++ {
			if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO accounts VALUES (%d, 'acct %d ''quoted''', %d)", i, i, i*10)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO orders VALUES (%d, %d, %d)", i, i, i*3)); err != nil {
				t.Fatal(err)
			}
		}
		store := filepath.Join(t.TempDir(), "backups")
		if err := os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("backup_store: "+store+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		schemaBefore, sumsBefore := state(t, db.DB)

		// Statement 1 adds a column and changes data; statement 2 fails.
		os.WriteFile(filepath.Join(dir, "migrations", "00003_split.sql"), []byte(
			"-- +ferry up\nCREATE TABLE audit (id INTEGER, what VARCHAR(20));\nALTER TABLE accounts ADD COLUMN email VARCHAR(100);\nUPDATE accounts SET balance = 0;\nINSERT INTO no_such_table VALUES (1);\n"), 0o644)
		r := runFerry(t, dir, db.URLString, "up")
		if r.code != 1 || !strings.Contains(r.stdout, "taken before the upgrade") {
			t.Fatalf("failing upgrade: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		m := restoreCommand.FindStringSubmatch(r.stderr)
		if m == nil {
			t.Fatalf("no restore command in the error:\n%s", r.stderr)
		}
		if !db.Dialect.TransactionalDDL() {
			// MariaDB left the migration half-applied.
			if ok, _ := db.Dialect.TableExists(ctx, db, "audit"); !ok {
				t.Fatal("the first statement did not take effect; the test tests nothing")
			}
			if s := statusOf(t, dir, db.URLString); len(s.Failed) != 1 {
				t.Fatalf("status after the failure: %+v", s)
			}
		}
		// The printed command is exact on its own: it names the database
		// (no password here), so it needs no FERRY_DATABASE_URL.
		args := strings.Fields(m[1])
		out := mustRun(t, dir, "", args...)
		if !strings.Contains(out.stdout, "restored backup") {
			t.Errorf("restore output: %s", out.stdout)
		}
		schemaAfter, sumsAfter := state(t, db.DB)
		if schemaAfter != schemaBefore {
			t.Errorf("schema after restore differs:\n--- before\n%s\n--- after\n%s", schemaBefore, schemaAfter)
		}
		if fmt.Sprint(sumsAfter) != fmt.Sprint(sumsBefore) {
			t.Errorf("data after restore differs:\nbefore %v\nafter  %v", sumsBefore, sumsAfter)
		}
		s := statusOf(t, dir, db.URLString)
		if s.CurrentVersion != 2 || len(s.Failed) != 0 || s.Lock.Held || len(s.Pending) != 1 {
			t.Fatalf("status after restore: %+v", s)
		}
		var holder string
		if err := db.QueryRowContext(ctx, "SELECT holder FROM ferry_migrations_lock WHERE id = 1").Scan(&holder); err != nil || holder != "" {
			t.Fatalf("lock row after restore: %q %v", holder, err)
		}
		// Fixed, the upgrade goes through.
		os.WriteFile(filepath.Join(dir, "migrations", "00003_split.sql"), []byte(
			"-- +ferry up\nCREATE TABLE audit (id INTEGER, what VARCHAR(20));\nALTER TABLE accounts ADD COLUMN email VARCHAR(100);\n"), 0o644)
		if r := mustRun(t, dir, db.URLString, "up"); !strings.Contains(r.stdout, "now at version 3") {
			t.Fatalf("fixed upgrade: %s", r.stdout)
		}
	})
}

// TestCLIBackupCommands runs create, list, verify, restore and prune
// through the binary, with their JSON output, refusals and usage errors.
func TestCLIBackupCommands(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := project(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY, v VARCHAR(20));\nINSERT INTO a VALUES (1, 'one');\nINSERT INTO a VALUES (2, 'two');\n",
		})
		store := "file://" + filepath.Join(t.TempDir(), "store")
		mustRun(t, dir, db.URLString, "up")
		var created struct {
			Store  string `json:"store"`
			Backup struct {
				ID     string `json:"id"`
				Tables []struct {
					Name string `json:"name"`
					Rows int64  `json:"rows"`
				} `json:"tables"`
			} `json:"backup"`
		}
		r := mustRun(t, dir, db.URLString, "backup", "create", "--store", store, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.Backup.ID == "" || created.Store != store {
			t.Fatalf("create --json: %v\n%s", err, r.stdout)
		}
		id := created.Backup.ID
		if r := mustRun(t, dir, db.URLString, "backup", "list", "--store", store); !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "manual") {
			t.Errorf("list: %s", r.stdout)
		}
		var listed struct {
			Backups []struct {
				ID string `json:"id"`
			} `json:"backups"`
		}
		r = mustRun(t, dir, db.URLString, "backup", "list", "--store", store, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed.Backups) != 1 || listed.Backups[0].ID != id {
			t.Fatalf("list --json: %v %s", err, r.stdout)
		}
		if r := mustRun(t, dir, db.URLString, "backup", "verify", id, "--store", store); !strings.Contains(r.stdout, "every table's row count matches") {
			t.Errorf("verify: %s", r.stdout)
		}
		if r := mustRun(t, dir, "", "backup", "verify", id, "--store", store, "--checksums-only"); !strings.Contains(r.stdout, "checksums ok") {
			t.Errorf("verify --checksums-only (no database needed): %s", r.stdout)
		}
		// The configured database has tables: restore refuses without --yes.
		r = runFerry(t, dir, db.URLString, "backup", "restore", id, "--store", store)
		if r.code != 1 || !strings.Contains(r.stderr, "--yes") {
			t.Errorf("restore without --yes: exit %d %s", r.code, r.stderr)
		}
		fresh := testdb.Create(t, db)
		r = mustRun(t, dir, db.URLString, "backup", "restore", id, "--store", store, "--to", fresh, "--json")
		var restored struct {
			Result struct {
				SchemaVersion int64 `json:"schema_version"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &restored); err != nil || restored.Result.SchemaVersion != 1 {
			t.Errorf("restore --json: %v %s", err, r.stdout)
		}
		if s := statusOf(t, dir, fresh); s.CurrentVersion != 1 {
			t.Errorf("status of the restored copy: %+v", s)
		}
		second := mustRun(t, dir, db.URLString, "backup", "create", "--store", store)
		if !strings.Contains(second.stdout, "created in "+store) {
			t.Errorf("create: %s", second.stdout)
		}
		r = mustRun(t, dir, db.URLString, "backup", "prune", "--keep", "1", "--store", store)
		if !strings.Contains(r.stdout, "deleted "+id) {
			t.Errorf("prune: %s", r.stdout)
		}
		if r := runFerry(t, dir, db.URLString, "backup", "verify", id, "--store", store); r.code != 1 || !strings.Contains(r.stderr, "backup not found") {
			t.Errorf("verify of a pruned backup: exit %d %s", r.code, r.stderr)
		}
	})
}

func TestCLIBackupUsage(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nSELECT 1;\n"})
	for _, args := range [][]string{
		{"backup", "verify"}, {"backup", "verify", "latest"}, {"backup", "restore"}, {"backup", "restore", "../x"},
		{"backup", "prune"}, {"backup", "prune", "--keep", "0"}, {"backup", "frobnicate"}, {"up", "--backup", "sometimes"},
		{"backup", "list", "extra"},
	} {
		if r := runFerry(t, dir, "", args...); r.code != exitUsage {
			t.Errorf("ferry %v: exit %d, want 2: %s", args, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{"backup", "--help"}, {"backup", "create", "--help"}, {"backup", "list", "--help"}, {"backup", "verify", "--help"}, {"backup", "restore", "--help"}, {"backup", "prune", "--help"}} {
		if r := runFerry(t, dir, "", args...); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("ferry %v: exit %d: %s", args, r.code, r.stdout)
		}
	}
	// With no store configured, up takes no backup; --backup=required
	// without one uses ./ferry-backups.
	mustRun(t, dir, "", "up")
	if _, err := os.Stat(filepath.Join(dir, "ferry-backups")); err == nil {
		t.Error("up took a backup with no store configured")
	}
	os.WriteFile(filepath.Join(dir, "migrations", "00002_b.sql"), []byte("-- +ferry up\nCREATE TABLE b (id INTEGER);\n"), 0o644)
	r := mustRun(t, dir, "", "up", "--backup=required", "--json")
	var doc struct {
		Backup struct {
			ID             string `json:"id"`
			RestoreCommand string `json:"restore_command"`
		} `json:"backup"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Backup.ID == "" || !strings.Contains(doc.Backup.RestoreCommand, "/ferry-backups --database sqlite:ferry.db --yes") {
		t.Fatalf("up --backup=required --json: %v %s", err, r.stdout)
	}
	if r := mustRun(t, dir, "", "backup", "list"); !strings.Contains(r.stdout, doc.Backup.ID) || !strings.Contains(r.stdout, "before-upgrade 1->2") {
		t.Errorf("list of the default store: %s", r.stdout)
	}
}

// TestCLIBackupStoreUnusable: a store that cannot even be opened is a
// failed backup like any other: --backup=auto warns and upgrades,
// --backup=required stops with nothing applied.
func TestCLIBackupStoreUnusable(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runFerry(t, dir, "", "up", "--backup=required", "--store", notADir)
	if r.code != 1 || !strings.Contains(r.stderr, "nothing was applied") {
		t.Fatalf("required, unusable store: exit %d\n%s", r.code, r.stderr)
	}
	if s := statusOf(t, dir, ""); s.CurrentVersion != 0 {
		t.Fatalf("required: version %d after a failed backup", s.CurrentVersion)
	}
	r = runFerry(t, dir, "", "up", "--backup=auto", "--store", notADir)
	if r.code != 0 || !strings.Contains(r.stderr, "upgrading without a backup") {
		t.Fatalf("auto, unusable store: exit %d\n%s", r.code, r.stderr)
	}
	if s := statusOf(t, dir, ""); s.CurrentVersion != 1 {
		t.Fatalf("auto: version %d, want 1", s.CurrentVersion)
	}
}

// TestCLIBackupStoreNotInBuild: a configured object store this build does
// not have is a mistake in the configuration, not a passing failure:
// even --backup=auto stops with nothing applied, and says how to get a
// build with the store or how to go on without a backup.
func TestCLIBackupStoreNotInBuild(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
	for _, loc := range []string{"gs://acme-backups/ferry", "azblob://backups/ferry"} {
		r := runFerry(t, dir, "", "up", "--store", loc)
		if r.code != 1 || !strings.Contains(r.stderr, "nothing was applied") || !strings.Contains(r.stderr, "go install -tags") || !strings.Contains(r.stderr, "--backup=off") {
			t.Fatalf("%s: exit %d\n%s", loc, r.code, r.stderr)
		}
		if s := statusOf(t, dir, ""); s.CurrentVersion != 0 {
			t.Fatalf("%s: version %d after a store not in the build", loc, s.CurrentVersion)
		}
	}
}
