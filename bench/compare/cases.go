package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

// newMigrations is how many migrations case 3 adds on top of N.
const newMigrations = 10

// workload is the generated migrations for one N, written in every format.
type workload struct {
	n int
	// base[format] holds migrations 1..n; more[format] 1..n+10.
	base, more map[string]string
	// script is the lower bound's input for migrations 1..n; moreScript
	// for n+1..n+10 (case 3).
	script, moreScript string
}

// writeWorkloads generates the migrations once and writes, for every N,
// the N and N+10 directories of every format under dir.
func writeWorkloads(dir string, ns []int, seed uint64) (map[int]*workload, error) {
	maxN := 0
	for _, n := range ns {
		maxN = max(maxN, n)
	}
	all := generate(maxN+newMigrations, seed)
	width := versionWidth(maxN + newMigrations)
	out := map[int]*workload{}
	for _, n := range ns {
		w := &workload{n: n, base: map[string]string{}, more: map[string]string{}, script: clientScript(all[:n]), moreScript: clientScript(all[n : n+newMigrations])}
		for _, f := range []string{formatFerry, formatGoose, formatMigrate} {
			w.base[f] = filepath.Join(dir, fmt.Sprintf("n%d", n), f)
			w.more[f] = filepath.Join(dir, fmt.Sprintf("n%d+%d", n, newMigrations), f)
			if err := writeDir(w.base[f], f, all[:n], width); err != nil {
				return nil, err
			}
			if err := writeDir(w.more[f], f, all[:n+newMigrations], width); err != nil {
				return nil, err
			}
		}
		out[n] = w
	}
	return out, nil
}

// bench is one benchmark run.
type bench struct {
	cfg   settings
	bins  *bins
	log   *slog.Logger
	res   *results
	loads map[int]*workload
}

// verify checks that a tool left exactly the migrations 1..n applied:
// every marker row present once.
func verify(ctx context.Context, f *fresh, n int) error {
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	var rows, distinct, maxV int
	err = db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT v), COALESCE(MAX(v), 0) FROM bench_marks").Scan(&rows, &distinct, &maxV)
	if err != nil {
		return fmt.Errorf("check bench_marks: %w", err)
	}
	if rows != n || distinct != n || maxV != n {
		return fmt.Errorf("bench_marks has %d rows, %d distinct versions, highest %d; want %d of each", rows, distinct, maxV, n)
	}
	return nil
}

// measureStartup times each tool's process doing nothing (printing its
// version), for the start-up share of the other cases.
func (b *bench) measureStartup(ctx context.Context) error {
	argv := map[string][]string{
		toolFerry:   {b.bins.ferry, "--version"},
		toolGoose:   {b.bins.goose, "--version"},
		toolMigrate: {b.bins.migrate, "-version"},
	}
	for i := 0; i < b.cfg.StatusRuns; i++ {
		for _, t := range migrationTools {
			a := argv[t]
			o, err := b.bins.mustSucceed(exec.CommandContext(ctx, a[0], a[1:]...))
			if err != nil {
				return err
			}
			get(&b.res.Startup, "", 0, t).add(o)
		}
	}
	return nil
}

// sequential runs cases 1, 2, 3 and 5 on one database: for every N and
// run, each tool applies all N to a fresh database (case 1); the tools
// then report status (case 2); ferry serves the status under load on the
// first run (case 5); and each tool applies 10 more (case 3). The order of
// the tools rotates from run to run.
func (b *bench) sequential(ctx context.Context, srv *server) error {
	tools := []string{toolClient, toolFerry, toolGoose, toolMigrate}
	for _, n := range b.cfg.Ns {
		runs := b.cfg.runsFor(n)
		for r := 0; r < runs; r++ {
			for i := range tools {
				tool := tools[(i+r)%len(tools)]
				if !b.cfg.Cases[1] && tool == toolClient {
					continue
				}
				start := time.Now()
				if err := b.oneDatabase(ctx, srv, n, r, tool); err != nil {
					return fmt.Errorf("%s, N=%d, run %d, %s: %w", srv.kind, n, r+1, tool, err)
				}
				b.log.Info("measured", "database", srv.kind, "n", n, "run", r+1, "tool", tool, "elapsed", time.Since(start).Round(time.Millisecond))
			}
		}
	}
	return nil
}

