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
	"math"
	"strconv"
	"unicode/utf8"
)

// The row format. A chunk is gzip-compressed JSON Lines: one JSON array
// per row, one element per column of the manifest's table, in its order.
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
//	true, false       a boolean
//	{"b":"AAEC"}      bytes (base64): bytea, BLOB, VARBINARY
//	{"s":"/wA="}      text that is not valid UTF-8 (SQLite keeps what it is
//	                  given; JSON strings cannot carry it), as base64
//	{"f":"NaN"}       a float JSON has no number for: NaN, Infinity, -Infinity
//
// Why this format: it keeps NULL and "" apart (CSV does not), carries
// binary and invalid UTF-8 without loss, never rounds a decimal or a
// float, and stays readable with zcat and jq; each engine writes its
// values' exact text, and each loader gives the text back to the same
// kind of column, where the database parses it as it printed it.

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
}

// appendValue appends v's encoding to buf. v is one of nil, string,
// []byte, int64, float64, bool (what the readers produce).
func appendValue(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...)
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

func appendBytes(buf, b []byte) []byte {
	buf = append(buf, `{"b":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, b)
	return append(buf, `"}`...)
}

// appendString appends s as a JSON string. s is valid UTF-8.
func appendString(buf []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	buf = append(buf, '"')
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
	buf = append(buf, s[start:]...)
	return append(buf, '"')
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

// errFormat is wrapped by decoding errors.
var errFormat = errors.New("malformed row")

// decodeRow decodes one line (without its newline) into ncol values.
func decodeRow(line []byte, ncol int) ([]value, error) {
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

func (s *rowSum) add(line []byte) {
	h := sha256.Sum256(line)
	hi, lo := binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])
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
