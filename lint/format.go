package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText writes findings as people read them: one block per finding,
// file:line:column first, then a summary line.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s:%d:%d: %s %s: %s\n", f.File, f.Line, f.Column, f.Severity, f.Rule, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
		}
		fmt.Fprintf(&b, "    see: docs/lint/%s.md\n", f.Rule)
	}
	if len(r.Trace) > 0 {
		fmt.Fprintf(&b, "trace on a scratch copy (%s):\n", r.Target)
		for _, o := range r.Trace {
			fmt.Fprintf(&b, "  %s:%d: %s\n", o.File, o.Line, o.Statement)
			for _, line := range o.lines() {
				fmt.Fprintf(&b, "      %s\n", line)
			}
		}
	}
	fmt.Fprintf(&b, "%s\n", r.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// lines describes an observation, one fact a line.
func (o Observation) lines() []string {
	var out []string
	if len(o.Locks) > 0 {
		var ls []string
		for _, l := range o.Locks {
			ls = append(ls, l.Mode+" on "+l.Table)
		}
		out = append(out, "locks: "+strings.Join(ls, ", "))
	}
	if len(o.Held) > 0 {
		var ls []string
		for _, l := range o.Held {
			ls = append(ls, l.Mode+" on "+l.Table)
		}
		out = append(out, "already held (taken by an earlier statement): "+strings.Join(ls, ", "))
	}
	if len(o.Rewritten) > 0 {
		out = append(out, "rewrote: "+strings.Join(o.Rewritten, ", "))
	}
	if len(o.Scanned) > 0 {
		out = append(out, "scanned: "+strings.Join(o.Scanned, ", "))
	}
	if o.Algorithm != "" {
		out = append(out, "cheapest accepted: ALGORITHM="+o.Algorithm)
	}
	if o.Note != "" {
		out = append(out, o.Note)
	}
	if o.Err != "" {
		out = append(out, "failed: "+o.Err)
	}
	if len(out) == 0 {
		out = append(out, "no lock, rewrite or scan on an existing table")
	}
	return out
}

// Summary is one line: how many findings of which severity in how many
// migrations, and the target the rules assumed.
func (r *Report) Summary() string {
	var errs, warns, infos int
	for _, f := range r.Findings {
		switch f.Severity {
		case Error:
			errs++
		case Warning:
			warns++
		default:
			infos++
		}
	}
	if len(r.Findings) == 0 {
		return fmt.Sprintf("lint: no findings in %d migrations (%d statements) for %s", r.Migrations, r.Statements, r.Target)
	}
	return fmt.Sprintf("lint: %s, %s, %d info in %d migrations (%d statements) for %s", plural(errs, "error"), plural(warns, "warning"), infos, r.Migrations, r.Statements, r.Target)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// WriteGitHub writes findings as GitHub Actions workflow commands, which
// GitHub shows as annotations on the pull request's files.
func WriteGitHub(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, f := range r.Findings {
		level := "warning"
		switch f.Severity {
		case Error:
			level = "error"
		case Info:
			level = "notice"
		}
		msg := f.Message
		if f.Fix != "" {
			msg += "\nfix: " + f.Fix
		}
		fmt.Fprintf(&b, "::%s file=%s,line=%d,col=%d,title=%s::%s\n", level, ghProp(f.File), f.Line, f.Column, ghProp("ferry lint "+f.Rule), ghData(msg))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ghData escapes a workflow command's message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProp escapes a workflow command's property value.
func ghProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// WriteSARIF writes findings as a SARIF 2.1.0 log, the format GitHub code
// scanning and other CI tools import. docBase, when set, is the URL the
// rule pages are under (…/docs/lint/).
func WriteSARIF(w io.Writer, r *Report, version, docBase string) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string `json:"id"`
		ShortDescription msg    `json:"shortDescription"`
		HelpURI          string `json:"helpUri,omitempty"`
		Default          struct {
			Level string `json:"level"`
		} `json:"defaultConfiguration"`
	}
	type region struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn"`
	}
	type location struct {
		Physical struct {
			Artifact struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
			Region region `json:"region"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		Level     string     `json:"level"`
		Message   msg        `json:"message"`
		Locations []location `json:"locations"`
	}
	level := func(s Severity) string {
		switch s {
		case Error:
			return "error"
		case Warning:
			return "warning"
		}
		return "note"
	}
	var rs []rule
	for _, r := range rules {
		x := rule{ID: r.ID, ShortDescription: msg{r.Summary}}
		if docBase != "" {
			x.HelpURI = strings.TrimSuffix(docBase, "/") + "/" + r.ID + ".md"
		}
		x.Default.Level = level(r.Severity)
		rs = append(rs, x)
	}
	results := []result{}
	for _, f := range r.Findings {
		text := f.Message
		if f.Fix != "" {
			text += ". Fix: " + f.Fix
		}
		var loc location
		loc.Physical.Artifact.URI = f.File
		loc.Physical.Region = region{StartLine: max(f.Line, 1), StartColumn: max(f.Column, 1)}
		results = append(results, result{RuleID: f.Rule, Level: level(f.Severity), Message: msg{text}, Locations: []location{loc}})
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "ferry lint", "informationUri": "https://github.com/ferrydb/ferry", "version": version, "rules": rs,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
