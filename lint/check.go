package lint

import (
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/migrate"
)

// table is what lint knows of a table from the migrations before.
type table struct {
	cols map[string]*colDef
	// partitioned: CREATE TABLE ... PARTITION BY (PostgreSQL).
	partitioned bool
	// notNullChecks are columns with a validated CHECK (col IS NOT NULL).
	notNullChecks map[string]bool
}

// checker carries the schema learnt from the migrations read so far.
type checker struct {
	cfg     Config
	d       dialectName
	tables  map[string]*table
	indexes map[string]string // index name -> table
	// pendingChecks maps a NOT VALID constraint's name to the column it
	// proves NOT NULL, until VALIDATE CONSTRAINT.
	pendingChecks map[string][2]string
	// predicted are the rules each checked statement broke, suppressed
	// or not, for comparing with a trace.
	predicted map[stmtKey]map[string]bool
	// runCreated are the tables that checked migrations created, when
	// Config.Only names a run of pending migrations: the run creates them,
	// so they are new for the rest of it too.
	runCreated map[string]bool
}

func newChecker(cfg Config) *checker {
	return &checker{cfg: cfg, d: dialectName(cfg.Dialect), tables: map[string]*table{}, indexes: map[string]string{}, pendingChecks: map[string][2]string{}, predicted: map[stmtKey]map[string]bool{}, runCreated: map[string]bool{}}
}

// mig is the state of checking one migration.
type mig struct {
	m        *migrate.Migration
	inTx     bool
	check    bool
	created  map[string]bool // tables created by this migration
	run      map[string]bool // tables created by earlier migrations of the checked run
	dropped  map[string]int  // existing tables dropped: index of the drop-table finding
	findings []Finding

	// per statement
	stmt migrate.Statement
	toks []token

	ddl       *migrate.Statement // the first DDL on an existing table
	backfills []Finding          // whole-table UPDATE/DELETE statements
	// altered are existing tables an ALTER TABLE of this migration has
	// locked, until its transaction ends.
	altered map[string]bool
	// notValid maps a constraint this migration added NOT VALID to its
	// rule (check or foreign key).
	notValid map[string]string
	// renamedAway maps a name an existing table was renamed to (SQLite,
	// for the rename-first rebuild) to its old name.
	renamedAway map[string]string
	// fkChecksOff: a SET foreign_key_checks = 0 ran earlier in this
	// migration (MySQL runs a migration's statements on one session).
	fkChecksOff bool
}

// existing reports whether a table was there before this migration (and,
// when lint checks a run of pending migrations, before the run).
func (g *mig) existing(name string) bool { return !g.created[name] && !g.run[name] }

// migration learns from m and, when check is set, returns its findings.
func (c *checker) migration(m *migrate.Migration, check bool) []Finding {
	g := &mig{m: m, check: check, created: map[string]bool{}, run: c.runCreated, dropped: map[string]int{}, altered: map[string]bool{}, notValid: map[string]string{}, renamedAway: map[string]string{}}
	if c.cfg.Only != nil && check {
		defer func() {
			for t, ok := range g.created {
				if ok {
					c.runCreated[t] = true
				}
			}
		}()
	}
	g.inTx = !m.NoTransaction && c.d != mysqlDialect
	if m.Up == nil {
		if check && m.UpFunc != nil {
			g.findings = append(g.findings, c.finding(g, RuleNotAnalysed, "", fmt.Sprintf("migration %d is a Go function: lint reads SQL only, so nobody checked what it does", m.Version), "review it by hand, or run ferry lint --trace on a copy", 0))
		}
		return g.findings
	}
	for _, st := range m.Up.Statements {
		g.stmt = st
		g.toks = tokenize(st.SQL, c.d)
		if len(g.toks) == 0 {
			continue
		}
		var analysed bool
		switch c.d {
		case postgresDialect:
			analysed = c.postgres(g)
		case mysqlDialect:
			analysed = c.mysql(g)
		default:
			analysed = c.sqlite(g)
		}
		if !analysed {
			c.add(g, RuleNotAnalysed, "", fmt.Sprintf("lint cannot analyse %s...: nobody checked which locks it takes or whether the running release survives it", words(g.toks, 3)),
				"check it by hand or with ferry lint --trace; if it is safe, add -- ferry:lint-ignore not-analysed <reason>")
		}
	}
	if g.inTx && g.ddl != nil {
		for _, f := range g.backfills {
			f.Message += fmt.Sprintf(", in the same transaction as the DDL at line %d: the DDL's lock on the table is held until the backfill commits", g.ddl.Line)
			g.findings = append(g.findings, f)
		}
	}
	if !check {
		return nil
	}
	if c.predicted != nil {
		for _, f := range g.findings {
			k := stmtKey{f.Version, f.Line}
			if c.predicted[k] == nil {
				c.predicted[k] = map[string]bool{}
			}
			c.predicted[k][f.Rule] = true
		}
	}
	return c.suppress(g)
}

// stmtKey locates a statement: migration version and line.
type stmtKey struct {
	version int64
	line    int
}

// ddlOn records that the statement changes an existing table's structure.
func (g *mig) ddlOn(name string) {
	if g.existing(name) && g.ddl == nil {
		st := g.stmt
		g.ddl = &st
	}
}

// add records a finding for the current statement.
func (c *checker) add(g *mig, rule, tbl, msg, fix string) {
	if !g.check {
		return
	}
	g.findings = append(g.findings, c.finding(g, rule, tbl, msg, fix, g.stmt.Line))
}

