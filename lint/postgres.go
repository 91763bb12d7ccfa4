package lint

import (
	"fmt"
	"strings"
)

// postgres analyses one PostgreSQL statement; false means it could not.
func (c *checker) postgres(g *mig) bool {
	cur := &cursor{toks: g.toks}
	switch {
	case cur.accept("create"):
		cur.accept("or", "replace")
		unique := cur.accept("unique")
		if cur.accept("index") {
			return c.pgCreateIndex(g, cur, unique)
		}
		for cur.accept("global") || cur.accept("local") || cur.accept("temporary") || cur.accept("temp") || cur.accept("unlogged") {
		}
		if cur.accept("table") {
			return c.pgCreateTable(g, cur)
		}
		cur.accept("materialized")
		cur.accept("recursive")
		cur.accept("constraint")
		cur.accept("trusted")
		cur.accept("procedural")
		switch strings.ToLower(cur.peek().text) {
		case "view":
			v := &cursor{toks: cur.toks, i: cur.i + 1}
			v.accept("if", "not", "exists")
			if name, ok := v.name(); ok {
				g.created[name] = true
			}
			return true
		case "function", "procedure", "trigger", "sequence", "type", "schema", "extension",
			"domain", "policy", "rule", "aggregate", "operator", "collation", "cast", "publication",
			"subscription", "role", "user", "group", "language", "statistics", "text", "conversion",
			"event", "server", "foreign", "access", "transform", "tablespace", "default":
			return true
		}
		return false
	case cur.accept("alter", "table"):
		return c.pgAlterTable(g, cur)
	case cur.accept("alter", "type"):
		name, _ := cur.name()
		if cur.accept("add", "value") {
			if g.inTx && !c.cfg.Target.atLeast(12) {
				c.add(g, RuleEnumValueInTx, "", fmt.Sprintf("ALTER TYPE %s ADD VALUE cannot run inside a transaction block before PostgreSQL 12 (target %s): the migration fails", name, c.cfg.Target),
					"put it in its own migration marked -- +ferry no-transaction")
			}
		}
		return true
	case cur.accept("alter"):
		switch strings.ToLower(cur.peek().text) {
		case "index", "sequence", "view", "materialized", "function", "procedure", "schema", "domain",
			"extension", "role", "user", "policy", "trigger", "default", "publication", "statistics",
			"database", "owner", "aggregate", "collation", "operator", "text", "event", "large", "routine", "rule", "language":
			return true
		}
		return false
	case cur.accept("drop", "table"):
		return c.dropTables(g, cur)
	case cur.accept("drop", "index"):
		conc := cur.accept("concurrently")
		cur.accept("if", "exists")
		for {
			name, ok := cur.name()
			if !ok {
				break
			}
			tbl, known := c.indexes[name]
			delete(c.indexes, name)
			if conc {
				c.concurrentInTx(g, "DROP INDEX CONCURRENTLY")
			} else if !known || g.existing(tbl) {
				if known {
					g.ddlOn(tbl)
				}
				on := "its table"
				if known {
					on = tbl
				}
				c.add(g, RuleDropIndexNotConcurrent, tbl, fmt.Sprintf("DROP INDEX %s takes an ACCESS EXCLUSIVE lock on %s: every query on it waits, and queues behind any long transaction", name, on),
					"DROP INDEX CONCURRENTLY in a migration marked -- +ferry no-transaction")
			}
			if !cur.acceptPunct(",") {
				break
			}
		}
		return true
	case cur.accept("drop"):
		return true
	case cur.accept("reindex"):
		opts, _ := cur.group()
		kind := strings.ToUpper(cur.next().text)
		if cur.accept("concurrently") || has(opts, "concurrently") {
			c.concurrentInTx(g, "REINDEX CONCURRENTLY")
			return true
		}
		name, _ := cur.name()
		c.add(g, RuleIndexNotConcurrent, name, fmt.Sprintf("REINDEX %s %s blocks writes to the table (and reads that use the index) until the index is rebuilt", kind, name),
			"REINDEX ... CONCURRENTLY (PostgreSQL 12+) in a migration marked -- +ferry no-transaction")
		return true
	case cur.accept("vacuum"):
		if g.inTx {
			c.add(g, RuleConcurrentInTx, "", "VACUUM cannot run inside a transaction block: this migration runs in one, so it fails",
				"mark the migration -- +ferry no-transaction (goose: -- +goose NO TRANSACTION), with this statement alone in it")
		}
		opts, _ := cur.group()
		if cur.accept("full") || has(opts, "full") {
			name, _ := cur.name()
			c.add(g, RuleTableRewrite, name, fmt.Sprintf("VACUUM FULL %s rewrites the table under an ACCESS EXCLUSIVE lock: every query on it waits for the whole rewrite", name),
				"use pg_repack, or plain VACUUM")
		}
		return true
	case cur.accept("cluster"):
		cur.accept("verbose")
		name, _ := cur.name()
		c.add(g, RuleTableRewrite, name, fmt.Sprintf("CLUSTER %s rewrites the table under an ACCESS EXCLUSIVE lock: every query on it waits for the whole rewrite", name),
			"use pg_repack")
		return true
	case cur.accept("update"):
		cur.accept("only")
		name, _ := cur.name()
		c.backfill(g, name, "UPDATE", cur.rest())
		return true
	case cur.accept("delete", "from"):
		cur.accept("only")
		name, _ := cur.name()
		c.backfill(g, name, "DELETE", cur.rest())
		return true
	case cur.accept("refresh", "materialized", "view"):
		if cur.accept("concurrently") {
			return true
		}
		name, _ := cur.name()
		if g.existing(name) {
			c.add(g, RuleTableRewrite, name, fmt.Sprintf("REFRESH MATERIALIZED VIEW %s rebuilds it under an ACCESS EXCLUSIVE lock: every read of %s waits until the refresh is done", name, name),
				"REFRESH MATERIALIZED VIEW CONCURRENTLY (the view needs a unique index), which lets reads go on")
		}
		return true
	case cur.accept("with"):
		// A data-modifying CTE is DML; lint reads it as such.
		return true
	}
	switch strings.ToLower(cur.peek().text) {
	case "insert", "select", "comment", "grant", "revoke", "set", "reset", "analyze", "notify",
		"truncate", "lock", "values", "security", "import", "discard", "listen", "unlisten":
		return true
	}
	return false
}

