package lint

import (
	"fmt"
	"github.com/ferrydb/ferry/migrate"
	"strings"
)

// ignore is one -- ferry:lint-ignore directive.
type ignore struct {
	name   string // lint-ignore or lint-ignore-file
	line   int
	rules  []string
	file   bool // lint-ignore-file: the whole migration
	reason string
	used   map[string]bool
	// from..to are the lines of the statement it covers.
	from, to int
}

// suppress drops the findings that the migration's lint-ignore directives
// cover and reports directives that cover nothing or name no rule.
func (c *checker) suppress(g *mig) []Finding {
	var igs []*ignore
	var out []Finding
	for _, d := range g.m.Directives {
		name, args, _ := strings.Cut(d.Text, " ")
		if name != "lint-ignore" && name != "lint-ignore-file" {
			if strings.HasPrefix(name, "lint") {
				out = append(out, c.finding(g, RuleUnusedIgnore, "", fmt.Sprintf("-- ferry:%s is not a lint directive, so it suppresses nothing", name), "write -- ferry:lint-ignore RULE reason, or -- ferry:lint-ignore-file RULE reason", d.Line))
			}
			continue
		}
		ruleList, reason, _ := strings.Cut(strings.TrimSpace(args), " ")
		ig := &ignore{name: name, line: d.Line, file: name == "lint-ignore-file", reason: strings.TrimSpace(reason), used: map[string]bool{}}
		for _, id := range strings.Split(ruleList, ",") {
			if id == "" {
				continue
			}
			if _, ok := ruleByID(id); !ok {
				out = append(out, c.finding(g, RuleUnusedIgnore, "", fmt.Sprintf("-- ferry:%s names %q, which is not a rule", name, id), "use a rule id from docs/lint (ferry lint --rules lists them)", d.Line))
				continue
			}
			ig.rules = append(ig.rules, id)
		}
		if len(ig.rules) == 0 {
			if ruleList == "" {
				out = append(out, c.finding(g, RuleUnusedIgnore, "", fmt.Sprintf("-- ferry:%s names no rule", name), "write -- ferry:"+name+" RULE reason", d.Line))
			}
			continue
		}
		if !ig.file {
			ig.from, ig.to = stmtAround(g.m.Up.Statements, d.Line)
		}
		igs = append(igs, ig)
	}
	for _, f := range g.findings {
		if !suppressed(igs, f) {
			out = append(out, f)
		}
	}
	for _, ig := range igs {
		for _, r := range ig.rules {
			if !ig.used[r] {
				out = append(out, c.finding(g, RuleUnusedIgnore, "", fmt.Sprintf("-- ferry:%s %s suppresses nothing", ig.name, r), "remove "+r+" from it", ig.line))
			}
		}
	}
	return out
}

func suppressed(igs []*ignore, f Finding) bool {
	if f.Rule == RuleUnusedIgnore {
		return false
	}
	for _, ig := range igs {
		if !ig.file && (f.Line < ig.from || f.Line > ig.to) {
			continue
		}
		for _, r := range ig.rules {
			if r == f.Rule {
				ig.used[r] = true
				return true
			}
		}
	}
	return false
}

// stmtAround returns the lines of the statement a directive on line
// covers: the one it is inside, or else the next one.
func stmtAround(stmts []migrate.Statement, line int) (int, int) {
	for _, st := range stmts {
		end := st.Line + strings.Count(st.SQL, "\n")
		if end >= line {
			return st.Line, end
		}
	}
	return -1, -1
}
