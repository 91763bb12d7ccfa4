package lint_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
)

// check lints files (name -> content) for a dialect, all of them checked.
func check(t *testing.T, dialect string, files map[string]string, target string) *lint.Report {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, src := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(src)}
	}
	migs, err := migrate.Load(fsys, "migrations", syntaxOf(dialect))
	if err != nil {
		t.Fatal(err)
	}
	cfg := lint.Config{Dialect: dialect}
	if target != "" {
		if cfg.Target, err = lint.ParseTarget(target); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := lint.Check(migs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func rulesOf(rep *lint.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.Rule+"@"+f.Severity.String())
	}
	return out
}

const base = "-- +ferry up\nCREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20), total numeric(10,2));\n"

func TestSuppressions(t *testing.T) {
	cases := []struct {
		name, src string
		want      string
	}{
		{"statement", "-- +ferry up\n-- ferry:lint-ignore index-not-concurrent built at night, table is small\nCREATE INDEX a ON orders (status);\n", ""},
		{"inside", "-- +ferry up\nCREATE INDEX a\n  -- ferry:lint-ignore index-not-concurrent small table\n  ON orders (status);\n", ""},
		{"covers only the next statement", "-- +ferry up\n-- ferry:lint-ignore index-not-concurrent small\nCREATE INDEX a ON orders (status);\nCREATE INDEX b ON orders (total);\n", "index-not-concurrent@error"},
		{"file", "-- ferry:lint-ignore-file index-not-concurrent small table\n-- +ferry up\nCREATE INDEX a ON orders (status);\nCREATE INDEX b ON orders (total);\n", ""},
		{"two rules", "-- +ferry up\n-- ferry:lint-ignore index-not-concurrent,not-analysed small\nCREATE INDEX a ON orders (status);\n", "unused-lint-ignore@warning"},
		{"unused", "-- +ferry up\n-- ferry:lint-ignore drop-table nothing to drop\nCREATE INDEX CONCURRENTLY a ON orders (status);\n", "unused-lint-ignore@warning concurrent-in-transaction@error"},
		{"unknown rule", "-- +ferry up\n-- ferry:lint-ignore no-such-rule why\nALTER TABLE orders ADD COLUMN x int;\n", "unused-lint-ignore@warning"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := check(t, "postgres", map[string]string{"1_base.sql": base, "2_change.sql": c.src}, "")
			if got := strings.Join(rulesOf(rep), " "); got != c.want {
				t.Errorf("findings %q, want %q\n%v", got, c.want, rep.Findings)
			}
		})
	}
}

func TestContractAndNewTables(t *testing.T) {
	rep := check(t, "postgres", map[string]string{
		"1_base.sql": base,
		"2_drop.sql": "-- +ferry up\n-- +ferry contract\nALTER TABLE orders DROP COLUMN status;\n",
		"3_new.sql":  "-- +ferry up\nCREATE TABLE items (id int, name text);\nCREATE INDEX items_name ON items (name);\nALTER TABLE items ADD COLUMN sku int NOT NULL;\nALTER TABLE items RENAME COLUMN name TO title;\n",
	}, "")
	if got := strings.Join(rulesOf(rep), " "); got != "drop-column@info" {
		t.Fatalf("findings %q, want only drop-column@info (a contract migration; a table created in the same migration is new)", got)
	}
	if !strings.Contains(rep.Findings[0].Message, "contract") {
		t.Errorf("message %q does not say the fleet gate holds it", rep.Findings[0].Message)
	}
}

func TestLocation(t *testing.T) {
	rep := check(t, "postgres", map[string]string{
		"1_base.sql": base,
		"2_idx.sql":  "-- +ferry up\nSELECT 1;   CREATE INDEX a ON orders (status);\n",
	}, "")
	if len(rep.Findings) != 1 {
		t.Fatalf("findings %v", rep.Findings)
	}
	f := rep.Findings[0]
	if f.File != "migrations/2_idx.sql" || f.Line != 2 || f.Column != 13 || f.Version != 2 || f.Table != "orders" {
		t.Errorf("finding at %s:%d:%d version %d table %q, want migrations/2_idx.sql:2:13 version 2 table orders", f.File, f.Line, f.Column, f.Version, f.Table)
	}
}

func TestTargets(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"postgres 15", "postgres 15"}, {"PostgreSQL 9.6", "postgres 9.6"}, {"mysql 8.0.29", "mysql 8.0.29"},
		{"mariadb 10.11", "mariadb 10.11"}, {"mysql", "mysql 8.4"}, {"sqlite 3.45.1", "sqlite 3.45.1"},
	} {
		got, err := lint.ParseTarget(c.in)
		if err != nil || got.String() != c.want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "oracle 19", "postgres x", "postgres 15 16"} {
		if _, err := lint.ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	for _, c := range []struct{ dialect, version, want string }{
		{"postgres", "15.4 (Debian 15.4-1)", "postgres 15.4"},
		{"mysql", "10.11.19-MariaDB-0+deb12u1", "mariadb 10.11.19"},
		{"mysql", "8.0.36", "mysql 8.0.36"},
	} {
		got, err := lint.TargetFromServer(c.dialect, c.version)
		if err != nil || got.String() != c.want {
			t.Errorf("TargetFromServer(%s, %q) = %v, %v; want %s", c.dialect, c.version, got, err, c.want)
		}
	}
}