// concurrentInTx reports CONCURRENTLY in a transactional migration.
func (c *checker) concurrentInTx(g *mig, what string) {
	if g.inTx {
		c.add(g, RuleConcurrentInTx, "", fmt.Sprintf("%s cannot run inside a transaction block: this migration runs in one, so it fails", what),
			"mark the migration -- +ferry no-transaction (goose: -- +goose NO TRANSACTION), with this statement alone in it")
	}
}

func (c *checker) pgCreateIndex(g *mig, cur *cursor, unique bool) bool {
	conc := cur.accept("concurrently")
	cur.accept("if", "not", "exists")
	name := ""
	if !cur.peek().is("on") {
		name, _ = cur.name()
	}
	if !cur.accept("on") {
		return false
	}
	only := cur.accept("only")
	tbl, ok := cur.name()
	if !ok {
		return false
	}
	if name != "" {
		c.indexes[name] = tbl
	}
	if t := c.tables[tbl]; only && t != nil && t.partitioned {
		return true // ON ONLY a partitioned parent: catalog only, instant
	}
	if conc {
		c.concurrentInTx(g, "CREATE INDEX CONCURRENTLY")
		return true
	}
	if g.existing(tbl) {
		g.ddlOn(tbl)
		kind := "INDEX"
		if unique {
			kind = "UNIQUE INDEX"
		}
		fix := "CREATE " + kind + " CONCURRENTLY in a migration marked -- +ferry no-transaction"
		if t := c.tables[tbl]; t != nil && t.partitioned {
			fix = "a partitioned table takes no CONCURRENTLY: CREATE " + kind + " ... ON ONLY " + tbl + " (instant, invalid), then CREATE " + kind + " CONCURRENTLY on each partition and ALTER INDEX ... ATTACH PARTITION each, in -- +ferry no-transaction migrations"
		}
		c.add(g, RuleIndexNotConcurrent, tbl, fmt.Sprintf("CREATE %s on existing table %s takes a SHARE lock: inserts, updates and deletes on %s wait until the whole index is built", kind, tbl, tbl), fix)
	}
	return true
}