// applyCmd is the command that applies workload w to f with tool: the
// database's own client for the lower bound, else the tool's up.
func (b *bench) applyCmd(ctx context.Context, f *fresh, w *workload, tool string) (*exec.Cmd, error) {
	if tool == toolClient {
		return f.clientCmd(ctx, w.script)
	}
	return b.bins.upCmd(ctx, tool, f, w.base[format(tool)]), nil
}

// oneDatabase is one tool's pass over one fresh database (see sequential).
func (b *bench) oneDatabase(ctx context.Context, srv *server, n, run int, tool string) (err error) {
	w := b.loads[n]
	f, err := srv.create(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if derr := f.drop(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	// Case 1 (also the setup of cases 2, 3 and 5).
	cmd, err := b.applyCmd(ctx, f, w, tool)
	if err != nil {
		return err
	}
	apply := &cell{} // not recorded unless case 1 is selected
	if b.cfg.Cases[1] {
		apply = get(&b.res.Apply, srv.kind, n, tool)
	}
	if ok, err := b.measure(ctx, apply, cmd, func() error { return verify(ctx, f, n) }); !ok || err != nil {
		if err == nil && !b.cfg.Cases[1] && tool != toolClient {
			// Cases 2 and 3 need the N applied: say why they have no numbers.
			why := "applying the first N failed: " + apply.Failures[len(apply.Failures)-1]
			if b.cfg.Cases[2] {
				get(&b.res.Status, srv.kind, n, tool).fail(why)
			}
			if b.cfg.Cases[3] {
				get(&b.res.Incremental, srv.kind, n, tool).fail(why)
			}
		}
		return err // a failed tool is recorded; the other cases need its database
	}
	if tool == toolClient {
		if b.cfg.Cases[3] {
			// The lower bound of case 3: the client runs the 10 new
			// migrations' SQL on the database of N, which says how much
			// of the time grows with the database itself.
			cmd, err := f.clientCmd(ctx, w.moreScript)
			if err != nil {
				return err
			}
			if _, err := b.measure(ctx, get(&b.res.Incremental, srv.kind, n, tool), cmd, func() error { return verify(ctx, f, n+newMigrations) }); err != nil {
				return err
			}
		}
		return nil
	}
	if b.cfg.Cases[2] {
		c := get(&b.res.Status, srv.kind, n, tool)
		for i := 0; i < b.cfg.StatusRuns; i++ {
			ok, err := b.measure(ctx, c, b.bins.statusCmd(ctx, tool, f, w.base[format(tool)]), nil)
			if err != nil {
				return err
			}
			if !ok || c.Wall[len(c.Wall)-1] > slowStatus.Seconds() {
				break // a failure, or slow enough that one sample tells
			}
		}
		// The in-process numbers use this checkout's engine: they describe
		// the ferry binary only when it was built from here.
		if tool == toolFerry && !b.cfg.ForeignFerry {
			if err := b.statusInProcess(ctx, f, n, w.base[formatFerry]); err != nil {
				return err
			}
		}
	}
	if b.cfg.Cases[5] && tool == toolFerry && run == 0 {
		if err := b.service(ctx, f, n, w.base[formatFerry]); err != nil {
			return fmt.Errorf("case 5: %w", err)
		}
	}
	if b.cfg.Cases[3] {
		c := get(&b.res.Incremental, srv.kind, n, tool)
		if _, err := b.measure(ctx, c, b.bins.upCmd(ctx, tool, f, w.more[format(tool)]), func() error { return verify(ctx, f, n+newMigrations) }); err != nil {
			return err
		}
	}
	return nil
}

// slowStatus: a status call slower than this is not repeated (goose's
// status at N=10,000 on MariaDB takes over 20 s).
const slowStatus = 2 * time.Second

// measure runs cmd and adds its timing to c when it exits 0 and check
// (if any) passes. A tool that fails is a result, not an error of the
// benchmark: the failure is recorded in c and ok is false. err is only for
// the benchmark's own failures (a command that cannot start, a cancelled
// run).
func (b *bench) measure(ctx context.Context, c *cell, cmd *exec.Cmd, check func() error) (ok bool, err error) {
	o, err := b.bins.timeCmd(cmd)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if o.Exit != 0 {
		c.fail(fmt.Sprintf("exit %d after %s: %s", o.Exit, secs(o.Wall.Seconds()), errorLine(o.Out)))
		b.log.Warn("tool failed", "command", commandLine(cmd), "exit", o.Exit, "output", lastLines(o.Out, 5))
		return false, nil
	}
	if check != nil {
		if err := check(); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			c.fail(fmt.Sprintf("exit 0 after %s but wrong result: %v", secs(o.Wall.Seconds()), err))
			b.log.Warn("tool left a wrong result", "command", commandLine(cmd), "error", err)
			return false, nil
		}
	}
	c.add(o)
	return true, nil
}

// lastLines is the end of a tool's output, for the log.
func lastLines(out string, n int) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// profile is an extra, untimed pass after the measurements. For every N,
// ferry runs once more on a fresh database with FERRY_CPUPROFILE set:
// apply-DB-N.pprof (case 1), status-DB-N.pprof (case 2), more-DB-N.pprof
// (case 3) and serve-DB-N.pprof (case 5, one window of load) in dir; read
// them with go tool pprof -top. Then, at the N nearest 1,000, every tool
// applies the workload once more while the server's counters are read
// before and after (commits, rows, WAL syncs or fsyncs), which tells what
// each tool asks of the database per migration.
func (b *bench) profile(ctx context.Context, srv *server, dir string) error {
	// A tool failing here is noted and the pass goes on: the measurements
	// are done, and a failure is worth reporting, not losing them over.
	note := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.log.Warn("profile pass", "error", err)
		b.res.ProfileFailures = append(b.res.ProfileFailures, err.Error())
		return nil
	}
	for _, n := range b.cfg.Ns {
		if err := b.profileOne(ctx, srv, n, dir); err != nil {
			if err := note(fmt.Errorf("profile %s N=%d: %w", srv.kind, n, err)); err != nil {
				return err
			}
		}
	}
	n := b.cfg.Ns[0]
	for _, x := range b.cfg.Ns {
		if abs(x-1000) < abs(n-1000) {
			n = x
		}
	}
	for _, tool := range []string{toolClient, toolFerry, toolGoose, toolMigrate} {
		if err := b.count(ctx, srv, n, tool); err != nil {
			if err := note(fmt.Errorf("counters %s N=%d %s: %w", srv.kind, n, tool, err)); err != nil {
				return err
			}
		}
	}
	return nil
}

