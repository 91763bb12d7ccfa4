// Command transfer-bench measures ferry export and ferry import next to the
// tools operators use today, in one run on the same data:
//
//   - PostgreSQL: pg_dump -Fd -j N --data-only and pg_restore -j N
//     --data-only, against ferry export --jobs N and ferry import;
//   - MariaDB: mysqldump --single-transaction --no-create-info and
//     mysql < dump.sql, against ferry export --jobs N and ferry import,
//     taking turns -runs times (default 3), each result the median;
//   - ferry export --encrypt all against plain ferry export (the cost of
//     encryption), and ferry export --compress gzip against the default
//     S2 (time, and the stored size of every export; -gzip=false for a
//     ferry without the flag);
//   - the peak memory (maximum resident set) of every ferry process, with
//     a table holding one 100 MB value in the PostgreSQL data.
//
// It is run on demand, not in CI (minutes and gigabytes):
//
//	go run ./bench/transfer -pg-size-gb 1 -mysql-size-gb 0.3 -jobs 2
//
// It creates databases named ferry_tbench_<pid>_<n>, fills them through
// ferry's own migrations (export needs a database ferry manages), times
// each operation as a whole process, and drops everything it created.
// Throughput is the source's size (pg_database_size, or the InnoDB data and
// index length) divided by wall-clock time.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

func main() {
	pgURL := flag.String("pg", envOr("FERRY_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"), "PostgreSQL admin URL (\"\" skips PostgreSQL)")
	myURL := flag.String("mysql", envOr("FERRY_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/"), "MariaDB/MySQL admin URL (\"\" skips it)")
	pgSize := flag.Float64("pg-size-gb", 1, "fill the PostgreSQL source to this many GiB")
	mySize := flag.Float64("mysql-size-gb", 0.3, "fill the MariaDB source to this many GiB")
	jobs := flag.Int("jobs", 2, "parallel jobs for pg_dump/pg_restore and ferry export")
	runs := flag.Int("runs", 3, "MariaDB: runs of each tool, taking turns; each result is the median")
	ferryBin := flag.String("ferry", "", "ferry binary to measure (default: built from this checkout)")
	jsonOut := flag.String("json", "", "also write the results here as JSON")
	work := flag.String("dir", os.TempDir(), "directory for dumps and stores")
	gzipToo := flag.Bool("gzip", true, "also time ferry export --compress gzip (false for a ferry without the flag)")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp(*work, "ferry-tbench-")
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
	b := &bench{ferry: bin, dir: dir, jobs: *jobs, runs: max(*runs, 1), gzip: *gzipToo}
	var results []result
	if *pgURL != "" {
		r, err := b.postgres(ctx, *pgURL, int64(*pgSize*(1<<30)))
		if err != nil {
			log.Fatal(err)
		}
		results = append(results, r...)
	}
	if *myURL != "" {
		r, err := b.mysql(ctx, *myURL, int64(*mySize*(1<<30)))
		if err != nil {
			log.Fatal(err)
		}
		results = append(results, r...)
	}
	report(results, *jobs)
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// result is one timed operation.
type result struct {
	Engine    string  `json:"engine"`
	Operation string  `json:"operation"`
	Tool      string  `json:"tool"`
	Seconds   float64 `json:"seconds"`
	MBps      float64 `json:"mb_per_s"`
	SourceMiB int64   `json:"source_mib"`
	// PeakRSSMiB is the process's maximum resident set (ferry only).
	PeakRSSMiB int64 `json:"peak_rss_mib,omitempty"`
	// StoredMiB is the size of what an export wrote (dump or store).
	StoredMiB float64 `json:"stored_mib,omitempty"`
	// Turns are the times of each run, in the order the tools took turns
	// (MariaDB): Seconds is their median.
	Turns []float64 `json:"turns,omitempty"`
	// Steal is, for each turn, the percentage of the machine's CPU time
	// that the hypervisor gave to other guests (/proc/stat's steal): a
	// tool that keeps both CPUs busy loses more to it than one that keeps
	// one busy.
	Steal []float64 `json:"steal_percent,omitempty"`
}

type bench struct {
	ferry string
	dir   string
	jobs  int
	runs  int
	n     int
	gzip  bool // also time ferry export --compress gzip
}

// run times one process and returns its wall time and peak RSS.
func run(env []string, stdin string, name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var errb strings.Builder
	cmd.Stderr = &errb
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss >> 10 // KiB on Linux
	}
	return d, rss, nil
}

