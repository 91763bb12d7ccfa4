package lint

import (
	"fmt"
	"slices"
	"strings"
)

// mysql analyses one MySQL or MariaDB statement; false means it could not.
func (c *checker) mysql(g *mig) bool {
	cur := &cursor{toks: g.toks}
	switch {
	case cur.accept("create"):
		cur.accept("or", "replace")
		kind := ""
		for _, k := range []string{"unique", "fulltext", "spatial"} {
			if cur.accept(k) {
				kind = k
			}
		}
		cur.accept("temporary")
		if cur.accept("index") {
			return c.myCreateIndex(g, cur, kind)
		}
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
		cur.accept("definer")
		switch strings.ToLower(cur.peek().text) {
		case "view", "function", "procedure", "trigger", "event", "database", "schema", "user", "role",
			"sequence", "algorithm", "sql", "definer", "aggregate", "server", "tablespace", "logfile":
			return true
		}
		if cur.peek().kind == tPunct && cur.peek().text == "=" {
			return true // CREATE DEFINER = ... VIEW/TRIGGER
		}
		return false
	case cur.accept("alter", "table"), cur.accept("alter", "online", "table"), cur.accept("alter", "ignore", "table"):
		return c.myAlterTable(g, cur)
	case cur.accept("alter"):
		switch strings.ToLower(cur.peek().text) {
		case "view", "function", "procedure", "event", "database", "schema", "user", "sequence", "definer", "algorithm", "server", "tablespace", "logfile", "instance", "resource", "sql":
			return true
		}
		return false
	case cur.accept("rename", "table"):
		for {
			from, ok := cur.name()
			if !ok || !cur.accept("to") {
				return false
			}
			to, _ := cur.name()
			c.renameTable(g, from, to)
			if !cur.acceptPunct(",") {
				return true
			}
		}
	case cur.accept("drop", "table"), cur.accept("drop", "temporary", "table"):
		return c.dropTables(g, cur)
	case cur.accept("drop", "index"):
		return true // ALGORITHM=INPLACE, LOCK=NONE on every supported version
	case cur.accept("drop"):
		return true
	case cur.accept("optimize"):
		cur.accept("no_write_to_binlog")
		cur.accept("local")
		cur.accept("table")
		name, _ := cur.name()
		c.add(g, RuleMySQLRebuild, name, fmt.Sprintf("OPTIMIZE TABLE %s rebuilds the whole table: writes go on, but it takes long and replicas lag", name), "run it outside a migration, at a quiet time")
		return true
	}
	if cur.peek().is("set") {
		// SET [SESSION] foreign_key_checks = 0 (or @@foreign_key_checks)
		for i, t := range g.toks {
			if strings.EqualFold(strings.TrimPrefix(t.text, "@@"), "foreign_key_checks") || t.is("session") && i+2 < len(g.toks) && g.toks[i+2].is("foreign_key_checks") {
				for _, v := range g.toks[i:] {
					if v.kind == tNumber || v.is("off") || v.is("on") || v.is("true") || v.is("false") {
						g.fkChecksOff = v.text == "0" || v.is("off") || v.is("false")
						break
					}
				}
				break
			}
		}
		return true
	}
	switch strings.ToLower(cur.peek().text) {
	case "insert", "replace", "update", "delete", "select", "set", "grant", "revoke", "analyze",
		"truncate", "do", "flush", "lock", "unlock", "values", "with", "install", "uninstall", "call":
		// CALL runs a procedure the same migrations define.
		return true
	}
	return false
}

func (c *checker) myCreateIndex(g *mig, cur *cursor, kind string) bool {
	name, _ := cur.name()
	if cur.accept("using") {
		cur.next()
	}
	if !cur.accept("on") {
		return false
	}
	tbl, ok := cur.name()
	if !ok {
		return false
	}
	c.indexes[name] = tbl
	if (kind == "fulltext" || kind == "spatial") && g.existing(tbl) && !explicitOnline(cur.rest()) {
		c.add(g, RuleMySQLBlocksWrites, tbl, fmt.Sprintf("CREATE %s INDEX on existing table %s cannot run with LOCK=NONE: writes to %s wait until it is built (the first FULLTEXT index also rebuilds the table)", strings.ToUpper(kind), tbl, tbl),
			"build it on a copy and swap (gh-ost, pt-online-schema-change), or at a quiet time")
	}
	return true
}

