package transfer

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferrydb/ferry/database"
)

// Large values. A row is read whole by the database driver, so a 100 MB
// value would sit in memory once as the driver read it and again as its
// encoded line. Instead, the export's query reads a text or binary value
// longer than 1 MiB as NULL and flags its row (and a row whose such values
// add up to more than 4 MiB); the flagged rows are read again after the
// others, in the same snapshot, one at a time: the short values as usual
// and each long one in slices (substring by relation and ctid on
// PostgreSQL, SUBSTRING by primary key on MySQL), encoded and written as
// they come, with the row's sha256 taken as it goes. A row's line is the
// same whether it was read whole or in slices (but for long text that is
// not UTF-8, see writeRow). The import's verification reads the loaded
// table the same way.
//
// SQLite reads a large value whole: the database is a file on the same
// machine, and the driver copies what it returns anyway.

// Default sizes, in bytes.
const (
	// defaultLargeRow: a row whose text and binary values add up to more
	// is read again, its long values in slices.
	defaultLargeRow = 4 << 20
	// inlineBytes: a value longer than this is always read in slices
	// (and one up to it, in a row read again, with the row).
	inlineBytes = 1 << 20
	// pgSliceBytes: one slice on PostgreSQL, which reads a slice of an
	// uncompressed value without reading the rest.
	pgSliceBytes = 3 << 20
	// mysqlSliceBytes: one slice on MySQL, where InnoDB reads the whole
	// off-page value for every slice: fewer, larger slices.
	mysqlSliceBytes = 16 << 20
	// encodePart: the part of a slice encoded at a time; a multiple of 3.
	encodePart = 255 << 10
)

// slicer reads the large values of one table.
type slicer struct {
	kind   string
	t      *Table
	cols   []int // the text and binary columns
	pk     []int // MySQL: the primary key's columns, which find a row
	above  int64 // a row whose cols add up to more is read again
	inline int64 // a value longer than this is read in slices
	bytes  int64 // one slice (about, for text)

	// rawText: the session's text is not UTF-8 (a PostgreSQL database and
	// client encoding that are not): long text is written as {"s":...}.
	rawText *bool
	// rels names the relations of PostgreSQL row addresses' oids.
	rels map[string]string
}

// newSlicer returns the slicer of table t, or nil when t has no column
// that can hold a large value or its rows cannot be found again (a MySQL
// table without a primary key, or with a floating-point one; SQLite).
// above <= 0 takes the default.
func newSlicer(kind string, t *Table, above int64) *slicer {
	if kind == database.SQLite || (kind == database.MySQL && len(t.PrimaryKey) == 0) {
		return nil
	}
	s := &slicer{kind: kind, t: t, above: above, inline: inlineBytes, bytes: pgSliceBytes, rels: map[string]string{}}
	if kind == database.MySQL {
		s.bytes = mysqlSliceBytes
	}
	if s.above <= 0 {
		s.above = defaultLargeRow
	}
	if s.above < s.inline {
		// Tests: everything past the threshold is sliced, in small slices.
		s.inline, s.bytes = s.above, s.above
	}
	// A column whose type bounds it to inline bytes or fewer needs no
	// length test in the query (the test costs MariaDB a third of its
	// time on a table of short text); what such columns can add to a row
	// is taken off the row threshold for the others.
	var bounded []int
	var boundedBytes int64
	for i, c := range t.Columns {
		if !largeType(kind, c.Type) {
			continue
		}
		if n := maxBytes(kind, c.Type); n >= 0 && n <= s.inline {
			bounded = append(bounded, i)
			boundedBytes += n
			continue
		}
		s.cols = append(s.cols, i)
	}
	switch {
	case boundedBytes <= s.above && len(s.cols) == 0:
		return nil // no row can reach either threshold
	case boundedBytes <= s.above:
		s.above -= boundedBytes
	default:
		// Short columns that could add up past the threshold: test them
		// all, as any other.
		s.cols = append(s.cols, bounded...)
		slices.Sort(s.cols)
	}
	for _, k := range t.PrimaryKey {
		for i, c := range t.Columns {
			if c.Name != k {
				continue
			}
			if typ := strings.ToLower(c.Type); strings.HasPrefix(typ, "float") || strings.HasPrefix(typ, "double") || strings.HasPrefix(typ, "real") {
				return nil // a key read as text may not find its row again
			}
			s.pk = append(s.pk, i)
		}
	}
	if len(s.cols) == 0 || len(s.pk) != len(t.PrimaryKey) {
		return nil
	}
	return s
}

