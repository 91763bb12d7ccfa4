package backup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// TestBackupWhileWritersRun takes a backup while writers move money
// between accounts and append to two ledgers in one transaction each: the
// restored database keeps both invariants (the total, and equal ledgers),
// and its row counts match the manifest.
func TestBackupWhileWritersRun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := tctx(t)
		const accounts = 50
		m := newMigrator(t, db.DB, migrationsDir(t, map[string]string{
			"00001_bank.sql": "-- +ferry up\nCREATE TABLE bank (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);\nCREATE TABLE ledger_a (id INTEGER NOT NULL, amount INTEGER NOT NULL);\nCREATE TABLE ledger_b (id INTEGER NOT NULL, amount INTEGER NOT NULL);\n",
		}))
		if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= accounts; i++ {
			if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO bank (id, balance) VALUES (%d, 100)", i)); err != nil {
				t.Fatal(err)
			}
		}
		var commits atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := transfer(ctx, db.DB, 1+rand.IntN(accounts), 1+rand.IntN(accounts), 1+rand.IntN(20)); err == nil {
						commits.Add(1)
					} else if !db.Dialect.(interface{ IsBusy(error) bool }).IsBusy(err) && ctx.Err() == nil {
						t.Errorf("writer: %v", err)
						return
					}
				}
			}()
		}
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			wg.Wait()
		}()
		for commits.Load() < 20 {
			if t.Failed() {
				t.FailNow()
			}
			runtime.Gosched()
		}
		store, _ := newStore(t)
		before := commits.Load()
		man, err := Create(ctx, store, db.DB, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		during := commits.Load() - before
		close(stop)
		wg.Wait()
		t.Logf("%d transfers committed while the backup ran (%d in all)", during, commits.Load())
		if db.Kind != database.SQLite && during == 0 {
			// SQLite's VACUUM INTO holds a read lock that makes writers wait
			// in rollback-journal mode; servers must have kept writing.
			t.Errorf("no writer committed while the backup ran; the test did not test anything")
		}
		rows := map[string]int64{}
		for _, tc := range man.Tables {
			rows[strings.TrimPrefix(tc.Name, "public.")] = tc.Rows
		}
		if rows["ledger_a"] != rows["ledger_b"] || rows["ledger_a"] == 0 || rows["bank"] != accounts {
			t.Errorf("manifest counts are not of one instant: %v", rows)
		}
		if v, err := Verify(ctx, store, man.ID, db.DB, VerifyOptions{}); err != nil || !v.OK {
			t.Fatalf("verify: %+v %v", v, err)
		}
		target := openURL(t, testdb.Create(t, db))
		if _, err := Restore(ctx, store, man.ID, target, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		var total, a, b int64
		if err := target.QueryRowContext(ctx, "SELECT SUM(balance) FROM bank").Scan(&total); err != nil {
			t.Fatal(err)
		}
		target.QueryRowContext(ctx, "SELECT COUNT(*) FROM ledger_a").Scan(&a)
		target.QueryRowContext(ctx, "SELECT COUNT(*) FROM ledger_b").Scan(&b)
		if total != accounts*100 || a != b || a != rows["ledger_a"] {
			t.Fatalf("restored backup is inconsistent: total %d (want %d), ledgers %d and %d (manifest %d)", total, accounts*100, a, b, rows["ledger_a"])
		}
	})
}

// transfer moves amount from one account to another and records it in
// both ledgers, in one transaction.
func transfer(ctx context.Context, db *database.DB, from, to, amount int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range []string{
		fmt.Sprintf("UPDATE bank SET balance = balance - %d WHERE id = %d", amount, from),
		fmt.Sprintf("UPDATE bank SET balance = balance + %d WHERE id = %d", amount, to),
		fmt.Sprintf("INSERT INTO ledger_a (id, amount) VALUES (%d, %d)", from, amount),
		fmt.Sprintf("INSERT INTO ledger_b (id, amount) VALUES (%d, %d)", to, amount),
	} {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// TestCorruptBackupFailsVerifyAndRestore flips one byte of a stored
// object: verify reports it, and restore refuses before touching the
// target. A truncated or missing object fails the same way.
func TestCorruptBackupFailsVerifyAndRestore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := tctx(t)
		seed(t, db.DB)
		store, dir := newStore(t)
		m, err := Create(ctx, store, db.DB, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, m.ID, m.Objects[0].Name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		flipped := append([]byte(nil), data...)
		flipped[len(flipped)/2] ^= 0x40
		target := openURL(t, testdb.Create(t, db))
		for _, c := range []struct {
			name string
			data []byte
			want string
		}{
			{"flipped byte", flipped, "sha256"},
			{"truncated", data[:len(data)-10], "bytes"},
			{"missing", nil, "missing"},
		} {
			if c.data == nil {
				os.Remove(path)
			} else if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := Verify(ctx, store, m.ID, db.DB, VerifyOptions{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) || v == nil || v.OK || v.ChecksumsOK {
				t.Errorf("%s: verify = %+v, %v", c.name, v, err)
			}
			if _, err := Restore(ctx, store, m.ID, target, RestoreOptions{Force: true}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: restore = %v", c.name, err)
			}
			drv, _ := newDriver(target, Options{}.settings())
			if rels, err := drv.relations(ctx, target); err != nil || len(rels) != 0 {
				t.Errorf("%s: a refused restore touched the target: %v %v", c.name, rels, err)
			}
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if v, err := Verify(ctx, store, m.ID, db.DB, VerifyOptions{}); err != nil || !v.OK {
			t.Fatalf("verify of the repaired object: %+v %v", v, err)
		}
	})
}

// TestRestoreTakesTheMigrationLock: while an upgrade holds the lock, a
// restore waits and gives up after its lock timeout, changing nothing.
func TestRestoreTakesTheMigrationLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := tctx(t)
		seed(t, db.DB)
		store, _ := newStore(t)
		m, err := Create(ctx, store, db.DB, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO empty_one (id) VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		started, release := make(chan struct{}), make(chan struct{})
		blocker := &migrate.GoMigration{Version: 10, Name: "blocker", Up: func(ctx context.Context, q migrate.Querier) error {
			close(started)
			<-release
			return nil
		}}
		up := newMigrator(t, db.DB, migrationsDir(t, schemaMigrations(db.Kind)), migrate.WithGoMigrations(blocker))
		done := make(chan error, 1)
		go func() {
			_, err := up.Up(context.Background(), migrate.UpOptions{})
			done <- err
		}()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("upgrade ended early: %v", err)
		}
		_, err = Restore(ctx, store, m.ID, db.DB, RestoreOptions{Force: true, LockTimeout: 500 * time.Millisecond})
		close(release)
		if uerr := <-done; uerr != nil {
			t.Fatal(uerr)
		}
		if !errors.Is(err, migrate.ErrLockTimeout) {
			t.Fatalf("restore during an upgrade: %v", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM empty_one").Scan(&n); err != nil || n != 1 {
			t.Fatalf("the refused restore changed data: %d %v", n, err)
		}
		if _, err := Restore(ctx, store, m.ID, db.DB, RestoreOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM empty_one").Scan(&n); err != nil || n != 0 {
			t.Fatalf("after restore: %d %v", n, err)
		}
		// The restored history is the backup's: version 10 is not applied.
		if v, err := schemaVersion(ctx, db, db.Dialect, migrate.DefaultTable); err != nil || v != 3 {
			t.Fatalf("schema version after restore: %d %v", v, err)
		}
		if h := lockHolder(t, db.DB); h != "" {
			t.Fatalf("lock table claims holder %q after restore", h)
		}
	})
}
