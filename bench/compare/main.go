// Command compare benchmarks ferry against goose and golang-migrate on the
// same generated workload, on PostgreSQL, MariaDB/MySQL and SQLite, and
// prints a table of ratios (tool / ferry, ferry / lower bound).
//
// It is run on demand, not in CI (the full comparison takes minutes):
//
//	make bench                      # the full comparison, see docs/performance.md
//	go run ./bench/compare -n 100 -runs 3 -databases postgres
//
// The workload is N migrations mixing CREATE TABLE, ADD COLUMN, CREATE
// INDEX and small INSERTs (a seeded, deterministic pattern), written in
// ferry's, goose's and golang-migrate's formats with byte-identical SQL.
// Every tool runs as its users run it: its CLI as a separate process.
// goose and golang-migrate are built at pinned versions from the Go module
// proxy (internal/tools); ferry is built from this checkout.
//
// The cases:
//
//  1. apply all N to an empty database, for each tool, and the lower
//     bound: the same SQL fed to the database's own client (psql, mariadb,
//     sqlite3) in one session, one transaction per migration, no history;
//  2. status with N applied (ferry status, goose status, migrate version),
//     and ferry's status broken down in-process (load files, connect,
//     query);
//  3. 10 new migrations on top of N applied;
//  4. -procs processes of each tool started at once on an empty database:
//     how many exit non-zero, whether a migration ran twice, time until the
//     last one exits;
//  5. ferry serve: GET /db_schema_status requests per second and p50/p99
//     latency from a closed-loop load generator on loopback.
//
// Every run uses a fresh, uniquely named database (ferry_bench_cmp_*) and
// drops it afterwards, also when the benchmark fails or is interrupted.
// The raw numbers are written as JSON (-json).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/tools"
)

// settings are what the run measured; they are part of the JSON.
type settings struct {
	Databases []string     `json:"databases"`
	Ns        []int        `json:"n"`
	Runs      []int        `json:"runs"` // per N, in the order of Ns
	Cases     map[int]bool `json:"cases"`
	// StatusRuns is how many times each tool's status runs per database
	// (case 2), and how often start-up is measured.
	StatusRuns     int    `json:"status_runs"`
	Procs          int    `json:"procs"`
	ConcurrentN    int    `json:"concurrent_n"`
	ConcurrentRuns int    `json:"concurrent_runs"`
	ServiceWorkers int    `json:"service_workers"`
	ServiceWindows int    `json:"service_windows"`
	Seed           uint64 `json:"seed"`
	// ForeignFerry: the ferry binary was given with -ferry, not built
	// from this checkout.
	ForeignFerry bool `json:"foreign_ferry,omitempty"`

	ServiceWarmup time.Duration `json:"-"`
	ServiceWindow time.Duration `json:"-"`
	// For JSON.
	ServiceWarmupSeconds float64 `json:"service_warmup_seconds"`
	ServiceWindowSeconds float64 `json:"service_window_seconds"`
}

