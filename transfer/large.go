package transfer

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferrydb/ferry/database"
)

// Large values. A row is read whole by the database driver, so a 100 MB
// value would sit in memory once as the driver read it and again as its
// encoded line. Instead, the export's query reads a value longer than
// slicer.above as NULL and flags the row; the flagged rows are read
// after the others, in the same snapshot, one at a time: the short values
// as usual and each long one in slices (substring by ctid on PostgreSQL,
// SUBSTRING by primary key on MySQL), encoded and written as they come,
// with the row's sha256 taken as it goes. A row's line is the same
// whether it was read whole or in slices. The import's verification
// reads the loaded table the same way.
//
// SQLite reads a large value whole: the database is a file on the same
// machine, and the driver copies what it returns anyway.

// Default sizes, in bytes.
const (
	// defaultLargeRow: a row whose text and binary values add up to more
	// is read in slices.
	defaultLargeRow = 4 << 20
	// sliceBytes: one slice of a binary value; a multiple of 3, so that
	// the base64 of the slices, one after another, is the value's.
	sliceBytes = 3 << 20
	// encodePart: the part of a slice encoded at a time; a multiple of 3.
	encodePart = 255 << 10
	// inlineBytes: within a sliced row, a value up to this long is read
	// with the row.
	inlineBytes = 1 << 20
)

// slicer reads the large values of one table.
type slicer struct {
	kind  string
	t     *Table
	cols  []int // the text and binary columns
	pk    []int // MySQL: the primary key's columns, which find a row
	above int64 // a row whose cols add up to more is sliced
	// Slice size, and the size up to which a value of a sliced row is
	// read with the row (tests make them small).
	bytes, inline int64
}