func (c *checker) pgCreateTable(g *mig, cur *cursor) bool {
	cur.accept("if", "not", "exists")
	name, ok := cur.name()
	if !ok {
		return false
	}
	if cur.accept("partition", "of") {
		g.created[name] = true
		return true
	}
	body, ok := cur.group()
	if !ok {
		// CREATE TABLE ... AS, OF type
		g.created[name] = true
		return true
	}
	c.createTable(g, name, body)
	c.tables[name].partitioned = cur.accept("partition", "by")
	return true
}

func (c *checker) dropTables(g *mig, cur *cursor) bool {
	cur.accept("if", "exists")
	for {
		name, ok := cur.name()
		if !ok {
			break
		}
		if g.existing(name) {
			g.dropped[name] = len(g.findings)
			c.add(g, RuleDropTable, name, fmt.Sprintf("DROP TABLE %s: the running release may still use it, and its queries fail once it is gone", name), expandContract)
		}
		delete(c.tables, name)
		delete(g.created, name)
		delete(g.run, name)
		if !cur.acceptPunct(",") {
			break
		}
	}
	return true
}

// backfill notes an UPDATE or DELETE without WHERE on an existing table.
func (c *checker) backfill(g *mig, tbl, verb string, rest []token) {
	if !g.check || !g.existing(tbl) || has(rest, "where") || c.d != postgresDialect {
		return
	}
	g.backfills = append(g.backfills, c.finding(g, RuleBackfillInTx, tbl, fmt.Sprintf("%s of every row of %s in one statement", verb, tbl),
		"backfill in batches (UPDATE ... WHERE id BETWEEN ...) in a migration of its own, marked -- +ferry no-transaction, after the DDL's migration", g.stmt.Line))
}

func (c *checker) pgAlterTable(g *mig, cur *cursor) bool {
	cur.accept("if", "exists")
	cur.accept("only")
	tbl, ok := cur.name()
	if !ok {
		return false
	}
	cur.acceptPunct("*")
	existing := g.existing(tbl)
	validating := cur.peek().is("validate")
	defer func() {
		if existing && g.inTx && !validating {
			g.altered[tbl] = true
		}
		if existing && !validating {
			g.ddlOn(tbl)
		}
	}()
	switch {
	case cur.accept("rename", "to"):
		to, _ := cur.name()
		c.renameTable(g, tbl, to)
		return true
	case cur.accept("rename", "constraint"):
		return true
	case cur.peek().is("rename"):
		cur.accept("rename")
		cur.accept("column")
		from, _ := cur.name()
		cur.accept("to")
		to, _ := cur.name()
		c.renameColumn(g, tbl, from, to)
		return true
	case cur.accept("set", "schema"), cur.accept("attach", "partition"), cur.accept("detach", "partition"):
		return true
	}
	ok = true
	for _, act := range splitTop(cur.rest()) {
		if !c.pgAction(g, tbl, existing, act) {
			ok = false
		}
	}
	return ok
}

