package lint

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/migrate"
)

// ServerTarget reads the target from a connected server.
func ServerTarget(ctx context.Context, q migrate.Querier, dialect string) (Target, error) {
	query := map[string]string{
		"postgres": "SHOW server_version",
		"mysql":    "SELECT VERSION()",
		"sqlite":   "SELECT sqlite_version()",
	}[dialect]
	if query == "" {
		return Target{}, fmt.Errorf("lint: unknown dialect %q", dialect)
	}
	var v string
	if err := q.QueryRowContext(ctx, query).Scan(&v); err != nil {
		return Target{}, fmt.Errorf("read the server version: %w", err)
	}
	return TargetFromServer(dialect, v)
}

// FindingsError is returned by a Gate that refuses a run: the findings at
// or above its threshold.
type FindingsError struct {
	Report *Report
	FailOn Severity
}

func (e *FindingsError) Error() string {
	var b strings.Builder
	n := e.Report.Count(e.FailOn)
	fmt.Fprintf(&b, "lint found %d %s-level problem(s) in the pending migrations; nothing was applied", n, e.FailOn)
	for _, f := range e.Report.Findings {
		if f.Severity >= e.FailOn {
			fmt.Fprintf(&b, "\n  %s:%d:%d: %s: %s", f.File, f.Line, f.Column, f.Rule, f.Message)
		}
	}
	return b.String()
}

// Gate returns a migrate.Preflight that lints the migrations a run is
// about to apply, against the version of the server it runs on (unless
// cfg.Target is set); the migrations before them teach lint the schema.
// report, if not nil, receives the report. When failOn is not 0 and a
// finding is at or above it, the run is refused with a *FindingsError
// before anything is applied.
func Gate(cfg Config, failOn Severity, report func(*Report)) migrate.Preflight {
	return func(ctx context.Context, run *migrate.PreflightRun) error {
		if cfg.Target.Engine == "" {
			t, err := ServerTarget(ctx, run.Conn, cfg.Dialect)
			if err != nil {
				return err
			}
			cfg.Target = t
		}
		cfg.Only = map[int64]bool{}
		for _, m := range run.Migrations {
			cfg.Only[m.Version] = true
		}
		rep, err := Check(run.All(), cfg)
		if err != nil {
			return err
		}
		if report != nil {
			report(rep)
		}
		if failOn > 0 && rep.Count(failOn) > 0 {
			return &FindingsError{Report: rep, FailOn: failOn}
		}
		return nil
	}
}