func (b *bench) name() string {
	b.n++
	return fmt.Sprintf("ferry_tbench_%d_%d", os.Getpid(), b.n)
}

// migrations writes the service's schema as a ferry migration.
func (b *bench) migrations(kind string) (string, error) {
	dir := filepath.Join(b.dir, "migrations-"+kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	schema := `-- +ferry up
CREATE TABLE accounts (id integer PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE events (id bigint PRIMARY KEY, account_id integer NOT NULL REFERENCES accounts (id), kind text NOT NULL,
    amount numeric(12, 2) NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL);
CREATE INDEX events_account_idx ON events (account_id, created_at);
CREATE TABLE blobs (id integer PRIMARY KEY, content bytea NOT NULL);
`
	if kind == database.MySQL {
		schema = `-- +ferry up
CREATE TABLE accounts (id int PRIMARY KEY, name varchar(100) NOT NULL, created_at datetime(6) NOT NULL);
CREATE TABLE events (id bigint PRIMARY KEY, account_id int NOT NULL, kind varchar(20) NOT NULL,
    amount decimal(12, 2) NOT NULL, created_at datetime(6) NOT NULL, payload text NOT NULL,
    KEY events_account_idx (account_id, created_at), CONSTRAINT events_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id));
`
	}
	return dir, os.WriteFile(filepath.Join(dir, "001_schema.sql"), []byte(schema), 0o644)
}

func migrateUp(ctx context.Context, db *database.DB, dir string) error {
	m, err := migrate.New(db.DB, db.Dialect, migrate.WithDir(dir))
	if err != nil {
		return err
	}
	_, err = m.Up(ctx, migrate.UpOptions{})
	return err
}

func (b *bench) postgres(ctx context.Context, adminURL string, size int64) ([]result, error) {
	admin, err := database.Open(ctx, adminURL, database.Options{})
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	var created []string
	defer func() {
		for _, n := range created {
			admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+n+`" WITH (FORCE)`)
		}
	}()
	create := func() (*database.DB, error) {
		n := b.name()
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+n+`"`); err != nil {
			return nil, err
		}
		created = append(created, n)
		return database.OpenURL(ctx, admin.URL.WithDatabase(n), database.Options{})
	}
	migs, err := b.migrations(database.Postgres)
	if err != nil {
		return nil, err
	}
	src, err := create()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if err := migrateUp(ctx, src, migs); err != nil {
		return nil, err
	}
	log.Printf("PostgreSQL: filling %s to %d MiB", src.URL.Database, size>>20)
	if err := fillPostgres(ctx, src, size); err != nil {
		return nil, err
	}
	var dbSize int64
	src.QueryRowContext(ctx, "SELECT pg_database_size(current_database())").Scan(&dbSize)
	mib := dbSize >> 20
	env := append(os.Environ(), "PGHOST="+src.URL.Host, "PGPORT="+src.URL.Port, "PGUSER="+src.URL.User, "PGPASSWORD="+src.URL.Password())
	ferryEnv := func(db *database.DB) []string {
		return append(os.Environ(), "FERRY_DATABASE_URL="+db.URL.WithPassword(), "FERRY_DIR="+migs)
	}
	var out []result
	add := func(op, tool string, d time.Duration, rss int64, stored string) {
		out = append(out, result{Engine: "PostgreSQL", Operation: op, Tool: tool, Seconds: d.Seconds(), MBps: float64(dbSize) / 1e6 / d.Seconds(), SourceMiB: mib, PeakRSSMiB: rss, StoredMiB: sizeMiB(stored)})
		log.Printf("%s %s: %.1f s", op, tool, d.Seconds())
	}
	j := fmt.Sprint(b.jobs)
	dump := filepath.Join(b.dir, "pgdump")
	d, _, err := run(env, "", "pg_dump", "-Fd", "-j", j, "--data-only", "--exclude-table=ferry_migrations*", "-f", dump, "--dbname="+src.URL.Database)
	if err != nil {
		return nil, err
	}
	add("export", fmt.Sprintf("pg_dump -Fd -j %d --data-only", b.jobs), d, 0, dump)
	store := filepath.Join(b.dir, "store-pg")
	d, rss, err := run(ferryEnv(src), "", b.ferry, "export", "--to", store, "--jobs", j)
	if err != nil {
		return nil, err
	}
	add("export", fmt.Sprintf("ferry export --jobs %d", b.jobs), d, rss, store)
	if b.gzip {
		gz := filepath.Join(b.dir, "store-pg-gzip")
		d, rss, err = run(ferryEnv(src), "", b.ferry, "export", "--to", gz, "--jobs", j, "--compress", "gzip")
		if err != nil {
			return nil, err
		}
		add("export", fmt.Sprintf("ferry export --jobs %d --compress gzip", b.jobs), d, rss, gz)
		os.RemoveAll(gz)
	}
	key, _ := age.GenerateX25519Identity()
	rcpt := filepath.Join(b.dir, "recipients")
	os.WriteFile(rcpt, []byte(key.Recipient().String()+"\n"), 0o600)
	d, rss, err = run(ferryEnv(src), "", b.ferry, "export", "--to", filepath.Join(b.dir, "store-pg-enc"), "--jobs", j, "--encrypt", "all", "--recipients-file", rcpt)
	if err != nil {
		return nil, err
	}
	add("export", fmt.Sprintf("ferry export --jobs %d --encrypt all", b.jobs), d, rss, "")
	os.RemoveAll(filepath.Join(b.dir, "store-pg-enc"))

	restoreTarget, err := create()
	if err != nil {
		return nil, err
	}
	if err := migrateUp(ctx, restoreTarget, migs); err != nil { // pg_restore --data-only needs the schema
		return nil, err
	}
	restoreTarget.Close()
	d, _, err = run(env, "", "pg_restore", "-j", j, "--data-only", "--exit-on-error", "--dbname="+created[len(created)-1], dump)
	if err != nil {
		return nil, err
	}
	add("import", fmt.Sprintf("pg_restore -j %d --data-only", b.jobs), d, 0, "")
	os.RemoveAll(dump)
	target, err := create()
	if err != nil {
		return nil, err
	}
	defer target.Close()
	ids, _ := os.ReadDir(store)
	d, rss, err = run(ferryEnv(target), "", b.ferry, "import", "--from", filepath.Join(store, ids[0].Name()))
	if err != nil {
		return nil, err
	}
	add("import", "ferry import (verified)", d, rss, "")
	return out, nil
}