// pgAction analyses one action of ALTER TABLE.
func (c *checker) pgAction(g *mig, tbl string, existing bool, act []token) bool {
	cur := &cursor{toks: act}
	switch {
	case cur.accept("add"):
		if cur.peek().is("constraint") || cur.peek().is("check") || cur.peek().is("foreign") || cur.peek().is("unique") || cur.peek().is("primary") || cur.peek().is("exclude") {
			return c.pgAddConstraint(g, tbl, existing, cur)
		}
		cur.accept("column")
		cur.accept("if", "not", "exists")
		d, ok := parseColDef(cur.rest())
		if !ok {
			return false
		}
		c.table(tbl).cols[d.name] = &d
		if !existing {
			return true
		}
		g.ddlOn(tbl)
		c.pgAddColumn(g, tbl, d)
		return true
	case cur.accept("drop", "constraint"):
		return true
	case cur.accept("drop"):
		cur.accept("column")
		cur.accept("if", "exists")
		col, ok := cur.name()
		if !ok {
			return false
		}
		c.dropColumn(g, tbl, col)
		return true
	case cur.accept("alter"):
		cur.accept("column")
		col, ok := cur.name()
		if !ok {
			return false
		}
		return c.pgAlterColumn(g, tbl, col, existing, cur)
	case cur.accept("validate", "constraint"):
		name, _ := cur.name()
		if rule, ok := g.notValid[name]; ok && g.altered[tbl] {
			lock := "ACCESS EXCLUSIVE"
			if rule == RuleForeignKeyScan {
				lock = "SHARE ROW EXCLUSIVE"
			}
			c.add(g, rule, tbl, fmt.Sprintf("VALIDATE CONSTRAINT %s runs in the same transaction as the ALTER TABLE that added it: the %s lock that ALTER took on %s is held through the validating scan, so NOT VALID gains nothing", name, lock, tbl),
				"validate in a later migration (its own transaction), where VALIDATE CONSTRAINT takes only a SHARE UPDATE EXCLUSIVE lock")
		}
		if p, ok := c.pendingChecks[name]; ok && p[0] == tbl {
			c.table(tbl).notNullChecks[p[1]] = true
			delete(c.pendingChecks, name)
		}
		return true
	case cur.accept("set", "tablespace"), cur.accept("set", "logged"), cur.accept("set", "unlogged"), cur.accept("set", "access", "method"):
		if existing {
			c.add(g, RuleTableRewrite, tbl, fmt.Sprintf("ALTER TABLE %s %s rewrites the table under an ACCESS EXCLUSIVE lock: every query on it waits for the whole rewrite", tbl, words(act, 3)), "do it in a maintenance window, or build a copy and swap")
			g.ddlOn(tbl)
		}
		return true
	case cur.accept("set"), cur.accept("reset"), cur.accept("enable"), cur.accept("disable"), cur.accept("owner"),
		cur.accept("cluster"), cur.accept("replica"), cur.accept("inherit"), cur.accept("no"), cur.accept("of"),
		cur.accept("not", "of"), cur.accept("force"):
		return true
	}
	return false
}