// largeType reports whether a column type can hold a value large enough
// to slice: text and binary, whose slices concatenate into the value.
func largeType(kind, typ string) bool {
	t := strings.ToLower(typ)
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	switch kind {
	case database.Postgres:
		switch t {
		case "bytea", "text", "character varying", "varchar", "character", "char":
			return true
		}
	case database.MySQL:
		return strings.HasSuffix(t, "text") || strings.HasSuffix(t, "blob") ||
			t == "varchar" || t == "varbinary" || t == "char" || t == "binary"
	}
	return false
}

// maxBytes is the most bytes a value of a text or binary column type can
// hold, or -1 when its type does not bound it: a character is taken as 4
// bytes, the longest in UTF-8 and MySQL's utf8mb4.
func maxBytes(kind, typ string) int64 {
	t := strings.ToLower(strings.TrimSpace(typ))
	n := int64(-1)
	if i := strings.IndexByte(t, '('); i >= 0 {
		j := strings.IndexByte(t[i:], ')')
		if j < 0 || strings.TrimSpace(t[i+j+1:]) != "" {
			return -1 // an array of them (varchar(20)[]), or a type ferry does not know
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(t[i+1:i+j]), 10, 64); err == nil && v >= 0 {
			n = v
		}
		t = strings.TrimSpace(t[:i])
	}
	switch kind {
	case database.Postgres:
		switch t {
		case "character varying", "varchar", "character", "char":
			if n >= 0 {
				return 4 * n
			}
		}
	case database.MySQL:
		switch t {
		case "tinytext", "tinyblob":
			return 255
		case "text", "blob":
			return 65535
		case "varbinary", "binary":
			return n
		case "varchar", "char":
			if n >= 0 {
				return 4 * n
			}
		}
	}
	return -1
}

// binary reports whether column i holds bytes (sliced by bytes, written
// as base64) rather than text (sliced by characters).
func (s *slicer) binary(i int) bool {
	typ := s.t.Columns[i].Type
	if s.kind == database.Postgres {
		return typ == "bytea"
	}
	return mysqlBinary(typ)
}

func (s *slicer) sliced(i int) bool {
	for _, c := range s.cols {
		if c == i {
			return true
		}
	}
	return false
}

// length is the SQL of column i's length in bytes (in the column's
// character set, on MySQL).
func (s *slicer) length(i int) string {
	q := quoteIdent(s.kind, s.t.Columns[i].Name)
	switch {
	case s.kind == database.MySQL:
		return "LENGTH(" + q + ")"
	case s.binary(i):
		return "octet_length(" + q + ")"
	}
	// As text, as it is read: character(n) without its padding.
	return "octet_length(" + q + "::text)"
}

// chars is the SQL of column i's length in characters (bytes for binary).
func (s *slicer) chars(i int) string {
	if s.binary(i) {
		return s.length(i)
	}
	q := quoteIdent(s.kind, s.t.Columns[i].Name)
	if s.kind == database.MySQL {
		return "CHAR_LENGTH(" + q + ")"
	}
	return "char_length(" + q + "::text)"
}

// capped is column expression expr of column i, NULL when its value is
// longer than inline bytes (the row is then flagged).
func (s *slicer) capped(i int, expr string) string {
	return fmt.Sprintf("CASE WHEN %s > %d THEN NULL ELSE %s END", s.length(i), s.inline, expr)
}

