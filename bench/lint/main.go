// Command lint-bench measures what lint costs:
//
//   - `ferry lint` over N migrations (default 1,000) of mixed DDL and DML,
//     as a whole process, on PostgreSQL syntax with no database contacted;
//   - what lint adds to `ferry up` with 10 pending migrations: the same up
//     run with --lint warn and with --lint off, alternating, on fresh
//     copies of one SQLite database (and on PostgreSQL when -pg is set).
//
// It reports medians of -runs runs. Run it alone on the machine:
//
//	go run ./bench/lint -runs 15
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/ferrydb/ferry/database"
	_ "github.com/jackc/pgx/v5/stdlib"
)

func main() {
	n := flag.Int("migrations", 1000, "migrations for the ferry lint measurement")
	runs := flag.Int("runs", 15, "runs of each measurement (the median is reported)")
	pgURL := flag.String("pg", os.Getenv("FERRY_TEST_POSTGRES_URL"), "PostgreSQL admin URL for the ferry up measurement (\"\": SQLite only)")
	ferryBin := flag.String("ferry", "", "ferry binary to measure (default: built from this checkout)")
	jsonOut := flag.String("json", "", "also write the results here as JSON")
	flag.Parse()
	dir, err := os.MkdirTemp("", "ferry-lintbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := *ferryBin
	if bin == "" {
		bin = filepath.Join(dir, "ferry")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/ferry").CombinedOutput(); err != nil {
			log.Fatalf("build ferry: %v\n%s", err, out)
		}
	}
	results := map[string]any{}

	// ferry lint over n migrations.
	lintDir := filepath.Join(dir, "lint")
	writeMigrations(lintDir, *n, false)
	var lintTimes []time.Duration
	for i := 0; i < *runs; i++ {
		d, _ := timeRun(lintDir, bin, "lint", "-d", "postgres://bench@127.0.0.1:1/none", "--fail-on", "never", "--format", "json")
		lintTimes = append(lintTimes, d)
	}
	results["lint_migrations"] = *n
	results["lint_median_ms"] = ms(median(lintTimes))
	fmt.Printf("ferry lint over %d migrations: median %.1f ms (of %d runs)\n", *n, ms(median(lintTimes)), *runs)

	// ferry up with 10 pending, lint warn vs off.
	upDir := filepath.Join(dir, "up")
	writeMigrations(upDir, 110, true)
	urls := map[string]func(i int) (string, func()){
		"sqlite": func(i int) (string, func()) {
			return "sqlite:" + filepath.Join(dir, fmt.Sprintf("up-%d.db", i)), func() {}
		},
	}
	if *pgURL != "" {
		urls["postgres"] = func(i int) (string, func()) {
			admin, err := database.Parse(*pgURL)
			if err != nil {
				log.Fatal(err)
			}
			name := fmt.Sprintf("ferry_lbench_%d_%d", os.Getpid(), i)
			db, err := sql.Open("pgx", admin.WithPassword())
			if err != nil {
				log.Fatal(err)
			}
			if _, err := db.Exec(`CREATE DATABASE "` + name + `"`); err != nil {
				log.Fatal(err)
			}
			return admin.WithDatabase(name).WithPassword(), func() {
				db.Exec(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`)
				db.Close()
			}
		}
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		mk := urls[kind]
		if mk == nil {
			continue
		}
		times := map[string][]time.Duration{}
		for i := 0; i < *runs; i++ {
			for _, mode := range []string{"warn", "off"} {
				u, drop := mk(len(times["warn"])*2 + len(times["off"]))
				if _, err := timeRun(upDir, bin, "up", "-d", u, "--to", "100", "--lint", "off"); err != nil {
					log.Fatalf("%s: prepare: %v", kind, err)
				}
				d, err := timeRun(upDir, bin, "up", "-d", u, "--lint", mode)
				if err != nil {
					log.Fatalf("%s: up --lint %s: %v", kind, mode, err)
				}
				times[mode] = append(times[mode], d)
				drop()
			}
		}
		warn, off := median(times["warn"]), median(times["off"])
		fmt.Printf("%s: ferry up, 10 pending of 110: --lint warn median %.1f ms, --lint off %.1f ms: lint adds %.1f ms\n", kind, ms(warn), ms(off), ms(warn-off))
		results[kind+"_up_lint_warn_ms"] = ms(warn)
		results[kind+"_up_lint_off_ms"] = ms(off)
		results[kind+"_up_lint_added_ms"] = ms(warn - off)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	_ = context.Background
}

// writeMigrations writes n migrations to dir/migrations: a schema of 20
// tables, then a mix of the changes real services make.
func writeMigrations(dir string, n int, portable bool) {
	md := filepath.Join(dir, "migrations")
	if err := os.MkdirAll(md, 0o755); err != nil {
		log.Fatal(err)
	}
	bodies := []string{
		"CREATE TABLE t%[1]d (id bigint PRIMARY KEY, name varchar(50), amount numeric(10,2), created_at timestamp);\nCREATE INDEX t%[1]d_name ON t%[1]d (name);",
		"ALTER TABLE t%[2]d ADD COLUMN c%[1]d integer;",
		"ALTER TABLE t%[2]d ADD COLUMN d%[1]d text DEFAULT 'x';\nUPDATE t%[2]d SET d%[1]d = 'y' WHERE id < 100;",
		"INSERT INTO t%[2]d (id, name) VALUES (%[1]d, 'row %[1]d');",
		"ALTER TABLE t%[2]d ALTER COLUMN name TYPE varchar(%[3]d);",
		"CREATE VIEW v%[1]d AS SELECT id, name FROM t%[2]d WHERE amount > 0;",
		"ALTER TABLE t%[2]d ADD CONSTRAINT k%[1]d CHECK (amount >= 0) NOT VALID;",
		"COMMENT ON TABLE t%[2]d IS 'table %[2]d, migration %[1]d';",
	}
	for i := 1; i <= n; i++ {
		var body string
		if i <= 20 {
			body = fmt.Sprintf(bodies[0], i)
		} else if portable {
			// What SQLite runs too.
			body = fmt.Sprintf(bodies[[]int{1, 2, 3, 5}[i%4]], i, 1+i%20, 50+i)
		} else {
			body = fmt.Sprintf(bodies[1+i%(len(bodies)-1)], i, 1+i%20, 50+i)
		}
		src := fmt.Sprintf("-- +ferry up\n%s\n\n-- +ferry down\nSELECT 1;\n", body)
		if err := os.WriteFile(filepath.Join(md, fmt.Sprintf("%05d_m%d.sql", i, i)), []byte(src), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func timeRun(dir, bin string, args ...string) (time.Duration, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil && args[0] != "lint" {
		return d, fmt.Errorf("%v: %s", err, out)
	}
	return d, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