// explicitOnline reports whether an ALTER asks for ALGORITHM=INSTANT or
// LOCK=NONE itself: the server then refuses it rather than block writes.
func explicitOnline(toks []token) bool {
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].is("lock") || toks[i].is("algorithm") {
			v := toks[i+1]
			if v.text == "=" && i+2 < len(toks) {
				v = toks[i+2]
			}
			if toks[i].is("lock") && v.is("none") || toks[i].is("algorithm") && v.is("instant") {
				return true
			}
		}
	}
	return false
}

func (c *checker) myAlterTable(g *mig, cur *cursor) bool {
	tbl, ok := cur.name()
	if !ok {
		return false
	}
	existing := g.existing(tbl)
	acts := splitTop(cur.rest())
	online := explicitOnline(cur.rest())
	// A table rebuilt anyway (a COPY or INPLACE rebuild of one action) is
	// reported once.
	ok = true
	for _, act := range acts {
		if !c.myAction(g, tbl, existing, online, act) {
			ok = false
		}
	}
	return ok
}

// blocks reports an action that needs ALGORITHM=COPY or LOCK=SHARED.
func (c *checker) blocks(g *mig, tbl string, online bool, what, fix string) {
	if online {
		return
	}
	c.add(g, RuleMySQLBlocksWrites, tbl, fmt.Sprintf("%s cannot run with LOCK=NONE on %s: %s is copied while writes to it wait", what, c.cfg.Target, tbl), fix)
}

// rebuild reports an action that rebuilds the table in place.
func (c *checker) rebuild(g *mig, tbl, what string) {
	c.add(g, RuleMySQLRebuild, tbl, fmt.Sprintf("%s is not INSTANT on %s: it rebuilds %s in place (writes go on, but it takes as long as a copy and replicas lag behind it)", what, c.cfg.Target, tbl),
		"fine for a small table; for a large one use gh-ost or pt-online-schema-change, or a server version where it is INSTANT")
}

// instantAdd reports whether the target adds a column instantly.
func (c *checker) instantAdd(positioned bool) bool {
	t := c.cfg.Target
	if t.Engine == "mariadb" {
		return t.atLeast(10, 4) || t.atLeast(10, 3, 2) && !positioned
	}
	return t.atLeast(8, 0, 29) || t.atLeast(8, 0, 12) && !positioned
}

// instantDrop reports whether the target drops a column instantly.
func (c *checker) instantDrop() bool {
	t := c.cfg.Target
	if t.Engine == "mariadb" {
		return t.atLeast(10, 4)
	}
	return t.atLeast(8, 0, 29)
}

