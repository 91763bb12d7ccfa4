package lint_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/dialect/mysql"
	"github.com/ferrydb/ferry/dialect/postgres"
	"github.com/ferrydb/ferry/dialect/sqlite"
	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
)

// corpusCase is one migration of testdata/corpus with its expected verdict.
type corpusCase struct {
	dialect, name, src string
	expect             []string // rule ids; empty: no finding
	target             string
	// noTrace: the case's statement fails on the server by design (an
	// explicit LOCK=NONE the server refuses), so it cannot be traced.
	noTrace bool
}

func syntaxOf(d string) dialect.Syntax {
	switch d {
	case "postgres":
		return postgres.New("").Syntax()
	case "mysql":
		return mysql.New().Syntax()
	}
	return sqlite.New().Syntax()
}

func readCorpus(t testing.TB) []corpusCase {
	t.Helper()
	var out []corpusCase
	for _, d := range []string{"postgres", "mysql", "sqlite"} {
		files, err := filepath.Glob(filepath.Join("testdata", "corpus", d, "*.sql"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if filepath.Base(f) == "setup.sql" {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cc := corpusCase{dialect: d, name: strings.TrimSuffix(filepath.Base(f), ".sql"), src: string(src)}
			seen := false
			for _, line := range strings.Split(cc.src, "\n") {
				if v, ok := strings.CutPrefix(line, "-- expect:"); ok {
					seen = true
					for _, id := range strings.Split(v, ",") {
						if id = strings.TrimSpace(id); id != "" && id != "none" {
							cc.expect = append(cc.expect, id)
						}
					}
				}
				if strings.HasPrefix(line, "-- trace: skip") {
					cc.noTrace = true
				}
				if v, ok := strings.CutPrefix(line, "-- target:"); ok {
					cc.target = strings.TrimSpace(v)
				}
			}
			if !seen {
				t.Fatalf("%s: no -- expect: line", f)
			}
			sort.Strings(cc.expect)
			out = append(out, cc)
		}
	}
	return out
}

// lintCase lints the case as migration 2 on top of its dialect's setup.sql.
func lintCase(t testing.TB, cc corpusCase) []lint.Finding {
	t.Helper()
	setup, err := os.ReadFile(filepath.Join("testdata", "corpus", cc.dialect, "setup.sql"))
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"0001_setup.sql":           {Data: setup},
		"0002_" + cc.name + ".sql": {Data: []byte(cc.src)},
	}
	migs, err := migrate.Load(fsys, cc.dialect, syntaxOf(cc.dialect))
	if err != nil {
		t.Fatalf("%s/%s: %v", cc.dialect, cc.name, err)
	}
	cfg := lint.Config{Dialect: cc.dialect, StartAfter: 1}
	if cc.target != "" {
		if cfg.Target, err = lint.ParseTarget(cc.target); err != nil {
			t.Fatalf("%s/%s: %v", cc.dialect, cc.name, err)
		}
	}
	rep, err := lint.Check(migs, cfg)
	if err != nil {
		t.Fatalf("%s/%s: %v", cc.dialect, cc.name, err)
	}
	return rep.Findings
}

// TestCorpus lints every migration of testdata/corpus and measures, per
// dialect, precision and recall of the findings against each case's
// expected rules. The safe counterparts (expect: none) count every finding
// as a false positive.
func TestCorpus(t *testing.T) {
	cases := readCorpus(t)
	type score struct{ cases, tp, fp, fn int }
	scores := map[string]*score{}
	for _, cc := range cases {
		s := scores[cc.dialect]
		if s == nil {
			s = &score{}
			scores[cc.dialect] = s
		}
		s.cases++
		got := map[string]bool{}
		for _, f := range lintCase(t, cc) {
			got[f.Rule] = true
		}
		want := map[string]bool{}
		for _, id := range cc.expect {
			want[id] = true
		}
		var miss, extra []string
		for id := range want {
			if got[id] {
				s.tp++
			} else {
				s.fn++
				miss = append(miss, id)
			}
		}
		for id := range got {
			if !want[id] {
				s.fp++
				extra = append(extra, id)
			}
		}
		if len(miss) > 0 || len(extra) > 0 {
			t.Logf("%s/%s: missed %v, unexpected %v", cc.dialect, cc.name, miss, extra)
		}
	}
	total := 0
	for _, d := range []string{"postgres", "mysql", "sqlite"} {
		s := scores[d]
		if s == nil {
			t.Errorf("%s: no corpus cases", d)
			continue
		}
		total += s.cases
		prec := ratio(s.tp, s.tp+s.fp)
		rec := ratio(s.tp, s.tp+s.fn)
		t.Logf("%-8s %3d cases  precision %.3f  recall %.3f  (tp %d, fp %d, fn %d)", d, s.cases, prec, rec, s.tp, s.fp, s.fn)
		if prec < 0.95 || rec < 0.95 {
			t.Errorf("%s: precision %.3f, recall %.3f: both must be at least 0.95", d, prec, rec)
		}
	}
	if total < 100 {
		t.Errorf("corpus has %d cases, want at least 100", total)
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

var _ = fmt.Sprint
