package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// table is a Markdown table padded for reading on a terminal.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	width := make([]int, len(t.head))
	for _, r := range append([][]string{t.head}, t.rows...) {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range r {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.head)
	sep := make([]string, len(t.head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
	fmt.Fprintln(w)
}

// secs formats seconds for people: milliseconds below one second.
func secs(s float64) string {
	switch {
	case s == 0:
		return "0"
	case s < 0.01:
		return fmt.Sprintf("%.1f ms", s*1000)
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 100:
		return fmt.Sprintf("%.2f s", s)
	}
	return fmt.Sprintf("%.0f s", s)
}

// spread is "median (min-max)" of a cell, or "-" when it is missing.
func spread(c *cell) string {
	if c == nil {
		return "-"
	}
	failed := ""
	if k := len(c.Failures); k > 0 {
		failed = fmt.Sprintf(" FAILED %d of %d", k, k+len(c.Wall))
	}
	switch len(c.Wall) {
	case 0:
		return strings.TrimSpace(failed)
	case 1:
		return secs(c.Median) + " (1 run)" + failed
	}
	return fmt.Sprintf("%s (%s–%s)%s", secs(c.Median), secs(c.Min), secs(c.Max), failed)
}

// failureNotes lists the failures of cells, one line each.
func failureNotes(w io.Writer, cells []*cell) {
	any := false
	for _, c := range cells {
		for _, f := range c.Failures {
			fmt.Fprintf(w, "- %s on %s at N=%d failed: `%s`\n", c.Tool, dbName(c.Database), c.N, strings.ReplaceAll(f, "`", "'"))
			any = true
		}
	}
	if any {
		fmt.Fprintln(w)
	}
}

// ratio is a/b as "1.23x", or "-".
func ratio(a, b *cell) string {
	if a == nil || b == nil || a.Median == 0 || b.Median == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a.Median/b.Median)
}

func dbName(kind string) string {
	switch kind {
	case "postgres":
		return "PostgreSQL"
	case "mysql":
		return "MariaDB"
	case "sqlite":
		return "SQLite"
	}
	return kind
}

// report prints the tables of every case measured, and the targets.
func report(w io.Writer, r *results) {
	m := r.Machine
	fmt.Fprintf(w, "## ferry vs goose vs golang-migrate\n\n")
	fmt.Fprintf(w, "Machine: %s, %d cores, %.1f GiB RAM, disk %s; %s (kernel %s); %s.\n", m.CPU, m.Cores, m.MemoryGiB, m.Disk, m.OS, m.Kernel, m.Go)
	var dbs []string
	for _, k := range r.Settings.Databases {
		dbs = append(dbs, dbName(k)+" "+m.Databases[k])
	}
	fmt.Fprintf(w, "Databases: %s.\n", strings.Join(dbs, "; "))
	fmt.Fprintf(w, "Tools: ferry %s, goose %s, golang-migrate %s.\n", m.Tools[toolFerry], m.Tools[toolGoose], m.Tools[toolMigrate])
	fmt.Fprintf(w, "Runs: N=%s with %s runs each; times are medians (min–max) of whole processes, wall clock.\n",
		joinInts(r.Settings.Ns), joinInts(r.Settings.Runs))
	if r.Seconds > 0 {
		fmt.Fprintf(w, "Command: `%s` (%.1f minutes).\n", r.Command, r.Seconds/60)
	}
	fmt.Fprintln(w)

	if len(r.Apply) > 0 {
		fmt.Fprintf(w, "### Case 1: apply all N migrations to an empty database\n\n")
		t := &table{head: []string{"database", "N", "lower bound (client)", "ferry", "goose", "golang-migrate", "ferry / lower bound", "goose / ferry", "migrate / ferry", "ferry CPU"}}
		for _, k := range r.Settings.Databases {
			for _, n := range r.Settings.Ns {
				f := find(r.Apply, k, n, toolFerry)
				if f == nil {
					continue
				}
				lb, g, mg := find(r.Apply, k, n, toolClient), find(r.Apply, k, n, toolGoose), find(r.Apply, k, n, toolMigrate)
				t.add(dbName(k), fmt.Sprint(n), spread(lb), spread(f), spread(g), spread(mg), ratio(f, lb), ratio(g, f), ratio(mg, f), cpuShare(f))
			}
		}
		t.write(w)
		failureNotes(w, r.Apply)
	}
	if len(r.Status) > 0 {
		fmt.Fprintf(w, "### Case 2: status with N applied (ferry status, goose status, migrate version)\n\n")
		if len(r.Startup) > 0 {
			var parts []string
			for _, tool := range migrationTools {
				parts = append(parts, tool+" "+spread(find(r.Startup, "", 0, tool)))
			}
			fmt.Fprintf(w, "Process start-up alone (--version): %s.\n\n", strings.Join(parts, ", "))
		}
		t := &table{head: []string{"database", "N", "ferry", "goose", "golang-migrate", "goose / ferry", "migrate / ferry", "ferry in-process: load files + connect + query"}}
		for _, k := range r.Settings.Databases {
			for _, n := range r.Settings.Ns {
				f := find(r.Status, k, n, toolFerry)
				if f == nil {
					continue
				}
				g, mg := find(r.Status, k, n, toolGoose), find(r.Status, k, n, toolMigrate)
				in := "-"
				if l := find(r.StatusInProcess, k, n, "load"); l != nil {
					c, q := find(r.StatusInProcess, k, n, "connect"), find(r.StatusInProcess, k, n, "query")
					in = fmt.Sprintf("%s + %s + %s", secs(l.Median), secs(c.Median), secs(q.Median))
				}
				t.add(dbName(k), fmt.Sprint(n), spread(f), spread(g), spread(mg), ratio(g, f), ratio(mg, f), in)
			}
		}
		t.write(w)
		failureNotes(w, r.Status)
	}
	if len(r.Incremental) > 0 {
		fmt.Fprintf(w, "### Case 3: apply %d new migrations on top of N applied\n\n", newMigrations)
		t := &table{head: []string{"database", "N", "lower bound (client)", "ferry", "goose", "golang-migrate", "goose / ferry", "migrate / ferry", "ferry / ferry at smallest N", "client / client at smallest N"}}
		for _, k := range r.Settings.Databases {
			base, cbase := find(r.Incremental, k, r.Settings.Ns[0], toolFerry), find(r.Incremental, k, r.Settings.Ns[0], toolClient)
			for _, n := range r.Settings.Ns {
				f := find(r.Incremental, k, n, toolFerry)
				if f == nil {
					continue
				}
				c, g, mg := find(r.Incremental, k, n, toolClient), find(r.Incremental, k, n, toolGoose), find(r.Incremental, k, n, toolMigrate)
				t.add(dbName(k), fmt.Sprint(n), spread(c), spread(f), spread(g), spread(mg), ratio(g, f), ratio(mg, f), ratio(f, base), ratio(c, cbase))
			}
		}
		t.write(w)
		failureNotes(w, r.Incremental)
	}
	if len(r.Concurrent) > 0 {
		c0 := r.Concurrent[0]
		fmt.Fprintf(w, "### Case 4: %d processes of `up` started at once on an empty database, N=%d\n\n", c0.Processes, c0.N)
		t := &table{head: []string{"database", "tool", "runs", "exited non-zero (per run)", "versions run twice", "history duplicates", "versions missing", "last exit"}}
		for _, c := range r.Concurrent {
			var failed, dup, hist, miss []string
			for _, run := range c.Runs {
				failed = append(failed, fmt.Sprint(run.Failed))
				dup = append(dup, fmt.Sprint(run.Duplicated))
				miss = append(miss, fmt.Sprint(run.Missing))
				if run.HistoryDuplicated < 0 {
					hist = append(hist, "n/a")
				} else {
					hist = append(hist, fmt.Sprint(run.HistoryDuplicated))
				}
			}
			last := fmt.Sprintf("%s (%s–%s)", secs(c.LastExit.Median), secs(c.LastExit.Min), secs(c.LastExit.Max))
			t.add(dbName(c.Database), c.Tool, fmt.Sprint(len(c.Runs)), strings.Join(failed, ", "), strings.Join(dup, ", "), strings.Join(hist, ", "), strings.Join(miss, ", "), last)
		}
		t.write(w)
		for _, c := range r.Concurrent {
			for i, e := range c.Errors {
				if i == 3 {
					fmt.Fprintf(w, "- %s on %s: %d more kinds of error (see the JSON)\n", c.Tool, dbName(c.Database), len(c.Errors)-3)
					break
				}
				fmt.Fprintf(w, "- %s on %s, %d×: `%s`\n", c.Tool, dbName(c.Database), e.Count, strings.ReplaceAll(e.Line, "`", "'"))
			}
		}
		fmt.Fprintln(w)
	}
	if len(r.Service) > 0 {
		s0 := r.Service[0]
		fmt.Fprintf(w, "### Case 5: ferry serve, GET /db_schema_status, %d clients on loopback, %d windows of %s\n\n", s0.Workers, len(s0.Windows), secs(r.Settings.ServiceWindowSeconds))
		t := &table{head: []string{"database", "N", "requests/s", "p50", "p99", "errors", "service CPU per request", "connections opened per 1000 requests"}}
		for _, s := range r.Service {
			var reqs int
			for _, w := range s.Windows {
				reqs += w.Requests
			}
			perReq := "-"
			if reqs > 0 {
				perReq = secs(s.CPUSeconds / float64(reqs+s.WarmupRequests))
			}
			conns := "-"
			if s.ConnectionsOpened >= 0 && reqs > 0 {
				conns = fmt.Sprintf("%.0f", 1000*float64(s.ConnectionsOpened)/float64(reqs))
			}
			t.add(dbName(s.Database), fmt.Sprint(s.N), fmt.Sprintf("%.0f (%.0f–%.0f)", s.RPS, s.RPSMin, s.RPSMax), fmt.Sprintf("%.1f ms", s.P50ms), fmt.Sprintf("%.1f ms", s.P99ms), fmt.Sprint(s.Errors), perReq, conns)
		}
		t.write(w)
	}
	if len(r.Counters) > 0 {
		fmt.Fprintf(w, "### What each tool asks of the server, per migration (-profile pass, N=%d)\n\n", r.Counters[0].N)
		for _, k := range r.Settings.Databases {
			var keys []string
			for _, c := range r.Counters {
				if c.Database == k && len(keys) == 0 {
					for key := range c.PerMigration {
						keys = append(keys, key)
					}
					slices.Sort(keys)
				}
			}
			if len(keys) == 0 {
				continue
			}
			t := &table{head: append([]string{"database", "tool"}, keys...)}
			for _, c := range r.Counters {
				if c.Database != k {
					continue
				}
				row := []string{dbName(k), c.Tool}
				for _, key := range keys {
					row = append(row, fmt.Sprintf("%.2f", c.PerMigration[key]))
				}
				t.add(row...)
			}
			t.write(w)
		}
	}
	for _, f := range r.ProfileFailures {
		if len(f) > 400 {
			f = f[:400] + "..."
		}
		fmt.Fprintf(w, "- the -profile pass failed: `%s`\n", strings.ReplaceAll(strings.ReplaceAll(f, "\n", " "), "`", "'"))
	}
	if len(r.ProfileFailures) > 0 {
		fmt.Fprintln(w)
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(w, "### Targets\n\n")
		t := &table{head: []string{"target", "measured", "met"}}
		for _, tg := range r.Targets {
			t.add(tg.Name, tg.Measured, tg.Met)
		}
		t.write(w)
	}
}

// cpuShare is the process's CPU time as a share of its wall-clock time.
func cpuShare(c *cell) string {
	if c == nil || c.Median == 0 {
		return "-"
	}
	return fmt.Sprintf("%s (%.0f%%)", secs(c.CPUMedian), 100*c.CPUMedian/c.Median)
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ", ")
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// evaluateTargets checks the targets (issue 10) against the results.
func evaluateTargets(r *results) []target {
	var out []target
	perDatabase := func(name string, at int, check func(k string) (string, bool, bool)) {
		t := target{Name: name, Met: "n/a", Measured: "not measured"}
		var parts []string
		ok, any := true, false
		for _, k := range r.Settings.Databases {
			if f := find(r.Apply, k, at, toolFerry); f != nil && len(f.Failures) > 0 {
				any, ok = true, false
				parts = append(parts, fmt.Sprintf("%s: ferry failed to apply N=%d", dbName(k), at))
				continue
			}
			m, met, measured := check(k)
			if !measured {
				continue
			}
			any, ok = true, ok && met
			parts = append(parts, dbName(k)+" "+m)
		}
		if any {
			t.Met, t.Measured = yesNo(ok), strings.Join(parts, "; ")
		}
		out = append(out, t)
	}
	// 1. Case 1, N=1000: ferry within 1.10x of the lower bound.
	perDatabase("case 1, N=1000: ferry within 1.10x of the lower bound on every database", 1000, func(k string) (string, bool, bool) {
		f, lb := find(r.Apply, k, 1000, toolFerry), find(r.Apply, k, 1000, toolClient)
		if f == nil || lb == nil || f.Median == 0 || lb.Median == 0 {
			return "", false, false
		}
		x := f.Median / lb.Median
		return fmt.Sprintf("%.2fx (%s vs %s)", x, secs(f.Median), secs(lb.Median)), x <= 1.10, true
	})
	// 2. Case 1, N=1000: goose at least 1.2x slower than ferry.
	perDatabase("case 1, N=1000: goose / ferry at least 1.20 on every database", 1000, func(k string) (string, bool, bool) {
		f, g := find(r.Apply, k, 1000, toolFerry), find(r.Apply, k, 1000, toolGoose)
		if f == nil || g == nil || f.Median == 0 || g.Median == 0 {
			return "", false, false
		}
		x := g.Median / f.Median
		return fmt.Sprintf("%.2fx (%s vs %s)", x, secs(g.Median), secs(f.Median)), x >= 1.2, true
	})
	// 3. Case 3: ferry at the largest N within 1.3x of the smallest; the
	// lower bound's ratio says how much the database itself grows.
	if ns := r.Settings.Ns; len(ns) > 1 {
		lo, hi := slices.Min(ns), slices.Max(ns)
		perDatabase(fmt.Sprintf("case 3: ferry at N=%d within 1.3x of N=%d (the lower bound's own ratio in brackets)", hi, lo), hi, func(k string) (string, bool, bool) {
			a, b := find(r.Incremental, k, lo, toolFerry), find(r.Incremental, k, hi, toolFerry)
			if a == nil || b == nil || a.Median == 0 || b.Median == 0 {
				return "", false, false
			}
			x := b.Median / a.Median
			m := fmt.Sprintf("%.2fx (%s vs %s)", x, secs(b.Median), secs(a.Median))
			if ca, cb := find(r.Incremental, k, lo, toolClient), find(r.Incremental, k, hi, toolClient); ca != nil && cb != nil && ca.Median > 0 && cb.Median > 0 {
				m += fmt.Sprintf(" [client %.2fx]", cb.Median/ca.Median)
			}
			return m, x <= 1.3, true
		})
	}
	// 4. Start-up: ferry within 1.2x of goose.
	{
		t := target{Name: "start-up (--version): ferry within 1.2x of goose", Met: "n/a", Measured: "not measured"}
		f, g := find(r.Startup, "", 0, toolFerry), find(r.Startup, "", 0, toolGoose)
		if f != nil && g != nil && f.Median > 0 && g.Median > 0 {
			x := f.Median / g.Median
			t.Measured, t.Met = fmt.Sprintf("%.2fx (%s vs %s)", x, secs(f.Median), secs(g.Median)), yesNo(x <= 1.2)
		}
		out = append(out, t)
	}
	// 5. Case 2: ferry's status at N=10000 faster than goose's.
	perDatabase("case 2: ferry status at N=10000 faster than goose status on every database", 10000, func(k string) (string, bool, bool) {
		f, g := find(r.Status, k, 10000, toolFerry), find(r.Status, k, 10000, toolGoose)
		if f == nil || g == nil || f.Median == 0 || g.Median == 0 {
			return "", false, false
		}
		return fmt.Sprintf("%s vs %s", secs(f.Median), secs(g.Median)), f.Median < g.Median, true
	})
	// 6. Case 4: zero failures, zero duplicates for ferry.
	{
		t := target{Name: "case 4: ferry has zero failures and zero duplicates", Met: "n/a", Measured: "not measured"}
		var failed, dup, runs int
		for _, c := range r.Concurrent {
			if c.Tool != toolFerry {
				continue
			}
			for _, run := range c.Runs {
				runs++
				failed += run.Failed
				dup += run.Duplicated + max(run.HistoryDuplicated, 0) + run.Missing
			}
		}
		if runs > 0 {
			t.Met = yesNo(failed == 0 && dup == 0)
			t.Measured = fmt.Sprintf("%d failed processes, %d duplicated or missing versions in %d runs", failed, dup, runs)
		}
		out = append(out, t)
	}
	return out
}
