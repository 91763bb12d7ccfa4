package transfer

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/database"
)

// Table is one table of an export, as read from the source's catalog.
type Table struct {
	Name        string       `json:"name"`
	Columns     []Column     `json:"columns"`
	PrimaryKey  []string     `json:"primary_key,omitempty"`
	ForeignKeys []ForeignKey `json:"foreign_keys,omitempty"`
	// Partitioned is a PostgreSQL partitioned table: its rows are read
	// and loaded through it, never through ONLY.
	Partitioned bool `json:"partitioned,omitempty"`
	// Sequences are the sequence or identity counters of the table's
	// columns (PostgreSQL serial and identity columns, MySQL
	// AUTO_INCREMENT, SQLite AUTOINCREMENT), at the snapshot.
	Sequences []Sequence `json:"sequences,omitempty"`
}

// Column is one column: its name, its type as the source declares it,
// and whether it takes NULL.
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
	// HasDefault: the column has a default (or is an identity or
	// auto-increment column), so a row may leave it out.
	HasDefault bool `json:"has_default,omitempty"`
}

// ForeignKey is a foreign key from Columns of its table to RefColumns of
// RefTable.
type ForeignKey struct {
	Name       string   `json:"name"`
	Columns    []string `json:"columns"`
	RefTable   string   `json:"ref_table"`
	RefColumns []string `json:"ref_columns"`
	// Definition is PostgreSQL's own text of the constraint, with which
	// an import re-creates a foreign key of a circular pair.
	Definition string `json:"definition,omitempty"`
}

// Sequence is the counter behind a column.
type Sequence struct {
	Column string `json:"column"`
	// Name is the PostgreSQL sequence; "" elsewhere.
	Name string `json:"name,omitempty"`
	// Next is the value the counter would hand out next.
	Next int64 `json:"next"`
	// UsedUp: the counter handed out the last bigint in its direction
	// (the largest, or the smallest for one that counts down), and has
	// no next (Next is that last value then).
	UsedUp bool `json:"used_up,omitempty"`
	// Increment is a PostgreSQL sequence's step, negative for one that
	// counts down. 0 is 1: another engine's counter, or an export written
	// before ferry recorded it.
	Increment int64 `json:"increment,omitempty"`
}

// step is the counter's increment, 1 unless the source recorded another.
func (s Sequence) step() int64 {
	if s.Increment == 0 {
		return 1
	}
	return s.Increment
}

// nextOf is the next value of a PostgreSQL sequence whose last_value,
// is_called and increment are last, called and step: Next and UsedUp of
// a Sequence. Used up is a last+step past the last bigint, which int64
// cannot hold; a next past the sequence's own bound is the target's
// to judge (setval), where that bound may differ.
func nextOf(last int64, called bool, step int64) (int64, bool) {
	switch {
	case !called:
		return last, false
	case step > 0 && last > math.MaxInt64-step, step < 0 && last < math.MinInt64-step:
		return last, true
	}
	return last + step, false
}

// beyond reports whether a is past b in the direction of step: greater
// for a counter that counts up, smaller for one that counts down.
func beyond(step, a, b int64) bool {
	if step < 0 {
		return a < b
	}
	return a > b
}

// pastValue is the value next to v in the direction of step (v+1, or v-1
// for a counter that counts down), and false when v is the last bigint
// that way, with none past it.
func pastValue(step, v int64) (int64, bool) {
	switch {
	case step < 0 && v == math.MinInt64, step > 0 && v == math.MaxInt64:
		return v, false
	case step < 0:
		return v - 1, true
	}
	return v + 1, true
}

// furthest is the furthest of vs in the direction of step.
func furthest(step int64, vs ...int64) int64 {
	out := vs[0]
	for _, v := range vs[1:] {
		if beyond(step, v, out) {
			out = v
		}
	}
	return out
}

// readSequence reads PostgreSQL sequence seq (named as SQL spells it,
// quoted as it must be): the Next, UsedUp and Increment of a Sequence.
func readSequence(ctx context.Context, q querier, seq string) (Sequence, error) {
	var s Sequence
	var last int64
	var called bool
	err := q.QueryRowContext(ctx, `SELECT s.last_value, s.is_called, p.seqincrement FROM `+seq+` s
		JOIN pg_sequence p ON p.seqrelid = $1::regclass`, seq).Scan(&last, &called, &s.Increment)
	if err != nil {
		return s, err
	}
	s.Next, s.UsedUp = nextOf(last, called, s.Increment)
	return s, nil
}