func (c *checker) myAction(g *mig, tbl string, existing, online bool, act []token) bool {
	cur := &cursor{toks: act}
	noCopy := "expand/contract: add a new column, backfill it in batches, switch, and drop the old one later; or gh-ost / pt-online-schema-change"
	switch {
	case cur.accept("algorithm"), cur.accept("lock"), cur.accept("comment"), cur.accept("auto_increment"),
		cur.accept("default", "charset"), cur.accept("default", "character"), cur.accept("character", "set"),
		cur.accept("charset"), cur.accept("collate"), cur.accept("default", "collate"),
		cur.accept("alter", "index"), cur.accept("rename", "index"), cur.accept("rename", "key"),
		cur.accept("drop", "index"), cur.accept("drop", "key"), cur.accept("drop", "foreign", "key"),
		cur.accept("drop", "check"), cur.accept("drop", "constraint"), cur.accept("stats_persistent"),
		cur.accept("enable", "keys"), cur.accept("disable", "keys"):
		return true
	case cur.peek().is("partition") || cur.peekAt(1).is("partition") && (cur.peek().is("add") || cur.peek().is("drop")) ||
		cur.peek().is("remove") || cur.peek().is("coalesce") || cur.peek().is("reorganize") || cur.peek().is("truncate") ||
		cur.peek().is("exchange") || cur.peek().is("rebuild") || cur.peek().is("discard") || cur.peek().is("import"):
		if cur.accept("partition", "by") {
			if existing {
				c.blocks(g, tbl, online, "PARTITION BY", "partition a new table and copy into it in batches")
			}
			return true
		}
		return false
	case cur.accept("add"):
		switch {
		case cur.peek().is("index") || cur.peek().is("key") || cur.peek().is("unique"):
			return true // INPLACE, LOCK=NONE
		case cur.accept("fulltext"), cur.accept("spatial"):
			if existing {
				c.blocks(g, tbl, online, "ADD FULLTEXT/SPATIAL INDEX", "build it on a copy and swap (gh-ost, pt-online-schema-change)")
			}
			return true
		}
		cur.accept("constraint")
		if !cur.peek().is("foreign") && !cur.peek().is("check") && !cur.peek().is("primary") && !cur.peek().is("unique") && !cur.peek().is("column") {
			if t := cur.peek(); t.kind == tWord || t.kind == tIdent {
				// ADD CONSTRAINT name ...
				if cur.peekAt(1).is("foreign") || cur.peekAt(1).is("check") || cur.peekAt(1).is("primary") || cur.peekAt(1).is("unique") {
					cur.next()
				}
			}
		}
		switch {
		case cur.accept("foreign", "key"):
			if existing && !g.fkChecksOff {
				c.blocks(g, tbl, online, "ADD FOREIGN KEY (with foreign_key_checks on)", "create the foreign key when the table is created, or add it with SET foreign_key_checks=0 in the same session (INPLACE, but existing rows are then not checked)")
			}
			return true
		case cur.accept("check"):
			if existing {
				c.blocks(g, tbl, online, "ADD CHECK", "enforce the rule in the application first; add the CHECK on a copy (gh-ost, pt-online-schema-change)")
			}
			return true
		case cur.accept("primary", "key"):
			if existing {
				c.rebuild(g, tbl, "ADD PRIMARY KEY")
			}
			return true
		case cur.accept("unique"):
			return true
		}
		cur.accept("column")
		cur.accept("if", "not", "exists")
		var defs []colDef
		if grp, ok := cur.group(); ok {
			for _, el := range splitTop(grp) {
				d, ok := parseColDef(el)
				if !ok {
					return false
				}
				defs = append(defs, d)
			}
		} else {
			d, ok := parseColDef(cur.rest())
			if !ok {
				return false
			}
			defs = append(defs, d)
		}
		for _, d := range defs {
			d := d
			c.table(tbl).cols[d.name] = &d
			if !existing {
				continue
			}
			switch {
			case d.autoInc:
				c.blocks(g, tbl, online, "ADD COLUMN ... AUTO_INCREMENT", "add it on a copy (gh-ost, pt-online-schema-change)")
			case d.stored:
				c.blocks(g, tbl, online, "ADD COLUMN ... STORED", "add it as a VIRTUAL generated column (INSTANT) and index that, or use gh-ost")
			case d.check:
				c.blocks(g, tbl, online, "ADD COLUMN ... CHECK", "add the column plain; enforce the rule in the application, or add the CHECK on a copy (gh-ost, pt-online-schema-change)")
			case d.primary:
				c.rebuild(g, tbl, "ADD COLUMN ... PRIMARY KEY")
			case !c.instantAdd(d.positioned):
				what := "ADD COLUMN"
				if d.positioned {
					what = "ADD COLUMN ... FIRST/AFTER"
				}
				c.rebuild(g, tbl, what)
			}
			if d.notNull && !d.hasDefault && !d.autoInc {
				c.add(g, RuleNotNullNoDefault, tbl, fmt.Sprintf("adding %s.%s NOT NULL without a DEFAULT: existing rows get an implicit value, and the running release's INSERTs, which do not name %s, fail in strict mode", tbl, d.name, d.name),
					"give it a DEFAULT, or add it nullable and make it NOT NULL in a later release")
			}
		}
		return true
	case cur.accept("drop", "primary", "key"):
		if existing && !hasSeq(g.toks, "add", "primary", "key") {
			c.blocks(g, tbl, online, "DROP PRIMARY KEY", "drop and add the primary key in the same ALTER (INPLACE)")
		}
		return true
	case cur.accept("drop"):
		cur.accept("column")
		cur.accept("if", "exists")
		col, ok := cur.name()
		if !ok {
			return false
		}
		c.dropColumn(g, tbl, col)
		if existing && !c.instantDrop() {
			c.rebuild(g, tbl, "DROP COLUMN")
		}
		return true
	case cur.accept("rename", "column"):
		from, _ := cur.name()
		cur.accept("to")
		to, _ := cur.name()
		c.renameColumn(g, tbl, from, to)
		return true
	case cur.accept("rename"):
		if !cur.accept("to") {
			cur.accept("as")
		}
		to, ok := cur.name()
		if !ok {
			return false
		}
		c.renameTable(g, tbl, to)
		return true
	case cur.accept("modify"), cur.peek().is("change"):
		from := ""
		if cur.accept("change") {
			cur.accept("column")
			from, _ = cur.name()
		} else {
			cur.accept("column")
		}
		d, ok := parseColDef(cur.rest())
		if !ok {
			return false
		}
		if from == "" {
			from = d.name
		}
		old := c.column(tbl, from)
		if existing {
			if from != d.name {
				c.add(g, RuleRenameColumn, tbl, fmt.Sprintf("CHANGE renames column %s.%s to %s: the running release's queries still name %s", tbl, from, d.name, from), renameColumnFix)
			}
			switch {
			case old == nil:
				c.blocks(g, tbl, online, fmt.Sprintf("changing column %s.%s to %s (lint does not know its current type, so it assumes a type change)", tbl, from, d.typ), "run ferry lint --trace to see what the server does, or append ALGORITHM=INPLACE, LOCK=NONE so the server refuses rather than block")
			case !myInplaceType(old.typ, d.typ, c.cfg.Target):
				c.blocks(g, tbl, online, fmt.Sprintf("changing column %s.%s from %s to %s", tbl, from, old.typ, d.typ), noCopy)
			case old.notNull != d.notNull:
				c.rebuild(g, tbl, fmt.Sprintf("changing %s.%s's NULL/NOT NULL", tbl, from))
			case d.positioned && !(c.cfg.Target.Engine == "mariadb" && c.cfg.Target.atLeast(10, 4)):
				c.rebuild(g, tbl, fmt.Sprintf("moving column %s.%s (FIRST/AFTER)", tbl, from))
			}
		}
		if t := c.tables[tbl]; t != nil {
			delete(t.cols, from)
		}
		d2 := d
		c.table(tbl).cols[d.name] = &d2
		return true
	case cur.accept("alter"):
		cur.accept("column")
		cur.name()
		return cur.accept("set") || cur.accept("drop", "default") || cur.peek().is("invisible") || cur.peek().is("visible")
	case cur.accept("convert", "to"):
		if existing {
			c.blocks(g, tbl, online, "CONVERT TO CHARACTER SET", "convert on a copy (gh-ost, pt-online-schema-change)")
		}
		return true
	case cur.accept("engine"), cur.accept("row_format"), cur.accept("force"), cur.accept("key_block_size"):
		if existing {
			c.rebuild(g, tbl, words(act, 1))
		}
		return true
	case cur.accept("order", "by"):
		if existing {
			c.blocks(g, tbl, online, "ORDER BY", "leave row order to the queries")
		}
		return true
	}
	return false
}