func (c *checker) pgAddColumn(g *mig, tbl string, d colDef) {
	switch {
	case d.autoInc || d.identity:
		c.add(g, RuleAddColumnRewrite, tbl, fmt.Sprintf("adding %s.%s as %s rewrites %s to fill every row, under an ACCESS EXCLUSIVE lock that blocks all queries on it", tbl, d.name, identityWord(d), tbl),
			"add a nullable column, attach a sequence as its default, backfill in batches, then add the constraint")
		return
	case d.stored:
		c.add(g, RuleAddColumnRewrite, tbl, fmt.Sprintf("adding stored generated column %s.%s rewrites %s under an ACCESS EXCLUSIVE lock that blocks all queries on it", tbl, d.name, tbl),
			"compute the value in a view or in the application, or add a plain column and backfill it in batches")
		return
	}
	if d.hasDefault {
		if fn, known := volatileCall(d.defaultToks); fn != "" && !known {
			c.addSev(g, RuleAddColumnRewrite, Warning, tbl, fmt.Sprintf("adding %s.%s with the default %s(): lint does not know whether %s is volatile; if it is, PostgreSQL rewrites %s to give each row its own value, under an ACCESS EXCLUSIVE lock that blocks all queries on it", tbl, d.name, fn, fn, tbl),
				"ferry lint --trace shows whether it rewrites; if it does, add the column without a default, set the default in a second statement, and backfill in batches")
			return
		} else if fn != "" {
			c.add(g, RuleAddColumnRewrite, tbl, fmt.Sprintf("adding %s.%s with the volatile default %s() rewrites %s to give each row its own value, under an ACCESS EXCLUSIVE lock that blocks all queries on it", tbl, d.name, fn, tbl),
				"add the column without a default (or with a constant one), set the default in a second statement, and backfill existing rows in batches")
			return
		}
		if !c.cfg.Target.atLeast(11) {
			c.add(g, RuleAddColumnRewrite, tbl, fmt.Sprintf("before PostgreSQL 11 (target %s) adding %s.%s with a DEFAULT rewrites %s under an ACCESS EXCLUSIVE lock", c.cfg.Target, tbl, d.name, tbl),
				"add the column without a default, set the default in a second statement, and backfill in batches")
			return
		}
	}
	if d.notNull && !d.hasDefault {
		c.add(g, RuleNotNullNoDefault, tbl, fmt.Sprintf("adding %s.%s NOT NULL without a DEFAULT fails if %s has any row, and the running release's INSERTs, which do not name %s, fail once it exists", tbl, d.name, tbl, d.name),
			"add it with a DEFAULT, or nullable: backfill, then add CHECK ("+d.name+" IS NOT NULL) NOT VALID, VALIDATE it, and SET NOT NULL")
	}
	if d.references != "" && d.hasDefault {
		c.add(g, RuleForeignKeyScan, tbl, fmt.Sprintf("adding %s.%s REFERENCES %s with a DEFAULT checks every row's value against %s under SHARE ROW EXCLUSIVE locks on both tables: writes to them wait until it is done", tbl, d.name, d.references, d.references),
			"add the column without REFERENCES, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, and VALIDATE CONSTRAINT in a later statement")
	}
	if d.primary || d.unique {
		c.add(g, RuleUniqueWithoutIndex, tbl, fmt.Sprintf("adding %s.%s with UNIQUE or PRIMARY KEY builds an index while an ACCESS EXCLUSIVE lock blocks all queries on %s", tbl, d.name, tbl),
			"add the column plain, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX")
	}
	if d.check {
		c.add(g, RuleCheckScan, tbl, fmt.Sprintf("adding %s.%s with a CHECK scans %s under an ACCESS EXCLUSIVE lock", tbl, d.name, tbl),
			"add the column plain, then ADD CONSTRAINT ... CHECK (...) NOT VALID and VALIDATE CONSTRAINT")
	}
}

func identityWord(d colDef) string {
	if d.identity {
		return "an identity column"
	}
	return d.typ
}

func (c *checker) pgAddConstraint(g *mig, tbl string, existing bool, cur *cursor) bool {
	name := ""
	if cur.accept("constraint") {
		name, _ = cur.name()
	}
	rest := cur.rest()
	notValid := hasSeq(rest, "not", "valid")
	switch {
	case cur.accept("check"):
		if notValid && name != "" {
			g.notValid[name] = RuleCheckScan
		}
		col, isNotNull := notNullCheck(cur.rest())
		if isNotNull {
			if notValid {
				c.pendingChecks[name] = [2]string{tbl, col}
			} else {
				c.table(tbl).notNullChecks[col] = true
			}
		}
		if existing {
			g.ddlOn(tbl)
			if !notValid {
				c.add(g, RuleCheckScan, tbl, fmt.Sprintf("ADD CHECK on %s scans every row while an ACCESS EXCLUSIVE lock blocks all queries on %s", tbl, tbl),
					"ADD CONSTRAINT ... CHECK (...) NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later statement (it takes a lock that lets reads and writes go on)")
			}
		}
		return true
	case cur.accept("foreign", "key"):
		cur.group()
		cur.accept("references")
		ref, _ := cur.name()
		if notValid && name != "" {
			g.notValid[name] = RuleForeignKeyScan
		}
		// A table created in this migration is empty: checking its rows
		// scans nothing, and the referenced table is not scanned.
		if existing {
			g.ddlOn(tbl)
			if !notValid {
				c.add(g, RuleForeignKeyScan, tbl, fmt.Sprintf("ADD FOREIGN KEY on %s REFERENCES %s takes SHARE ROW EXCLUSIVE locks on both tables and checks every row: writes to %s and %s wait until it is done", tbl, ref, tbl, ref),
					"ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT in a later statement")
			}
		}
		return true
	case cur.peek().is("unique"), cur.peek().is("primary"), cur.peek().is("exclude"):
		kind := strings.ToUpper(cur.next().text)
		if cur.accept("key") {
			kind += " KEY"
		}
		if cur.accept("using", "index") {
			return true
		}
		if existing {
			g.ddlOn(tbl)
			fix := "CREATE UNIQUE INDEX CONCURRENTLY (in a -- +ferry no-transaction migration), then ADD CONSTRAINT ... UNIQUE USING INDEX (or PRIMARY KEY USING INDEX)"
			if kind == "EXCLUDE" {
				fix = "EXCLUDE has no USING INDEX form: add it while the table is small, or at a quiet time"
			}
			c.add(g, RuleUniqueWithoutIndex, tbl, fmt.Sprintf("ADD %s builds an index on %s while an ACCESS EXCLUSIVE lock blocks all queries on it", kind, tbl), fix)
		}
		return true
	}
	return false
}