// sizeMiB is the size of the file or directory tree at p ("": 0).
func sizeMiB(p string) float64 {
	if p == "" {
		return 0
	}
	var n int64
	filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return float64(n) / (1 << 20)
}

func fillPostgres(ctx context.Context, db *database.DB, size int64) error {
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts SELECT g, 'account ' || g, now() - g * interval '1 minute' FROM generate_series(1, 10000) g`); err != nil {
		return err
	}
	// One 100 MB value: what a streaming export must not hold twice.
	if _, err := db.ExecContext(ctx, `INSERT INTO blobs SELECT 1, convert_to(repeat(md5('x'), 100 * 1024 * 1024 / 32), 'UTF8')`); err != nil {
		return err
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
		if n >= size {
			break
		}
	}
	for _, s := range []string{`VACUUM ANALYZE`, `CHECKPOINT`} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) mysql(ctx context.Context, adminURL string, size int64) ([]result, error) {
	admin, err := database.Open(ctx, adminURL, database.Options{})
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	var created []string
	defer func() {
		for _, n := range created {
			admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+n+"`")
		}
	}()
	create := func() (*database.DB, error) {
		n := b.name()
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+n+"` CHARACTER SET utf8mb4"); err != nil {
			return nil, err
		}
		created = append(created, n)
		return database.OpenURL(ctx, admin.URL.WithDatabase(n), database.Options{})
	}
	drop := func(db *database.DB) {
		db.Close()
		admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+db.URL.Database+"`")
	}
	migs, err := b.migrations(database.MySQL)
	if err != nil {
		return nil, err
	}
	src, err := create()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if err := migrateUp(ctx, src, migs); err != nil {
		return nil, err
	}
	log.Printf("MariaDB: filling %s to %d MiB", src.URL.Database, size>>20)
	if err := fillMySQL(ctx, src, size); err != nil {
		return nil, err
	}
	dbSize := mysqlSize(ctx, src)
	mib := dbSize >> 20
	var out []result
	add := func(op, tool string, turns []time.Duration, steal []float64, rss int64, stored float64) {
		d := median(turns)
		r := result{Engine: "MariaDB", Operation: op, Tool: tool, Seconds: d.Seconds(), MBps: float64(dbSize) / 1e6 / d.Seconds(), SourceMiB: mib, PeakRSSMiB: rss, StoredMiB: stored, Steal: steal}
		for _, t := range turns {
			r.Turns = append(r.Turns, t.Seconds())
		}
		out = append(out, r)
		log.Printf("%s %s: %.1f s", op, tool, d.Seconds())
	}
	ferryEnv := func(db *database.DB) []string {
		return append(os.Environ(), "FERRY_DATABASE_URL="+db.URL.WithPassword(), "FERRY_DIR="+migs)
	}
	clientArgs := []string{"--protocol=tcp", "-h", src.URL.Host, "-P", src.URL.Port, "-u", src.URL.User}
	env := append(os.Environ(), "MYSQL_PWD="+src.URL.Password())
	dumpFile := filepath.Join(b.dir, "mysqldump.sql")
	dump, err := lookTool("mariadb-dump", "mysqldump")
	if err != nil {
		return nil, err
	}
	client, err := lookTool("mariadb", "mysql")
	if err != nil {
		return nil, err
	}
	ignore := ""
	for _, t := range []string{"ferry_migrations", "ferry_migrations_lock"} {
		ignore += " --ignore-table=" + src.URL.Database + "." + t
	}
	// A MariaDB run lasts seconds, in which a small machine's noise
	// counts: the tools take turns, b.runs times, and each is its median.
	j := fmt.Sprint(b.jobs)
	store, gzStore := filepath.Join(b.dir, "store-my"), filepath.Join(b.dir, "store-my-gzip")
	var dumps, exports, gzExports, restores, imports []time.Duration
	var exportRSS, gzRSS, importRSS int64
	var restoreSteal, importSteal []float64
	for range b.runs {
		d, _, err := run(env, "", "sh", "-c", fmt.Sprintf("%s %s --single-transaction --no-create-info --skip-triggers%s %s > %s",
			dump, strings.Join(clientArgs, " "), ignore, src.URL.Database, dumpFile))
		if err != nil {
			return nil, err
		}
		dumps = append(dumps, d)
		os.RemoveAll(store)
		d, rss, err := run(ferryEnv(src), "", b.ferry, "export", "--to", store, "--jobs", j)
		if err != nil {
			return nil, err
		}
		exports, exportRSS = append(exports, d), max(exportRSS, rss)
		if b.gzip {
			os.RemoveAll(gzStore)
			d, rss, err := run(ferryEnv(src), "", b.ferry, "export", "--to", gzStore, "--jobs", j, "--compress", "gzip")
			if err != nil {
				return nil, err
			}
			gzExports, gzRSS = append(gzExports, d), max(gzRSS, rss)
		}
	}
	add("export", "mysqldump --single-transaction --no-create-info", dumps, nil, 0, sizeMiB(dumpFile))
	add("export", fmt.Sprintf("ferry export --jobs %d", b.jobs), exports, nil, exportRSS, sizeMiB(store))
	if b.gzip {
		add("export", fmt.Sprintf("ferry export --jobs %d --compress gzip", b.jobs), gzExports, nil, gzRSS, sizeMiB(gzStore))
		os.RemoveAll(gzStore)
	}
	ids, _ := os.ReadDir(store)
	for range b.runs {
		restoreTarget, err := create()
		if err != nil {
			return nil, err
		}
		if err := migrateUp(ctx, restoreTarget, migs); err != nil {
			return nil, err
		}
		cpu := readHostCPU()
		d, _, err := run(env, dumpFile, client, append(clientArgs, restoreTarget.URL.Database)...)
		if err != nil {
			return nil, err
		}
		restores, restoreSteal = append(restores, d), append(restoreSteal, cpu.stealSince())
		drop(restoreTarget)
		target, err := create()
		if err != nil {
			return nil, err
		}
		cpu = readHostCPU()
		d, rss, err := run(ferryEnv(target), "", b.ferry, "import", "--from", filepath.Join(store, ids[0].Name()))
		if err != nil {
			return nil, err
		}
		imports, importRSS, importSteal = append(imports, d), max(importRSS, rss), append(importSteal, cpu.stealSince())
		drop(target)
	}
	os.Remove(dumpFile)
	add("import", "mysql < dump.sql", restores, restoreSteal, 0, 0)
	add("import", "ferry import (verified)", imports, importSteal, importRSS, 0)
	return out, nil
}

