package transfer

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ferrydb/ferry/database"
)

// Mapping tells an import into a target at a newer schema version what to
// do where the export and the target differ. By default every exported
// table and column goes to the target table and column of the same name,
// and the target's other columns take their defaults; anything else (a
// table or column the target does not have, a column whose type changed,
// a target column that is NOT NULL without a default) is refused unless
// the mapping says what to do:
//
//	tables:
//	  old_runs: runs          # rename
//	  audit_2019: "-"         # leave out
//	columns:
//	  runs.name: title        # rename
//	  runs.legacy_flag: "-"   # leave out
//	casts:
//	  - runs.score            # the target's type is wider: let the database cast
type Mapping struct {
	Tables  map[string]string `yaml:"tables"`
	Columns map[string]string `yaml:"columns"`
	Casts   []string          `yaml:"casts"`
}

// ParseMapping reads a mapping file (YAML).
func ParseMapping(r io.Reader) (*Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && err != io.EOF {
		msg := strings.ReplaceAll(err.Error(), "in type transfer.Mapping", "(a mapping file has tables, columns and casts)")
		if strings.Contains(msg, "did not find expected key") || strings.Contains(msg, "block sequence entries are not allowed") {
			msg += ` (to leave a table or column out, quote the dash: "-")`
		}
		return nil, fmt.Errorf("mapping: %s", msg)
	}
	for k, v := range m.Tables {
		if strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("mapping: tables: %s has no value: give its new name, or \"-\" to leave it out", k)
		}
	}
	for k, v := range m.Columns {
		if strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("mapping: columns: %s has no value: give its new name, or \"-\" to leave it out", k)
		}
	}
	return &m, nil
}

// drop is the mapping's word for leaving a table or column out.
const drop = "-"

// tableMap is how one exported table goes into the target.
type tableMap struct {
	src    *TableExport
	target *Table
	keep   []int        // source column indexes loaded, in the mapped table's column order
	convs  []columnConv // their conversions (across engines), in the same order
	notes  []ColumnMapping
}

// mapTables maps the export's tables onto the target's, a database of
// engine kind. It returns every problem at once, so that one --plan shows
// all the mapping to write.
// lacking names the export's tables and columns that target, an empty
// database of another engine migrated to the export's version by its own
// migrations, does not have: no mapping can help there (an import into an
// empty database loads every table and column as exported), only the
// target engine's migrations, which must create what the source's did.
func lacking(m *Manifest, target []*Table, kind string) error {
	byName := map[string]*Table{}
	for _, t := range target {
		byName[t.Name] = t
	}
	var lack []string
	for _, src := range m.Tables {
		tt := byName[src.Name]
		if tt == nil {
			lack = append(lack, "table "+src.Name)
			continue
		}
		for _, c := range src.Columns {
			if tt.column(c.Name) == nil {
				lack = append(lack, "column "+src.Name+"."+c.Name)
			}
		}
	}
	if len(lack) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the target's migrations (--dir, for %s) at version %d do not create %s, which the source's (%s) did: an import into an empty database loads every table and column of the export, and no mapping leaves one out; the migrations of a release for each engine must create the same tables and columns: fix the target engine's", ErrMapping, kind, m.Source.SchemaVersion, strings.Join(lack, ", "), m.Source.Engine)
}

