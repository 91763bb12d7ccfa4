package lint_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
)

// TestCorpusTrace runs every corpus case on the real servers here with
// --trace and checks that the static rules agree with what the server
// did: no trace-differs finding. The static verdicts are computed for the
// server's own version (the corpus's expected verdicts may name another);
// cases that fail at apply time by design are left out.
func TestCorpusTrace(t *testing.T) {
	failsByDesign := []string{lint.RuleConcurrentInTx, lint.RuleEnumValueInTx, lint.RuleSQLiteUnsupported, lint.RuleNotNullNoDefault, lint.RuleNotAnalysed}
	for _, kind := range testdb.Kinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, kind)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			target, err := lint.ServerTarget(ctx, db.DB, kind)
			if err != nil {
				t.Fatal(err)
			}
			setup, err := os.ReadFile(filepath.Join("testdata", "corpus", kind, "setup.sql"))
			if err != nil {
				t.Fatal(err)
			}
			traced := 0
			for _, cc := range readCorpus(t) {
				if cc.dialect != kind || cc.noTrace || slices.ContainsFunc(cc.expect, func(r string) bool { return slices.Contains(failsByDesign, r) }) {
					continue
				}
				fsys := fstest.MapFS{"1_setup.sql": {Data: setup}, "2_" + cc.name + ".sql": {Data: []byte(cc.src)}}
				migs, err := migrate.Load(fsys, kind, syntaxOf(kind))
				if err != nil {
					t.Fatal(err)
				}
				cfg := lint.Config{Dialect: kind, Target: target, Only: map[int64]bool{2: true}}
				rep, err := lint.Check(migs, cfg)
				if err != nil {
					t.Fatal(err)
				}
				// The target (db) holds nothing: the trace replays the
				// setup on its scratch copy.
				if err := lint.Trace(ctx, rep, lint.TraceSource{DB: db.DB, Migrations: migs, Applied: map[int64]bool{1: true}}, cfg); err != nil {
					t.Errorf("%s: trace: %v", cc.name, err)
					continue
				}
				traced++
				for _, f := range rep.Findings {
					if f.Rule == lint.RuleTraceDiffers || f.Rule == lint.RuleTraceFailed {
						t.Errorf("%s/%s:%d: %s", kind, cc.name, f.Line, f.Message)
					}
				}
			}
			t.Logf("%s: %d corpus cases traced on %s", kind, traced, target)
		})
	}
}