// hostCPU is the machine's CPU time so far, all CPUs together, and the
// part of it the hypervisor gave to other guests, in clock ticks
// (/proc/stat's first line; zero where there is none).
type hostCPU struct{ total, steal int64 }

func readHostCPU() hostCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return hostCPU{}
	}
	var c hostCPU
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseInt(v, 10, 64)
		c.total += n
		if i == 7 {
			c.steal = n
		}
	}
	return c
}

// stealSince is the percentage of the CPU time since c that was stolen.
func (c hostCPU) stealSince() float64 {
	now := readHostCPU()
	if now.total <= c.total {
		return 0
	}
	return 100 * float64(now.steal-c.steal) / float64(now.total-c.total)
}

func percents(ps []float64) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%.0f%%", p)
	}
	return strings.Join(s, ", ")
}

// median is the middle of ds (the mean of the middle two when even).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func lookTool(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s is installed", strings.Join(names, ", "))
}

func mysqlSize(ctx context.Context, db *database.DB) int64 {
	var n int64
	db.QueryRowContext(ctx, `SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = DATABASE()`).Scan(&n)
	return n
}

func fillMySQL(ctx context.Context, db *database.DB, size int64) error {
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts SELECT seq, CONCAT('account ', seq), NOW(6) - INTERVAL seq MINUTE FROM seq_1_to_10000`); err != nil {
		return err
	}
	const batch = 200000
	for from := int64(1); ; from += batch {
		_, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO events
SELECT seq, 1 + (seq * 7919) %% 10000, ELT(1 + seq %% 5, 'signup', 'login', 'purchase', 'refund', 'logout'),
       ((seq * 104729) %% 100000) / 100.0, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND,
       CONCAT('order ', seq, ' ', MD5(seq), ' ', REPEAT(CHAR(97 + seq %% 26), 20 + seq %% 40))
FROM seq_%d_to_%d`, from, from+batch-1))
		if err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, "ANALYZE TABLE events"); err != nil {
			return err
		}
		if mysqlSize(ctx, db) >= size {
			return nil
		}
	}
}