func mapTables(m *Manifest, target []*Table, kind string, mp *Mapping) (map[string]*tableMap, []string) {
	cross := m.Source.Engine != kind
	if mp == nil {
		mp = &Mapping{}
	}
	byName := map[string]*Table{}
	for _, t := range target {
		byName[t.Name] = t
	}
	out := map[string]*tableMap{}
	var problems []string
	into := map[string]string{} // target table: the exported table loaded into it
	for i := range m.Tables {
		src := &m.Tables[i]
		name := src.Name
		if to, ok := mp.Tables[src.Name]; ok {
			if to == drop {
				continue
			}
			name = to
		}
		tt := byName[name]
		if tt == nil {
			problems = append(problems, fmt.Sprintf("table %s is not in the target: if it was renamed, map it (tables: {%s: NEW_NAME}); to leave its rows out, tables: {%s: \"-\"}", name, src.Name, src.Name))
			continue
		}
		if other, ok := into[tt.Name]; ok {
			// One table's load would take the other's place in the ledger,
			// and its rows would never be loaded.
			moved := src.Name // the one the mapping sends there, to suggest leaving out
			if _, ok := mp.Tables[other]; ok {
				if _, ok := mp.Tables[src.Name]; !ok {
					moved = other
				}
			}
			problems = append(problems, fmt.Sprintf("exported tables %s and %s both go to the target's table %s: only one can be loaded there; leave the other out (tables: {%s: \"-\"}) or map it to another table", other, src.Name, tt.Name, moved))
			continue
		}
		into[tt.Name] = src.Name
		tm := &tableMap{src: src, target: tt}
		used := map[string]bool{}
		var types []Column // the target's columns of tm.keep
		cast := false
		for ci, c := range src.Columns {
			key := src.Name + "." + c.Name
			to, mapped := mp.Columns[key]
			switch {
			case mapped && to == drop:
				tm.notes = append(tm.notes, ColumnMapping{From: c.Name, Note: "left out (mapping)"})
				continue
			case !mapped:
				to = c.Name
			}
			tc := tt.column(to)
			if tc == nil {
				msg := fmt.Sprintf("column %s is not in the target's table %s: if it was renamed, map it (columns: {%s: NEW_NAME}); to leave it out, columns: {%s: \"-\"}", key, tt.Name, key, key)
				if mapped {
					msg = fmt.Sprintf("the mapping sends column %s to %s.%s, which the target does not have", key, tt.Name, to)
				}
				problems = append(problems, msg)
				tm.notes = append(tm.notes, ColumnMapping{From: c.Name, Note: "refused: " + msg})
				continue
			}
			if used[to] {
				msg := fmt.Sprintf("two exported columns of %s go to the target's column %s.%s: map only one there", src.Name, tt.Name, to)
				problems = append(problems, msg)
				tm.notes = append(tm.notes, ColumnMapping{From: c.Name, To: to, Note: "refused: " + msg})
				continue
			}
			note := ""
			if mapped {
				note = "renamed (mapping)"
			}
			var cc columnConv
			if cross {
				// Across engines the types differ by name: the classes say
				// what the conversion may lose (see convert.go).
				cc = convertColumn(m.Source.Engine, c, kind, *tc)
				if cc.lossy != "" && !slices.Contains(mp.Casts, key) {
					msg := fmt.Sprintf("column %s is %s in the export (%s) and %s in the target (%s): %s; if that is acceptable, allow the cast (casts: [%s])", key, c.Type, m.Source.Engine, tc.Type, kind, cc.lossy, key)
					problems = append(problems, msg)
					tm.notes = append(tm.notes, ColumnMapping{From: c.Name, To: to, Note: "refused: " + msg})
					used[to] = true // refused, not new
					continue
				}
				if cc.note != "" {
					note = strings.TrimPrefix(note+"; converted "+cc.note, "; ")
					if cc.lossy != "" {
						note += " (may round; allowed by the mapping)"
					}
				}
			} else if tc.Type != c.Type && widens(kind, c.Type, tc.Type) {
				// Every value fits as it is: converted and checked as a
				// cast is, without the mapping's say.
				cc = convertColumn(kind, c, kind, *tc)
				cast = true
				note = strings.TrimPrefix(note+"; widened "+c.Type+" -> "+tc.Type+" (each value checked)", "; ")
			} else if tc.Type != c.Type {
				if !slices.Contains(mp.Casts, key) {
					msg := fmt.Sprintf("column %s is %s in the export and %s in the target: if no value can be lost, allow the cast (casts: [%s])", key, c.Type, tc.Type, key)
					problems = append(problems, msg)
					tm.notes = append(tm.notes, ColumnMapping{From: c.Name, To: to, Note: "refused: " + msg})
					used[to] = true // refused, not new
					continue
				}
				// Converted here, not by the database, which may cast
				// silently (PostgreSQL's COPY rounds a numeric and drops a
				// time's time of day): a value the target's type cannot
				// carry exactly stops the load, and the verification
				// compares every value in the target type's canonical form.
				cc = convertColumn(kind, c, kind, *tc)
				cast = true
				note = strings.TrimPrefix(note+"; cast "+c.Type+" -> "+tc.Type+" (mapping; each value checked)", "; ")
			}
			used[to] = true
			types = append(types, *tc)
			tm.keep = append(tm.keep, ci)
			tm.convs = append(tm.convs, cc)
			tm.notes = append(tm.notes, ColumnMapping{From: c.Name, To: to, Note: note})
		}
		for _, tc := range tt.Columns {
			if used[tc.Name] {
				continue
			}
			if !tc.Nullable && !tc.HasDefault {
				msg := fmt.Sprintf("the target's column %s.%s is NOT NULL without a default, and the export has no value for it: map an exported column onto it, or give it a default in a migration", tt.Name, tc.Name)
				problems = append(problems, msg)
				tm.notes = append(tm.notes, ColumnMapping{To: tc.Name, Note: "refused: " + msg})
				continue
			}
			how := "new in the target: its default"
			if !tc.HasDefault {
				how = "new in the target: NULL"
			}
			tm.notes = append(tm.notes, ColumnMapping{To: tc.Name, Note: how})
		}
		if cast {
			// The row checksum is compared in canonical forms: the other
			// columns' too.
			for i := range tm.convs {
				if tm.convs[i].canon == nil {
					tm.convs[i].canon = canonical(classify(kind, types[i].Type))
				}
			}
		}
		out[src.Name] = tm
	}
	// A loaded row's reference must find its parent: a kept column that
	// references a table nothing loads is refused.
	loaded := map[string]bool{}
	for _, tm := range out {
		loaded[tm.target.Name] = true
	}
	for _, tm := range out {
		kept := map[string]bool{}
		for _, n := range tm.notes {
			if n.From != "" && n.To != "" && !strings.HasPrefix(n.Note, "refused") {
				kept[n.To] = true
			}
		}
		for _, fk := range tm.target.ForeignKeys {
			if loaded[fk.RefTable] {
				continue
			}
			for _, c := range fk.Columns {
				if kept[c] {
					problems = append(problems, fmt.Sprintf("table %s references %s (foreign key %s), which the export or the mapping leaves out: its rows could not be loaded with the constraint on", tm.target.Name, fk.RefTable, fk.Name))
					break
				}
			}
		}
	}
	for _, key := range mp.Casts {
		table, col, _ := strings.Cut(key, ".")
		if t := m.table(table); t == nil || t.column(col) == nil {
			problems = append(problems, fmt.Sprintf("the mapping allows a cast of column %s, which the export does not have (remove it from the mapping)", key))
		}
	}
	for name, to := range mp.Tables {
		if m.table(name) == nil {
			problems = append(problems, fmt.Sprintf("the mapping names table %s (-> %s), which the export does not have (remove it from the mapping)", name, to))
		}
	}
	for key := range mp.Columns {
		table, col, _ := strings.Cut(key, ".")
		if t := m.table(table); t == nil || t.column(col) == nil {
			problems = append(problems, fmt.Sprintf("the mapping names column %s, which the export does not have (remove it from the mapping)", key))
		}
	}
	slices.Sort(problems)
	return out, problems
}

