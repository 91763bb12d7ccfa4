package lint

import (
	"strconv"
	"strings"
)

// colDef is a column definition as CREATE TABLE, ADD COLUMN, MODIFY and
// CHANGE write it.
type colDef struct {
	name        string
	typ         string // normalised: "varchar(20)", "int8", "numeric(10,2)"
	notNull     bool
	hasDefault  bool
	defaultToks []token
	primary     bool
	unique      bool
	references  string // referenced table, if any
	check       bool
	stored      bool // GENERATED ALWAYS AS (...) STORED, or a MySQL stored column
	identity    bool // GENERATED ... AS IDENTITY
	autoInc     bool
	positioned  bool // MySQL FIRST / AFTER
}

// typeStop are the words that end a column's type.
var typeStop = map[string]bool{
	"not": true, "null": true, "default": true, "primary": true, "unique": true,
	"references": true, "check": true, "generated": true, "constraint": true,
	"collate": true, "auto_increment": true, "comment": true, "after": true,
	"first": true, "on": true, "as": true, "using": true, "charset": true,
	"key": true, "invisible": true, "visible": true, "storage": true,
	"compression": true, "autoincrement": true, "srid": true,
}

// parseColDef reads a column definition; ok is false when it does not
// start with a column name.
func parseColDef(toks []token) (colDef, bool) {
	c := &cursor{toks: toks}
	var d colDef
	t := c.next()
	switch t.kind {
	case tWord:
		d.name = strings.ToLower(t.text)
	case tIdent:
		d.name = t.text
	default:
		return d, false
	}
	d.typ = parseType(c)
	for !c.done() {
		switch {
		case c.accept("not", "null"):
			d.notNull = true
		case c.accept("null"):
			d.notNull = false
		case c.accept("default"):
			d.hasDefault = true
			start := c.i
			skipExpr(c)
			d.defaultToks = c.toks[start:c.i]
		case c.accept("primary", "key"):
			d.primary, d.notNull = true, true
		case c.accept("unique"):
			d.unique = true
			c.accept("key")
		case c.accept("references"):
			d.references, _ = c.name()
			c.group()
		case c.accept("check"):
			d.check = true
			c.group()
		case c.accept("generated"):
			c.accept("always")
			c.accept("by", "default")
			if c.accept("as", "identity") {
				d.identity = true
				c.group()
				continue
			}
			if c.accept("as") {
				c.group()
				// Without a keyword MySQL, MariaDB and SQLite make the
				// column VIRTUAL; PostgreSQL before 18 requires STORED.
				d.stored = c.accept("stored") || c.accept("persistent")
			}
		case c.accept("as"):
			// MySQL: col type AS (expr) [VIRTUAL|STORED]
			c.group()
			d.stored = c.accept("stored") || c.accept("persistent")
		case c.accept("auto_increment"), c.accept("autoincrement"):
			d.autoInc = true
		case c.accept("first"):
			d.positioned = true
		case c.accept("after"):
			d.positioned = true
			c.name()
		case c.accept("constraint"):
			c.name()
		default:
			c.next()
		}
	}
	if strings.Contains(d.typ, "serial") {
		d.autoInc = true
	}
	return d, true
}

// skipExpr consumes a default expression: up to the next word that starts
// a column constraint, outside parentheses.
func skipExpr(c *cursor) {
	first := true
	for !c.done() {
		t := c.peek()
		if t.kind == tPunct && t.text == "(" {
			c.group()
			first = false
			continue
		}
		if !first && t.kind == tWord {
			switch strings.ToLower(t.text) {
			case "not", "null", "primary", "unique", "references", "check", "generated", "constraint", "collate", "comment", "after", "first", "on", "auto_increment":
				return
			}
		}
		first = false
		c.next()
	}
}