// newSlicer returns the slicer of table t, or nil when t has no column
// that can hold a large value or its rows cannot be found again (a MySQL
// table without a primary key; SQLite). above <= 0 takes the default.
func newSlicer(kind string, t *Table, above int64) *slicer {
	if kind == database.SQLite || (kind == database.MySQL && len(t.PrimaryKey) == 0) {
		return nil
	}
	s := &slicer{kind: kind, t: t, above: above, bytes: sliceBytes, inline: inlineBytes}
	if s.above <= 0 {
		s.above = defaultLargeRow
	}
	if s.above < s.inline {
		// Tests: everything past the threshold is sliced, in small slices.
		s.inline = s.above
		s.bytes = max(3, s.above/3*3)
	}
	for i, c := range t.Columns {
		if largeType(kind, c.Type) {
			s.cols = append(s.cols, i)
		}
	}
	for _, k := range t.PrimaryKey {
		for i, c := range t.Columns {
			if c.Name == k {
				s.pk = append(s.pk, i)
			}
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

// length is the SQL of column i's length in bytes.
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
// longer than n bytes.
func (s *slicer) capped(i int, expr string, n int64) string {
	return fmt.Sprintf("CASE WHEN %s > %d THEN NULL ELSE %s END", s.length(i), n, expr)
}

// flag is the SQL of the value that marks a row to slice: its ctid on
// PostgreSQL, 1 on MySQL (whose rows are found by primary key); NULL for
// the other rows.
func (s *slicer) flag() string {
	var sum []string
	for _, i := range s.cols {
		sum = append(sum, "COALESCE("+s.length(i)+", 0)")
	}
	cond := fmt.Sprintf("%s > %d", strings.Join(sum, " + "), s.above)
	if s.kind == database.Postgres {
		// The table's oid too: a partitioned table's partitions each
		// have their own ctids.
		return "CASE WHEN " + cond + " THEN tableoid::oid::text || ' ' || ctid::text END"
	}
	return "CASE WHEN " + cond + " THEN '1' END"
}

// rowKey is what finds a row to slice again: its ctid, or its primary
// key's values (copied: the row's values are the driver's buffer).
type rowKey struct {
	ctid string
	pk   []any
}

func (s *slicer) key(flag string, row []any) rowKey {
	if s.kind == database.Postgres {
		if strings.Trim(flag, "0123456789(), ") != "" {
			panic("transfer: row address " + flag) // the server's, never anything else
		}
		return rowKey{ctid: flag}
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
		// "oid (block,offset)", from the server
		oid, ctid, _ := strings.Cut(k.ctid, " ")
		return "tableoid = " + oid + " AND ctid = '" + ctid + "'::tid"
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

func (s *slicer) from() string {
	if s.kind == database.Postgres {
		return pgFrom(s.t)
	}
	return quoteMySQL(s.t.Name)
}

// writeRow writes row k's line, without its newline, to emit (nil: only
// its checksum is wanted) in pieces, each valid only during the call, and
// returns the line's sha256.
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
	// The row, its long values as NULL, and the length of each.
	var sel strings.Builder
	sel.WriteString("SELECT ")
	for i, c := range s.t.Columns {
		if i > 0 {
			sel.WriteString(", ")
		}
		e := columnExpr(s.kind, c)
		if s.sliced(i) {
			e = s.capped(i, e, s.inline)
		}
		sel.WriteString(e)
	}
	for _, i := range s.cols {
		sel.WriteString(", " + s.length(i) + ", " + s.chars(i))
	}
	sel.WriteString(" FROM " + s.from() + " WHERE " + s.where(k))
	r, err := newRowReader(ctx, q, s.kind, s.t, sel.String(), 2*len(s.cols))
	if err != nil {
		return sum, err
	}
	ok, err := r.next()
	if err == nil && !ok {
		err = fmt.Errorf("table %s: a row with a large value is gone from the snapshot", s.t.Name)
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
			lengths[i] = length{b, max(c, 1)}
		}
	}
	// One row, or the key found another too.
	if more, err := r.next(); more || err != nil {
		r.close()
		if err == nil {
			err = fmt.Errorf("table %s: more than one row found by %s", s.t.Name, s.where(k))
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
		if s.binary(i) {
			buf = append(buf, `{"b":"`...)
		} else {
			buf = append(buf, '"')
		}
		if err := out(buf); err != nil {
			return sum, err
		}
		buf = buf[:0]
		if err := s.slices(ctx, q, k, i, n.bytes, n.chars, func(b []byte) error {
			if !s.binary(i) && !utf8.Valid(b) {
				return fmt.Errorf("table %s column %s: a large value is not valid UTF-8", s.t.Name, s.t.Columns[i].Name)
			}
			// Encoded a part at a time: the slice is not held twice.
			for len(b) > 0 {
				part := b[:min(len(b), encodePart)]
				b = b[len(part):]
				if s.binary(i) {
					buf = base64.StdEncoding.AppendEncode(buf[:0], part)
				} else {
					buf = appendStringBody(buf[:0], rawText(part))
				}
				if err := out(buf); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return sum, err
		}
		buf = buf[:0]
		if s.binary(i) {
			buf = append(buf, `"}`...)
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

// slices calls fn with column i of row k, n bytes and chars characters
// long, slice by slice.
func (s *slicer) slices(ctx context.Context, q querier, k rowKey, i int, n, chars int64, fn func([]byte) error) error {
	col := quoteIdent(s.kind, s.t.Columns[i].Name)
	step := s.bytes
	if !s.binary(i) {
		// Text is sliced by characters: about s.bytes at the value's
		// mean bytes a character (a slice of four-byte characters in a
		// value of one-byte ones is at most four times as long).
		step = max(1, s.bytes*chars/n)
	}
	if s.kind == database.Postgres && !s.binary(i) {
		col += "::text"
	}
	var done int64 // bytes
	for pos := int64(1); done < n; pos += step {
		rows, err := q.QueryContext(ctx, fmt.Sprintf("SELECT substring(%s, %d, %d) FROM %s WHERE %s", col, pos, step, s.from(), s.where(k)))
		if err != nil {
			return err
		}
		var b sql.RawBytes
		if rows.Next() {
			err = rows.Scan(&b)
		} else if err = rows.Err(); err == nil {
			err = errors.New("the row is gone from the snapshot")
		}
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("the value ends at %d bytes, not %d", done, n)
		}
		if err == nil {
			done += int64(len(b))
			err = fn(b)
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("table %s column %s: read a large value: %w", s.t.Name, s.t.Columns[i].Name, err)
		}
	}
	return nil
}
