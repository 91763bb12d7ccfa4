package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// blockingMigration is a Go migration that signals when it starts and then
// waits until released, so a test can look at the world while a run holds
// the migration lock.
func blockingMigration(version int64) (*migrate.GoMigration, <-chan struct{}, chan<- struct{}) {
	started, release := make(chan struct{}), make(chan struct{})
	return &migrate.GoMigration{Version: version, Name: "blocker", Up: func(ctx context.Context, q migrate.Querier) error {
		close(started)
		<-release
		_, err := q.ExecContext(ctx, "CREATE TABLE blocker_done (id INTEGER)")
		return err
	}}, started, release
}

// holdLock starts a run that holds the lock until the returned function is
// called; that function returns the run's error.
func holdLock(t *testing.T, db *testdb.DB, opts ...migrate.Option) func() error {
	t.Helper()
	g, started, release := blockingMigration(1)
	m := newMigrator(t, db, files(t, nil), append([]migrate.Option{migrate.WithGoMigrations(g)}, opts...)...)
	done := make(chan error, 1)
	go func() {
		_, err := m.Up(context.Background(), migrate.UpOptions{})
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("holder stopped early: %v", err)
	}
	return func() error {
		close(release)
		return <-done
	}
}

func TestLockHolderVisibleAndTimeout(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		finish := holdLock(t, db)
		dir := files(t, map[string]string{"00002_x.sql": "-- +ferry up\nCREATE TABLE x (id INTEGER);\n"})
		other := newMigrator(t, db, dir, migrate.WithGoMigrations(&migrate.GoMigration{Version: 1, Name: "blocker", Up: func(context.Context, migrate.Querier) error { return nil }}))
		s := status(t, other)
		if !s.Lock.Held || !s.MigrationInProgress || !strings.Contains(s.Lock.Holder, ":") || s.Lock.Since == nil {
			t.Fatalf("status while a run holds the lock: %+v", s.Lock)
		}

		// A second run with a short timeout gives up, naming the holder.
		short := newMigrator(t, db, dir, migrate.WithLockTimeout(300*time.Millisecond))
		_, err := short.Up(ctx(t), migrate.UpOptions{})
		var te *migrate.LockTimeoutError
		if !errors.As(err, &te) || !errors.Is(err, migrate.ErrLockTimeout) || te.Holder != s.Lock.Holder {
			t.Fatalf("lock timeout error: %v (holder %q, want %q)", err, te.Holder, s.Lock.Holder)
		}
		if tableExists(t, db, "x") {
			t.Fatal("a run that timed out on the lock applied something")
		}

		if err := finish(); err != nil {
			t.Fatalf("holder: %v", err)
		}
		s = status(t, other)
		if s.Lock.Held || s.MigrationInProgress {
			t.Fatalf("lock still held after the run: %+v", s.Lock)
		}
	})
}

func TestLockIsPerHistoryTable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		finish := holdLock(t, db)
		// Another ferry-managed set of migrations in the same database,
		// with its own history table, has its own lock...
		other := newMigrator(t, db, files(t, map[string]string{"00001_y.sql": "-- +ferry up\nCREATE TABLE y (id INTEGER);\n"}),
			migrate.WithTable("other_migrations"), migrate.WithLockTimeout(500*time.Millisecond))
		if s := status(t, other); s.Lock.Held {
			t.Fatalf("the other history table's lock is held: %+v", s.Lock)
		}
		_, err := other.Up(ctx(t), migrate.UpOptions{})
		if db.Kind == "sqlite" {
			// ...but SQLite allows one writer per file: the other run
			// waits for the open migration transaction and says so.
			var te *migrate.LockTimeoutError
			if !errors.As(err, &te) || te.Busy == nil || !strings.Contains(err.Error(), "the database stayed busy") {
				t.Fatalf("SQLite second writer: %v", err)
			}
		} else if err != nil {
			t.Fatalf("second history table blocked by the first: %v", err)
		}
		if err := finish(); err != nil {
			t.Fatal(err)
		}
		if db.Kind == "sqlite" {
			if _, err := other.Up(ctx(t), migrate.UpOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if !tableExists(t, db, "y") || !tableExists(t, db, "blocker_done") {
			t.Fatal("both runs should have applied their migration")
		}
	})
}

