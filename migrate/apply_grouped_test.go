package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// chunkFiles is n migrations in the shape MySQL sends as one script:
// migration k creates table c_k and inserts into it, and every third one
// is only DML, so the chunk holds both kinds.
func chunkFiles(n int) map[string]string {
	fs := map[string]string{"00001_c.sql": "-- +ferry up\nCREATE TABLE c (k INTEGER NOT NULL);\n"}
	for k := 2; k <= n; k++ {
		body := fmt.Sprintf("-- +ferry up\nINSERT INTO c (k) VALUES (%d);\nCREATE TABLE c_%d (id INTEGER);\n", k, k)
		if k%3 == 0 {
			body = fmt.Sprintf("-- +ferry up\nINSERT INTO c (k) VALUES (%d);\nINSERT INTO c (k) VALUES (%d);\n", k, -k)
		}
		fs[fmt.Sprintf("%05d_m%d.sql", k, k)] = body
	}
	return fs
}

// TestChunkStopsWhole: a stop requested while a chunk of grouped
// migrations runs (MySQL) takes effect at the end of the chunk, which the
// server runs whole, and leaves every migration recorded as it ended;
// elsewhere, after the migration that asked. Either way the next run
// finishes the job.
func TestChunkStopsWhole(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, chunkFiles(40))
		c, cancel := context.WithCancel(ctx(t))
		defer cancel()
		var done []int64
		m := newMigrator(t, db, dir, migrate.WithHooks(migrate.Hooks{MigrationDone: func(e migrate.Event) {
			done = append(done, e.Version)
			if e.Version == 1 {
				cancel()
			}
		}}))
		_, err := m.Up(c, migrate.UpOptions{})
		if !errors.Is(err, migrate.ErrInterrupted) {
			t.Fatalf("up cancelled after migration 1: %v", err)
		}
		want := int64(1)
		if db.Kind == database.MySQL {
			want = 32 // the first chunk
		}
		s := status(t, m)
		if s.CurrentVersion != want || len(s.Failed) != 0 || len(s.Pending) != int(40-want) || s.Lock.Held {
			t.Fatalf("after the stop: version %d (want %d), failed %+v, pending %v, lock %s", s.CurrentVersion, want, s.Failed, s.Pending, s.Lock)
		}
		if len(done) != int(want) {
			t.Fatalf("hooks reported %v", done)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM ferry_migrations WHERE state <> 'applied'"); n != 0 {
			t.Fatalf("%d history rows not applied", n)
		}
		if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
			t.Fatalf("up again: %v", err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM c"); n != 39+13 {
			t.Fatalf("c has %d rows, want %d: a migration ran twice or not at all", n, 39+13)
		}
		recs, err := m.History(ctx(t))
		if err != nil || len(recs) != 40 {
			t.Fatalf("history: %d rows, %v", len(recs), err)
		}
	})
}