func abs(x int) int { return max(x, -x) }

func (b *bench) profileOne(ctx context.Context, srv *server, n int, dir string) (err error) {
	w := b.loads[n]
	f, err := srv.create(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if derr := f.drop(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	path := func(step string) (string, error) {
		return filepath.Abs(filepath.Join(dir, fmt.Sprintf("%s-%s-%d.pprof", step, srv.kind, n)))
	}
	for _, step := range []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"apply", b.bins.upCmd(ctx, toolFerry, f, w.base[formatFerry])},
		{"status", b.bins.statusCmd(ctx, toolFerry, f, w.base[formatFerry])},
		{"serve", nil},
		{"more", b.bins.upCmd(ctx, toolFerry, f, w.more[formatFerry])},
	} {
		p, err := path(step.name)
		if err != nil {
			return err
		}
		if step.cmd == nil {
			if err := b.profileService(ctx, f, n, w.base[formatFerry], p); err != nil {
				return err
			}
			continue
		}
		step.cmd.Env = append(childEnv(), "FERRY_CPUPROFILE="+p)
		o, err := b.bins.timeCmd(step.cmd)
		if err != nil {
			return err
		}
		if o.Exit != 0 {
			return fmt.Errorf("ferry %s exited %d after %s: %s", step.name, o.Exit, secs(o.Wall.Seconds()), errorLine(o.Out))
		}
		b.log.Info("profiled", "step", step.name, "database", srv.kind, "n", n, "wall", o.Wall.Round(time.Millisecond), "cpu", o.CPU.Round(time.Millisecond), "profile", p)
	}
	return nil
}