// mapped returns the table the loaders load: the target's name and the
// kept columns under their target names, the source's rows and chunks,
// the target's foreign keys and the source's counters.
func (tm *tableMap) mapped() *TableExport {
	t := &TableExport{Table: Table{Name: tm.target.Name, PrimaryKey: tm.target.PrimaryKey,
		ForeignKeys: tm.target.ForeignKeys, Partitioned: tm.target.Partitioned},
		Rows: tm.src.Rows, RowChecksum: tm.src.RowChecksum, Chunks: tm.src.Chunks, src: tm.src, keep: tm.keep}
	for _, cc := range tm.convs {
		if cc.canon != nil {
			t.conv, t.canon = make([]func(value) (value, error), len(tm.convs)), make([]func(any) any, len(tm.convs))
			for i, cc := range tm.convs {
				t.conv[i], t.canon[i] = cc.conv, cc.canon
				if t.canon[i] == nil {
					t.canon[i] = func(v any) any { return v }
				}
			}
			break
		}
	}
	for _, n := range tm.notes {
		if n.From != "" && n.To != "" && !strings.HasPrefix(n.Note, "refused") {
			t.Columns = append(t.Columns, *tm.target.column(n.To))
			for _, s := range tm.src.Sequences {
				if s.Column == n.From {
					s.Column = n.To // the rest as the source's counter is
					t.Sequences = append(t.Sequences, s)
				}
			}
		}
	}
	return t
}

