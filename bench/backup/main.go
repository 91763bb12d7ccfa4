// Command backup-bench measures ferry's backup and restore throughput on a
// PostgreSQL database of at least 1 GB, next to plain pg_dump -Fc and
// pg_restore on the same database in the same run, and prints MB/s.
//
// It is run on demand, not in CI (it takes minutes and gigabytes):
//
//	go run ./bench/backup -url postgres://postgres@127.0.0.1:5432/postgres -size-gb 1
//
// It creates a database named ferry_bench_<random> (and two restore
// targets), fills it until pg_database_size reaches -size-gb, times the
// four operations, and drops everything it created, also when it fails.
// Throughput is the source database's size (pg_database_size) divided by
// the wall-clock time of the operation.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/database"
)

func main() {
	admin := flag.String("url", envOr("FERRY_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"), "PostgreSQL admin URL (a database to connect to for CREATE DATABASE)")
	sizeGB := flag.Float64("size-gb", 1, "fill the source database until pg_database_size reaches this many GiB")
	work := flag.String("dir", os.TempDir(), "directory for the dump files and the backup store")
	flag.Parse()
	ctx := context.Background()
	if err := run(ctx, *admin, int64(*sizeGB*(1<<30)), *work); err != nil {
		log.Fatal(err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type timing struct {
	what  string
	d     time.Duration
	bytes int64 // bytes written (dump size), 0 for restores
}

func run(ctx context.Context, adminURL string, size int64, work string) (err error) {
	adminDB, err := database.Open(ctx, adminURL, database.Options{})
	if err != nil {
		return err
	}
	defer adminDB.Close()
	var dbs []string
	defer func() {
		for _, n := range dbs {
			if _, derr := adminDB.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+n+`" WITH (FORCE)`); derr != nil {
				log.Printf("drop %s: %v", n, derr)
			}
		}
	}()
	create := func() (*database.DB, error) {
		name := fmt.Sprintf("ferry_bench_%d_%d", os.Getpid(), len(dbs))
		if _, err := adminDB.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
			return nil, err
		}
		dbs = append(dbs, name)
		return database.OpenURL(ctx, adminDB.URL.WithDatabase(name), database.Options{})
	}
	dir, err := os.MkdirTemp(work, "ferry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	src, err := create()
	if err != nil {
		return err
	}
	defer src.Close()
	log.Printf("filling %s to %d MiB", src.URL.Database, size>>20)
	start := time.Now()
	if err := fill(ctx, src, size); err != nil {
		return err
	}
	var dbSize int64
	if err := src.QueryRowContext(ctx, "SELECT pg_database_size(current_database())").Scan(&dbSize); err != nil {
		return err
	}
	log.Printf("source: %d MiB in %s", dbSize>>20, time.Since(start).Round(time.Second))

	var out []timing
	env := append(os.Environ(), "PGHOST="+src.URL.Host, "PGPORT="+src.URL.Port, "PGUSER="+src.URL.User, "PGPASSWORD="+src.URL.Password())

	// Plain pg_dump -Fc to a file, and pg_restore into a fresh database.
	dumpFile := filepath.Join(dir, "plain.dump")
	t0 := time.Now()
	if err := tool(ctx, env, "pg_dump", "--format=custom", "--file="+dumpFile, "--dbname="+src.URL.Database); err != nil {
		return err
	}
	st, _ := os.Stat(dumpFile)
	out = append(out, timing{"pg_dump -Fc (plain)", time.Since(t0), st.Size()})
	plainTarget, err := create()
	if err != nil {
		return err
	}
	plainTarget.Close()
	t0 = time.Now()
	if err := tool(ctx, env, "pg_restore", "--single-transaction", "--exit-on-error", "--dbname="+dbs[len(dbs)-1], dumpFile); err != nil {
		return err
	}
	out = append(out, timing{"pg_restore (plain)", time.Since(t0), 0})
	os.Remove(dumpFile)

	// ferry backup create and restore through a file store.
	store, err := backup.OpenStore(ctx, filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	defer store.Close()
	opts := backup.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t0 = time.Now()
	m, err := backup.Create(ctx, store, src, backup.CreateOptions{Options: opts})
	if err != nil {
		return err
	}
	out = append(out, timing{"ferry backup create", time.Since(t0), m.Size()})
	target, err := create()
	if err != nil {
		return err
	}
	defer target.Close()
	t0 = time.Now()
	if _, err := backup.Restore(ctx, store, m.ID, target, backup.RestoreOptions{Options: opts}); err != nil {
		return err
	}
	out = append(out, timing{"ferry backup restore", time.Since(t0), 0})

	host, _ := os.Hostname()
	var server string
	src.QueryRowContext(ctx, "SHOW server_version").Scan(&server)
	fmt.Printf("database: PostgreSQL %s, %d MiB (pg_database_size), %d rows; machine: %s, %d CPUs, %s/%s\n",
		server, dbSize>>20, rowsOf(ctx, src), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "operation\tseconds\tMB/s\toutput MiB\t\n")
	for _, t := range out {
		o := "-"
		if t.bytes > 0 {
			o = fmt.Sprintf("%d", t.bytes>>20)
		}
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%s\t\n", t.what, t.d.Seconds(), float64(dbSize)/1e6/t.d.Seconds(), o)
	}
	w.Flush()
	fmt.Printf("ratios: ferry create / pg_dump = %.2f, ferry restore / pg_restore = %.2f (time; 1.00 = same)\n",
		out[2].d.Seconds()/out[0].d.Seconds(), out[3].d.Seconds()/out[1].d.Seconds())
	return nil
}

func rowsOf(ctx context.Context, db *database.DB) int64 {
	var n int64
	db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n)
	return n
}

func tool(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// fill creates a table of events (ids, small integers, timestamps, text
// that compresses about as well as real application text) and an index,
// and inserts batches until the database reaches size bytes.
func fill(ctx context.Context, db *database.DB, size int64) error {
	for _, s := range []string{
		`CREATE TABLE accounts (id integer PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL)`,
		`INSERT INTO accounts SELECT g, 'account ' || g, now() - g * interval '1 minute' FROM generate_series(1, 10000) g`,
		`CREATE TABLE events (id bigint PRIMARY KEY, account_id integer NOT NULL REFERENCES accounts (id), kind text NOT NULL,
			amount numeric(12, 2) NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	const batch = 500000
	for from := int64(1); ; from += batch {
		_, err := db.ExecContext(ctx, `INSERT INTO events
SELECT g, 1 + (g * 7919) % 10000, (ARRAY['signup', 'login', 'purchase', 'refund', 'logout'])[1 + g % 5],
       ((g * 104729) % 100000) / 100.0, timestamptz '2026-01-01' + g * interval '1 second',
       'order ' || g || ' ' || md5(g::text) || ' ' || repeat(chr(97 + (g % 26)::int), 20 + (g % 40)::int)
FROM generate_series($1::bigint, $2::bigint) g`, from, from+batch-1)
		if err != nil {
			return err
		}
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
			return err
		}
		if n >= size*85/100 {
			break // the index below adds the rest
		}
	}
	for _, s := range []string{`CREATE INDEX events_account_idx ON events (account_id, created_at)`, `VACUUM ANALYZE`, `CHECKPOINT`} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	var n int64
	db.QueryRowContext(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	for n < size {
		// Top up if the index was smaller than expected.
		var max int64
		db.QueryRowContext(ctx, "SELECT max(id) FROM events").Scan(&max)
		if _, err := db.ExecContext(ctx, `INSERT INTO events SELECT g, 1 + g % 10000, 'login', 1, now(), md5(g::text) FROM generate_series($1::bigint, $2::bigint) g`, max+1, max+batch); err != nil {
			return err
		}
		db.QueryRowContext(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	}
	return nil
}
