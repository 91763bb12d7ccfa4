package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// The benchmarks below apply the workload in this process, one operation
// per migration, so that the engine's cost per migration can be told apart
// from process start-up and from the database's own work:
//
//	go test ./bench/compare -run '^$' -bench . -benchtime 1000x -cpuprofile cpu.out
//
// BenchmarkRawTx is the in-process lower bound (one transaction per
// migration, nothing else); BenchmarkRawTxHistory adds ferry's history row
// to it; BenchmarkEngineUp is migrate.Migrator.Up. Each needs the database
// URLs of internal/testdb (SQLite always runs).

// benchKinds runs fn once per database kind as a sub-benchmark.
func benchKinds(b *testing.B, fn func(b *testing.B, db *testdb.DB, ms []migration)) {
	for _, kind := range testdb.Kinds() {
		b.Run(kind, func(b *testing.B) {
			db := testdb.New(b, kind)
			ms := generate(b.N, 6)
			b.ResetTimer()
			fn(b, db, ms)
		})
	}
}

func BenchmarkEngineUp(b *testing.B) {
	benchKinds(b, func(b *testing.B, db *testdb.DB, ms []migration) {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "migrations")
		if err := writeDir(dir, formatFerry, ms, versionWidth(len(ms))); err != nil {
			b.Fatal(err)
		}
		m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := m.Up(context.Background(), migrate.UpOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Migrations) != len(ms) {
			b.Fatalf("applied %d of %d", len(res.Migrations), len(ms))
		}
	})
}

func BenchmarkRawTx(b *testing.B) {
	benchKinds(b, func(b *testing.B, db *testdb.DB, ms []migration) {
		rawTx(b, db, ms, false)
	})
}

func BenchmarkRawTxHistory(b *testing.B) {
	benchKinds(b, func(b *testing.B, db *testdb.DB, ms []migration) {
		rawTx(b, db, ms, true)
	})
}

