package lint

import (
	"fmt"
	"strings"
)

// sqlite analyses one SQLite statement; false means it could not.
func (c *checker) sqlite(g *mig) bool {
	cur := &cursor{toks: g.toks}
	switch {
	case cur.accept("create"):
		cur.accept("temp")
		cur.accept("temporary")
		cur.accept("unique")
		if cur.accept("table") {
			cur.accept("if", "not", "exists")
			name, ok := cur.name()
			if !ok {
				return false
			}
			if body, ok := cur.group(); ok {
				c.createTable(g, name, body)
			} else {
				g.created[name] = true
			}
			return true
		}
		switch strings.ToLower(cur.peek().text) {
		case "index", "view", "trigger", "virtual":
			return true
		}
		return false
	case cur.accept("alter", "table"):
		return c.liteAlterTable(g, cur)
	case cur.accept("drop", "table"):
		cur.accept("if", "exists")
		name, _ := (&cursor{toks: cur.toks, i: cur.i}).name()
		ok := c.dropTables(g, cur)
		if old, renamed := g.renamedAway[name]; renamed && g.created[old] {
			// rename old away, create a new old, copy, drop the renamed:
			// a rebuild done rename-first.
			var kept []Finding
			for _, f := range g.findings {
				if !(f.Rule == RuleDropTable && f.Table == name || f.Rule == RuleRenameTable && f.Table == old) {
					kept = append(kept, f)
				}
			}
			g.findings = kept
			c.add(g, RuleSQLiteRebuild, old, fmt.Sprintf("table %s is rebuilt rename-first (renamed to %s, created anew, copied, %s dropped): the copy holds the database's write lock, and since SQLite 3.26 RENAME TO also points other tables' foreign keys and triggers at %s, which is then dropped, leaving them broken", old, name, name, name),
				"rebuild the other way round: CREATE TABLE new_"+old+", copy, DROP TABLE "+old+", ALTER TABLE new_"+old+" RENAME TO "+old+" (https://www.sqlite.org/lang_altertable.html#otheralter)")
			delete(g.created, old)
		}
		return ok
	case cur.accept("drop"):
		return true
	}
	switch strings.ToLower(cur.peek().text) {
	case "insert", "replace", "update", "delete", "select", "pragma", "analyze", "vacuum", "reindex", "with", "values":
		return true
	}
	return false
}