// widens reports whether a column of type to, in the same engine kind,
// holds every value a column of type from does, as the same value: a
// longer varchar, varchar to text, a larger integer of the same
// signedness, a numeric with at least as many digits on both sides of
// the point, a time with more fractional digits. Floats are left out
// (a real's 0.1 is not a double's). Anything else changed is a cast the
// mapping must allow.
func widens(kind, from, to string) bool {
	fn, fa, fu := typeParts(kind, from)
	tn, ta, tu := typeParts(kind, to)
	if fu != tu {
		return false
	}
	rank := func(ladder []string, n string) int { return slices.Index(ladder, n) }
	if kind == database.MySQL {
		ints := []string{"tinyint", "smallint", "mediumint", "int", "bigint"}
		texts := []string{"tinytext", "text", "mediumtext", "longtext"}
		switch {
		case rank(ints, fn) >= 0 && rank(ints, tn) >= 0:
			return rank(ints, tn) >= rank(ints, fn)
		case (fn == "varchar" || fn == "char") && (tn == "varchar" || tn == "char" && fn == "char"):
			return len(fa) == 1 && len(ta) == 1 && ta[0] >= fa[0]
		case (fn == "varchar" || fn == "char") && rank(texts, tn) >= 0:
			// text holds 65,535 bytes: four per character at most.
			return len(fa) == 1 && (tn != "text" || fa[0]*4 <= 65535) && tn != "tinytext"
		case rank(texts, fn) >= 0 && rank(texts, tn) >= 0:
			return rank(texts, tn) >= rank(texts, fn)
		}
	} else if kind == database.Postgres {
		ints := []string{"smallint", "integer", "bigint"}
		switch {
		case rank(ints, fn) >= 0 && rank(ints, tn) >= 0:
			return rank(ints, tn) >= rank(ints, fn)
		case fn == "character varying" && tn == "character varying":
			return len(ta) == 0 || len(fa) == 1 && len(ta) == 1 && ta[0] >= fa[0]
		case fn == "character varying" && tn == "text":
			return true
		}
	} else {
		return false // SQLite: a column's type is a name it does not enforce
	}
	switch {
	case (fn == "numeric" || fn == "decimal") && fn == tn:
		// (p, s) into (p2, s2): as many fractional digits, and as many
		// whole ones (p - s). Without arguments PostgreSQL's holds any.
		if len(ta) == 0 && kind == database.Postgres {
			return true
		}
		fp, fs, tp, ts := argOr(fa, 0, 10), argOr(fa, 1, 0), argOr(ta, 0, 10), argOr(ta, 1, 0)
		return len(fa) > 0 && ts >= fs && tp-ts >= fp-fs
	case fn == tn && (strings.HasPrefix(fn, "timestamp") || fn == "datetime" || fn == "time" || strings.HasPrefix(fn, "time ")):
		// More fractional digits of a second (6 when not given on
		// PostgreSQL, 0 on MySQL).
		def := 0
		if kind == database.Postgres {
			def = 6
		}
		return argOr(ta, 0, def) >= argOr(fa, 0, def)
	}
	return false
}

// typeParts splits a column type as the catalog gives it ("character
// varying(20)", "decimal(12,2) unsigned", "timestamp(3) with time zone")
// into its name (arguments left out, "timestamp with time zone"), its
// numeric arguments, and whether it is unsigned.
func typeParts(kind, typ string) (name string, args []int, unsigned bool) {
	t := strings.ToLower(strings.TrimSpace(typ))
	unsigned = strings.Contains(t, " unsigned")
	t = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(t, " unsigned", ""), " zerofill", ""))
	if open := strings.IndexByte(t, '('); open >= 0 {
		if close := strings.IndexByte(t[open:], ')'); close > 0 {
			for _, a := range strings.Split(t[open+1:open+close], ",") {
				n, err := strconv.Atoi(strings.TrimSpace(a))
				if err != nil {
					return t, nil, unsigned // enum('a','b'): no numbers
				}
				args = append(args, n)
			}
			t = strings.TrimSpace(t[:open] + t[open+close+1:])
		}
	}
	if kind == database.Postgres {
		switch t {
		case "int", "int4":
			t = "integer"
		case "int2":
			t = "smallint"
		case "int8":
			t = "bigint"
		case "varchar":
			t = "character varying"
		case "decimal":
			t = "numeric"
		case "timestamptz":
			t = "timestamp with time zone"
		case "timestamp":
			t = "timestamp without time zone"
		}
	}
	return strings.Join(strings.Fields(t), " "), args, unsigned
}

// argOr is args[i], or def when there is none.
func argOr(args []int, i, def int) int {
	if i < len(args) {
		return args[i]
	}
	return def
}
