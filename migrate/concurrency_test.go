package migrate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// fleetMigrations is a batch where running any migration twice would fail
// (CREATE TABLE) or be visible (the INSERTs add rows).
func fleetMigrations(n int) map[string]string {
	fs := map[string]string{}
	for i := 1; i <= n; i++ {
		fs[fmt.Sprintf("%05d_m%d.sql", i, i)] = fmt.Sprintf(
			"-- +ferry up\nCREATE TABLE t%d (id INTEGER PRIMARY KEY);\nINSERT INTO t%d (id) VALUES (1);\nCREATE TABLE IF NOT EXISTS runs (v INTEGER);\nINSERT INTO runs (v) VALUES (%d);\n", i, i, i)
	}
	return fs
}

// runFleet starts n runners at once, each with its own connection pool,
// and returns their errors.
func runFleet(t *testing.T, db *testdb.DB, dir string, n int) []error {
	t.Helper()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			own, err := database.Open(c, db.URLString, database.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer own.Close()
			own.SetMaxOpenConns(2)
			m, err := migrate.New(own.DB, own.Dialect, migrate.WithDir(dir), migrate.WithLockTimeout(4*time.Minute))
			if err != nil {
				errs[i] = err
				return
			}
			<-start
			_, errs[i] = m.Up(c, migrate.UpOptions{})
		}(i)
	}
	close(start)
	wg.Wait()
	return errs
}

func TestFiftyConcurrentUps(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		testdb.Exclusive(t, db.Kind)
		const migrations, runners = 8, 50
		dir := files(t, fleetMigrations(migrations))
		for i, err := range runFleet(t, db, dir, runners) {
			if err != nil {
				t.Errorf("runner %d: %v", i, err)
			}
		}
		if n := count(t, db, "SELECT COUNT(*) FROM runs"); n != migrations {
			t.Errorf("migrations ran %d times in all, want %d", n, migrations)
		}
		for v := int64(1); v <= migrations; v++ {
			if n := appliedRows(t, db, v); n != 1 {
				t.Errorf("version %d has %d applied rows, want 1", v, n)
			}
		}
		if n := count(t, db, "SELECT COUNT(*) FROM ferry_migrations"); n != migrations {
			t.Errorf("history has %d rows, want %d (no failed attempts)", n, migrations)
		}
		s := status(t, newMigrator(t, db, dir))
		if !s.IsUpToDate || s.CurrentVersion != migrations || s.Lock.Held {
			t.Errorf("status after the fleet: up to date %v, version %d, lock %s", s.IsUpToDate, s.CurrentVersion, s.Lock)
		}
	})
}

// TestConcurrentIndexConcurrentlyNoDeadlock: the lock holder runs CREATE
// INDEX CONCURRENTLY while 49 others wait for the lock. A blocking
// pg_advisory_lock waiter would deadlock with it; polling does not.
func TestConcurrentIndexConcurrentlyNoDeadlock(t *testing.T) {
	db := testdb.New(t, database.Postgres)
	testdb.Exclusive(t, db.Kind)
	dir := files(t, map[string]string{
		"00001_big.sql": "-- +ferry up\nCREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 200000) g;\n",
		"00002_idx.sql": "-- +ferry up\n-- +ferry no-transaction\nCREATE INDEX CONCURRENTLY big_v_idx ON big (v);\nCREATE INDEX CONCURRENTLY big_v2_idx ON big (v, id);\n-- +ferry down\nDROP INDEX CONCURRENTLY big_v2_idx;\nDROP INDEX CONCURRENTLY big_v_idx;\n",
	})
	for i, err := range runFleet(t, db, dir, 50) {
		if err != nil {
			t.Errorf("runner %d: %v", i, err)
		}
	}
	if n := appliedRows(t, db, 2); n != 1 {
		t.Fatalf("index migration applied %d times", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM pg_index WHERE indisvalid AND indexrelid IN ('big_v_idx'::regclass, 'big_v2_idx'::regclass)"); n != 2 {
		t.Fatalf("%d valid indexes, want 2", n)
	}
	s := status(t, newMigrator(t, db, dir))
	if s.CurrentVersion != 2 || !s.IsUpToDate {
		t.Fatalf("status: %+v", s)
	}
	// Reverting the no-transaction migration works the same way.
	if _, err := newMigrator(t, db, dir).Down(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE 'big_v%'"); n != 0 {
		t.Fatalf("%d indexes left after down", n)
	}
}
