package lint

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/migrate"
)

// dialectName is a dialect as package dialect names it.
type dialectName string

const (
	postgresDialect dialectName = "postgres"
	mysqlDialect    dialectName = "mysql"
	sqliteDialect   dialectName = "sqlite"
)

// Target is the database server the migrations will run on: the rules
// that depend on the version (PostgreSQL 11 adds a constant default
// without a rewrite, MySQL 8.0.12 adds columns instantly) read it.
type Target struct {
	// Engine is "postgres", "mysql", "mariadb" or "sqlite".
	Engine string
	// Version is major, minor, patch; zeros where unknown.
	Version [3]int
}

// DefaultTarget is the target assumed for a dialect when none is given:
// the oldest release of each engine that its makers still support
// (PostgreSQL 14, MySQL 8.4 LTS, SQLite 3.35 for DROP COLUMN).
func DefaultTarget(dialect string) Target {
	switch dialect {
	case "postgres":
		return Target{Engine: "postgres", Version: [3]int{14}}
	case "mysql":
		return Target{Engine: "mysql", Version: [3]int{8, 4}}
	}
	return Target{Engine: "sqlite", Version: [3]int{3, 35}}
}

// ParseTarget reads "postgres 15", "mysql 8.0.29", "mariadb 10.11" or
// "sqlite 3.45"; a bare engine means DefaultTarget's version.
func ParseTarget(s string) (Target, error) {
	f := strings.Fields(strings.ToLower(s))
	if len(f) == 0 || len(f) > 2 {
		return Target{}, fmt.Errorf("target %q: want an engine and a version, such as \"postgres 15\" or \"mysql 8.0.29\"", s)
	}
	t := Target{Engine: f[0]}
	switch t.Engine {
	case "postgres", "postgresql", "pg":
		t.Engine = "postgres"
	case "mysql", "mariadb", "sqlite":
	default:
		return Target{}, fmt.Errorf("target %q: engine %q is not postgres, mysql, mariadb or sqlite", s, f[0])
	}
	if len(f) == 1 {
		d := DefaultTarget(t.dialect())
		if t.Engine == "mariadb" {
			d.Version = [3]int{10, 6}
		}
		t.Version = d.Version
		return t, nil
	}
	v, ok := parseVersion(f[1])
	if !ok {
		return Target{}, fmt.Errorf("target %q: version %q is not a number such as 15 or 8.0.29", s, f[1])
	}
	t.Version = v
	return t, nil
}

// TargetFromServer reads a target from the dialect's name and the
// server's version string (PostgreSQL's server_version, MySQL's VERSION(),
// the SQLite library version).
func TargetFromServer(dialect, version string) (Target, error) {
	t := Target{Engine: dialect}
	if dialect == "mysql" && strings.Contains(strings.ToLower(version), "mariadb") {
		t.Engine = "mariadb"
	}
	v, ok := parseVersion(version)
	if !ok {
		return Target{}, fmt.Errorf("server version %q: no version number in it", version)
	}
	t.Version = v
	return t, nil
}

// parseVersion reads the leading dotted number of s ("15.4 (Debian)",
// "10.11.19-MariaDB-0+deb12u1").
func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	parts := strings.Split(strings.Trim(s[:end], "."), ".")
	if parts[0] == "" {
		return v, false
	}
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func (t Target) String() string {
	v := strconv.Itoa(t.Version[0]) + "." + strconv.Itoa(t.Version[1])
	if t.Version[2] > 0 {
		v += "." + strconv.Itoa(t.Version[2])
	}
	if t.Engine == "postgres" && t.Version[1] == 0 && t.Version[2] == 0 {
		v = strconv.Itoa(t.Version[0])
	}
	return t.Engine + " " + v
}

func (t Target) dialect() string {
	if t.Engine == "mariadb" {
		return "mysql"
	}
	return t.Engine
}

// atLeast reports whether the target's version is at least v.
func (t Target) atLeast(v ...int) bool {
	for i := 0; i < 3; i++ {
		var want int
		if i < len(v) {
			want = v[i]
		}
		if t.Version[i] != want {
			return t.Version[i] > want
		}
	}
	return true
}

// Config says what to check and how.
type Config struct {
	// Dialect is "postgres", "mysql" or "sqlite".
	Dialect string
	// Target is the server the migrations will run on; the zero value
	// means DefaultTarget(Dialect).
	Target Target
	// Rules turns rules off (Off) or changes their severity.
	Rules map[string]Severity
	// StartAfter: migrations at or below this version are not checked
	// (they still teach lint the schema).
	StartAfter int64
	// Only, when not nil, limits the check to these versions (the pending
	// ones, say); the rest still teach lint the schema.
	Only map[int64]bool
}

// Off turns a rule off in Config.Rules.
const Off Severity = -1

// Finding is one problem in one statement.
type Finding struct {
	Rule     string
	Severity Severity
	// File, Line and Column locate the statement (or the directive).
	File         string
	Line, Column int
	Version      int64
	// Table is the table affected, when there is one.
	Table string
	// Message says what happens: which lock on which table and for how
	// long, or which running release breaks and how.
	Message string
	// Fix is the safe alternative.
	Fix string
	// Statement is the statement's first line.
	Statement string
}

// Report is the outcome of a lint run.
type Report struct {
	Target   Target
	Findings []Finding
	// Trace is what ferry lint --trace saw each pending statement do.
	Trace []Observation
	// Migrations is how many migrations were checked; Statements how many
	// statements.
	Migrations, Statements int

	// predicted are the rules each statement broke before suppressions.
	predicted map[stmtKey]map[string]bool
}

// Count returns how many findings are at or above sev.
func (r *Report) Count(sev Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= sev {
			n++
		}
	}
	return n
}

// Check lints migrations, which must be in version order and parsed (as
// migrate.Load returns them). Every migration teaches lint the schema;
// those after cfg.StartAfter (and in cfg.Only, if set) are checked.
func Check(migs []*migrate.Migration, cfg Config) (*Report, error) {
	if cfg.Dialect == "" {
		return nil, fmt.Errorf("lint: no dialect")
	}
	for id := range cfg.Rules {
		if _, ok := ruleByID(id); !ok {
			return nil, fmt.Errorf("lint: unknown rule %q (see docs/lint)", id)
		}
	}
	if cfg.Target.Engine == "" {
		cfg.Target = DefaultTarget(cfg.Dialect)
	}
	if cfg.Target.dialect() != cfg.Dialect {
		return nil, fmt.Errorf("lint: target %s is not a %s server", cfg.Target, cfg.Dialect)
	}
	c := newChecker(cfg)
	rep := &Report{Target: cfg.Target}
	for _, m := range migs {
		check := m.Version > cfg.StartAfter && (cfg.Only == nil || cfg.Only[m.Version])
		fs := c.migration(m, check)
		if !check {
			continue
		}
		rep.Migrations++
		if m.Up != nil {
			rep.Statements += len(m.Up.Statements)
		}
		for _, f := range fs {
			if f.Severity != Off {
				rep.Findings = append(rep.Findings, f)
			}
		}
	}
	rep.predicted = c.predicted
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Line < b.Line
	})
	return rep, nil
}
