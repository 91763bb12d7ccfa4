package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/migrate"
)

func TestGenerateIsDeterministicAndExtends(t *testing.T) {
	a, b := generate(300, 6), generate(310, 6)
	if !reflect.DeepEqual(a, b[:300]) {
		t.Fatal("generate(310)[:300] differs from generate(300): case 3's extra migrations would not sit on top of case 1's")
	}
	if reflect.DeepEqual(a, generate(300, 7)) {
		t.Fatal("the seed changes nothing")
	}
}

func TestGenerateMixesKinds(t *testing.T) {
	ms := generate(1000, 6)
	count := map[string]int{}
	for i, m := range ms {
		if m.Version != int64(i+1) {
			t.Fatalf("migration %d has version %d", i, m.Version)
		}
		count[m.Kind]++
		marker := "INSERT INTO bench_marks (v) VALUES (" + strconv.FormatInt(m.Version, 10) + ")"
		if i == 0 {
			if m.Statements[1] != marker {
				t.Fatalf("migration 1 does not mark itself: %q", m.Statements)
			}
			continue
		}
		if len(m.Statements) != 2 || m.Statements[0] != marker {
			t.Fatalf("migration %d does not start with its marker: %q", m.Version, m.Statements)
		}
	}
	for _, k := range []string{kindCreateTable, kindAddColumn, kindCreateIndex, kindInsert} {
		if count[k] < 100 {
			t.Errorf("%d of 1000 migrations are %s; want a real mix: %v", count[k], k, count)
		}
	}
}

// TestFormatsCarryTheSameSQL: the three directories differ only in their
// annotations, and ferry reads each of them as the same migrations.
func TestFormatsCarryTheSameSQL(t *testing.T) {
	ms := generate(50, 6)
	root := t.TempDir()
	loaded := map[string][]*migrate.Migration{}
	for _, f := range []string{formatFerry, formatGoose, formatMigrate} {
		dir := filepath.Join(root, f)
		if err := writeDir(dir, f, ms, 5); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			b, err := os.ReadFile(filepath.Join(dir, fileName(f, m, 5)))
			if err != nil {
				t.Fatal(err)
			}
			body := strings.TrimPrefix(strings.TrimPrefix(string(b), "-- +ferry up\n"), "-- +goose Up\n")
			if body != m.body() {
				t.Fatalf("%s file of %d: body %q, want %q", f, m.Version, body, m.body())
			}
		}
		got, err := migrate.Load(os.DirFS(dir), dir, dialect.Syntax{})
		if err != nil {
			t.Fatalf("ferry cannot read the %s directory: %v", f, err)
		}
		loaded[f] = got
	}
	for i := range ms {
		want := loaded[formatFerry][i].Checksum
		for _, f := range []string{formatGoose, formatMigrate} {
			if got := loaded[f][i].Checksum; got != want {
				t.Fatalf("migration %d: %s checksum %s, ferry's %s", i+1, f, got, want)
			}
		}
		if n := len(loaded[formatFerry][i].Up.Statements); n != len(ms[i].Statements) {
			t.Fatalf("migration %d: ferry reads %d statements, want %d", i+1, n, len(ms[i].Statements))
		}
	}
}

func TestClientScriptHasOneTransactionPerMigration(t *testing.T) {
	ms := generate(20, 6)
	s := clientScript(ms)
	if got := strings.Count(s, "BEGIN;\n"); got != 20 {
		t.Fatalf("%d BEGINs for 20 migrations", got)
	}
	if got := strings.Count(s, "COMMIT;\n"); got != 20 {
		t.Fatalf("%d COMMITs for 20 migrations", got)
	}
	if !strings.HasPrefix(s, "BEGIN;\nCREATE TABLE bench_marks") {
		t.Fatalf("script starts %q", s[:40])
	}
}

func TestErrorKindGroupsRunsOfOneCause(t *testing.T) {
	a := "applying 1 x ... ok\n2026/11/21 21:08:01 goose run: ERROR 00017_add.sql: relation \"t00012\" already exists\n"
	b := "2026/11/21 21:08:02 goose run: ERROR 00023_add.sql: relation \"t00020\" already exists"
	if errorKind(a) != errorKind(b) {
		t.Fatalf("%q and %q count apart", errorKind(a), errorKind(b))
	}
	if got := errorLine(b); !strings.Contains(got, "00023") {
		t.Fatalf("errorLine dropped the numbers: %q", got)
	}
	if got := errorLine("ok\nlast line"); got != "last line" {
		t.Fatalf("without an error line: %q", got)
	}
}
