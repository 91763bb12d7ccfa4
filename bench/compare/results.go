package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// results are the raw numbers of one benchmark run, written as JSON.
type results struct {
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Command  string    `json:"command"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`

	// Startup: each tool's process with nothing to do (--version), for
	// the share of process start-up in the other cases.
	Startup []*cell `json:"startup"`
	// Apply is case 1: all N migrations to an empty database.
	Apply []*cell `json:"apply"`
	// Status is case 2: ferry status, goose status, migrate version with
	// N applied.
	Status []*cell `json:"status"`
	// StatusInProcess breaks ferry's status down, measured in this
	// process with the same engine: "load" (read and parse the N files),
	// "connect" (open and ping) and "query" (Migrator.Status).
	StatusInProcess []*cell `json:"status_in_process"`
	// Incremental is case 3: 10 new migrations on top of N applied.
	Incremental []*cell `json:"incremental"`
	// Concurrent is case 4: many processes at once on an empty database.
	Concurrent []*concCell `json:"concurrent"`
	// Service is case 5: GET /db_schema_status under load.
	Service []*svcCell `json:"service"`

	// Counters are the database server's counters per migration while
	// each tool applied the workload once more (-profile only).
	Counters []*counterCell `json:"counters,omitempty"`
	// ProfileFailures are the steps of the -profile pass that failed.
	ProfileFailures []string `json:"profile_failures,omitempty"`

	Targets []target `json:"targets"`
}

// counterCell is what one tool asked of the database per migration.
type counterCell struct {
	Database     string             `json:"database"`
	N            int                `json:"n"`
	Tool         string             `json:"tool"`
	PerMigration map[string]float64 `json:"per_migration"`
}

// cell is the samples of one measurement: a tool on a database at N.
type cell struct {
	Database string    `json:"database"`
	N        int       `json:"n"`
	Tool     string    `json:"tool"`
	Wall     []float64 `json:"wall_seconds"`
	CPU      []float64 `json:"cpu_seconds,omitempty"`
	// Failures are the runs in which the tool exited non-zero or left a
	// wrong result: the reason of each.
	Failures []string `json:"failures,omitempty"`
	stats
}

func (c *cell) fail(reason string) { c.Failures = append(c.Failures, reason) }

// stats summarise a cell's wall-clock samples.
type stats struct {
	Median float64 `json:"median_seconds"`
	Min    float64 `json:"min_seconds"`
	Max    float64 `json:"max_seconds"`
	// CPUMedian is the median CPU time of the process (user + system).
	CPUMedian float64 `json:"cpu_median_seconds,omitempty"`
}

func (c *cell) add(o outcome) {
	c.Wall = append(c.Wall, o.Wall.Seconds())
	c.CPU = append(c.CPU, o.CPU.Seconds())
	c.summarize()
}

func (c *cell) addDuration(d time.Duration) {
	c.Wall = append(c.Wall, d.Seconds())
	c.summarize()
}

func (c *cell) summarize() {
	c.Median, c.Min, c.Max = summary(c.Wall)
	c.CPUMedian, _, _ = summary(c.CPU)
}

// summary returns the median, minimum and maximum of xs (zeros if empty).
func summary(xs []float64) (median, lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1]
}

// concCell is case 4 for one tool on one database.
type concCell struct {
	Database  string     `json:"database"`
	Tool      string     `json:"tool"`
	N         int        `json:"n"`
	Processes int        `json:"processes"`
	Runs      []concRun  `json:"runs"`
	LastExit  stats      `json:"last_exit"`
	Errors    []errCount `json:"errors,omitempty"`
}

// concRun is one start of all the processes.
type concRun struct {
	// Failed is how many processes exited non-zero.
	Failed int `json:"failed"`
	// Duplicated is how many versions have more than one bench_marks row
	// (a migration that ran twice); Missing how many have none.
	Duplicated int `json:"duplicated"`
	Missing    int `json:"missing"`
	// HistoryDuplicated is how many versions the tool's own history
	// records as applied more than once (-1: the tool keeps one row).
	HistoryDuplicated int `json:"history_duplicated"`
	// LastExitSeconds is the time from the first start to the last exit.
	LastExitSeconds float64 `json:"last_exit_seconds"`
	// OtherConnections is how many connections other clients held on the
	// server when the run started (PostgreSQL), to tell a tool's failure
	// from a full server.
	OtherConnections int `json:"other_connections,omitempty"`
}

// errCount is a distinct error line of failed processes and how often it
// was seen.
type errCount struct {
	Line  string `json:"line"`
	Count int    `json:"count"`
}

// svcCell is case 5 on one database at N.
type svcCell struct {
	Database string      `json:"database"`
	N        int         `json:"n"`
	Workers  int         `json:"workers"`
	Windows  []svcWindow `json:"windows"`
	// Medians over the windows.
	RPS    float64 `json:"rps_median"`
	RPSMin float64 `json:"rps_min"`
	RPSMax float64 `json:"rps_max"`
	P50ms  float64 `json:"p50_ms_median"`
	P99ms  float64 `json:"p99_ms_median"`
	Errors int     `json:"errors"`
	// WarmupRequests were answered during the warm-up.
	WarmupRequests int `json:"warmup_requests"`
	// CPUSeconds is the service process's CPU time over the whole case
	// (start-up, warm-up and windows).
	CPUSeconds float64 `json:"service_cpu_seconds"`
	// ConnectionsOpened is how many database connections were opened
	// during the measured windows: PostgreSQL's pg_stat_database.sessions
	// of the database, MariaDB's server-wide Connections; -1 for SQLite.
	// A pool that keeps too few idle connections opens one per request.
	ConnectionsOpened int `json:"connections_opened"`
}

// svcWindow is one measured window of the load generator.
type svcWindow struct {
	Seconds  float64 `json:"seconds"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

func (s *svcCell) summarize() {
	var rps, p50, p99 []float64
	s.Errors = 0
	for _, w := range s.Windows {
		rps, p50, p99 = append(rps, w.RPS), append(p50, w.P50ms), append(p99, w.P99ms)
		s.Errors += w.Errors
	}
	s.RPS, s.RPSMin, s.RPSMax = summary(rps)
	s.P50ms, _, _ = summary(p50)
	s.P99ms, _, _ = summary(p99)
}

// target is one of the targets and whether this run met it.
type target struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	// Met is "yes", "no", or "n/a" when the run did not measure it.
	Met string `json:"met"`
}

// find returns the cell for (database, n, tool) in cells, or nil.
func find(cells []*cell, db string, n int, tool string) *cell {
	for _, c := range cells {
		if c.Database == db && c.N == n && c.Tool == tool {
			return c
		}
	}
	return nil
}

// get returns the cell for (database, n, tool), adding it if missing.
func get(cells *[]*cell, db string, n int, tool string) *cell {
	if c := find(*cells, db, n, tool); c != nil {
		return c
	}
	c := &cell{Database: db, N: n, Tool: tool}
	*cells = append(*cells, c)
	return c
}

// writeJSON writes the results to path, creating its directory.
func (r *results) writeJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