// flag is the SQL of the value that marks a row to read again: one with
// a value longer than inline or values adding up to more than above. It
// is the row's address on PostgreSQL (oid and ctid), 1 on MySQL (whose
// rows are found by primary key); NULL for the other rows.
func (s *slicer) flag() string {
	lens := []string{"0"}
	for _, i := range s.cols {
		lens = append(lens, "COALESCE("+s.length(i)+", 0)")
	}
	cond := fmt.Sprintf("GREATEST(%s) > %d OR %s > %d", strings.Join(lens, ", "), s.inline, strings.Join(lens[1:], " + "), s.above)
	if s.kind == database.Postgres {
		// The table's oid too: a partitioned table's partitions each
		// have their own ctids.
		return "CASE WHEN " + cond + " THEN tableoid::oid::text || ' ' || ctid::text END"
	}
	return "CASE WHEN " + cond + " THEN '1' END"
}

// mayFlag reports whether a read of row, as the export holds it, could
// flag it to read it again, in slices (see flag): its bytes count as
// they are, and its text four bytes to each exported byte of UTF-8, the
// most LENGTH counts in the column's character set (utf32's four bytes to
// an ASCII character).
func (s *slicer) mayFlag(row []value) bool {
	var sum int64
	for _, i := range s.cols {
		n := int64(4*len(row[i].s) + len(row[i].b))
		if n > s.inline {
			return true
		}
		sum += n
	}
	return sum > s.above
}

// rowKey is what finds a row to read again: its relation and ctid, or
// its primary key's values (copied: the row's values are the driver's
// buffer).
type rowKey struct {
	oid, ctid string
	pk        []any
}

func (s *slicer) key(flag string, row []any) rowKey {
	if s.kind == database.Postgres {
		oid, ctid, _ := strings.Cut(flag, " ")
		if strings.Trim(oid, "0123456789") != "" || strings.Trim(ctid, "0123456789(),") != "" {
			panic("transfer: row address " + flag) // the server's, never anything else
		}
		return rowKey{oid: oid, ctid: ctid}
	}
	k := rowKey{pk: make([]any, len(s.pk))}
	for j, i := range s.pk {
		switch v := row[i].(type) {
		case rawText:
			k.pk[j] = string(v)
		case []byte:
			k.pk[j] = append([]byte(nil), v...)
		default:
			k.pk[j] = v
		}
	}
	return k
}

// where is the condition that finds row k, with its values written in
// (a MySQL query without arguments is read in the text protocol, as the
// export's query is, so that a value reads the same either way).
func (s *slicer) where(k rowKey) string {
	if s.kind == database.Postgres {
		return "ctid = '" + k.ctid + "'::tid"
	}
	var c []string
	for j, i := range s.pk {
		col := s.t.Columns[i]
		var lit string
		switch v := k.pk[j].(type) {
		case int64:
			lit = strconv.FormatInt(v, 10)
		case []byte:
			lit = "X'" + hex.EncodeToString(v) + "'"
		case string:
			if decimalText(v) {
				// A decimal literal: compared exactly (a string would be
				// compared with a DECIMAL column as a double).
				lit = v
				break
			}
			// The column's own collation compares: the key is unique under it.
			lit = "_utf8mb4 X'" + hex.EncodeToString([]byte(v)) + "'"
		default:
			lit = "NULL" // a key is never NULL
		}
		c = append(c, quoteMySQL(col.Name)+" = "+lit)
	}
	return strings.Join(c, " AND ")
}

// decimalText reports whether v is a plain decimal number: -12.340.
func decimalText(v string) bool {
	v = strings.TrimPrefix(v, "-")
	whole, frac, _ := strings.Cut(v, ".")
	digits := func(s string) bool { return strings.Trim(s, "0123456789") == "" }
	return whole != "" && digits(whole) && digits(frac)
}