// rawTx applies ms on one connection, one transaction per migration; with
// history, each transaction also inserts a row like ferry's history row.
func rawTx(b *testing.B, db *testdb.DB, ms []migration, history bool) {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	d := db.Dialect
	insert := ""
	if history {
		for _, s := range d.HistoryDDL("raw_history") {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
		var ph string
		for i := 1; i <= 10; i++ {
			if i > 1 {
				ph += ", "
			}
			ph += d.Placeholder(i)
		}
		insert = "INSERT INTO " + d.Table("raw_history") + " (version, name, checksum, operation, state, applied_at, duration_ms, applied_by, statement, error) VALUES (" + ph + ")"
	}
	for _, m := range ms {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range m.Statements {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				b.Fatalf("%d: %v", m.Version, err)
			}
		}
		if history {
			if _, err := d.InsertReturningID(ctx, tx, insert, m.Version, m.Name, "0123456789abcdef", "up", "applied", time.Now().UTC(), 1, "host:1", 0, sql.NullString{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(fmt.Errorf("commit %d: %w", m.Version, err))
		}
	}
}

// BenchmarkPipelined (PostgreSQL only) is BenchmarkRawTxHistory with each
// migration sent as one pipeline (BEGIN, its statements, the history row,
// COMMIT, then one Sync): one round trip per migration instead of one per
// statement. It prototypes an engine change; the results still say which
// statement failed.
func BenchmarkPipelined(b *testing.B) {
	db := testdb.New(b, "postgres")
	ms := generate(b.N, 6)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for _, s := range db.Dialect.HistoryDDL("raw_history") {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	insert := "INSERT INTO raw_history (version, name, checksum, operation, state, applied_at, duration_ms, applied_by, statement, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id"
	b.ResetTimer()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn().PgConn()
		for _, m := range ms {
			p := pc.StartPipeline(ctx)
			p.SendQueryParams("BEGIN", nil, nil, nil, nil)
			for _, s := range m.Statements {
				p.SendQueryParams(s, nil, nil, nil, nil)
			}
			args := [][]byte{[]byte(strconv.FormatInt(m.Version, 10)), []byte(m.Name), []byte("0123456789abcdef"), []byte("up"), []byte("applied"),
				[]byte(time.Now().UTC().Format(time.RFC3339Nano)), []byte("1"), []byte("host:1"), []byte("0"), nil}
			p.SendQueryParams(insert, args, nil, nil, nil)
			p.SendQueryParams("COMMIT", nil, nil, nil, nil)
			if err := p.Sync(); err != nil {
				return err
			}
			for {
				r, err := p.GetResults()
				if err != nil {
					return fmt.Errorf("%d: %w", m.Version, err)
				}
				if rr, ok := r.(*pgconn.ResultReader); ok {
					if _, err := rr.Close(); err != nil {
						return fmt.Errorf("%d: %w", m.Version, err)
					}
				}
				if _, ok := r.(*pgconn.PipelineSync); ok {
					break
				}
			}
			if err := p.Close(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// benchMigrations is how many migrations BenchmarkStatus and
// BenchmarkUpNothing find applied.
var benchMigrations = flag.Int("bench.migrations", 10000, "migrations applied before BenchmarkStatus and BenchmarkUpNothing")

// applied returns a database of kind with the first n migrations of the
// workload recorded as applied (by Baseline: their SQL is not run, which
// changes nothing for reading the history), and their directory.
func applied(b *testing.B, kind string, n int) (*testdb.DB, string) {
	db := testdb.New(b, kind)
	dir := filepath.Join(b.TempDir(), "migrations")
	if err := writeDir(dir, formatFerry, generate(n, 6), versionWidth(n)); err != nil {
		b.Fatal(err)
	}
	m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Baseline(context.Background(), int64(n), migrate.BaselineOptions{}); err != nil {
		b.Fatal(err)
	}
	return db, dir
}

// benchApplied runs fn once per database kind as a sub-benchmark, on a
// database with -bench.migrations applied and their directory.
func benchApplied(b *testing.B, fn func(b *testing.B, db *testdb.DB, dir string)) {
	for _, kind := range testdb.Kinds() {
		b.Run(kind, func(b *testing.B) {
			db, dir := applied(b, kind, *benchMigrations)
			fn(b, db, dir)
		})
	}
}

// BenchmarkStatus is the engine's part of `ferry status` (and of every
// status request of the service) with -bench.migrations applied: New
// (reading the directory) and Migrator.StatusWith (reading the history
// and the details of the 10 most recent, as `ferry status` does).
func BenchmarkStatus(b *testing.B) {
	benchApplied(b, func(b *testing.B, db *testdb.DB, dir string) {
		for b.Loop() {
			m := newBenchMigrator(b, db, dir)
			wantUpToDate(b, m, 10) // as `ferry status` does
		}
	})
}

// BenchmarkUpNothing is a run of Up that finds -bench.migrations applied
// and nothing to do: the fixed cost of a run (lock, history, plan) that
// case 3 pays before its 10 migrations.
func BenchmarkUpNothing(b *testing.B) {
	benchApplied(b, func(b *testing.B, db *testdb.DB, dir string) {
		for b.Loop() {
			res, err := newBenchMigrator(b, db, dir).Up(context.Background(), migrate.UpOptions{})
			if err != nil || len(res.Migrations) != 0 {
				b.Fatalf("up: %v, %+v", err, res)
			}
		}
	})
}

// BenchmarkServiceStatus is what one GET /db_schema_status costs the
// service with -bench.migrations applied: one long-lived Migrator answering
// brief statuses, so every call after the first finds the history cached
// and only checks that it has not changed.
func BenchmarkServiceStatus(b *testing.B) {
	benchApplied(b, func(b *testing.B, db *testdb.DB, dir string) {
		m := newBenchMigrator(b, db, dir)
		for b.Loop() {
			wantUpToDate(b, m, -1) // as the service does
		}
	})
}

func newBenchMigrator(b *testing.B, db *testdb.DB, dir string) *migrate.Migrator {
	m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// wantUpToDate takes a status listing listApplied applied migrations and
// fails unless it says the database is up to date.
func wantUpToDate(b *testing.B, m *migrate.Migrator, listApplied int) {
	st, err := m.StatusWith(context.Background(), migrate.StatusOptions{Applied: listApplied})
	if err != nil || !st.IsUpToDate {
		b.Fatalf("status: %v, up to date %v", err, st != nil && st.IsUpToDate)
	}
}
