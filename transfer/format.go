package transfer

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// The row format. A chunk is compressed JSON Lines (S2, or gzip: see
// Manifest.Compression): one JSON array per row, one element per column
// of the manifest's table, in its order.
// Each value says what it is, so that nothing depends on guessing:
//
//	null              SQL NULL (never confused with "", which is "")
//	"text"            text, and every type whose exact form is its text:
//	                  numeric/decimal ("12.3400", every digit kept),
//	                  timestamps ("2026-11-29 17:00:00.123456+00"),
//	                  dates, times, intervals, uuid, JSON (its text, as
//	                  stored), enums; any Unicode, newlines included
//	12                an integer (64-bit, written exactly)
//	1.5, 1e+300       a floating-point number, shortest exact form; it
//	                  always has a "." or an exponent, so 1.0 stays a float
//	                  (SQLite's; PostgreSQL and MySQL floats come as their
//	                  server's text, "1.5", "1e+300", "NaN")
//	true, false       a boolean
//	{"b":"AAEC"}      bytes (base64): bytea, BLOB, VARBINARY
//	{"s":"/wA="}      text that is not valid UTF-8 (SQLite keeps what it is
//	                  given; JSON strings cannot carry it), as base64
//	{"f":"NaN"}       a float JSON has no number for: NaN, Infinity, -Infinity
//
// Why this format: it keeps NULL and "" apart (CSV does not), carries
// binary and invalid UTF-8 without loss, never rounds a decimal or a
// float, and stays readable with s2d -c (or zcat) and jq; each engine
// writes its values' exact text, and each loader gives the text back to
// the same kind of column, where the database parses it as it printed it.

// Value kinds of the format, as decoded.
const (
	kNull = iota
	kText
	kInt
	kFloat
	kBool
	kBytes
)

// value is one decoded value.
type value struct {
	kind int
	s    string // text, and the exact digits of an int or float
	b    []byte
	t    bool
	// r, in a row read as it streams (see streamRow), is a text or
	// binary value's decoded bytes, in place of s or b.
	r io.Reader
}

// appendValue appends v's encoding to buf. v is one of nil, string,
// []byte, int64, float64, bool (what the readers produce).
func appendValue(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...)
	case rawText:
		return appendRawText(buf, x)
	case string:
		if !utf8.ValidString(x) {
			// Text that is not UTF-8 (SQLite stores what it is given):
			// its bytes, still text.
			buf = append(buf, `{"s":"`...)
			buf = base64.StdEncoding.AppendEncode(buf, []byte(x))
			return append(buf, `"}`...)
		}
		return appendString(buf, x)
	case []byte:
		return appendBytes(buf, x)
	case int64:
		return strconv.AppendInt(buf, x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return append(buf, `{"f":"NaN"}`...)
		case math.IsInf(x, 1):
			return append(buf, `{"f":"Infinity"}`...)
		case math.IsInf(x, -1):
			return append(buf, `{"f":"-Infinity"}`...)
		}
		start := len(buf)
		buf = strconv.AppendFloat(buf, x, 'g', -1, 64)
		if !bytes.ContainsAny(buf[start:], ".eE") {
			buf = append(buf, ".0"...)
		}
		return buf
	case bool:
		return strconv.AppendBool(buf, x)
	}
	panic(fmt.Sprintf("transfer: value of type %T", v))
}

// appendRawText appends text as the driver's buffer holds it.
func appendRawText(buf, b []byte) []byte {
	if !utf8.Valid(b) {
		buf = append(buf, `{"s":"`...)
		buf = base64.StdEncoding.AppendEncode(buf, b)
		return append(buf, `"}`...)
	}
	return appendString(buf, rawText(b))
}

func appendBytes(buf, b []byte) []byte {
	buf = append(buf, `{"b":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, b)
	return append(buf, `"}`...)
}

// appendString appends s as a JSON string. s is valid UTF-8.
// rawText is text as the driver's buffer holds it, valid until the next
// row is read: encoded as a string, without a copy.
type rawText []byte

func appendString[S string | rawText](buf []byte, s S) []byte {
	buf = append(buf, '"')
	buf = appendStringBody(buf, s)
	return append(buf, '"')
}

// appendStringBody is appendString without the quotes: the bodies of
// the parts of a string, one after another, are the string's.
func appendStringBody[S string | rawText](buf []byte, s S) []byte {
	const hexd = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		}
		start = i + 1
	}
	return append(buf, s[start:]...)
}