// addSev is add with a severity below the rule's default, for a finding
// lint is not sure of; a configured severity still wins.
func (c *checker) addSev(g *mig, rule string, sev Severity, tbl, msg, fix string) {
	if !g.check {
		return
	}
	f := c.finding(g, rule, tbl, msg, fix, g.stmt.Line)
	if _, set := c.cfg.Rules[rule]; !set && f.Severity > sev {
		f.Severity = sev
	}
	g.findings = append(g.findings, f)
}

// finding builds a finding at line, applying configured severities, the
// contract marker and the statement's location.
func (c *checker) finding(g *mig, rule, tbl, msg, fix string, line int) Finding {
	r, _ := ruleByID(rule)
	sev := r.Severity
	if s, ok := c.cfg.Rules[rule]; ok {
		sev = s
	}
	if g.m.Contract && compatRule(rule) && sev != Off {
		sev = Info
		msg += "; the migration is marked -- +ferry contract, so the fleet gate holds it until no release that uses the old schema runs"
		fix = ""
	}
	file := g.m.Source
	if g.m.Up != nil && g.m.Up.File != "" {
		file = g.m.Up.File
	}
	col := 1
	if line == g.stmt.Line && g.stmt.Column > 0 {
		col = g.stmt.Column
	}
	first, _, _ := strings.Cut(g.stmt.SQL, "\n")
	return Finding{Rule: rule, Severity: sev, File: file, Line: line, Column: col, Version: g.m.Version, Table: tbl, Message: msg, Fix: fix, Statement: first}
}

// compatRule reports whether a rule is about the running release rather
// than locks: a contract migration is held by the fleet gate for these.
func compatRule(rule string) bool {
	switch rule {
	case RuleRenameColumn, RuleRenameTable, RuleDropColumn, RuleDropTable:
		return true
	}
	return false
}

// expandContract is the advice for a rename or drop not marked contract.
const expandContract = "expand/contract: ship a release that no longer uses it, then do this in a migration marked -- +ferry contract (the fleet gate holds it until the old release is gone)"

// Fixes for the running-release rules, the same on every database.
const (
	renameTableFix  = "expand/contract: keep the old name (or a view of it) until the old release is gone, and rename in a migration marked -- +ferry contract"
	renameColumnFix = "expand/contract: add the new column, write both, backfill, move reads, then drop the old one in a migration marked -- +ferry contract"
)

// renameTable reports renaming an existing table and learns the new name.
func (c *checker) renameTable(g *mig, from, to string) {
	if g.existing(from) {
		c.add(g, RuleRenameTable, from, fmt.Sprintf("renaming table %s to %s breaks the running release: its queries still name %s", from, to, from), renameTableFix)
	}
	c.rename(g, from, to)
}

// renameColumn reports renaming a column of an existing table and learns
// the new name.
func (c *checker) renameColumn(g *mig, tbl, from, to string) {
	if g.existing(tbl) {
		c.add(g, RuleRenameColumn, tbl, fmt.Sprintf("renaming column %s.%s to %s breaks the running release: its queries still name %s", tbl, from, to, from), renameColumnFix)
	}
	if t := c.tables[tbl]; t != nil && t.cols[from] != nil {
		t.cols[to] = t.cols[from]
		delete(t.cols, from)
	}
}

// dropColumn reports dropping a column of an existing table and forgets
// the column.
func (c *checker) dropColumn(g *mig, tbl, col string) {
	if t := c.tables[tbl]; t != nil {
		delete(t.cols, col)
	}
	if g.existing(tbl) {
		c.add(g, RuleDropColumn, tbl, fmt.Sprintf("dropping column %s.%s breaks the running release if it still reads or writes %s (a SELECT of it, or an INSERT naming it, fails)", tbl, col, col), expandContract)
	}
}

// table returns what is known of a table, creating an empty entry.
func (c *checker) table(name string) *table {
	t := c.tables[name]
	if t == nil {
		t = &table{cols: map[string]*colDef{}, notNullChecks: map[string]bool{}}
		c.tables[name] = t
	}
	return t
}

// createTable learns a CREATE TABLE's columns from its parenthesised body.
func (c *checker) createTable(g *mig, name string, body []token) {
	g.created[name] = true
	t := &table{cols: map[string]*colDef{}, notNullChecks: map[string]bool{}}
	c.tables[name] = t
	for _, el := range splitTop(body) {
		if len(el) == 0 {
			continue
		}
		switch strings.ToLower(el[0].text) {
		case "constraint", "primary", "unique", "check", "foreign", "key", "index", "like", "exclude", "fulltext", "spatial", "period":
			if el[0].kind == tWord {
				continue
			}
		}
		if d, ok := parseColDef(el); ok {
			d := d
			t.cols[d.name] = &d
		}
	}
}

// column returns what is known of a column, or nil.
func (c *checker) column(tbl, col string) *colDef {
	if t := c.tables[tbl]; t != nil {
		return t.cols[col]
	}
	return nil
}

// rename moves what is known of a table to a new name.
func (c *checker) rename(g *mig, from, to string) {
	if t := c.tables[from]; t != nil {
		c.tables[to] = t
		delete(c.tables, from)
	}
	if g.created[from] {
		g.created[to] = true
		delete(g.created, from)
	}
	if g.run[from] {
		g.run[to] = true
		delete(g.run, from)
	}
}

// notNullCheck reads CHECK (col IS NOT NULL) and returns col.
func notNullCheck(toks []token) (string, bool) {
	c := &cursor{toks: toks}
	g, ok := c.group()
	if !ok {
		return "", false
	}
	in := &cursor{toks: g}
	col, ok := in.name()
	if !ok || !in.accept("is", "not", "null") || !in.done() {
		return "", false
	}
	return col, true
}