func (t *Table) column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// catalog reads the tables of the database q is connected to (for
// PostgreSQL, of its current schema), with their columns, keys and
// counters; skip names tables to leave out (ferry's own).
func catalog(ctx context.Context, q querier, kind string, skip func(string) bool) ([]*Table, error) {
	var names []string
	var err error
	switch kind {
	case database.Postgres:
		names, err = strs(ctx, q, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`)
	case database.MySQL:
		names, err = strs(ctx, q, `SELECT table_name FROM information_schema.tables
			WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1`)
	case database.SQLite:
		// Ordinary tables only: not virtual tables (FTS indexes, which
		// their content rebuilds) nor their shadow tables.
		names, err = strs(ctx, q, `SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'
			AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY 1`)
	default:
		return nil, fmt.Errorf("transfer: unknown database kind %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out []*Table
	for _, n := range names {
		if skip(n) {
			continue
		}
		t := &Table{Name: n}
		if err := describe(ctx, q, kind, t); err != nil {
			return nil, fmt.Errorf("describe table %s: %w", n, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func describe(ctx context.Context, q querier, kind string, t *Table) error {
	switch kind {
	case database.Postgres:
		return describePostgres(ctx, q, t)
	case database.MySQL:
		return describeMySQL(ctx, q, t)
	default:
		return describeSQLite(ctx, q, t)
	}
}

func describePostgres(ctx context.Context, q querier, t *Table) error {
	rel := `(quote_ident(current_schema()) || '.' || quote_ident($1))::regclass`
	if err := q.QueryRowContext(ctx, `SELECT relkind = 'p' FROM pg_class WHERE oid = `+rel, t.Name).Scan(&t.Partitioned); err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
			a.atthasdef OR a.attidentity <> '',
			COALESCE(pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident($1), a.attname), '')
		FROM pg_attribute a WHERE a.attrelid = `+rel+` AND a.attnum > 0 AND NOT a.attisdropped
			AND a.attgenerated = '' ORDER BY a.attnum`, t.Name)
	if err != nil {
		return err
	}
	var seqs []Sequence
	for rows.Next() {
		var c Column
		var seq string
		if err := rows.Scan(&c.Name, &c.Type, &c.Nullable, &c.HasDefault, &seq); err != nil {
			rows.Close()
			return err
		}
		t.Columns = append(t.Columns, c)
		if seq != "" {
			seqs = append(seqs, Sequence{Column: c.Name, Name: seq})
		}
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	for _, s := range seqs {
		r, err := readSequence(ctx, q, s.Name)
		if err != nil {
			return fmt.Errorf("read sequence %s: %w", s.Name, err)
		}
		s.Next, s.UsedUp, s.Increment = r.Next, r.UsedUp, r.Increment
		t.Sequences = append(t.Sequences, s)
	}
	t.PrimaryKey, err = strs(ctx, q, `SELECT a.attname FROM pg_constraint c
		CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
		WHERE c.conrelid = `+rel+` AND c.contype = 'p' ORDER BY k.n`, t.Name)
	if err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT c.conname, r.relname, pg_get_constraintdef(c.oid),
			(SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
				JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
			(SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, n)
				JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum)
		FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
		WHERE c.conrelid = `+rel+` AND c.contype = 'f' AND c.conparentid = 0 ORDER BY c.conname`, t.Name)
	if err != nil {
		return err
	}
	for rows.Next() {
		var fk ForeignKey
		var cols, refs string
		if err := rows.Scan(&fk.Name, &fk.RefTable, &fk.Definition, &cols, &refs); err != nil {
			rows.Close()
			return err
		}
		fk.Columns, fk.RefColumns = strings.Split(cols, ","), strings.Split(refs, ",")
		t.ForeignKeys = append(t.ForeignKeys, fk)
	}
	return closeRows(rows)
}

func describeMySQL(ctx context.Context, q querier, t *Table) error {
	// MariaDB shows a NULL default as the text NULL (a string default is
	// quoted), MySQL as SQL NULL.
	rows, err := q.QueryContext(ctx, `SELECT column_name, column_type, is_nullable = 'YES', extra, COALESCE(column_default, 'NULL') <> 'NULL'
		FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?
		ORDER BY ordinal_position`, t.Name)
	if err != nil {
		return err
	}
	var auto string
	for rows.Next() {
		var c Column
		var extra string
		if err := rows.Scan(&c.Name, &c.Type, &c.Nullable, &extra, &c.HasDefault); err != nil {
			rows.Close()
			return err
		}
		extra = strings.ToLower(extra)
		if strings.Contains(extra, "virtual generated") || strings.Contains(extra, "stored generated") ||
			strings.Contains(extra, "persistent generated") {
			continue // computed by the database, not data
		}
		if strings.Contains(extra, "auto_increment") {
			auto = c.Name
			c.HasDefault = true
		}
		t.Columns = append(t.Columns, c)
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	if auto != "" {
		var next sql.NullString
		if err := q.QueryRowContext(ctx, `SELECT auto_increment FROM information_schema.tables
			WHERE table_schema = DATABASE() AND table_name = ?`, t.Name).Scan(&next); err != nil {
			return err
		}
		// Past int64 (BIGINT UNSIGNED near its end), InnoDB's own rule
		// (past the largest loaded value) is all there is to carry.
		if n, err := strconv.ParseInt(next.String, 10, 64); err == nil {
			t.Sequences = append(t.Sequences, Sequence{Column: auto, Next: max(n, 1)})
		}
	}
	t.PrimaryKey, err = strs(ctx, q, `SELECT column_name FROM information_schema.key_column_usage
		WHERE table_schema = DATABASE() AND table_name = ? AND constraint_name = 'PRIMARY'
		ORDER BY ordinal_position`, t.Name)
	if err != nil {
		return err
	}
	// A key to another database's table is not the export's to follow
	// (its rows are not exported) nor the import's to check.
	rows, err = q.QueryContext(ctx, `SELECT constraint_name, referenced_table_name, column_name, referenced_column_name
		FROM information_schema.key_column_usage
		WHERE table_schema = DATABASE() AND table_name = ? AND referenced_table_name IS NOT NULL
			AND referenced_table_schema = DATABASE()
		ORDER BY constraint_name, ordinal_position`, t.Name)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name, ref, col, refCol string
		if err := rows.Scan(&name, &ref, &col, &refCol); err != nil {
			rows.Close()
			return err
		}
		if n := len(t.ForeignKeys); n == 0 || t.ForeignKeys[n-1].Name != name {
			t.ForeignKeys = append(t.ForeignKeys, ForeignKey{Name: name, RefTable: ref})
		}
		fk := &t.ForeignKeys[len(t.ForeignKeys)-1]
		fk.Columns, fk.RefColumns = append(fk.Columns, col), append(fk.RefColumns, refCol)
	}
	return closeRows(rows)
}

func describeSQLite(ctx context.Context, q querier, t *Table) error {
	rows, err := q.QueryContext(ctx, `SELECT name, type, "notnull", pk, hidden, dflt_value IS NOT NULL FROM pragma_table_xinfo(?) ORDER BY cid`, t.Name)
	if err != nil {
		return err
	}
	type pkcol struct {
		name string
		n    int
	}
	var pks []pkcol
	for rows.Next() {
		var c Column
		var notNull, pk, hidden int
		if err := rows.Scan(&c.Name, &c.Type, &notNull, &pk, &hidden, &c.HasDefault); err != nil {
			rows.Close()
			return err
		}
		if hidden != 0 {
			continue // generated columns
		}
		c.Nullable = notNull == 0
		t.Columns = append(t.Columns, c)
		if pk > 0 {
			pks = append(pks, pkcol{c.Name, pk})
		}
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	sort.Slice(pks, func(i, j int) bool { return pks[i].n < pks[j].n })
	for _, p := range pks {
		t.PrimaryKey = append(t.PrimaryKey, p.name)
	}
	rows, err = q.QueryContext(ctx, `SELECT id, "table", "from", COALESCE("to", '') FROM pragma_foreign_key_list(?) ORDER BY id, seq`, t.Name)
	if err != nil {
		return err
	}
	last := -1
	for rows.Next() {
		var id int
		var ref, from, to string
		if err := rows.Scan(&id, &ref, &from, &to); err != nil {
			rows.Close()
			return err
		}
		if id != last {
			t.ForeignKeys = append(t.ForeignKeys, ForeignKey{Name: fmt.Sprintf("%s_fk%d", t.Name, id), RefTable: ref})
			last = id
		}
		fk := &t.ForeignKeys[len(t.ForeignKeys)-1]
		fk.Columns, fk.RefColumns = append(fk.Columns, from), append(fk.RefColumns, to)
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	for i := range t.ForeignKeys {
		fk := &t.ForeignKeys[i]
		if fk.RefColumns[0] == "" {
			// REFERENCES parent without columns: the parent's key.
			pk, err := strs(ctx, q, `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, fk.RefTable)
			if err != nil {
				return err
			}
			fk.RefColumns = pk
		}
	}
	if len(t.PrimaryKey) == 1 {
		var seq sql.NullInt64
		err := q.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = ?`, t.Name).Scan(&seq)
		if err == nil && seq.Valid {
			t.Sequences = append(t.Sequences, Sequence{Column: t.PrimaryKey[0], Next: seq.Int64 + 1})
		}
		// No sqlite_sequence (no AUTOINCREMENT table yet) or no row: the
		// rowid is max+1, which the rows themselves carry.
	}
	return nil
}

// schemaSequences reads every sequence of PostgreSQL's current schema,
// but those owned by a column of a table skip leaves out (ferry's own:
// the target keeps its own history's counter).
func schemaSequences(ctx context.Context, q querier, skip func(string) bool) ([]Sequence, error) {
	rows, err := q.QueryContext(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relname, COALESCE(t.relname, '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
		LEFT JOIN pg_class t ON t.oid = d.refobjid
		WHERE n.nspname = current_schema() AND c.relkind = 'S' ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	var names, bare []string
	for rows.Next() {
		var name, relname, owner string
		if err := rows.Scan(&name, &relname, &owner); err != nil {
			rows.Close()
			return nil, err
		}
		if owner == "" || !skip(owner) {
			names, bare = append(names, name), append(bare, relname)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	var out []Sequence
	for i, name := range names {
		s, err := readSequence(ctx, q, name)
		if err != nil {
			return nil, fmt.Errorf("read sequence %s: %w", name, err)
		}
		// The name without the schema (the target's may differ), and
		// unquoted: the import quotes it.
		s.Name = bare[i]
		out = append(out, s)
	}
	return out, nil
}

func strs(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, s)
	}
	return out, closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}

// pgFrom is how a PostgreSQL query names t's own rows: ONLY t, so that
// the rows of tables inheriting from it stay theirs; a partitioned table
// has no rows but its partitions'.
func pgFrom(t *Table) string {
	if t.Partitioned {
		return quoteDouble(t.Name)
	}
	return "ONLY " + quoteDouble(t.Name)
}

// quoteDouble quotes an identifier the SQL standard way (PostgreSQL, SQLite).
func quoteDouble(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func quoteMySQL(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func quoteIdent(kind, name string) string {
	if kind == database.MySQL {
		return quoteMySQL(name)
	}
	return quoteDouble(name) // PostgreSQL quotes the same way
}

// loadOrder sorts tables so that every table comes after the tables its
// foreign keys reference, and groups the tables of a cycle (a circular
// pair, or longer) together, in one step. A self-reference is no cycle.
func loadOrder(tables []*Table) [][]*Table {
	byName := make(map[string]*Table, len(tables))
	for _, t := range tables {
		byName[t.Name] = t
	}
	// Tarjan's strongly connected components; it emits a component after
	// every component it references, which is the load order.
	index := map[string]int{}
	low := map[string]int{}
	on := map[string]bool{}
	var stack []*Table
	var out [][]*Table
	next := 0
	var visit func(t *Table)
	visit = func(t *Table) {
		index[t.Name], low[t.Name] = next, next
		next++
		stack = append(stack, t)
		on[t.Name] = true
		for _, fk := range t.ForeignKeys {
			r, ok := byName[fk.RefTable]
			if !ok || r == t {
				continue
			}
			if _, seen := index[r.Name]; !seen {
				visit(r)
				low[t.Name] = min(low[t.Name], low[r.Name])
			} else if on[r.Name] {
				low[t.Name] = min(low[t.Name], index[r.Name])
			}
		}
		if low[t.Name] == index[t.Name] {
			var comp []*Table
			for {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				on[top.Name] = false
				comp = append(comp, top)
				if top == t {
					break
				}
			}
			sort.Slice(comp, func(i, j int) bool { return comp[i].Name < comp[j].Name })
			out = append(out, comp)
		}
	}
	for _, t := range tables {
		if _, seen := index[t.Name]; !seen {
			visit(t)
		}
	}
	return out
}