// appendRow appends one row and its newline.
func appendRow(buf []byte, row []any) []byte {
	buf = append(buf, '[')
	for i, v := range row {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendValue(buf, v)
	}
	return append(buf, ']', '\n')
}

// notUTF8 is what is wrong with a row holding bytes that are not UTF-8
// outside {"s": ...}: encoding/json would turn them into U+FFFD.
const notUTF8 = `text that is not UTF-8 (ferry writes such text as {"s": base64})`

// errFormat is wrapped by decoding errors.
var errFormat = errors.New("malformed row")

// decodeRow decodes one line (without its newline) into ncol values.
func decodeRow(line []byte, ncol int) ([]value, error) {
	if out, ok := decodeRowFast(line, ncol); ok {
		return out, nil
	}
	return decodeRowJSON(line, ncol)
}

// decodeRowFast decodes a line as ferry writes it (no spaces, strings
// without escapes, valid UTF-8) without encoding/json, which is most of an
// import's CPU otherwise. Anything else, well-formed or not, is left to
// decodeRowJSON (ok false), so both accept exactly the same lines.
func decodeRowFast(line []byte, ncol int) ([]value, bool) {
	if ncol < 0 || len(line) < 2 || line[0] != '[' || line[len(line)-1] != ']' {
		return nil, false
	}
	out := make([]value, 0, min(ncol, len(line)))
	i := 1
	if line[i] == ']' {
		return out, ncol == 0 && i == len(line)-1
	}
	for {
		v, n, ok := fastValue(line[i:])
		if !ok {
			return nil, false
		}
		out = append(out, v)
		i += n
		if i >= len(line) {
			return nil, false
		}
		switch line[i] {
		case ',':
			i++
		case ']':
			return out, i == len(line)-1 && len(out) == ncol
		default:
			return nil, false
		}
	}
}

// fastValue decodes the value at the start of b and returns its length.
func fastValue(b []byte) (value, int, bool) {
	if len(b) == 0 {
		return value{}, 0, false
	}
	switch c := b[0]; {
	case c == 'n':
		return value{kind: kNull}, 4, bytes.HasPrefix(b, []byte("null"))
	case c == 't':
		return value{kind: kBool, t: true}, 4, bytes.HasPrefix(b, []byte("true"))
	case c == 'f':
		return value{kind: kBool}, 5, bytes.HasPrefix(b, []byte("false"))
	case c == '"':
		s, n, ok := fastString(b)
		return value{kind: kText, s: s}, n, ok
	case c == '{':
		// {"b":"..."}, {"s":"..."} or {"f":"..."}
		if len(b) < 7 || b[1] != '"' || b[3] != '"' || b[4] != ':' || b[5] != '"' {
			return value{}, 0, false
		}
		n, ok := fastStringLen(b[5:])
		if !ok || 5+n >= len(b) || b[5+n] != '}' {
			return value{}, 0, false
		}
		inner := b[6 : 5+n-1] // between the quotes, not copied
		n += 6
		switch b[2] {
		case 'b', 's':
			// Straight from the line: a large value is not copied into a
			// string first.
			raw := make([]byte, base64.StdEncoding.DecodedLen(len(inner)))
			k, err := base64.StdEncoding.Decode(raw, inner)
			if err != nil {
				return value{}, 0, false
			}
			raw = raw[:k]
			if b[2] == 'b' {
				return value{kind: kBytes, b: raw}, n, true
			}
			return value{kind: kText, s: string(raw)}, n, true
		case 'f':
			f := string(inner)
			return value{kind: kFloat, s: f}, n, f == "NaN" || f == "Infinity" || f == "-Infinity"
		}
		return value{}, 0, false
	case c == '-' || c >= '0' && c <= '9':
		n, float := jsonNumber(b)
		if n == 0 {
			return value{}, 0, false
		}
		s := string(b[:n])
		if float {
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				return value{}, 0, false
			}
			return value{kind: kFloat, s: s}, n, true
		}
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return value{}, 0, false
		}
		return value{kind: kInt, s: s}, n, true
	}
	return value{}, 0, false
}

// fastStringLen is fastString without the copy: the length of the
// string token at the start of b.
func fastStringLen(b []byte) (int, bool) {
	for j := 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, utf8.Valid(b[1:j])
		case c == '\\' || c < 0x20:
			return 0, false
		}
	}
	return 0, false
}