// from is the relation that holds row k: on PostgreSQL the partition or
// inheriting table itself, so that its ctid is looked up in it alone.
func (s *slicer) from(ctx context.Context, q querier, k rowKey) (string, error) {
	if s.kind != database.Postgres {
		return quoteMySQL(s.t.Name), nil
	}
	if rel, ok := s.rels[k.oid]; ok {
		return rel, nil
	}
	var rel string
	if err := q.QueryRowContext(ctx, "SELECT "+k.oid+"::oid::regclass::text").Scan(&rel); err != nil {
		return "", err
	}
	rel = "ONLY " + rel // quoted and qualified as needed by regclass
	s.rels[k.oid] = rel
	return rel, nil
}

// textIsRaw reports whether the session's text may not be UTF-8: a
// PostgreSQL client encoding other than UTF8 hands over the database's
// own bytes.
func (s *slicer) textIsRaw(ctx context.Context, q querier) (bool, error) {
	if s.rawText == nil {
		raw := false
		if s.kind == database.Postgres {
			var enc string
			if err := q.QueryRowContext(ctx, "SHOW client_encoding").Scan(&enc); err != nil {
				return false, err
			}
			raw = !strings.EqualFold(enc, "UTF8") && !strings.EqualFold(enc, "UTF-8")
		}
		s.rawText = &raw
	}
	return *s.rawText, nil
}