// TestCancelStopsAtSafePoint cancels the run while migration 1 runs. A
// migration running statement by statement in a transaction is rolled back
// before its next statement; a batched one (PostgreSQL) or a
// non-transactional one (MySQL) finishes; either way the run stops before
// the next migration and releases the lock.
func TestCancelStopsAtSafePoint(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a1 (id INTEGER);\nCREATE TABLE a2 (id INTEGER);\n",
			// no-transaction: on MySQL, consecutive grouped migrations go
			// to the server as one script, which runs whole (see
			// TestChunkStopsWhole); this one is a script of its own.
			"00002_b.sql": "-- +ferry up\n-- +ferry no-transaction\nCREATE TABLE b (id INTEGER);\n",
		})
		c, cancel := context.WithCancel(context.Background())
		defer cancel()
		m := newMigrator(t, db, dir, migrate.WithHooks(migrate.Hooks{
			MigrationStarted: func(e migrate.Event) {
				if e.Version == 1 {
					cancel()
				}
			},
		}))
		_, err := m.Up(c, migrate.UpOptions{})
		if !errors.Is(err, migrate.ErrInterrupted) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: %v", err)
		}
		// Migration 1 was either rolled back (between its statements) or
		// completed (a batched or non-transactional migration runs to its
		// end); never half of it, and migration 2 never started.
		a1, a2 := tableExists(t, db, "a1"), tableExists(t, db, "a2")
		if a1 != a2 || tableExists(t, db, "b") {
			t.Fatalf("cancel left a1=%v a2=%v b=%v", a1, a2, tableExists(t, db, "b"))
		}
		if !db.Dialect.TransactionalDDL() && !a1 {
			t.Fatal("a non-transactional migration must run to its end")
		}
		s := status(t, m)
		if s.Lock.Held || len(s.Failed) != 0 || (s.CurrentVersion == 1) != a1 {
			t.Fatalf("after cancel: lock %s, failed %v, version %d, a1 %v", s.Lock, s.Failed, s.CurrentVersion, a1)
		}
		// The lock was released: a new run goes through at once.
		quick := newMigrator(t, db, dir, migrate.WithLockTimeout(5*time.Second))
		if _, err := quick.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		wantTables(t, db, []string{"a1", "a2", "b"}, nil)
	})
}

// TestLeaseLock runs the lease lock on every database (it is SQLite's
// default, and an option for PostgreSQL and MySQL behind poolers).
func TestLeaseLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		finish := holdLock(t, db, migrate.WithLockMode(migrate.LockLease), migrate.WithLeaseTTL(time.Second))
		dir := files(t, map[string]string{"00002_x.sql": "-- +ferry up\nCREATE TABLE x (id INTEGER);\n"})
		waiter := newMigrator(t, db, dir, migrate.WithLockMode(migrate.LockLease), migrate.WithLockTimeout(3*time.Second),
			migrate.WithGoMigrations(&migrate.GoMigration{Version: 1, Name: "blocker", Up: func(context.Context, migrate.Querier) error { return nil }}))
		s := status(t, waiter)
		if !s.Lock.Held || s.Lock.Mode != migrate.LockLease {
			t.Fatalf("lease not visible: %+v", s.Lock)
		}
		// The holder's heartbeat keeps the 1s lease alive well past its TTL.
		if _, err := waiter.Up(ctx(t), migrate.UpOptions{}); !errors.Is(err, migrate.ErrLockTimeout) {
			t.Fatalf("waiter got the lease while the holder was alive: %v", err)
		}
		if err := finish(); err != nil {
			t.Fatal(err)
		}
		if _, err := waiter.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		wantTables(t, db, []string{"blocker_done", "x"}, nil)
	})
}

func TestPreflight(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
			"00002_b.sql": "-- +ferry up\n-- +ferry contract\nCREATE TABLE b (id INTEGER);\n",
		})
		veto := errors.New("not now")
		var seen []*migrate.PreflightRun
		check := func(ctx context.Context, r *migrate.PreflightRun) error {
			seen = append(seen, r)
			// The check runs under the lock, on the run's connection.
			var n int
			if err := r.Conn.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
				return err
			}
			for _, m := range r.Migrations {
				if m.Contract {
					return fmt.Errorf("migration %d: %w", m.Version, veto)
				}
			}
			return nil
		}
		m := newMigrator(t, db, dir, migrate.WithPreflight(check))
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); !errors.Is(err, veto) {
			t.Fatalf("vetoed run: %v", err)
		}
		wantTables(t, db, nil, []string{"a", "b"})
		if _, err := m.Up(ctx(t), migrate.UpOptions{To: 1}); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2 || seen[0].From != 0 || seen[0].To != 2 || len(seen[0].Migrations) != 2 || seen[1].To != 1 {
			t.Fatalf("preflight saw %+v", seen)
		}
		// Nothing to apply: no preflight.
		if _, err := m.Up(ctx(t), migrate.UpOptions{To: 1}); err != nil || len(seen) != 2 {
			t.Fatalf("preflight ran with nothing to apply: %d calls, %v", len(seen), err)
		}
	})
}