func (c *checker) liteAlterTable(g *mig, cur *cursor) bool {
	tbl, ok := cur.name()
	if !ok {
		return false
	}
	existing := g.existing(tbl)
	switch {
	case cur.accept("rename", "to"):
		to, ok := cur.name()
		if !ok {
			return false
		}
		if _, rebuilt := g.dropped[to]; rebuilt && !existing {
			// create new, copy, drop old, rename new to old: a rebuild.
			for i, f := range g.findings {
				if f.Rule == RuleDropTable && f.Table == to {
					g.findings = append(g.findings[:i], g.findings[i+1:]...)
					break
				}
			}
			c.add(g, RuleSQLiteRebuild, to, fmt.Sprintf("table %s is rebuilt (created as %s, copied, dropped, renamed): the copy holds the database's write lock, so every writer waits for it; the running release keeps working only if the new table has every column it uses", to, tbl),
				"fine for small tables; otherwise keep the old columns and use ALTER TABLE ... ADD COLUMN, which SQLite does without a copy")
			c.rename(g, tbl, to)
			delete(g.created, to)
			return true
		}
		if existing {
			g.renamedAway[to] = tbl
		}
		c.renameTable(g, tbl, to)
		return true
	case cur.accept("rename"):
		cur.accept("column")
		from, _ := cur.name()
		cur.accept("to")
		to, _ := cur.name()
		c.renameColumn(g, tbl, from, to)
		return true
	case cur.accept("add"):
		switch strings.ToLower(cur.peek().text) {
		case "constraint", "check", "primary", "unique", "foreign":
			if cur.peek().kind == tWord {
				c.add(g, RuleSQLiteUnsupported, tbl, fmt.Sprintf("SQLite's ALTER TABLE cannot ADD %s: the migration fails", strings.ToUpper(cur.peek().text)),
					"rebuild the table with the constraint in its CREATE TABLE (https://www.sqlite.org/lang_altertable.html#otheralter), or enforce it with a trigger")
				return true
			}
		}
		cur.accept("column")
		d, ok := parseColDef(cur.rest())
		if !ok {
			return false
		}
		c.table(tbl).cols[d.name] = &d
		switch {
		case d.primary || d.unique:
			c.add(g, RuleSQLiteUnsupported, tbl, fmt.Sprintf("SQLite cannot ADD COLUMN %s with PRIMARY KEY or UNIQUE: the migration fails", d.name), "add the column plain, then CREATE UNIQUE INDEX on it")
		case d.stored:
			c.add(g, RuleSQLiteUnsupported, tbl, fmt.Sprintf("SQLite cannot ADD COLUMN %s as a STORED generated column: the migration fails", d.name), "add it as VIRTUAL, or rebuild the table")
		case d.notNull && !d.hasDefault && existing:
			c.add(g, RuleNotNullNoDefault, tbl, fmt.Sprintf("SQLite refuses to add %s.%s NOT NULL without a non-NULL DEFAULT (Cannot add a NOT NULL column with default value NULL): the migration fails", tbl, d.name), "give it a DEFAULT, or add it nullable")
		case d.hasDefault && liteNonConstant(d.defaultToks):
			c.add(g, RuleSQLiteUnsupported, tbl, fmt.Sprintf("SQLite refuses ADD COLUMN %s with a non-constant default (Cannot add a column with non-constant default): the migration fails", d.name), "add it with a constant default (or none) and backfill with UPDATE")
		}
		return true
	case cur.accept("drop"):
		cur.accept("column")
		col, _ := cur.name()
		if !c.cfg.Target.atLeast(3, 35) {
			c.add(g, RuleSQLiteUnsupported, tbl, fmt.Sprintf("DROP COLUMN needs SQLite 3.35 or later (target %s): the migration fails", c.cfg.Target), "rebuild the table without the column, or upgrade SQLite")
		}
		c.dropColumn(g, tbl, col)
		if existing && c.cfg.Target.atLeast(3, 35) {
			c.add(g, RuleSQLiteRebuild, tbl, fmt.Sprintf("SQLite drops %s.%s by rewriting every row of %s, holding the database's write lock until it is done", tbl, col, tbl),
				"fine for small tables; otherwise leave the column unused")
		}
		return true
	}
	c.add(g, RuleSQLiteUnsupported, tbl, fmt.Sprintf("SQLite's ALTER TABLE supports only RENAME, RENAME COLUMN, ADD COLUMN and DROP COLUMN, not %s: the migration fails", words(cur.rest(), 3)),
		"rebuild the table: create the new one, copy the rows, drop the old one, rename (https://www.sqlite.org/lang_altertable.html#otheralter)")
	return true
}

// liteNonConstant reports whether a default is an expression SQLite will
// not accept in ADD COLUMN: CURRENT_TIME/DATE/TIMESTAMP or a parenthesised
// expression other than a single literal, such as ('free') or (-1).
func liteNonConstant(toks []token) bool {
	for i, t := range toks {
		if t.is("current_timestamp") || t.is("current_time") || t.is("current_date") {
			return true
		}
		if t.kind == tPunct && t.text == "(" {
			in := &cursor{toks: toks[i:]}
			g, _ := in.group()
			if len(g) > 0 && g[0].kind == tPunct && (g[0].text == "-" || g[0].text == "+") {
				g = g[1:]
			}
			if len(g) != 1 || g[0].kind != tString && g[0].kind != tNumber {
				return true
			}
		}
	}
	return false
}