// writeRow writes row k's line, without its newline, to emit (nil: only
// its checksum is wanted) in pieces, each valid only during the call, and
// returns the line's sha256. Its values up to inline are read with the
// row, longer ones in slices. Text that is not UTF-8 (a database in
// another encoding) is written as {"s":...} when it is long, as a whole
// read writes it when it is not valid UTF-8: the verification reads the
// loaded rows the same way.
func (s *slicer) writeRow(ctx context.Context, q querier, k rowKey, emit func([]byte) error) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	h := sha256.New()
	out := func(b []byte) error {
		h.Write(b)
		if emit == nil {
			return nil
		}
		return emit(b)
	}
	raw, err := s.textIsRaw(ctx, q)
	if err != nil {
		return sum, err
	}
	from, err := s.from(ctx, q, k)
	if err != nil {
		return sum, fmt.Errorf("find the relation of a row with large values: %w", err)
	}
	// The row, its long values as NULL, and the length of each.
	var sel strings.Builder
	sel.WriteString("SELECT ")
	for i, c := range s.t.Columns {
		if i > 0 {
			sel.WriteString(", ")
		}
		e := columnExpr(s.kind, c, hasTextTimes(q))
		if s.sliced(i) {
			e = s.capped(i, e)
		}
		sel.WriteString(e)
	}
	for _, i := range s.cols {
		sel.WriteString(", " + s.length(i) + ", " + s.chars(i))
	}
	sel.WriteString(" FROM " + from + " WHERE " + s.where(k))
	r, err := newRowReader(ctx, q, s.kind, s.t, sel.String(), 2*len(s.cols))
	if err != nil {
		return sum, err
	}
	ok, err := r.next()
	if err == nil && !ok {
		err = fmt.Errorf("a row with large values is not found again by %s", s.where(k))
	}
	if err != nil {
		r.close()
		return sum, err
	}
	row := append([]any(nil), r.values()...)
	for i, v := range row {
		// Copied: the reader's buffers go with it.
		switch x := v.(type) {
		case rawText:
			row[i] = string(x)
		case []byte:
			row[i] = append([]byte(nil), x...)
		}
	}
	type length struct{ bytes, chars int64 }
	lengths := make(map[int]length, len(s.cols))
	for j, i := range s.cols {
		b, ok := asInt(r.extra[2*j])
		c, _ := asInt(r.extra[2*j+1])
		if ok && b > s.inline {
			lengths[i] = length{b, c}
		}
	}
	// One row, or the key found another too.
	if more, err := r.next(); more || err != nil {
		r.close()
		if err == nil {
			err = fmt.Errorf("more than one row found by %s", s.where(k))
		}
		return sum, err
	}
	if err := r.close(); err != nil {
		return sum, err
	}
	var buf []byte
	buf = append(buf, '[')
	for i, v := range row {
		if i > 0 {
			buf = append(buf, ',')
		}
		n, long := lengths[i]
		if !long {
			buf = appendValue(buf, v)
			continue
		}
		b64 := s.binary(i) || raw
		switch {
		case s.binary(i):
			buf = append(buf, `{"b":"`...)
		case raw:
			buf = append(buf, `{"s":"`...)
		default:
			buf = append(buf, '"')
		}
		if err := out(buf); err != nil {
			return sum, err
		}
		var enc base64Stream
		put := func(p []byte) error {
			buf = buf[:0]
			if b64 {
				buf = enc.append(buf, p)
			} else {
				buf = appendStringBody(buf, rawText(p))
			}
			return out(buf)
		}
		if err := s.slices(ctx, q, from, k, i, n.bytes, n.chars, func(b []byte) error {
			if !b64 && !utf8.Valid(b) {
				return errors.New("a slice of text is not valid UTF-8")
			}
			// Encoded a part at a time: the slice is not held twice.
			for len(b) > 0 {
				part := b[:min(len(b), encodePart)]
				b = b[len(part):]
				if err := put(part); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return sum, err
		}
		buf = buf[:0]
		if b64 {
			buf = append(enc.end(buf), `"}`...)
		} else {
			buf = append(buf, '"')
		}
	}
	buf = append(buf, ']')
	if err := out(buf); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}

// base64Stream encodes bytes given in pieces as one base64 text.
type base64Stream struct {
	carry [2]byte
	n     int
}

func (e *base64Stream) append(buf, p []byte) []byte {
	if e.n > 0 {
		need := 3 - e.n
		if len(p) < need {
			e.n += copy(e.carry[e.n:], p)
			return buf
		}
		var three [3]byte
		copy(three[:], e.carry[:e.n])
		copy(three[e.n:], p[:need])
		buf = base64.StdEncoding.AppendEncode(buf, three[:])
		p, e.n = p[need:], 0
	}
	whole := len(p) / 3 * 3
	buf = base64.StdEncoding.AppendEncode(buf, p[:whole])
	e.n = copy(e.carry[:], p[whole:])
	return buf
}

// end appends the rest, padded.
func (e *base64Stream) end(buf []byte) []byte {
	buf = base64.StdEncoding.AppendEncode(buf, e.carry[:e.n])
	e.n = 0
	return buf
}

// slices calls fn with column i of row k, n bytes (in the column's
// character set) and chars characters long, slice by slice: bytes for
// binary, characters for text.
func (s *slicer) slices(ctx context.Context, q querier, from string, k rowKey, i int, n, chars int64, fn func([]byte) error) error {
	name := s.t.Columns[i].Name
	col := quoteIdent(s.kind, name)
	step, total := s.bytes, n
	if !s.binary(i) {
		// About s.bytes at the value's mean bytes a character (a slice of
		// four-byte characters in a value of one-byte ones is at most
		// four times as long).
		step, total = max(1, s.bytes*chars/max(n, 1)), chars
		if s.kind == database.Postgres {
			col += "::text"
		}
	}
	for pos := int64(1); pos <= total; pos += step {
		rows, err := q.QueryContext(ctx, fmt.Sprintf("SELECT substring(%s, %d, %d) FROM %s WHERE %s", col, pos, step, from, s.where(k)))
		if err != nil {
			return fmt.Errorf("column %s: read a large value: %w", name, err)
		}
		var b sql.RawBytes
		if rows.Next() {
			err = rows.Scan(&b)
		} else if err = rows.Err(); err == nil {
			err = fmt.Errorf("the row is not found again by %s", s.where(k))
		}
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("the value ends before position %d of %d", pos, total)
		}
		if err == nil {
			err = fn(b)
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("column %s: read a large value: %w", name, err)
		}
	}
	return nil
}