func (c *checker) pgAlterColumn(g *mig, tbl, col string, existing bool, cur *cursor) bool {
	switch {
	case cur.accept("set", "data", "type"), cur.accept("type"):
		newType := parseType(cur)
		known := c.column(tbl, col)
		collate := cur.accept("collate")
		if collate {
			cur.name()
		}
		using := false
		if cur.accept("using") {
			// USING col (or col::type) is the implicit cast; anything else
			// computes every row anew.
			u := cur.rest()
			using = !(len(u) == 1 || len(u) > 2 && u[1].text == "::") || !strings.EqualFold(u[0].text, col)
		}
		if existing {
			g.ddlOn(tbl)
			switch {
			case using:
				c.add(g, RuleTypeRewrite, tbl, fmt.Sprintf("changing %s.%s to %s with a USING expression rewrites %s and its indexes, computing every row, while an ACCESS EXCLUSIVE lock blocks all queries on it", tbl, col, newType, tbl),
					"expand/contract: add a new column of the new type, write both, backfill in batches, move reads, drop the old column in a contract migration")
			case collate && known != nil && pgSafeTypeChange(known.typ, newType):
				c.add(g, RuleTypeRewrite, tbl, fmt.Sprintf("changing %s.%s's collation rebuilds every index on the column while an ACCESS EXCLUSIVE lock blocks all queries on %s", tbl, col, tbl),
					"add a new index with the collation CONCURRENTLY and change queries to use it, or do it at a quiet time")
			case known == nil || known.typ == "":
				c.add(g, RuleTypeRewrite, tbl, fmt.Sprintf("changing %s.%s to %s: lint does not know the column's current type, so it cannot tell whether PostgreSQL rewrites %s (under an ACCESS EXCLUSIVE lock that blocks all queries)", tbl, col, newType, tbl),
					"run ferry lint --trace to see; varchar widening, varchar to text and numeric precision increases do not rewrite")
			case !pgSafeTypeChange(known.typ, newType):
				c.add(g, RuleTypeRewrite, tbl, fmt.Sprintf("changing %s.%s from %s to %s rewrites %s and its indexes while an ACCESS EXCLUSIVE lock blocks all queries on it; the running release may also break on the new type", tbl, col, known.typ, newType, tbl),
					"expand/contract: add a new column of the new type, write both, backfill in batches, move reads, drop the old column in a contract migration")
			}
		}
		if known != nil {
			known.typ = newType
		} else {
			c.table(tbl).cols[col] = &colDef{name: col, typ: newType}
		}
		return true
	case cur.accept("set", "not", "null"):
		if existing {
			g.ddlOn(tbl)
			t := c.tables[tbl]
			checked := t != nil && t.notNullChecks[col]
			switch {
			case checked && c.cfg.Target.atLeast(12):
			case checked:
				c.add(g, RuleSetNotNull, tbl, fmt.Sprintf("before PostgreSQL 12 (target %s) SET NOT NULL on %s.%s scans every row under an ACCESS EXCLUSIVE lock, even with a validated CHECK", c.cfg.Target, tbl, col),
					"on PostgreSQL 11 or older, keep the validated CHECK constraint instead of SET NOT NULL")
			default:
				c.add(g, RuleSetNotNull, tbl, fmt.Sprintf("SET NOT NULL on %s.%s scans every row while an ACCESS EXCLUSIVE lock blocks all queries on %s", tbl, col, tbl),
					"first ADD CONSTRAINT "+col+"_not_null CHECK ("+col+" IS NOT NULL) NOT VALID and VALIDATE CONSTRAINT; then SET NOT NULL skips the scan (PostgreSQL 12+)")
			}
		}
		if k := c.column(tbl, col); k != nil {
			k.notNull = true
		}
		return true
	case cur.accept("drop", "not", "null"), cur.accept("set", "default"), cur.accept("drop", "default"),
		cur.accept("set", "statistics"), cur.accept("set", "storage"), cur.accept("set", "compression"),
		cur.accept("set"), cur.accept("reset"), cur.accept("drop", "identity"), cur.accept("drop", "expression"),
		cur.accept("add", "generated"), cur.accept("restart"):
		return true
	}
	return false
}