// TestChunkFailures: a failure inside a chunk is recorded against the
// migration that caused it, exactly as when each migration is sent alone,
// and the migrations before it are applied, on every database:
//
//   - a DML migration failing in the transaction that also records the
//     outcome of the DDL migration before it (which is then recorded on
//     its own) and runs the DML migrations between them (which run again,
//     one by one);
//   - a DDL statement failing after the migration's DML.
func TestChunkFailures(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n",
			"00002_b.sql": "-- +ferry up\nINSERT INTO a (id) VALUES (2);\n",
			"00003_c.sql": "-- +ferry up\nINSERT INTO a (id) VALUES (3);\n",
			"00004_d.sql": "-- +ferry up\nINSERT INTO a (id) VALUES (4);\nINSERT INTO a (id) VALUES (2);\nCREATE TABLE d (id INTEGER);\n",
		})
		m := newMigrator(t, db, dir)
		_, err := m.Up(ctx(t), migrate.UpOptions{})
		var me *migrate.MigrationError
		if !errors.As(err, &me) || me.Version != 4 || me.Statement != 2 || !me.RolledBack {
			t.Fatalf("failure: %+v (%v)", me, err)
		}
		s := status(t, m)
		wantVersions(t, "applied", appliedVersions(s), []int64{1, 2, 3})
		if len(s.Failed) != 0 || len(s.Pending) != 1 {
			t.Fatalf("status: failed %+v, pending %v", s.Failed, s.Pending)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM a"); n != 2 {
			t.Fatalf("a has %d rows, want 2 (migrations 2 and 3, once each)", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM ferry_migrations WHERE state = 'running'"); n != 0 {
			t.Fatalf("%d history rows left running", n)
		}

		// Fixed, 4 applies; 5 fails at its DDL, after its DML took effect.
		files2 := map[string]string{
			"00004_d.sql": "-- +ferry up\nINSERT INTO a (id) VALUES (4);\nCREATE TABLE d (id INTEGER);\n",
			"00005_e.sql": "-- +ferry up\nINSERT INTO a (id) VALUES (5);\nCREATE TABLE d (id INTEGER);\n",
		}
		for name, body := range files2 {
			writeFile(t, dir, name, body)
		}
		m = newMigrator(t, db, dir)
		_, err = m.Up(ctx(t), migrate.UpOptions{})
		if !errors.As(err, &me) || me.Version != 5 {
			t.Fatalf("failure of 5: %+v (%v)", me, err)
		}
		s = status(t, m)
		wantVersions(t, "applied", appliedVersions(s), []int64{1, 2, 3, 4})
		if db.Dialect.TransactionalDDL() {
			if !me.RolledBack || count(t, db, "SELECT COUNT(*) FROM a WHERE id = 5") != 0 {
				t.Fatalf("5 should be rolled back whole: %+v", me)
			}
			return
		}
		if me.RolledBack || me.Statement != 2 || len(s.Failed) != 1 || s.Failed[0].Version != 5 || s.Failed[0].Statement != 2 {
			t.Fatalf("5 should be failed at statement 2, its DDL: %+v, status %+v", me, s.Failed)
		}
		if !strings.Contains(err.Error(), "statement 1 took effect") {
			t.Fatalf("message: %v", err)
		}
	})
}

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChunkConnectionLost: a connection killed while the server runs a
// script is reported as such, naming the script's migrations, and not as
// a migration that was rolled back; the history says how far the server
// got.
func TestChunkConnectionLost(t *testing.T) {
	db := testdb.New(t, database.MySQL)
	dir := files(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
		"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\nSELECT SLEEP(30);\nCREATE TABLE b2 (id INTEGER);\n",
	})
	m := newMigrator(t, db, dir)
	errc := make(chan error, 1)
	go func() { _, err := m.Up(ctx(t), migrate.UpOptions{}); errc <- err }()
	// The processlist shows the whole script from its first statement,
	// and its state says which statement runs: wait until the server is
	// in the SLEEP (statement 2), so the kill lands there and not in
	// ferry's update of the history row just before it.
	var id int64
	for id == 0 {
		db.QueryRowContext(ctx(t), `SELECT p.id FROM information_schema.processlist p
			WHERE p.info LIKE '%SLEEP(30)%' AND p.info NOT LIKE '%processlist%'
			AND p.state = 'User sleep'`).Scan(&id)
	}
	if _, err := db.ExecContext(ctx(t), fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	var me *migrate.MigrationError
	if !errors.Is(err, migrate.ErrConnectionLost) || errors.As(err, &me) {
		t.Fatalf("error: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "migrations 1 (a) to 2 (b) as one script") || strings.Contains(msg, "rolled back") {
		t.Fatalf("message: %s", msg)
	}
	// The server ends the killed thread, and releases its lock, after the
	// client saw the connection drop: the history is final once the lock
	// is free.
	s := status(t, m)
	for deadline := time.Now().Add(30 * time.Second); s.MigrationInProgress && time.Now().Before(deadline); {
		s = status(t, m)
	}
	wantVersions(t, "applied", appliedVersions(s), []int64{1})
	if len(s.Failed) != 1 || s.Failed[0].Version != 2 || s.Failed[0].State != migrate.StateInterrupted || s.Failed[0].Statement != 2 {
		t.Fatalf("status: %+v", s.Failed)
	}
}

// TestChunkSessionChanges: migrations that change the session (autocommit
// off, another time zone) do not leave a migration unrecorded or its
// duration measured across the change.
func TestChunkSessionChanges(t *testing.T) {
	db := testdb.New(t, database.MySQL)
	m := newMigrator(t, db, files(t, map[string]string{
		"00001_z.sql":  "-- +ferry up\nCREATE TABLE z (id INTEGER);\n",
		"00002_ac.sql": "-- +ferry up\nSET autocommit = 0;\n",
		"00003_tz.sql": "-- +ferry up\nSET time_zone = '+09:00';\nCREATE TABLE z2 (id INTEGER);\n",
	}))
	if _, err := m.Up(ctx(t), migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	s := status(t, m)
	if !s.IsUpToDate || len(s.Failed) != 0 {
		t.Fatalf("status: %+v", s)
	}
	recs, err := m.History(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.State != migrate.StateApplied || r.Duration > time.Minute {
			t.Errorf("version %d: %s, %s", r.Version, r.State, r.Duration)
		}
		if d := time.Since(r.AppliedAt); d < 0 || d > time.Hour {
			t.Errorf("version %d applied at %s, %s from now", r.Version, r.AppliedAt, d)
		}
	}
}