// TestWithLock: a function run under the migration lock excludes runs (a
// waiting Up times out), sees the lock as held in status, gets the lock's
// connection, and leaves the lock free.
func TestWithLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
		m := newMigrator(t, db, dir)
		inside, leave := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- m.WithLock(ctx(t), func(ctx context.Context, conn migrate.Querier) error {
				var n int
				if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM ferry_migrations").Scan(&n); err != nil {
					return err
				}
				close(inside)
				<-leave
				return nil
			})
		}()
		select {
		case <-inside:
		case err := <-done:
			t.Fatalf("WithLock returned before fn ran: %v", err)
		}
		if s := status(t, m); !s.Lock.Held || !s.MigrationInProgress {
			t.Fatalf("lock not visible while WithLock runs: %+v", s.Lock)
		}
		waiter := newMigrator(t, db, dir, migrate.WithLockTimeout(500*time.Millisecond))
		if _, err := waiter.Up(ctx(t), migrate.UpOptions{}); !errors.Is(err, migrate.ErrLockTimeout) {
			t.Fatalf("Up ran while WithLock held the lock: %v", err)
		}
		wantTables(t, db, nil, []string{"a"})
		close(leave)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		veto := errors.New("veto")
		if err := m.WithLock(ctx(t), func(context.Context, migrate.Querier) error { return veto }); !errors.Is(err, veto) {
			t.Fatalf("WithLock error: %v", err)
		}
		if s := status(t, m); s.Lock.Held {
			t.Fatalf("lock still held after WithLock: %+v", s.Lock)
		}
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		wantTables(t, db, []string{"a"}, nil)
	})
}

// TestHalfCreatedTables: a process killed between creating the history
// table and the lock table must not leave a database later runs fail on.
func TestHalfCreatedTables(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
		m := newMigrator(t, db, dir)
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx(t), "DROP TABLE ferry_migrations_lock"); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte("-- +ferry up\nCREATE TABLE b (id INTEGER);\n"), 0o644)
		if _, err := newMigrator(t, db, dir).Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatalf("up with the lock table missing: %v", err)
		}
		wantTables(t, db, []string{"b", "ferry_migrations_lock"}, nil)
	})
}

// TestDeadLeaseHolder: a lease whose holder was a process on this host that
// no longer runs is reported free by status (no migration is in progress)
// and taken over at once, long before it expires.
func TestDeadLeaseHolder(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
		m := newMigrator(t, db, dir, migrate.WithLockMode(migrate.LockLease), migrate.WithLockTimeout(5*time.Second), migrate.WithLeaseTTL(time.Hour))
		if _, err := m.Baseline(ctx(t), 1, migrate.BaselineOptions{}); err != nil { // creates ferry's tables
			t.Fatal(err)
		}
		// A process that ran here and is gone.
		gone := exec.Command("true")
		if err := gone.Run(); err != nil {
			t.Fatal(err)
		}
		host, _ := os.Hostname()
		holder := fmt.Sprintf("%s:%d", host, gone.Process.Pid)
		now := time.Now().UnixMilli()
		if _, err := db.ExecContext(ctx(t), fmt.Sprintf("UPDATE ferry_migrations_lock SET holder = '%s', token = token + 1, acquired_at = %d, expires_at = %d WHERE id = 1", holder, now, now+3600_000)); err != nil {
			t.Fatal(err)
		}
		s := status(t, m)
		if s.Lock.Held || s.MigrationInProgress || !strings.Contains(s.Lock.Note, holder) {
			t.Fatalf("status with a dead lease holder: %+v", s.Lock)
		}
		os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte("-- +ferry up\nCREATE TABLE b (id INTEGER);\n"), 0o644)
		if _, err := newMigrator(t, db, dir, migrate.WithLockMode(migrate.LockLease), migrate.WithLockTimeout(5*time.Second)).Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatalf("up with a dead lease holder: %v", err)
		}
	})
}

