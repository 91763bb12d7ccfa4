package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// lockWaitFiles: a busy table, then a migration that needs its exclusive
// lock (ADD COLUMN).
var lockWaitFiles = map[string]string{
	"001_busy.sql":  "-- +ferry up\nCREATE TABLE busy (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);\n",
	"002_extra.sql": "-- +ferry up\nALTER TABLE busy ADD COLUMN extra INTEGER;\n",
}

// lockWaitSetup makes the busy table (migration 1, with 100 rows) and
// returns a migrator of both migrations.
func lockWaitSetup(t *testing.T, db *testdb.DB, w migrate.LockWait) *migrate.Migrator {
	t.Helper()
	dir := files(t, lockWaitFiles)
	if _, err := newMigrator(t, db, dir).Up(ctx(t), migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 100; i++ {
		if _, err := db.ExecContext(ctx(t), fmt.Sprintf("INSERT INTO busy VALUES (%d, 0)", i)); err != nil {
			t.Fatal(err)
		}
	}
	return newMigrator(t, db, dir, migrate.WithLockWait(w))
}

// blocker holds the busy table in a long transaction (see testdb.Hold).
func blocker(t *testing.T, db *testdb.DB) (id int64, commit func()) {
	t.Helper()
	return testdb.Hold(t, db, "ferry-test-blocker", "SELECT COUNT(*) FROM busy")
}

// load reads and writes the busy table from 4 connections until stop is
// closed, and returns every query's latency.
func load(t *testing.T, db *testdb.DB, stop <-chan struct{}) func() []time.Duration {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	ph := "?"
	if db.Kind == database.Postgres {
		ph = "$1"
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				q := "SELECT n FROM busy WHERE id = " + ph
				if i%2 == 1 {
					q = "UPDATE busy SET n = n + 1 WHERE id = " + ph
				}
				start := time.Now()
				_, err := db.ExecContext(context.Background(), q, 1+(w*25+i)%100)
				d := time.Since(start)
				if err != nil {
					t.Errorf("load: %s: %v", q, err)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	return func() []time.Duration {
		wg.Wait()
		slices.Sort(lat)
		return lat
	}
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*q))]
}

// TestLockWaitKeepsTheTableAvailable: while a transaction holds a busy
// table for 3 seconds, "ferry up" runs an ALTER TABLE on it. With lock
// timeouts and retries, the readers and writers of the table never wait
// longer than one lock timeout (plus scheduling), and the migration
// applies once the transaction ends; without them, they stall for the
// transaction's whole length behind the waiting ALTER.
func TestLockWaitKeepsTheTableAvailable(t *testing.T) {
	const hold = 3 * time.Second
	for _, kind := range []string{database.Postgres, database.MySQL} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			if !slices.Contains(testdb.Kinds(), kind) {
				t.Skipf("no %s server (set its URL)", kind)
			}
			// MySQL's lock_wait_timeout is in whole seconds.
			timeout := 200 * time.Millisecond
			if kind == database.MySQL {
				timeout = time.Second
			}
			run := func(t *testing.T, w migrate.LockWait) (max, p99 time.Duration, n int) {
				db := testdb.New(t, kind)
				m := lockWaitSetup(t, db, w)
				_, commit := blocker(t, db)
				stop := make(chan struct{})
				latencies := load(t, db, stop)
				ended := time.AfterFunc(hold, commit) // the long transaction's length
				defer ended.Stop()
				res, err := m.Up(ctx(t), migrate.UpOptions{})
				close(stop)
				lat := latencies()
				if err != nil {
					t.Fatalf("up: %v", err)
				}
				if len(res.Migrations) != 1 || res.Migrations[0].Version != 2 {
					t.Fatalf("applied %+v, want version 2", res.Migrations)
				}
				if len(lat) == 0 {
					t.Fatal("no queries ran")
				}
				return lat[len(lat)-1], quantile(lat, 0.99), len(lat)
			}
			var withMax, withP99, withoutMax time.Duration
			t.Run("bounded", func(t *testing.T) {
				var n int
				withMax, withP99, n = run(t, migrate.LockWait{Timeout: timeout, Retries: 100, Backoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
				t.Logf("with a %s lock timeout: %d queries, p99 %s, max %s", timeout, n, withP99, withMax)
				if bound := timeout + time.Second; withMax > bound {
					t.Errorf("a query waited %s; with lock timeouts none should wait more than %s", withMax, bound)
				}
			})
			t.Run("unbounded", func(t *testing.T) {
				var n int
				withoutMax, _, n = run(t, migrate.LockWait{})
				t.Logf("without a lock timeout: %d queries, max %s", n, withoutMax)
				if withoutMax < hold*2/3 {
					t.Errorf("the longest query waited %s; without lock timeouts the ALTER should have stalled the table for about %s (the test shows nothing)", withoutMax, hold)
				}
			})
		})
	}
}