func TestVersionDependence(t *testing.T) {
	files := map[string]string{"1_base.sql": base, "2_add.sql": "-- +ferry up\nALTER TABLE orders ADD COLUMN flag boolean NOT NULL DEFAULT false;\n"}
	if got := rulesOf(check(t, "postgres", files, "postgres 11")); len(got) != 0 {
		t.Errorf("postgres 11: %v, want nothing (a constant default needs no rewrite)", got)
	}
	if got := strings.Join(rulesOf(check(t, "postgres", files, "postgres 10")), " "); got != "add-column-rewrite@error" {
		t.Errorf("postgres 10: %q, want add-column-rewrite@error", got)
	}
	my := map[string]string{"1_base.sql": base, "2_add.sql": "-- +ferry up\nALTER TABLE orders ADD COLUMN flag int AFTER id;\n"}
	if got := rulesOf(check(t, "mysql", my, "mysql 8.0.29")); len(got) != 0 {
		t.Errorf("mysql 8.0.29: %v, want nothing (INSTANT anywhere)", got)
	}
	if got := strings.Join(rulesOf(check(t, "mysql", my, "mysql 8.0.20")), " "); got != "mysql-table-rebuild@warning" {
		t.Errorf("mysql 8.0.20: %q, want mysql-table-rebuild@warning (INSTANT only as the last column)", got)
	}
}

func TestConfigSeverities(t *testing.T) {
	fsys := fstest.MapFS{"1_base.sql": {Data: []byte(base)}, "2_idx.sql": {Data: []byte("-- +ferry up\nCREATE INDEX a ON orders (status);\nALTER TABLE orders DROP COLUMN total;\n")}}
	migs, err := migrate.Load(fsys, "", syntaxOf("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := lint.Check(migs, lint.Config{Dialect: "postgres", Rules: map[string]lint.Severity{"index-not-concurrent": lint.Off, "drop-column": lint.Warning}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rulesOf(rep), " "); got != "drop-column@warning" {
		t.Errorf("findings %q, want drop-column@warning", got)
	}
	rep, err = lint.Check(migs, lint.Config{Dialect: "postgres", StartAfter: 2})
	if err != nil || len(rep.Findings) != 0 || rep.Migrations != 0 {
		t.Errorf("StartAfter 2: %v, %v", rep, err)
	}
	if _, err := lint.Check(migs, lint.Config{Dialect: "postgres", Rules: map[string]lint.Severity{"no-such": lint.Error}}); err == nil {
		t.Error("an unknown rule in Config.Rules was accepted")
	}
}

func TestGoMigrationIsNotAnalysed(t *testing.T) {
	gm := &migrate.GoMigration{Version: 1, Name: "fill", Up: func(context.Context, migrate.Querier) error { return nil }}
	migs, err := migrate.Load(fstest.MapFS{}, "", syntaxOf("sqlite"), gm)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := lint.Check(migs, lint.Config{Dialect: "sqlite"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rulesOf(rep), " "); got != "not-analysed@warning" {
		t.Errorf("findings %q, want not-analysed@warning: a Go migration is never a silent pass", got)
	}
}

func TestFormats(t *testing.T) {
	rep := check(t, "postgres", map[string]string{"1_base.sql": base, "2_idx.sql": "-- +ferry up\nCREATE INDEX a ON orders (status);\n"}, "")
	var b bytes.Buffer
	if err := lint.WriteGitHub(&b, rep); err != nil {
		t.Fatal(err)
	}
	if want := "::error file=migrations/2_idx.sql,line=2,col=1,title=ferry lint index-not-concurrent::CREATE INDEX on existing table orders"; !strings.HasPrefix(b.String(), want) {
		t.Errorf("github output %q does not start with %q", b.String(), want)
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Errorf("github output %q: one finding must be one line (newlines escaped as %%0A)", b.String())
	}
	b.Reset()
	if err := lint.WriteSARIF(&b, rep, "test", "https://example.com/docs/lint"); err != nil {
		t.Fatal(err)
	}
	var sarif struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID, HelpURI string }
				}
			}
			Results []struct {
				RuleID    string
				Level     string
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine, StartColumn int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &sarif); err != nil {
		t.Fatalf("SARIF is not JSON: %v", err)
	}
	if sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 1 || len(sarif.Runs[0].Tool.Driver.Rules) != len(lint.Rules()) {
		t.Fatalf("SARIF shape: %s", b.String())
	}
	r := sarif.Runs[0].Results[0]
	loc := r.Locations[0].PhysicalLocation
	if r.RuleID != "index-not-concurrent" || r.Level != "error" || loc.ArtifactLocation.URI != "migrations/2_idx.sql" || loc.Region.StartLine != 2 {
		t.Errorf("SARIF result %+v", r)
	}
	b.Reset()
	if err := lint.WriteText(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"migrations/2_idx.sql:2:1: error index-not-concurrent:", "fix: CREATE INDEX CONCURRENTLY", "see: docs/lint/index-not-concurrent.md", "lint: 1 error, 0 warnings"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestRuleDocs checks that every rule has its page and every page a rule.
func TestRuleDocs(t *testing.T) {
	pages, err := filepath.Glob("../docs/lint/*.md")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range pages {
		have[strings.TrimSuffix(filepath.Base(p), ".md")] = true
	}
	for _, r := range lint.Rules() {
		if !have[r.ID] {
			t.Errorf("rule %s has no page %s", r.ID, r.DocPath())
		}
		delete(have, r.ID)
	}
	delete(have, "README")
	for p := range have {
		t.Errorf("docs/lint/%s.md documents no rule", p)
	}
}