// parseType reads a column type and returns it normalised.
func parseType(c *cursor) string {
	var parts []string
	var args string
	for !c.done() {
		t := c.peek()
		if t.kind == tWord {
			w := strings.ToLower(t.text)
			if typeStop[w] || w == "character" && c.peekAt(1).is("set") {
				break
			}
			parts = append(parts, w)
			c.next()
			continue
		}
		if t.kind == tIdent && len(parts) == 0 {
			parts = append(parts, t.text)
			c.next()
			continue
		}
		if t.kind == tPunct && t.text == "(" {
			g, _ := c.group()
			var a []string
			for _, x := range g {
				if x.text != "," {
					a = append(a, strings.ToLower(x.text))
				}
			}
			args = "(" + strings.Join(a, ",") + ")"
			continue
		}
		if t.kind == tPunct && (t.text == "[" || t.text == "]") {
			parts = append(parts, t.text)
			c.next()
			continue
		}
		if t.kind == tPunct && t.text == "." && len(parts) > 0 {
			// schema-qualified type name
			c.next()
			parts = parts[:len(parts)-1]
			continue
		}
		break
	}
	return normType(strings.Join(parts, " "), args)
}

// normType maps type aliases to one spelling.
func normType(name, args string) string {
	switch name {
	case "int", "integer", "int4":
		name = "int4"
	case "bigint", "int8":
		name = "int8"
	case "smallint", "int2":
		name = "int2"
	case "character varying", "varchar", "nvarchar", "national varchar":
		name = "varchar"
	case "character", "char", "bpchar":
		name = "char"
	case "decimal", "numeric", "dec":
		name = "numeric"
	case "timestamp without time zone", "timestamp":
		name = "timestamp"
	case "timestamp with time zone", "timestamptz":
		name = "timestamptz"
	case "double precision", "float8", "double":
		name = "float8"
	case "real", "float4":
		name = "float4"
	case "boolean", "bool":
		name = "bool"
	case "bit varying", "varbit":
		name = "varbit"
	case "serial", "serial4":
		name = "serial"
	case "bigserial", "serial8":
		name = "bigserial"
	}
	return name + args
}

// typeArgs splits "varchar(20)" into "varchar" and [20]; a missing or
// non-numeric argument is -1.
func typeArgs(t string) (string, []int) {
	name, rest, ok := strings.Cut(t, "(")
	if !ok {
		return t, nil
	}
	var out []int
	for _, a := range strings.Split(strings.TrimSuffix(rest, ")"), ",") {
		n, err := strconv.Atoi(a)
		if err != nil {
			n = -1
		}
		out = append(out, n)
	}
	return name, out
}

// pgSafeTypeChange reports whether PostgreSQL changes a column from type
// old to type new without rewriting the table or scanning it: the
// binary-coercible widenings.
func pgSafeTypeChange(old, new string) bool {
	if old == new {
		return true
	}
	on, oa := typeArgs(old)
	nn, na := typeArgs(new)
	switch {
	case on == "varchar" && nn == "text", on == "varchar" && nn == "varchar" && na == nil:
		return true
	case on == "text" && nn == "varchar" && na == nil:
		return true
	case on == "varchar" && nn == "varchar" && len(oa) == 1 && len(na) == 1:
		return oa[0] >= 0 && na[0] >= oa[0]
	case (on == "varbit") && nn == on && (na == nil || len(oa) == 1 && len(na) == 1 && na[0] >= oa[0]):
		return true
	case on == "numeric" && nn == "numeric":
		if na == nil {
			return true
		}
		if len(oa) == 0 {
			return false
		}
		os, ns := 0, 0
		if len(oa) > 1 {
			os = oa[1]
		}
		if len(na) > 1 {
			ns = na[1]
		}
		return os == ns && na[0] >= oa[0]
	case on == "cidr" && nn == "inet":
		return true
	case on == nn && (on == "timestamp" || on == "timestamptz" || on == "time" || on == "timetz" || on == "interval"):
		// A higher fractional-seconds precision, or none (6), keeps every
		// stored value: observed without a rewrite on PostgreSQL 15.
		if na == nil {
			return true
		}
		return len(oa) == 1 && len(na) == 1 && oa[0] >= 0 && na[0] >= oa[0]
	}
	return false
}