// profileService profiles ferry serve under one window of load.
func (b *bench) profileService(ctx context.Context, f *fresh, n int, dir, path string) error {
	svc, err := b.bins.startService(ctx, f, dir, "FERRY_CPUPROFILE="+path)
	if err != nil {
		return err
	}
	l := newLoad(svc.addr, b.cfg.ServiceWorkers)
	win := l.run(ctx, b.cfg.ServiceWindow)
	l.close()
	cpu := svc.stop()
	b.log.Info("profiled", "step", "serve", "database", f.srv.kind, "n", n, "requests", win.Requests, "cpu", cpu.Round(time.Millisecond), "profile", path)
	return ctx.Err()
}

// count applies the workload with one tool on a fresh database and
// records the server's counters around it.
func (b *bench) count(ctx context.Context, srv *server, n int, tool string) (err error) {
	if srv.kind == database.SQLite {
		return nil
	}
	w := b.loads[n]
	f, err := srv.create(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if derr := f.drop(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	cmd, err := b.applyCmd(ctx, f, w, tool)
	if err != nil {
		return err
	}
	before, err := srv.counters(ctx, f.name)
	if err != nil {
		return err
	}
	o, err := b.bins.timeCmd(cmd)
	if err != nil {
		return err
	}
	if o.Exit != 0 {
		return fmt.Errorf("%s exited %d after %s: %s", tool, o.Exit, secs(o.Wall.Seconds()), errorLine(o.Out))
	}
	after, err := srv.counters(ctx, f.name)
	if err != nil {
		return err
	}
	c := &counterCell{Database: srv.kind, N: n, Tool: tool, PerMigration: map[string]float64{}}
	for k, v := range after {
		c.PerMigration[k] = float64(v-before[k]) / float64(n)
	}
	b.res.Counters = append(b.res.Counters, c)
	return nil
}

// statusInProcess times the parts of ferry's status with the engine in
// this process: loading the N files, connecting, and Migrator.Status.
func (b *bench) statusInProcess(ctx context.Context, f *fresh, n int, dir string) error {
	t0 := time.Now()
	db, err := database.Open(ctx, f.ferryURL(), database.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	connect := time.Since(t0)
	t0 = time.Now()
	m, err := migrate.New(db.DB, db.Dialect, migrate.WithDir(dir))
	if err != nil {
		return err
	}
	load := time.Since(t0)
	t0 = time.Now()
	// What `ferry status` asks for: the 10 most recent applied listed.
	st, err := m.StatusWith(ctx, migrate.StatusOptions{Applied: 10})
	if err != nil {
		return err
	}
	query := time.Since(t0)
	if st.CurrentVersion == 0 || len(st.Applied) != min(n, 10) || !st.IsUpToDate {
		return fmt.Errorf("in-process status: version %d, %d applied listed, up to date %v; want %d listed", st.CurrentVersion, len(st.Applied), st.IsUpToDate, min(n, 10))
	}
	kind := f.srv.kind
	get(&b.res.StatusInProcess, kind, n, "connect").addDuration(connect)
	get(&b.res.StatusInProcess, kind, n, "load").addDuration(load)
	get(&b.res.StatusInProcess, kind, n, "query").addDuration(query)
	return nil
}

// service is case 5: ferry serve on a database with n applied, a warm-up,
// then windows of closed-loop load on GET /db_schema_status.
func (b *bench) service(ctx context.Context, f *fresh, n int, dir string) error {
	svc, err := b.bins.startService(ctx, f, dir)
	if err != nil {
		return err
	}
	running := true
	defer func() {
		if running {
			svc.stop()
		}
	}()
	l := newLoad(svc.addr, b.cfg.ServiceWorkers)
	defer l.close()
	if err := l.check(ctx, n); err != nil {
		return fmt.Errorf("%w\n%s", err, svc.tail())
	}
	warm := l.run(ctx, b.cfg.ServiceWarmup)
	c := &svcCell{Database: f.srv.kind, N: n, Workers: b.cfg.ServiceWorkers, ConnectionsOpened: -1, WarmupRequests: warm.Requests + 1}
	before, berr := f.srv.connections(ctx, f.name)
	for i := 0; i < b.cfg.ServiceWindows; i++ {
		c.Windows = append(c.Windows, l.run(ctx, b.cfg.ServiceWindow))
	}
	if after, aerr := f.srv.connections(ctx, f.name); berr == nil && aerr == nil {
		c.ConnectionsOpened = after - before
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.close()
	running = false
	c.CPUSeconds = svc.stop().Seconds()
	c.summarize()
	b.res.Service = append(b.res.Service, c)
	b.log.Info("measured", "case", 5, "database", f.srv.kind, "n", n, "rps", int(c.RPS), "p50_ms", c.P50ms, "p99_ms", c.P99ms, "errors", c.Errors)
	return nil
}

// concurrent is case 4 on one database: for every tool, b.cfg.Procs
// processes of `up` started at once on a fresh database.
func (b *bench) concurrent(ctx context.Context, srv *server) error {
	w := b.loads[b.cfg.ConcurrentN]
	for _, tool := range migrationTools {
		c := &concCell{Database: srv.kind, Tool: tool, N: w.n, Processes: b.cfg.Procs}
		errs := map[string]int{}
		var last []float64
		for r := 0; r < b.cfg.ConcurrentRuns; r++ {
			run, lines, err := b.concurrentRun(ctx, srv, tool, w)
			if err != nil {
				return fmt.Errorf("case 4, %s, %s, run %d: %w", srv.kind, tool, r+1, err)
			}
			c.Runs = append(c.Runs, run)
			last = append(last, run.LastExitSeconds)
			for _, l := range lines {
				errs[l]++
			}
			b.log.Info("measured", "case", 4, "database", srv.kind, "tool", tool, "run", r+1, "failed", run.Failed, "duplicated", run.Duplicated, "last_exit", run.LastExitSeconds)
		}
		c.LastExit.Median, c.LastExit.Min, c.LastExit.Max = summary(last)
		for l, k := range errs {
			c.Errors = append(c.Errors, errCount{Line: l, Count: k})
		}
		sort.Slice(c.Errors, func(i, j int) bool {
			if c.Errors[i].Count != c.Errors[j].Count {
				return c.Errors[i].Count > c.Errors[j].Count
			}
			return c.Errors[i].Line < c.Errors[j].Line
		})
		b.res.Concurrent = append(b.res.Concurrent, c)
	}
	return nil
}

// concurrentRun starts all processes on a fresh database, waits for every
// one of them, and inspects what they left.
func (b *bench) concurrentRun(ctx context.Context, srv *server, tool string, w *workload) (run concRun, errLines []string, err error) {
	f, err := srv.create(ctx)
	if err != nil {
		return run, nil, err
	}
	defer func() {
		if derr := f.drop(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if srv.kind == database.Postgres {
		_ = srv.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").Scan(&run.OtherConnections)
	}
	cmds := make([]*exec.Cmd, b.cfg.Procs)
	outs := make([]*tailBuffer, b.cfg.Procs)
	for i := range cmds {
		cmds[i] = b.bins.upCmd(ctx, tool, f, w.base[format(tool)])
		outs[i] = b.bins.prepare(cmds[i])
	}
	results := make([]outcome, len(cmds))
	var wg sync.WaitGroup
	start := time.Now()
	for i, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			results[i] = outcome{Exit: -1, Out: err.Error(), End: time.Now()}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = b.bins.wait(cmd, start, outs[i])
		}()
	}
	wg.Wait()
	for _, o := range results {
		run.LastExitSeconds = max(run.LastExitSeconds, o.End.Sub(start).Seconds())
		if o.Exit != 0 {
			run.Failed++
			errLines = append(errLines, errorKind(o.Out))
		}
	}
	run.Duplicated, run.Missing, run.HistoryDuplicated, err = inspect(ctx, f, tool, w.n)
	return run, errLines, err
}

// errorLine picks the line of a failed process's output that says why,
// shortened.
func errorLine(out string) string {
	s := whyLine(out)
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

// errorKind is errorLine with numbers that vary from run to run (versions,
// pids, times) replaced, so that equal causes count together.
func errorKind(out string) string {
	pick := whyLine(out)
	var b strings.Builder
	digits := false
	for _, r := range pick {
		if r >= '0' && r <= '9' {
			if !digits {
				b.WriteByte('N')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	s := b.String()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// whyLine is the last line of out that mentions an error, a failure or
// the lock, or else its last line.
func whyLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	pick := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.ToLower(lines[i])
		if strings.Contains(l, "error") || strings.Contains(l, "fail") || strings.Contains(l, "ferry:") || strings.Contains(l, "lock") {
			pick = lines[i]
			break
		}
	}
	if pick == "" && len(lines) > 0 {
		pick = lines[len(lines)-1]
	}
	return strings.TrimSpace(pick)
}

// inspect counts versions whose marker row appears more than once or not
// at all, and versions the tool's own history records as applied more
// than once (-1 when the tool keeps a single row, as golang-migrate does).
func inspect(ctx context.Context, f *fresh, tool string, n int) (dup, missing, histDup int, err error) {
	db, err := f.open(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer db.Close()
	if ok, err := db.Dialect.TableExists(ctx, db, "bench_marks"); err != nil || !ok {
		return 0, n, 0, err
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT v FROM bench_marks GROUP BY v HAVING COUNT(*) > 1) d").Scan(&dup); err != nil {
		return 0, 0, 0, fmt.Errorf("count duplicates: %w", err)
	}
	var distinct int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(DISTINCT v) FROM bench_marks WHERE v BETWEEN 1 AND "+fmt.Sprint(n)).Scan(&distinct); err != nil {
		return 0, 0, 0, fmt.Errorf("count versions: %w", err)
	}
	missing = n - distinct
	var q, table string
	switch tool {
	case toolFerry:
		table = "ferry_migrations"
		q = "SELECT COUNT(*) FROM (SELECT version FROM ferry_migrations WHERE state = 'applied' AND operation = 'up' GROUP BY version HAVING COUNT(*) > 1) d"
	case toolGoose:
		table = "goose_db_version"
		q = "SELECT COUNT(*) FROM (SELECT version_id FROM goose_db_version WHERE is_applied AND version_id > 0 GROUP BY version_id HAVING COUNT(*) > 1) d"
	default:
		return dup, missing, -1, nil
	}
	if ok, err := db.Dialect.TableExists(ctx, db, table); err != nil || !ok {
		return dup, missing, 0, err
	}
	if err := db.QueryRowContext(ctx, q).Scan(&histDup); err != nil {
		return dup, missing, 0, fmt.Errorf("count history duplicates: %w", err)
	}
	return dup, missing, histDup, nil
}
