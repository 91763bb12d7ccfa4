package api

import "github.com/ferrydb/ferry/lint"

// LintReport is the JSON form of a lint run: `ferry lint --format json`,
// and the lint of pending migrations in the service's status and upgrade
// answers.
type LintReport struct {
	// Target is the server version the rules assumed, e.g. "postgres 15".
	Target     string        `json:"target"`
	Migrations int           `json:"migrations"`
	Statements int           `json:"statements"`
	Errors     int           `json:"errors"`
	Warnings   int           `json:"warnings"`
	Infos      int           `json:"infos"`
	Findings   []LintFinding `json:"findings"`
	// Trace is what ferry lint --trace saw each pending statement do.
	Trace []LintObservation `json:"trace,omitempty"`
}

// LintObservation is what the trace saw one statement do.
type LintObservation struct {
	Version   int64      `json:"version"`
	File      string     `json:"file"`
	Line      int        `json:"line"`
	Statement string     `json:"statement"`
	Locks     []LintLock `json:"locks,omitempty"`
	Held      []LintLock `json:"held,omitempty"`
	Rewritten []string   `json:"rewritten,omitempty"`
	Scanned   []string   `json:"scanned,omitempty"`
	Algorithm string     `json:"algorithm,omitempty"`
	Note      string     `json:"note,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// LintLock is a lock mode held on a table.
type LintLock struct {
	Table string `json:"table"`
	Mode  string `json:"mode"`
}

// LintFinding is one finding.
type LintFinding struct {
	Rule      string `json:"rule"`
	Severity  string `json:"severity"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	Version   int64  `json:"version"`
	Table     string `json:"table,omitempty"`
	Message   string `json:"message"`
	Fix       string `json:"fix,omitempty"`
	Statement string `json:"statement,omitempty"`
	// Doc is the rule's page, relative to the repository root.
	Doc string `json:"doc"`
}

// FromLintReport converts a lint report; nil stays nil.
func FromLintReport(r *lint.Report) *LintReport {
	if r == nil {
		return nil
	}
	out := &LintReport{Target: r.Target.String(), Migrations: r.Migrations, Statements: r.Statements, Findings: []LintFinding{}}
	for _, f := range r.Findings {
		switch f.Severity {
		case lint.Error:
			out.Errors++
		case lint.Warning:
			out.Warnings++
		case lint.Info:
			out.Infos++
		}
		out.Findings = append(out.Findings, LintFinding{
			Rule: f.Rule, Severity: f.Severity.String(), File: f.File, Line: f.Line, Column: f.Column,
			Version: f.Version, Table: f.Table, Message: f.Message, Fix: f.Fix, Statement: f.Statement,
			Doc: "docs/lint/" + f.Rule + ".md",
		})
	}
	for _, o := range r.Trace {
		lo := LintObservation{Version: o.Version, File: o.File, Line: o.Line, Statement: o.Statement, Rewritten: o.Rewritten, Scanned: o.Scanned, Algorithm: o.Algorithm, Note: o.Note, Error: o.Err}
		for _, l := range o.Locks {
			lo.Locks = append(lo.Locks, LintLock{Table: l.Table, Mode: l.Mode})
		}
		for _, l := range o.Held {
			lo.Held = append(lo.Held, LintLock{Table: l.Table, Mode: l.Mode})
		}
		out.Trace = append(out.Trace, lo)
	}
	return out
}
