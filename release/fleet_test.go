package release_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// greeterMigrations: 1 creates a table, 2 adds a column (expand), 3 drops
// the old one (contract), 4 adds another (expand).
var greeterMigrations = map[string]string{
	"00001_users.sql":        "-- +ferry up\nCREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);\nINSERT INTO users (id, name) VALUES (1, 'Ada');\n",
	"00002_display_name.sql": "-- +ferry up\nALTER TABLE users ADD COLUMN display_name VARCHAR(100);\nUPDATE users SET display_name = name;\n",
	"00003_drop_name.sql":    "-- +ferry contract\n-- +ferry up\nALTER TABLE users DROP COLUMN name;\n",
	"00004_email.sql":        "-- +ferry up\nALTER TABLE users ADD COLUMN email VARCHAR(100);\n",
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func migrator(t *testing.T, db *testdb.DB, files map[string]string, opts ...migrate.Option) *migrate.Migrator {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := migrate.New(db.DB.DB, db.Dialect, append([]migrate.Option{migrate.WithDir(dir), migrate.WithLockTimeout(time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func version(t *testing.T, m *migrate.Migrator) int64 {
	t.Helper()
	s, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.CurrentVersion
}

func live(t *testing.T, db *testdb.DB) []release.LiveInstance {
	t.Helper()
	l, err := release.Live(context.Background(), db, db.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ids(l []release.LiveInstance) []string {
	var out []string
	for _, i := range l {
		out = append(out, i.ID)
	}
	return out
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting until %s", what)
		case <-tick.C:
		}
	}
}

func TestRegisterHeartbeatClose(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := testCtx(t)
		if l := live(t, db); len(l) != 0 {
			t.Fatalf("no registry table yet, but Live found %v", l)
		}
		if ok, _ := db.Dialect.TableExists(ctx, db, release.DefaultInstancesTable); ok {
			t.Fatal("Live must not create the registry table")
		}
		const ttl = time.Second
		opts := []release.Option{release.WithHeartbeat(50 * time.Millisecond), release.WithTTL(ttl)}
		a, err := release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{Release: "v1", Schema: 1}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close(ctx)
		b, err := release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{ID: "web-2", Host: "web-2.internal", Release: "v2", Schema: 3, MinSchema: 2}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(ctx)
		if _, err := release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{ID: "web-2", Release: "v2", Schema: 3}, opts...); !errors.Is(err, release.ErrDuplicateInstance) {
			t.Errorf("a second live instance with id web-2: %v", err)
		}

		l := live(t, db)
		if len(l) != 2 || l[0].Release != "v1" || l[1].ID != "web-2" || l[1].Host != "web-2.internal" || l[1].Schema != 3 || l[1].MinSchema != 2 || l[1].PID != os.Getpid() {
			t.Fatalf("live instances: %+v", l)
		}
		if a.Instance().ID == "" || l[0].ID != a.Instance().ID || l[0].Host == "" {
			t.Errorf("default id and host: %+v", l[0])
		}
		// The heartbeat keeps both live well past their TTL: wait until the
		// server's clock shows heartbeats two and a half TTLs after the start.
		waitFor(t, ctx, "heartbeats span 2.5 TTLs", func() bool {
			l := live(t, db)
			if len(l) != 2 {
				t.Fatalf("an instance expired despite its heartbeat: %+v", l)
			}
			return l[0].HeartbeatAt.Sub(l[0].StartedAt) > 5*ttl/2 && l[1].HeartbeatAt.Sub(l[1].StartedAt) > 5*ttl/2
		})

		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if got := ids(live(t, db)); len(got) != 1 || got[0] != "web-2" {
			t.Fatalf("after Close: %v", got)
		}
		var rows int
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ferry_instances").Scan(&rows)
		if rows != 1 {
			t.Errorf("Close must delete the row; %d rows left", rows)
		}
	})
}

func TestRegisterBadInput(t *testing.T) {
	db := testdb.New(t, "sqlite")
	ctx := testCtx(t)
	for _, tc := range []struct {
		inst release.Instance
		opts []release.Option
		want string
	}{
		{release.Instance{Schema: 1}, nil, "needs a release name"},
		{release.Instance{Release: "v1"}, nil, "schema 0 and min_schema 0"},
		{release.Instance{Release: "v1", Schema: 2, MinSchema: 3}, nil, "min_schema between 0 and schema"},
		{release.Instance{Release: "v1", Schema: 1, ID: strings.Repeat("x", 65)}, nil, "longer than 64 characters"},
		{release.Instance{Release: "v1", Schema: 1}, []release.Option{release.WithHeartbeat(time.Second), release.WithTTL(time.Second)}, "at least twice the heartbeat interval"},
		{release.Instance{Release: "v1", Schema: 1}, []release.Option{release.WithTable("bad name")}, "instances table name"},
	} {
		if _, err := release.Register(ctx, db.DB.DB, db.Dialect, tc.inst, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.inst, err, tc.want)
		}
	}
}

// TestRegisterConcurrently: instances that start at the same moment on an
// empty database all register (creating the table races on PostgreSQL).
func TestRegisterConcurrently(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := testCtx(t)
		const n = 8
		var wg sync.WaitGroup
		regs := make([]*release.Registration, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				regs[i], errs[i] = release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{Release: "v1", Schema: 1})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("instance %d: %v", i, err)
			}
			defer regs[i].Close(ctx)
		}
		if l := live(t, db); len(l) != n {
			t.Fatalf("%d live instances, want %d", len(l), n)
		}
	})
}