func report(rs []result, jobs int) {
	host, _ := os.Hostname()
	fmt.Printf("## ferry export/import vs pg_dump/pg_restore and mysqldump/mysql\n\n")
	fmt.Printf("Machine: %s, %d CPUs, %s/%s; jobs: %d. Throughput = source size / wall time.\n\n", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, jobs)
	fmt.Printf("| engine | operation | tool | source MiB | seconds | MB/s | stored MiB | ferry peak RSS MiB |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rs {
		rss, stored := "-", "-"
		if r.PeakRSSMiB > 0 {
			rss = fmt.Sprint(r.PeakRSSMiB)
		}
		if r.StoredMiB > 0 {
			stored = fmt.Sprintf("%.0f", r.StoredMiB)
		}
		fmt.Printf("| %s | %s | %s | %d | %.1f | %.1f | %s | %s |\n", r.Engine, r.Operation, r.Tool, r.SourceMiB, r.Seconds, r.MBps, stored, rss)
	}
	fmt.Println()
	ratio := func(engine, op, a, b string) {
		var ra, rb result
		for _, r := range rs {
			if r.Engine == engine && r.Operation == op {
				if strings.HasPrefix(r.Tool, a) && (strings.Contains(a, "--") || !strings.Contains(r.Tool, "--encrypt") && !strings.Contains(r.Tool, "--compress")) {
					ra = r
				}
				if strings.HasPrefix(r.Tool, b) {
					rb = r
				}
			}
		}
		if ra.Seconds == 0 || rb.Seconds == 0 {
			return
		}
		fmt.Printf("- %s %s: %s throughput / %s throughput = %.2f", engine, op, a, b, rb.Seconds/ra.Seconds)
		// The ratio of the medians, and each turn's own: the two tools ran
		// one after the other, so a turn's ratio shows how far the
		// machine's speed moved the medians.
		if len(ra.Turns) == len(rb.Turns) && len(ra.Turns) > 1 {
			turns := make([]string, len(ra.Turns))
			for i := range ra.Turns {
				turns[i] = fmt.Sprintf("%.2f", rb.Turns[i]/ra.Turns[i])
			}
			fmt.Printf(" (turn by turn: %s)", strings.Join(turns, ", "))
		}
		fmt.Println()
		if len(ra.Steal) == len(ra.Turns) && len(rb.Steal) == len(rb.Turns) && len(ra.Steal) > 0 {
			fmt.Printf("  - CPU time stolen by the hypervisor, turn by turn: %s %s, %s %s\n", a, percents(ra.Steal), b, percents(rb.Steal))
		}
	}
	ratio("PostgreSQL", "export", "ferry export", "pg_dump")
	ratio("PostgreSQL", "import", "ferry import", "pg_restore")
	ratio("MariaDB", "export", "ferry export", "mysqldump")
	ratio("MariaDB", "import", "ferry import", "mysql <")
	ratio("PostgreSQL", "export", fmt.Sprintf("ferry export --jobs %d --compress gzip", jobs), "pg_dump")
	ratio("MariaDB", "export", fmt.Sprintf("ferry export --jobs %d --compress gzip", jobs), "mysqldump")
	var plain, enc float64
	for _, r := range rs {
		if r.Engine == "PostgreSQL" && r.Operation == "export" && strings.HasPrefix(r.Tool, "ferry export") && !strings.Contains(r.Tool, "--compress") {
			if strings.Contains(r.Tool, "--encrypt") {
				enc = r.Seconds
			} else {
				plain = r.Seconds
			}
		}
	}
	if plain > 0 && enc > 0 {
		fmt.Printf("- encryption: ferry export --encrypt all / ferry export time = %.2f\n", enc/plain)
	}
}