// TestLeaseHeldThroughBusyRun: a run whose migration transactions follow
// one another on SQLite keeps the write lock almost all the time, so the
// lease heartbeat (on another connection) cannot write; every migration
// transaction renews the lease itself, so the run must not decide it lost
// the lock.
func TestLeaseHeldThroughBusyRun(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	fs := map[string]string{"00001_big.sql": "-- +ferry up\nCREATE TABLE big (k INTEGER, x INTEGER);\n"}
	for i := 2; i <= 40; i++ {
		fs[fmt.Sprintf("%05d_m.sql", i)] = fmt.Sprintf("-- +ferry up\nINSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 60000) SELECT %d, x FROM c;\n", i)
	}
	// A short busy timeout makes a blocked heartbeat give up quickly.
	busy, err := database.Open(ctx(t), db.URLString+"?_pragma=busy_timeout(300)", database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	m, err := migrate.New(busy.DB, busy.Dialect, migrate.WithDir(files(t, fs)), migrate.WithLeaseTTL(400*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Up(ctx(t), migrate.UpOptions{})
	if err != nil {
		t.Fatalf("a busy run lost its own lease: %v", err)
	}
	if len(res.Migrations) != 40 {
		t.Fatalf("applied %d of 40", len(res.Migrations))
	}
}

// lockHookDialect runs hook once, just before the engine looks up who
// holds the migration lock (the lock table, or the server's named lock),
// so a test can change the world between that look-up and the engine's
// other reads. Everything else goes to the real dialect.
type lockHookDialect struct {
	dialect.Dialect
	once *sync.Once
	hook func()
}

func (d lockHookDialect) TableExists(ctx context.Context, q dialect.Querier, table string) (bool, error) {
	if strings.HasSuffix(table, "_lock") {
		d.once.Do(d.hook)
	}
	return d.Dialect.TableExists(ctx, q, table)
}

// sessionLockHookDialect is lockHookDialect for dialects with a named lock.
type sessionLockHookDialect struct {
	lockHookDialect
	sl dialect.SessionLocker
}

func (d sessionLockHookDialect) TryLock(ctx context.Context, conn *sql.Conn, table string) (string, bool, error) {
	return d.sl.TryLock(ctx, conn, table)
}

func (d sessionLockHookDialect) Unlock(ctx context.Context, conn *sql.Conn, table string) error {
	return d.sl.Unlock(ctx, conn, table)
}

func (d sessionLockHookDialect) LockOwner(ctx context.Context, q dialect.Querier, table string) (string, error) {
	d.once.Do(d.hook)
	return d.sl.LockOwner(ctx, q, table)
}

// TestStatusNeverShowsFreeLockWithMissingMigration is the regression test
// for a reliability-suite failure: status read the history, then the lock.
// A holder that committed its last migration and let go in between looked
// idle with that migration pending, and an operator (or the suite) trusting
// "lock free" saw the migration's effects without its history row. The
// holder finishes here exactly between the lock look-up and the rest.
func TestStatusNeverShowsFreeLockWithMissingMigration(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		finish := holdLock(t, db)
		fired := false
		var holderErr error
		hooked := lockHookDialect{Dialect: db.Dialect, once: new(sync.Once), hook: func() {
			fired = true
			holderErr = finish() // commits migration 1 and releases the lock
		}}
		var d dialect.Dialect = hooked
		if sl, ok := db.Dialect.(dialect.SessionLocker); ok {
			d = sessionLockHookDialect{lockHookDialect: hooked, sl: sl}
		}
		noop := &migrate.GoMigration{Version: 1, Name: "blocker", Up: func(context.Context, migrate.Querier) error { return nil }}
		watcher, err := migrate.New(db.DB.DB, d, migrate.WithDir(files(t, nil)), migrate.WithGoMigrations(noop))
		if err != nil {
			t.Fatal(err)
		}
		s := status(t, watcher)
		if !fired {
			t.Fatal("status never looked the lock up")
		}
		if holderErr != nil {
			t.Fatalf("holder: %v", holderErr)
		}
		if !s.Lock.Held && len(s.Pending) > 0 {
			t.Fatalf("status shows the lock free with migrations %v pending, yet the last holder applied them before letting go", s.Pending)
		}
		if s.Lock.Held || !s.IsUpToDate {
			t.Fatalf("the holder finished before status read anything else: lock %+v, pending %v", s.Lock, s.Pending)
		}
	})
}

// TestScratch: a scratch migrator runs the same files, with the same
// history table, on another database, and leaves the first alone; one
// with Go migrations is refused.
func TestScratch(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := files(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n", "00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\n"})
	m := newMigrator(t, db, dir, migrate.WithTable("app_migrations"))
	other := testdb.New(t, database.SQLite)
	s, err := m.Scratch(other.DB.DB, other.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Up(ctx(t), migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	if st := status(t, s); st.CurrentVersion != 1 || st.HistoryTable != "app_migrations" {
		t.Errorf("scratch: version %d, history table %s", st.CurrentVersion, st.HistoryTable)
	}
	if st := status(t, m); st.CurrentVersion != 0 {
		t.Errorf("the first database moved to version %d", st.CurrentVersion)
	}
	g := newMigrator(t, db, dir, migrate.WithGoMigrations(&migrate.GoMigration{Version: 3, Name: "go", Up: func(context.Context, migrate.Querier) error { return nil }}))
	if _, err := g.Scratch(other.DB.DB, other.Dialect); !errors.Is(err, migrate.ErrScratchGo) {
		t.Errorf("scratch of Go migrations: %v", err)
	}
}