// gated upgrades m through the contract gate, as ferry up and ferry serve
// do.
func gated(ctx context.Context, m *migrate.Migrator, gate migrate.Gate, opts migrate.UpOptions) (*migrate.Result, error) {
	out, err := m.Upgrade(ctx, opts, migrate.Pipeline{Gate: gate})
	return out.Result, err
}

func TestGateRefusesContractWhileOldInstanceLives(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := testCtx(t)
		gate := release.Gate(db.Dialect)
		m := migrator(t, db, greeterMigrations)
		if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
			t.Fatal(err)
		}
		opts := []release.Option{release.WithHeartbeat(50 * time.Millisecond), release.WithTTL(10 * time.Second)}
		old, err := release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{ID: "old-1", Host: "web-1", Release: "v1", Schema: 1}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close(ctx)
		// A release built against the contract migration does not block it.
		cur, err := release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{ID: "new-1", Release: "v2", Schema: 3, MinSchema: 2}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close(ctx)

		// The upgrade applies the expand migration below the contract
		// migration, which never waits, and holds the contract one back.
		res, err := gated(ctx, m, gate, migrate.UpOptions{})
		var cb *release.ContractBlockedError
		if !errors.As(err, &cb) || !errors.Is(err, release.ErrContractBlocked) {
			t.Fatalf("upgrade with a live v1 instance: %v", err)
		}
		for _, want := range []string{"refusing to apply contract migration 3 (", "00003_drop_name.sql", "release v1 (built against schema 1), which still has 1 live instance: host web-1, id old-1", "last heartbeat", "then upgrade again"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "v2") || len(cb.Blocked) != 1 || len(cb.Before) != 1 || cb.Before[0].Version != 2 {
			t.Errorf("blocked %+v before %v", cb.Blocked, cb.Before)
		}
		if res == nil || len(res.Migrations) != 1 || res.To != 2 {
			t.Fatalf("held-back upgrade: %+v", res)
		}
		if v := version(t, m); v != 2 {
			t.Fatalf("at version %d, want 2", v)
		}
		// Again: nothing below the contract migration is left, nothing
		// is applied.
		if res, err := gated(ctx, m, gate, migrate.UpOptions{}); !errors.Is(err, release.ErrContractBlocked) || len(res.Migrations) != 0 {
			t.Fatalf("second upgrade: %+v %v", res, err)
		}

		// The old instance stops: the contract migration goes in.
		if err := old.Close(ctx); err != nil {
			t.Fatal(err)
		}
		res, err = gated(ctx, m, gate, migrate.UpOptions{})
		if err != nil || res.To != 4 {
			t.Fatalf("after v1 stopped: %+v %v", res, err)
		}
	})
}

func TestGateIgnoresExpiredInstances(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := testCtx(t)
		gate := release.Gate(db.Dialect)
		m := migrator(t, db, greeterMigrations)
		if _, err := m.Up(ctx, migrate.UpOptions{To: 2}); err != nil {
			t.Fatal(err)
		}
		reg, err := release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{Release: "v1", Schema: 2},
			release.WithHeartbeat(50*time.Millisecond), release.WithTTL(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gated(ctx, m, gate, migrate.UpOptions{}); !errors.Is(err, release.ErrContractBlocked) {
			t.Fatalf("with a live instance: %v", err)
		}
		// The process dies: no more heartbeats and no deregistration.
		reg.Crash()
		waitFor(t, ctx, "the crashed instance expires", func() bool { return len(live(t, db)) == 0 })
		var rows int
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ferry_instances").Scan(&rows)
		if rows != 1 {
			t.Fatalf("the expired row should still be there (it is pruned later), found %d", rows)
		}
		if res, err := gated(ctx, m, gate, migrate.UpOptions{}); err != nil || res.To != 4 {
			t.Fatalf("an expired instance blocked the contract migration: %+v %v", res, err)
		}
	})
}

func TestGateForce(t *testing.T) {
	db := testdb.New(t, "sqlite")
	ctx := testCtx(t)
	var logged strings.Builder
	log := newTextLogger(&logged)
	m := migrator(t, db, greeterMigrations)
	reg, err := release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{Release: "v1", Schema: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	if res, err := gated(ctx, m, release.Gate(db.Dialect, release.WithForce(true), release.WithLogger(log)), migrate.UpOptions{}); err != nil || res.To != 4 {
		t.Fatalf("forced: %+v %v", res, err)
	}
	if !strings.Contains(logged.String(), "breaks live instances") || !strings.Contains(logged.String(), "release=v1") {
		t.Errorf("force must log what it breaks: %s", logged.String())
	}
}

// TestGateExpandOnlyNeverReads: a plan without contract migrations does not
// look at the registry at all (so even an unreadable registry cannot stop
// it).
func TestGateExpandOnlyNeverReads(t *testing.T) {
	db := testdb.New(t, "sqlite")
	ctx := testCtx(t)
	if _, err := db.ExecContext(ctx, "CREATE TABLE ferry_instances (nonsense INTEGER)"); err != nil {
		t.Fatal(err)
	}
	gate := release.Gate(db.Dialect)
	m := migrator(t, db, greeterMigrations)
	if _, err := gated(ctx, m, gate, migrate.UpOptions{To: 2}); err != nil {
		t.Fatalf("expand migrations: %v", err)
	}
	_, err := gated(ctx, m, gate, migrate.UpOptions{})
	if err == nil || !strings.Contains(err.Error(), "contract gate") {
		t.Fatalf("a contract migration with an unreadable registry must be refused: %v", err)
	}
	if v := version(t, m); v != 2 {
		t.Fatalf("at version %d", v)
	}
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