// stableFuncs are functions a column default may call without PostgreSQL
// rewriting the table to evaluate it per row (immutable or stable ones,
// evaluated once when the column is added).
var stableFuncs = map[string]bool{
	"now": true, "current_timestamp": true, "current_date": true, "current_time": true,
	"localtimestamp": true, "localtime": true, "transaction_timestamp": true, "statement_timestamp": true,
	"lower": true, "upper": true, "concat": true, "coalesce": true, "array": true, "row": true,
	"jsonb_build_object": true, "json_build_object": true, "jsonb_build_array": true, "json_build_array": true,
	"to_jsonb": true, "to_json": true, "make_interval": true, "interval": true, "cast": true,
	"current_user": true, "current_setting": true, "length": true, "abs": true, "round": true,
	"date_trunc": true, "timezone": true, "md5": true, "nullif": true, "greatest": true, "least": true,
	"varchar": true, "numeric": true, "timestamp": true, "timestamptz": true, "char": true,
	"extract": true, "date_part": true, "to_char": true, "to_date": true, "to_timestamp": true,
	"make_date": true, "make_timestamp": true, "make_timestamptz": true, "age": true, "format": true,
	"replace": true, "substring": true, "substr": true, "trim": true, "left": true, "right": true,
	"array_length": true, "jsonb_build": true, "json_object": true, "jsonb_object": true, "pg_size_pretty": true,
	"int4": true, "int8": true, "text": true, "bool": true, "date": true, "uuid": true, "jsonb": true, "json": true,
}

// volatileFuncs are functions that give each row its own value: a default
// calling one makes PostgreSQL rewrite the table to fill it.
var volatileFuncs = map[string]bool{
	"random": true, "gen_random_uuid": true, "uuid_generate_v1": true, "uuid_generate_v1mc": true,
	"uuid_generate_v4": true, "uuidv4": true, "uuidv7": true, "clock_timestamp": true, "timeofday": true,
	"nextval": true, "setval": true, "random_normal": true, "gen_random_bytes": true, "txid_current": true,
	"pg_current_xact_id": true, "currval": true, "lastval": true,
}

// volatileCall returns the name of a function that a default expression
// calls and that is not known to be stable, or "", and whether it is
// known to be volatile (rather than unknown to lint).
func volatileCall(toks []token) (string, bool) {
	unknown := ""
	for i, t := range toks {
		if t.kind != tWord || i+1 >= len(toks) || toks[i+1].text != "(" {
			continue
		}
		if i > 0 && toks[i-1].text == "::" {
			continue
		}
		name := strings.ToLower(t.text)
		switch {
		case volatileFuncs[name]:
			return name, true
		case !stableFuncs[name] && unknown == "":
			unknown = name
		}
	}
	return unknown, false
}