// fastString reads a JSON string without escapes or control characters,
// of valid UTF-8, at the start of b.
func fastString(b []byte) (string, int, bool) {
	for j := 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !utf8.Valid(b[1:j]) {
				return "", 0, false
			}
			return string(b[1:j]), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// jsonNumber returns the length of the JSON number at the start of b
// (0 if there is none) and whether it has a fraction or an exponent.
func jsonNumber(b []byte) (int, bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0, false
	}
	float := false
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
		float = true
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
		float = true
	}
	return i, float
}

// decodeRowJSON is decodeRow through encoding/json: any well-formed line.
func decodeRowJSON(line []byte, ncol int) ([]value, error) {
	if !utf8.Valid(line) {
		return nil, fmt.Errorf("%w: %s", errFormat, notUTF8)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", errFormat, err)
	}
	if len(raw) != ncol {
		return nil, fmt.Errorf("%w: %d values, the table has %d columns", errFormat, len(raw), ncol)
	}
	out := make([]value, ncol)
	for i, r := range raw {
		v, err := decodeValue(r)
		if err != nil {
			return nil, fmt.Errorf("%w: column %d: %v", errFormat, i+1, err)
		}
		out[i] = v
	}
	return out, nil
}

func decodeValue(r json.RawMessage) (value, error) {
	if len(r) == 0 {
		return value{}, errors.New("empty value")
	}
	switch c := r[0]; {
	case c == 'n':
		return value{kind: kNull}, nil
	case c == 't' || c == 'f':
		var b bool
		err := json.Unmarshal(r, &b)
		return value{kind: kBool, t: b}, err
	case c == '"':
		var s string
		err := json.Unmarshal(r, &s)
		return value{kind: kText, s: s}, err
	case c == '{':
		var o struct {
			B *string `json:"b"`
			S *string `json:"s"`
			F *string `json:"f"`
		}
		if err := json.Unmarshal(r, &o); err != nil {
			return value{}, err
		}
		switch {
		case o.B != nil:
			b, err := base64.StdEncoding.DecodeString(*o.B)
			return value{kind: kBytes, b: b}, err
		case o.S != nil:
			b, err := base64.StdEncoding.DecodeString(*o.S)
			return value{kind: kText, s: string(b)}, err
		case o.F != nil && (*o.F == "NaN" || *o.F == "Infinity" || *o.F == "-Infinity"):
			return value{kind: kFloat, s: *o.F}, nil
		}
		return value{}, fmt.Errorf("unknown value %s", r)
	default:
		s := string(r)
		if bytes.ContainsAny(r, ".eE") {
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				return value{}, err
			}
			return value{kind: kFloat, s: s}, nil
		}
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return value{}, err
		}
		return value{kind: kInt, s: s}, nil
	}
}

// any returns v as a database/sql argument.
func (v value) any() any {
	switch v.kind {
	case kNull:
		return nil
	case kInt:
		n, _ := strconv.ParseInt(v.s, 10, 64)
		return n
	case kFloat:
		f, _ := strconv.ParseFloat(v.s, 64)
		return f
	case kBool:
		return v.t
	case kBytes:
		return v.b
	}
	return v.s
}

// rowSum is an order-independent checksum of a set of rows: the sum,
// modulo 2^128, of the first 16 bytes of each encoded row's sha256. Rows
// can be summed in any order and in parallel; a missing, extra,
// duplicated or changed row changes it.
type rowSum struct{ hi, lo uint64 }

func (s *rowSum) add(line []byte) { s.addHash(sha256.Sum256(line)) }

// addHash adds a row by its line's sha256 (taken in pieces).
func (s *rowSum) addHash(h [sha256.Size]byte) {
	s.addPair(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16]))
}

// addPair adds a row by a 128-bit hash of it.
func (s *rowSum) addPair(hi, lo uint64) {
	var carry uint64
	s.lo, carry = addc(s.lo, lo)
	s.hi += hi + carry
}

func (s *rowSum) merge(o rowSum) {
	var carry uint64
	s.lo, carry = addc(s.lo, o.lo)
	s.hi += o.hi + carry
}

func addc(a, b uint64) (uint64, uint64) {
	s := a + b
	if s < a {
		return s, 1
	}
	return s, 0
}

func (s rowSum) String() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], s.hi)
	binary.BigEndian.PutUint64(b[8:], s.lo)
	return hex.EncodeToString(b[:])
}

func parseRowSum(h string) (rowSum, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return rowSum{}, fmt.Errorf("row checksum %q is not 32 hex digits", h)
	}
	return rowSum{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, nil
}