// TestLockWaitGivesUp: a migration whose lock never comes fails after its
// retries, nothing of it applied, naming the transaction in the way; the
// preflight check refuses at once, or waits for the transaction to end.
func TestLockWaitGivesUp(t *testing.T) {
	for _, kind := range []string{database.Postgres, database.MySQL} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			if !slices.Contains(testdb.Kinds(), kind) {
				t.Skipf("no %s server (set its URL)", kind)
			}
			db := testdb.New(t, kind)
			w := migrate.LockWait{Timeout: 200 * time.Millisecond, Retries: 2, Backoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
			m := lockWaitSetup(t, db, w)
			id, commit := blocker(t, db)
			named := func(err error) {
				t.Helper()
				msg := err.Error()
				if !strings.Contains(msg, fmt.Sprintf("session %d ", id)) || (kind == database.Postgres && !strings.Contains(msg, "ferry-test-blocker")) {
					t.Errorf("the error does not name the blocking session %d: %v", id, err)
				}
			}
			_, err := m.Up(ctx(t), migrate.UpOptions{})
			var lwe *migrate.LockWaitError
			if !errors.Is(err, migrate.ErrLockWait) || !errors.As(err, &lwe) || lwe.Tries != 3 {
				t.Fatalf("up: %v, want a lock wait error after 3 tries", err)
			}
			named(err)
			t.Logf("%v", err)
			if s := status(t, m); s.CurrentVersion != 1 {
				t.Errorf("version %d after giving up, want 1", s.CurrentVersion)
			}

			// The preflight check: refused before any try, once the
			// transaction is older than the timeout (it is by now).
			w.Preflight = migrate.PreflightRefuse
			m = newMigrator(t, db, files(t, lockWaitFiles), migrate.WithLockWait(w))
			_, err = m.Up(ctx(t), migrate.UpOptions{})
			if !errors.As(err, &lwe) || lwe.Tries != 0 {
				t.Fatalf("up with the preflight refusing: %v", err)
			}
			named(err)
			// Waiting: it applies once the transaction ends.
			w.Preflight, w.PreflightTimeout = migrate.PreflightWait, time.Minute
			m = newMigrator(t, db, files(t, lockWaitFiles), migrate.WithLockWait(w))
			time.AfterFunc(500*time.Millisecond, commit) // the transaction's length
			if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
				t.Fatalf("up with the preflight waiting: %v", err)
			}
			if s := status(t, m); s.CurrentVersion != 2 {
				t.Errorf("version %d, want 2", s.CurrentVersion)
			}
		})
	}
}

// TestLockWaitOutlivesMigrationsSettings: a migration that sets the lock
// timeout itself does not switch the bound off for the migrations after
// it; behind a pooler (lease lock) the bound is set only inside each
// migration's transaction, never for the session.
func TestLockWaitOutlivesMigrationsSettings(t *testing.T) {
	if !slices.Contains(testdb.Kinds(), database.Postgres) {
		t.Skip("no PostgreSQL server (set FERRY_TEST_POSTGRES_URL)")
	}
	db := testdb.New(t, database.Postgres)
	dir := files(t, map[string]string{
		"001_busy.sql":  lockWaitFiles["001_busy.sql"],
		"002_own.sql":   "-- +ferry up\nSET lock_timeout = 0;\nCREATE TABLE other (id int);\n",
		"003_extra.sql": lockWaitFiles["002_extra.sql"],
	})
	if _, err := newMigrator(t, db, dir).Up(ctx(t), migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	blocker(t, db)
	w := migrate.LockWait{Timeout: 200 * time.Millisecond, Retries: 1, Backoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	m := newMigrator(t, db, dir, migrate.WithLockWait(w))
	_, err := m.Up(ctx(t), migrate.UpOptions{})
	var me *migrate.MigrationError
	if !errors.Is(err, migrate.ErrLockWait) || !errors.As(err, &me) || me.Version != 3 {
		t.Fatalf("up: %v, want migration 3 to give up waiting for its lock", err)
	}
	if s := status(t, m); s.CurrentVersion != 2 {
		t.Errorf("version %d, want 2", s.CurrentVersion)
	}

	lease := newMigrator(t, db, dir, migrate.WithLockWait(w), migrate.WithLockMode(migrate.LockLease))
	plan, err := lease.PlanUp(ctx(t), migrate.UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := plan.WriteSQL(&b); err != nil {
		t.Fatal(err)
	}
	if sql := b.String(); !strings.Contains(sql, "SET LOCAL lock_timeout = 200") || strings.Contains(sql, "\nSET lock_timeout") {
		t.Errorf("with the lease lock the bound belongs in the transaction only:\n%s", sql)
	}
}