// runsFor is the number of runs at n.
func (s settings) runsFor(n int) int {
	for i, x := range s.Ns {
		if x == n {
			return s.Runs[i]
		}
	}
	return 1
}

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line beyond settings.
type options struct {
	settings
	postgresURL, mysqlURL string
	jsonPath, mdPath      string
	ferryBin              string
	profileDir            string
	reportPath            string
	workParent            string
	command               string
	quiet                 bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	dbs := fs.String("databases", "postgres,mysql,sqlite", "databases to run on, comma-separated")
	ns := fs.String("n", "100,1000,10000", "numbers of migrations, comma-separated")
	runs := fs.String("runs", "5,3,1", "runs per N (one value for all, or one per -n)")
	cases := fs.String("cases", "1,2,3,4,5", "cases to run (2, 3 and 5 need the databases case 1 sets up, so 1 always runs its setup)")
	fs.IntVar(&o.StatusRuns, "status-runs", 3, "status calls per tool and database (case 2), and start-up samples")
	fs.IntVar(&o.Procs, "procs", 50, "processes started at once in case 4")
	fs.IntVar(&o.ConcurrentN, "concurrent-n", 100, "migrations in case 4")
	fs.IntVar(&o.ConcurrentRuns, "concurrent-runs", 3, "runs of case 4 per tool and database")
	fs.IntVar(&o.ServiceWorkers, "workers", 16, "concurrent clients of the load generator (case 5)")
	fs.DurationVar(&o.ServiceWarmup, "warmup", time.Second, "load before measuring (case 5)")
	fs.DurationVar(&o.ServiceWindow, "window", 3*time.Second, "length of one measured window (case 5)")
	fs.IntVar(&o.ServiceWindows, "windows", 3, "measured windows per database and N (case 5)")
	fs.Uint64Var(&o.Seed, "seed", 6, "seed of the workload's pattern")
	fs.StringVar(&o.postgresURL, "postgres", envOr("FERRY_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"), "PostgreSQL admin URL (env FERRY_TEST_POSTGRES_URL)")
	fs.StringVar(&o.mysqlURL, "mysql", envOr("FERRY_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/"), "MySQL/MariaDB admin URL (env FERRY_TEST_MYSQL_URL)")
	fs.StringVar(&o.jsonPath, "json", "bench/results/latest.json", "write the raw numbers here (empty: do not)")
	fs.StringVar(&o.mdPath, "markdown", "", "also write the tables here")
	fs.StringVar(&o.ferryBin, "ferry", "", "ferry binary to measure (default: build ./cmd/ferry of this module)")
	fs.StringVar(&o.profileDir, "profile", "", "after measuring, run ferry once more per database and N with FERRY_CPUPROFILE, writing CPU profiles here")
	fs.StringVar(&o.reportPath, "report", "", "print the tables of an earlier run's JSON and exit")
	fs.StringVar(&o.workParent, "work", os.TempDir(), "directory for the migration files, SQLite databases and binaries")
	fs.BoolVar(&o.quiet, "q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.command = "go run ./bench/compare " + strings.Join(args, " ")
	o.Databases = splitList(*dbs)
	for _, d := range o.Databases {
		if d != database.Postgres && d != database.MySQL && d != database.SQLite {
			return nil, fmt.Errorf("-databases: unknown %q (postgres, mysql, sqlite)", d)
		}
	}
	var err error
	if o.Ns, err = ints(*ns); err != nil || len(o.Ns) == 0 {
		return nil, fmt.Errorf("-n %q: %v", *ns, err)
	}
	if o.Runs, err = ints(*runs); err != nil || len(o.Runs) == 0 {
		return nil, fmt.Errorf("-runs %q: %v", *runs, err)
	}
	switch {
	case len(o.Runs) == 1:
		for len(o.Runs) < len(o.Ns) {
			o.Runs = append(o.Runs, o.Runs[0])
		}
	case len(o.Runs) != len(o.Ns):
		return nil, fmt.Errorf("-runs has %d values for %d values of -n", len(o.Runs), len(o.Ns))
	}
	cs, err := ints(*cases)
	if err != nil {
		return nil, fmt.Errorf("-cases %q: %v", *cases, err)
	}
	o.Cases = map[int]bool{}
	for _, c := range cs {
		if c < 1 || c > 5 {
			return nil, fmt.Errorf("-cases: no case %d (1-5)", c)
		}
		o.Cases[c] = true
	}
	if o.StatusRuns < 1 || o.Procs < 1 || o.ConcurrentN < 1 || o.ConcurrentRuns < 1 || o.ServiceWorkers < 1 || o.ServiceWindows < 1 {
		return nil, fmt.Errorf("-status-runs, -procs, -concurrent-n, -concurrent-runs, -workers and -windows must be positive")
	}
	o.ServiceWarmupSeconds, o.ServiceWindowSeconds = o.ServiceWarmup.Seconds(), o.ServiceWindow.Seconds()
	o.ForeignFerry = o.ferryBin != ""
	return o, nil
}

func cli(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "compare:", err)
		return 2
	}
	if o.reportPath != "" {
		var r results
		b, err := os.ReadFile(o.reportPath)
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			fmt.Fprintln(stderr, "compare:", err)
			return 1
		}
		r.Targets = evaluateTargets(&r)
		report(stdout, &r)
		return 0
	}
	level := slog.LevelInfo
	if o.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := runBench(ctx, o, log)
	if res != nil && len(res.Apply)+len(res.Status)+len(res.Incremental)+len(res.Concurrent)+len(res.Service) > 0 {
		res.Targets = evaluateTargets(res)
		report(stdout, res)
		if o.mdPath != "" {
			if f, ferr := os.Create(o.mdPath); ferr == nil {
				report(f, res)
				f.Close()
			} else {
				log.Error("write markdown", "error", ferr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "compare:", err)
		return 1
	}
	if o.jsonPath != "" {
		if err := res.writeJSON(o.jsonPath); err != nil {
			fmt.Fprintln(stderr, "compare:", err)
			return 1
		}
		log.Info("wrote raw numbers", "path", o.jsonPath)
	}
	return 0
}

// runBench prepares the tools and workloads and runs every case. It
// returns what it measured even when it fails part-way.
func runBench(ctx context.Context, o *options, log *slog.Logger) (*results, error) {
	start := time.Now()
	res := &results{Started: start.UTC(), Command: o.command, Settings: o.settings}
	work, err := os.MkdirTemp(o.workParent, "ferry-bench-compare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	res.Machine = describeMachine(ctx, work)

	b := &bench{cfg: o.settings, log: log, res: res, bins: &bins{workdir: filepath.Join(work, "cwd")}}
	if err := os.Mkdir(b.bins.workdir, 0o755); err != nil {
		return nil, err
	}
	if err := b.prepareTools(ctx, o, work); err != nil {
		return nil, err
	}
	ns := append([]int(nil), o.Ns...)
	if o.Cases[4] {
		ns = append(ns, o.ConcurrentN)
	}
	t0 := time.Now()
	if b.loads, err = writeWorkloads(filepath.Join(work, "migrations"), ns, o.Seed); err != nil {
		return nil, fmt.Errorf("write the workload: %w", err)
	}
	log.Info("wrote the workload", "n", ns, "elapsed", time.Since(t0).Round(time.Millisecond))

	servers := map[string]*server{}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		for kind, s := range servers {
			if left, err := s.leftovers(cctx); err == nil && len(left) > 0 && s.kind != database.SQLite {
				log.Info("dropping databases left by this run", "database", kind, "n", len(left))
			}
			if err := s.close(cctx); err != nil {
				log.Error("cleaning up", "database", kind, "error", err)
			}
		}
	}()
	for _, kind := range o.Databases {
		admin := map[string]string{database.Postgres: o.postgresURL, database.MySQL: o.mysqlURL}[kind]
		s, err := openServer(ctx, kind, admin, filepath.Join(work, "sqlite"), log)
		if err != nil {
			return res, err
		}
		if kind == database.SQLite {
			if err := os.MkdirAll(s.dir, 0o755); err != nil {
				return res, err
			}
		}
		servers[kind] = s
		res.Machine.Databases[kind] = s.version(ctx)
	}
	if v, err := sqliteVersion(ctx, work); err == nil && servers[database.SQLite] != nil {
		res.Machine.Databases[database.SQLite] = v
	}

	if err := b.measureStartup(ctx); err != nil {
		return res, err
	}
	for _, kind := range o.Databases {
		if o.Cases[1] || o.Cases[2] || o.Cases[3] || o.Cases[5] {
			if err := b.sequential(ctx, servers[kind]); err != nil {
				return res, err
			}
		}
		if o.Cases[4] {
			if err := b.concurrent(ctx, servers[kind]); err != nil {
				return res, err
			}
		}
		if o.profileDir != "" {
			if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
				return res, err
			}
			if err := b.profile(ctx, servers[kind], o.profileDir); err != nil {
				return res, err
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	log.Info("done", "elapsed", time.Since(start).Round(time.Second))
	return res, nil
}

// prepareTools builds ferry (unless -ferry names a binary) and finds or
// builds the pinned goose and golang-migrate.
func (b *bench) prepareTools(ctx context.Context, o *options, work string) error {
	m := &b.res.Machine
	if o.ferryBin != "" {
		b.bins.ferry = o.ferryBin
		m.Tools[toolFerry] = o.ferryBin
	} else {
		root, err := moduleRoot(ctx)
		if err != nil {
			return err
		}
		b.bins.ferry = filepath.Join(work, "ferry")
		rev := gitRevision(ctx, root)
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", "-X main.version="+rev, "-o", b.bins.ferry, "./cmd/ferry")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/ferry: %w\n%s", err, out)
		}
		b.log.Info("built ferry", "revision", rev, "elapsed", time.Since(t0).Round(time.Millisecond))
		m.Tools[toolFerry] = rev
	}
	var err error
	for _, t := range []struct {
		name string
		tool tools.Tool
		bin  *string
	}{{toolGoose, tools.Goose(), &b.bins.goose}, {toolMigrate, tools.GolangMigrate(), &b.bins.migrate}} {
		t0 := time.Now()
		if *t.bin, err = t.tool.Path(ctx); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		b.log.Info("tool ready", "tool", t.name, "version", t.tool.Version, "elapsed", time.Since(t0).Round(time.Millisecond))
		m.Tools[t.name] = t.tool.Version
	}
	for _, c := range []string{"psql", "mariadb", "sqlite3"} {
		if out, err := exec.CommandContext(ctx, c, "--version").Output(); err == nil {
			m.Tools[c] = strings.TrimSpace(string(out))
		}
	}
	return nil
}

// moduleRoot is the directory of this module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from the ferry module (or pass -ferry)")
	}
	return filepath.Dir(mod), nil
}

// gitRevision describes the checkout: short commit, "+dirty" when it has
// uncommitted changes.
func gitRevision(ctx context.Context, dir string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "dev"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += "+dirty"
	}
	return rev
}

// sqliteVersion is the version of the SQLite library ferry embeds.
func sqliteVersion(ctx context.Context, work string) (string, error) {
	db, err := database.Open(ctx, "sqlite:"+filepath.Join(work, "version.db"), database.Options{})
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v string
	err = db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v)
	return v + " (modernc.org/sqlite in ferry)", err
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(strings.ReplaceAll(p, "_", ""))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", p)
		}
		out = append(out, n)
	}
	return out, nil
}