// myInplaceType reports whether MySQL changes a column's type in place
// without a copy: the same type, or a VARCHAR widening that keeps its
// length prefix size (up to 255 bytes, or beyond it on both sides;
// assuming utf8mb4, 4 bytes a character). MariaDB 10.4 and later widen any
// VARCHAR instantly (observed on 10.11: varchar(20) to varchar(100)).
func myInplaceType(old, new string, t Target) bool {
	if old == new {
		return true
	}
	if ob, nb, ok := strings.Cut(old, "("); ok {
		// ENUM and SET: members added at the end, within the same storage
		// size (up to 255 ENUM members, 8 SET members), change metadata only.
		if nn, nm, _ := strings.Cut(new, "("); nn == ob && (ob == "enum" || ob == "set") {
			om := strings.Split(strings.TrimSuffix(nb, ")"), ",")
			nmem := strings.Split(strings.TrimSuffix(nm, ")"), ",")
			limit := 255
			if ob == "set" {
				limit = 8
			}
			return len(nmem) >= len(om) && slices.Equal(nmem[:len(om)], om) && (len(om) > limit) == (len(nmem) > limit)
		}
	}
	on, oa := typeArgs(old)
	nn, na := typeArgs(new)
	if on != nn || on != "varchar" || len(oa) != 1 || len(na) != 1 || na[0] < oa[0] {
		return false
	}
	oldBytes, newBytes := oa[0]*4, na[0]*4
	if t.Engine == "mariadb" && t.atLeast(10, 4) {
		// Observed on MariaDB 10.11: instant when the old column took at
		// most 127 bytes or already more than 255 (varchar(31) or (64)
		// upwards); a copy in between (varchar(40) to (100)).
		return oldBytes <= 127 || oldBytes > 255
	}
	return (oldBytes <= 255) == (newBytes <= 255)
}
