package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Kinds of migration in the workload.
const (
	kindMarks       = "create_marks" // migration 1: the bench_marks table
	kindCreateTable = "create_table"
	kindAddColumn   = "add_column"
	kindCreateIndex = "create_index"
	kindInsert      = "insert"
)

// A migration of the generated workload. Statements carry no trailing
// semicolon. The first statement of every migration inserts the marker row
// (version) into bench_marks, so that a migration that ran twice leaves two
// rows (see case 4); migration 1 creates bench_marks first.
type migration struct {
	Version    int64
	Name       string
	Kind       string
	Statements []string
}

// body is the migration's SQL as every format writes it: one statement a
// line, each ending in a semicolon.
func (m migration) body() string {
	var b strings.Builder
	for _, s := range m.Statements {
		b.WriteString(s)
		b.WriteString(";\n")
	}
	return b.String()
}

// benchTable is what the generator knows of a table it created.
type benchTable struct {
	name     string
	cols     []string // columns that may be indexed
	unindexd []string // of cols, those without an index yet
	rows     int
}

// recentTables is how many of the newest tables ADD COLUMN, CREATE INDEX and
// INSERT pick from, so that no table grows without bound (MySQL caps the
// columns and indexes of a table) and migrations touch recent tables, as
// real ones do.
const recentTables = 8

// generate returns n migrations, versions 1..n, mixing CREATE TABLE, ADD
// COLUMN, CREATE INDEX and small multi-row INSERTs in a pattern fixed by
// seed. generate(n+k, seed)[:n] equals generate(n, seed), so a database
// with the first n applied can take the next k.
//
// The SQL is portable: INTEGER and VARCHAR(n) columns, no primary keys (so
// that an INSERT run twice succeeds twice and shows up as a duplicate
// rather than as a failure), index names unique in the database.
func generate(n int, seed uint64) []migration {
	rng := rand.New(rand.NewPCG(seed, 0x6665727279)) // "ferry"
	var tables []*benchTable
	out := make([]migration, 0, n)
	for v := int64(1); v <= int64(n); v++ {
		marker := fmt.Sprintf("INSERT INTO bench_marks (v) VALUES (%d)", v)
		if v == 1 {
			out = append(out, migration{Version: 1, Name: "create_bench_marks", Kind: kindMarks,
				Statements: []string{"CREATE TABLE bench_marks (v INTEGER NOT NULL)", marker}})
			continue
		}
		kind := kindCreateTable
		if len(tables) > 0 {
			switch r := rng.IntN(100); {
			case r < 20:
				kind = kindCreateTable
			case r < 50:
				kind = kindAddColumn
			case r < 70:
				kind = kindCreateIndex
			default:
				kind = kindInsert
			}
		}
		recent := tables[max(0, len(tables)-recentTables):]
		var t *benchTable
		if len(recent) > 0 {
			t = recent[rng.IntN(len(recent))]
		}
		if kind == kindCreateIndex && len(t.unindexd) == 0 {
			kind = kindAddColumn // nothing left to index on this table
		}
		m := migration{Version: v, Kind: kind}
		switch kind {
		case kindCreateTable:
			t = &benchTable{name: fmt.Sprintf("t%05d", v), cols: []string{"name"}, unindexd: []string{"name"}}
			tables = append(tables, t)
			m.Name = "create_" + t.name
			m.Statements = []string{marker, "CREATE TABLE " + t.name + " (id INTEGER NOT NULL, name VARCHAR(40))"}
		case kindAddColumn:
			c := fmt.Sprintf("c%05d", v)
			t.cols = append(t.cols, c)
			t.unindexd = append(t.unindexd, c)
			m.Name = "add_" + c + "_to_" + t.name
			m.Statements = []string{marker, "ALTER TABLE " + t.name + " ADD COLUMN " + c + " VARCHAR(20)"}
		case kindCreateIndex:
			i := rng.IntN(len(t.unindexd))
			c := t.unindexd[i]
			t.unindexd = append(t.unindexd[:i], t.unindexd[i+1:]...)
			idx := fmt.Sprintf("i%05d", v)
			m.Name = "index_" + t.name + "_" + c
			m.Statements = []string{marker, "CREATE INDEX " + idx + " ON " + t.name + " (" + c + ")"}
		case kindInsert:
			rows := 1 + rng.IntN(5)
			vals := make([]string, rows)
			for j := range vals {
				t.rows++
				vals[j] = fmt.Sprintf("(%d, 'row %d of %s')", t.rows, t.rows, t.name)
			}
			m.Name = "seed_" + t.name
			m.Statements = []string{marker, "INSERT INTO " + t.name + " (id, name) VALUES " + strings.Join(vals, ", ")}
		}
		out = append(out, m)
	}
	return out
}

// Formats the workload is written in.
const (
	formatFerry   = "ferry"
	formatGoose   = "goose"
	formatMigrate = "golang-migrate"
)

// versionWidth is the zero-padded width of file versions for n migrations.
func versionWidth(n int) int { return max(5, len(strconv.Itoa(n))) }

// fileName is the file a migration is written to in a format.
func fileName(format string, m migration, width int) string {
	v := fmt.Sprintf("%0*d_%s", width, m.Version, m.Name)
	if format == formatMigrate {
		return v + ".up.sql"
	}
	return v + ".sql"
}

// fileContent is a migration's file in a format: the same body, with the
// format's annotation in front where it has one.
func fileContent(format string, m migration) string {
	switch format {
	case formatFerry:
		return "-- +ferry up\n" + m.body()
	case formatGoose:
		return "-- +goose Up\n" + m.body()
	}
	return m.body()
}

// writeDir writes migrations in a format into dir, which it creates.
func writeDir(dir, format string, ms []migration, width int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, m := range ms {
		if err := os.WriteFile(filepath.Join(dir, fileName(format, m, width)), []byte(fileContent(format, m)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// clientScript is the lower bound's input: every migration's SQL in one
// script, one transaction per migration, no history bookkeeping. On MySQL
// the DDL statements commit implicitly, so there the transaction only
// groups the INSERTs.
func clientScript(ms []migration) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("BEGIN;\n")
		b.WriteString(m.body())
		b.WriteString("COMMIT;\n")
	}
	return b.String()
}
