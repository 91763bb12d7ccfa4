package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ferrydb/ferry/database"
)

// Imports across engines. Every column's value is converted from the
// source's form to the target column's, by the two columns' type classes
// (see docs/transfer.md for the table):
//
//   - a conversion that keeps every value exactly needs nothing (an
//     integer into a wider integer, any value into text, a timestamp with
//     a zone into one without it, as UTC);
//   - a conversion that keeps a value exactly or fails on it is checked
//     row by row (text into an integer, JSON, a timestamp; a decimal into
//     a narrower one; text into a VARCHAR(n)): a value it cannot carry
//     stops the table's load, naming table, column and value, and nothing
//     is half loaded;
//   - a conversion that may round a value without failing (a decimal into
//     a float, a double into a single-precision float, a float into an
//     integer) is refused unless the mapping file allows it for the
//     column (casts: [table.column]).
//
// The import is verified on the target's terms: each value, exported
// and loaded, is put in one canonical form of the target column's class
// (a time in UTC, a decimal without trailing zeros, JSON with sorted
// keys) before the row checksums are compared.

// typeClass is what a column's type holds, for conversions.
type typeClass int

const (
	cOther   typeClass = iota // a type of its own (uuid, enum, interval): its text
	cInt                      // an integer of bits bits
	cDecimal                  // an exact decimal of precision p, scale s (p 0: any)
	cFloat                    // a double
	cFloat4                   // a single-precision float
	cBool
	cText  // text of at most n characters (0: any)
	cBytes // binary
	cJSON
	cTimeTZ // a point in time (timestamp with time zone)
	cTime   // a timestamp without a zone, taken as UTC; fsp fractional digits
	cDate
)

var classNames = [...]string{"other", "integer", "decimal", "float", "float4", "boolean", "text", "bytes", "json", "timestamp with zone", "timestamp", "date"}

func (c typeClass) String() string { return classNames[c] }

// colType is a column's type, classified.
type colType struct {
	engine   string
	class    typeClass
	unsigned bool // cInt: MySQL's UNSIGNED
	bits     int  // cInt: 8, 16, 24, 32, 64
	p, s     int  // cDecimal
	n        int  // cText: characters (0: unbounded)
	fsp      int  // cTime, cTimeTZ: fractional digits of a second kept
	textForm bool // SQLite's time and JSON columns hold text whatever their name says
	// collapses, for cJSON: the type keeps one value per key of an object
	// (PostgreSQL's jsonb, MySQL's JSON), not the text.
	collapses bool
	// form, for cOther: "clock" (a time of day or MySQL's TIME, whose
	// engines print trailing fractional zeros differently) or "uuid"
	// (PostgreSQL prints it in lower case), for the canonical form.
	form string
}

var typeArgs = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)`) })

// classify reads a column type as engine kind declares it.
func classify(kind, typ string) colType {
	c := classifyType(kind, typ)
	c.engine = kind
	return c
}

func classifyType(kind, typ string) colType {
	t := strings.ToLower(strings.TrimSpace(typ))
	var a1, a2 int
	has1 := false
	if m := typeArgs().FindStringSubmatch(t); m != nil {
		a1, _ = strconv.Atoi(m[1])
		has1 = true
		if m[2] != "" {
			a2, _ = strconv.Atoi(m[2])
		}
	}
	base := t
	if i := strings.IndexByte(base, '('); i >= 0 {
		base = strings.TrimSpace(base[:i]) + base[strings.IndexByte(base, ')')+1:]
	}
	unsigned := strings.Contains(base, "unsigned")
	base = strings.TrimSpace(strings.NewReplacer("unsigned", "", "zerofill", "").Replace(base))
	switch kind {
	case database.Postgres:
		switch base {
		case "smallint":
			return colType{class: cInt, bits: 16}
		case "integer":
			return colType{class: cInt, bits: 32}
		case "bigint":
			return colType{class: cInt, bits: 64}
		case "numeric", "decimal":
			return colType{class: cDecimal, p: a1, s: a2}
		case "real":
			return colType{class: cFloat4}
		case "double precision":
			return colType{class: cFloat}
		case "boolean":
			return colType{class: cBool}
		case "text", "character varying", "character", "varchar", "char", "citext":
			return colType{class: cText, n: a1}
		case "bytea":
			return colType{class: cBytes}
		case "json":
			return colType{class: cJSON}
		case "jsonb":
			return colType{class: cJSON, collapses: true}
		case "timestamp with time zone":
			return colType{class: cTimeTZ, fsp: fspOr(has1, a1)}
		case "timestamp without time zone", "timestamp":
			return colType{class: cTime, fsp: fspOr(has1, a1)}
		case "date":
			return colType{class: cDate}
		case "time without time zone", "time":
			return colType{class: cOther, form: "clock"}
		case "uuid":
			return colType{class: cOther, form: "uuid"}
		}
	case database.MySQL:
		switch base {
		case "tinyint":
			if has1 && a1 == 1 && !unsigned {
				return colType{class: cBool}
			}
			return colType{class: cInt, bits: 8, unsigned: unsigned}
		case "bool", "boolean":
			return colType{class: cBool}
		case "smallint":
			return colType{class: cInt, bits: 16, unsigned: unsigned}
		case "mediumint":
			return colType{class: cInt, bits: 24, unsigned: unsigned}
		case "int", "integer":
			return colType{class: cInt, bits: 32, unsigned: unsigned}
		case "bigint":
			return colType{class: cInt, bits: 64, unsigned: unsigned}
		case "decimal", "numeric", "dec", "fixed":
			if !has1 {
				a1 = 10
			}
			return colType{class: cDecimal, p: a1, s: a2}
		case "float":
			return colType{class: cFloat4}
		case "double", "double precision", "real":
			return colType{class: cFloat}
		case "char", "varchar":
			return colType{class: cText, n: a1}
		case "tinytext", "text", "mediumtext", "longtext", "enum", "set":
			return colType{class: cText}
		case "json":
			// MySQL's own JSON type (MariaDB's JSON is a longtext).
			return colType{class: cJSON, collapses: true}
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
			return colType{class: cBytes}
		case "datetime", "timestamp":
			return colType{class: cTime, fsp: a1}
		case "date":
			return colType{class: cDate}
		case "time":
			return colType{class: cOther, form: "clock"}
		}
	case database.SQLite:
		// SQLite's type affinity (https://sqlite.org/datatype3.html).
		switch {
		case base == "boolean" || base == "bool":
			return colType{class: cBool}
		case strings.Contains(base, "int"):
			return colType{class: cInt, bits: 64}
		case base == "json":
			return colType{class: cText, textForm: true}
		case strings.Contains(base, "char") || strings.Contains(base, "clob") || strings.Contains(base, "text"):
			return colType{class: cText}
		case base == "blob":
			return colType{class: cBytes}
		case strings.Contains(base, "real") || strings.Contains(base, "floa") || strings.Contains(base, "doub"):
			return colType{class: cFloat}
		case strings.Contains(base, "datetime") || strings.Contains(base, "timestamp"):
			// Times as text in SQLite's own form, which its date
			// functions read.
			return colType{class: cTimeTZ, fsp: 9, textForm: true}
		case strings.Contains(base, "dec") || strings.Contains(base, "num"):
			// NUMERIC affinity keeps 15 significant digits, as a float.
			return colType{class: cFloat}
		}
	}
	return colType{class: cOther}
}

func fspOr(has bool, n int) int {
	if has {
		return n
	}
	return 6
}

// columnConv is how one column's values go from the export into the
// target.
type columnConv struct {
	conv  func(value) (value, error) // nil: as they are
	canon func(any) any              // the target class's canonical form
	// lossy says why the conversion may round values without failing; it
	// needs the mapping's allowance.
	lossy string
	// note describes a conversion for the plan ("" when the types agree).
	note string
}

// convertColumn returns how values of column src of engine from go into
// column dst of engine to.
func convertColumn(from string, src Column, to string, dst Column) columnConv {
	s, d := classify(from, src.Type), classify(to, dst.Type)
	cc := columnConv{canon: canonical(d)}
	if from == to && src.Type == dst.Type {
		return columnConv{}
	}
	cc.note = fmt.Sprintf("%s (%s) -> %s (%s)", src.Type, from, dst.Type, to)
	switch {
	case s.class == cDecimal && (d.class == cFloat || d.class == cFloat4):
		cc.lossy = "a decimal into a float keeps about 15 significant digits"
	case s.class == cFloat && d.class == cFloat4:
		cc.lossy = "a double into a single-precision float keeps about 7 significant digits"
	case (s.class == cFloat || s.class == cFloat4) && d.class == cInt:
		cc.lossy = "a float into an integer is rounded to the nearest integer"
	}
	if to == database.SQLite && s.class == cTimeTZ && d.class == cText && !s.textForm {
		// A time with a zone into SQLite's text: written in the form
		// SQLite's date functions read (+00:00, not PostgreSQL's +00),
		// and compared as a time.
		tz := colType{engine: to, class: cTimeTZ, fsp: 9, textForm: true}
		cc.conv, cc.canon = converterTo(tz, false), canonical(tz)
		return cc
	}
	cc.conv = converterTo(d, cc.lossy != "")
	return cc
}

// notTime is the error for text v that is no time (what: "time" or
// "date") an engine column holds: one before the year 1 (PostgreSQL's BC)
// or a MySQL zero date ('0000-00-00', '2020-00-00') says which.
func notTime(v value, engine, what string) error {
	switch t := strings.TrimSpace(v.s); {
	case strings.HasSuffix(t, " BC"):
		return fmt.Errorf("%s is before the year 1 (in UTC), which %s's %ss do not reach: %w", show(v), engine, what, errValue)
	case mysqlZeroDate.MatchString(t):
		return fmt.Errorf("%s is a MySQL zero date (a zero year, month or day), which %s has no %s for (set such values to NULL on the source first): %w", show(v), engine, what, errValue)
	}
	return fmt.Errorf("%s is not a %s: %w", show(v), what, errValue)
}

// mysqlZeroDate matches a date MySQL's permissive modes store with a zero
// year, month or day.
var mysqlZeroDate = regexp.MustCompile(`^(0000-\d\d-\d\d|\d{4}-00-\d\d|\d{4}-\d\d-00)`)

// errValue is a value the target column cannot carry.
var errValue = errors.New("cannot be carried exactly")

// ErrValue is wrapped by the error of an import (or copy) that met a
// value its target column cannot carry exactly: running it again meets
// the same value.
var ErrValue = errValue

// converterTo returns the conversion of any exported value into a column
// of type d; rounding is allowed (a lossy cast the mapping allows).
func converterTo(d colType, rounding bool) func(value) (value, error) {
	switch d.class {
	case cInt:
		return func(v value) (value, error) {
			switch v.kind {
			case kNull:
				return v, nil
			case kBool:
				return intValue(boolInt(v.t)), nil
			case kInt, kText, kFloat:
				if n, err := strconv.ParseInt(strings.TrimSpace(v.s), 10, 64); err == nil {
					if !fitsInt(n, d) {
						return v, fmt.Errorf("%s does not fit a %s: %w", v.s, intName(d), errValue)
					}
					return intValue(n), nil
				}
				// A decimal's whole number (12345678901234567.00), exactly:
				// not through a float, which keeps 53 bits.
				if r, ok := new(big.Rat).SetString(strings.TrimSpace(v.s)); ok && r.IsInt() {
					if r.Num().IsInt64() {
						if n := r.Num().Int64(); fitsInt(n, d) {
							return intValue(n), nil
						}
					}
					if !d.unsigned || d.bits != 64 || r.Sign() < 0 || r.Num().BitLen() > 64 {
						return v, fmt.Errorf("%s does not fit a %s: %w", v.s, intName(d), errValue)
					}
					return value{kind: kText, s: r.Num().String()}, nil // past int64
				}
				if d.unsigned && d.bits == 64 {
					if _, err := strconv.ParseUint(v.s, 10, 64); err == nil {
						return value{kind: kText, s: v.s}, nil
					}
				}
				if f, err := strconv.ParseFloat(v.s, 64); err == nil && (f == math.Trunc(f) || rounding) && math.Abs(f) < 1<<63 {
					return intValue(int64(math.Round(f))), nil
				}
			}
			return v, fmt.Errorf("%s is not an integer: %w", show(v), errValue)
		}
	case cDecimal:
		return func(v value) (value, error) {
			switch v.kind {
			case kNull:
				return v, nil
			case kBool:
				return value{kind: kText, s: strconv.FormatInt(boolInt(v.t), 10)}, nil
			case kInt, kText, kFloat:
				r, ok := new(big.Rat).SetString(strings.TrimSpace(v.s))
				if !ok {
					return v, fmt.Errorf("%s is not a number: %w", show(v), errValue)
				}
				if d.p == 0 {
					return value{kind: kText, s: v.s}, nil
				}
				s := r.FloatString(d.s)
				if back, _ := new(big.Rat).SetString(s); back.Cmp(r) != 0 && !rounding {
					return v, fmt.Errorf("%s has more than %d digits after the point: %w", v.s, d.s, errValue)
				}
				if digits := len(strings.TrimLeft(strings.SplitN(strings.TrimPrefix(s, "-"), ".", 2)[0], "0")); digits > d.p-d.s {
					return v, fmt.Errorf("%s has more than %d digits before the point: %w", v.s, d.p-d.s, errValue)
				}
				return value{kind: kText, s: s}, nil
			}
			return v, fmt.Errorf("%s is not a number: %w", show(v), errValue)
		}
	case cFloat, cFloat4:
		return func(v value) (value, error) {
			switch v.kind {
			case kNull:
				return v, nil
			case kBool:
				return value{kind: kFloat, s: strconv.FormatInt(boolInt(v.t), 10) + ".0"}, nil
			case kInt, kText, kFloat:
				f, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
				if err != nil {
					return v, fmt.Errorf("%s is not a number: %w", show(v), errValue)
				}
				if (math.IsNaN(f) || math.IsInf(f, 0)) && d.engine != database.Postgres {
					return v, fmt.Errorf("%s has no value in %s's floats: %w", show(v), d.engine, errValue)
				}
				in := f
				bits, name := 64, "double"
				if d.class == cFloat4 {
					f, bits, name = float64(float32(f)), 32, "single-precision float"
				}
				// The float must be the number itself (16777217 is no
				// single-precision float, 2^53+1 no double), unless the
				// mapping allows rounding: the verification, which puts
				// both in the float's canonical form, would not see it.
				if math.IsInf(f, 0) && !math.IsInf(in, 0) {
					return v, fmt.Errorf("%s is past a %s's range: %w", v.s, name, errValue)
				}
				if !rounding && !math.IsNaN(f) && !math.IsInf(f, 0) && !floatExact(strings.TrimSpace(v.s), v.kind, in, f, bits) {
					return v, fmt.Errorf("%s is not exactly a %s (the nearest is %s): %w", v.s, name, strconv.FormatFloat(f, 'g', -1, bits), errValue)
				}
				if f == 0 && d.engine != database.Postgres {
					f = 0 // MySQL and SQLite keep no negative zero (and the verification reads 0)
				}
				return value{kind: kFloat, s: strconv.FormatFloat(f, 'g', -1, 64)}, nil
			}
			return v, fmt.Errorf("%s is not a number: %w", show(v), errValue)
		}
	case cBool:
		return func(v value) (value, error) {
			switch v.kind {
			case kNull, kBool:
				return v, nil
			case kInt, kText:
				switch strings.ToLower(strings.TrimSpace(v.s)) {
				case "1", "t", "true":
					return value{kind: kBool, t: true}, nil
				case "0", "f", "false":
					return value{kind: kBool, t: false}, nil
				}
			}
			return v, fmt.Errorf("%s is not a boolean (0 or 1): %w", show(v), errValue)
		}
	case cText, cJSON, cOther, cDate, cTime, cTimeTZ:
		toText := func(v value) (value, error) {
			switch v.kind {
			case kBool:
				return value{kind: kText, s: strconv.FormatBool(v.t)}, nil
			case kBytes:
				if !utf8.Valid(v.b) {
					return v, fmt.Errorf("binary value %q is not UTF-8 text: %w", truncate(string(v.b)), errValue)
				}
				return value{kind: kText, s: string(v.b)}, nil
			case kInt, kFloat:
				return value{kind: kText, s: v.s}, nil
			}
			return v, nil
		}
		switch d.class {
		case cText:
			return func(v value) (value, error) {
				v, err := toText(v)
				if err != nil || v.kind != kText {
					return v, err
				}
				if d.n > 0 && utf8.RuneCountInString(v.s) > d.n {
					return v, fmt.Errorf("%s is longer than %d characters: %w", show(v), d.n, errValue)
				}
				if d.engine != database.SQLite && !utf8.ValidString(v.s) {
					return v, fmt.Errorf("%s is not UTF-8 text, which %s's text takes only: %w", show(v), d.engine, errValue)
				}
				if d.engine == database.Postgres && strings.IndexByte(v.s, 0) >= 0 {
					return v, fmt.Errorf("%s holds a NUL character, which PostgreSQL's text cannot: %w", show(v), errValue)
				}
				return v, nil
			}
		case cJSON:
			return func(v value) (value, error) {
				v, err := toText(v)
				if err == nil && v.kind == kText && !json.Valid([]byte(v.s)) {
					return v, fmt.Errorf("%s is not JSON: %w", show(v), errValue)
				}
				if err == nil && v.kind == kText && d.collapses {
					if k, dup := jsonDupKey(v.s); dup {
						return v, fmt.Errorf("%s has the key %q twice in one object, of which the column's type keeps only one: %w", show(v), k, errValue)
					}
				}
				return v, err
			}
		case cTime, cTimeTZ:
			return func(v value) (value, error) {
				if v.kind == kNull {
					return v, nil
				}
				v, err := toText(v)
				if err != nil {
					return v, err
				}
				at, ok := parseTime(v.s)
				if !ok {
					return v, notTime(v, d.engine, "time")
				}
				if at.Nanosecond()%int(math.Pow10(9-d.fsp)) != 0 {
					return v, fmt.Errorf("%s has more than %d digits of a second: %w", v.s, d.fsp, errValue)
				}
				layout := "2006-01-02 15:04:05.999999999-07:00"
				if d.class == cTime {
					layout = "2006-01-02 15:04:05.999999999"
				}
				return value{kind: kText, s: at.UTC().Format(layout)}, nil
			}
		case cDate:
			return func(v value) (value, error) {
				v, err := toText(v)
				if err == nil && v.kind == kText {
					if _, perr := time.Parse("2006-01-02", v.s); perr != nil {
						// A time at midnight (UTC) is that date.
						if at, ok := parseTime(v.s); ok && at.UTC().Equal(at.UTC().Truncate(24*time.Hour)) {
							return value{kind: kText, s: at.UTC().Format("2006-01-02")}, nil
						}
						return v, notTime(v, d.engine, "date")
					}
				}
				return v, err
			}
		}
		return toText
	case cBytes:
		return func(v value) (value, error) {
			if v.kind == kText {
				return value{kind: kBytes, b: []byte(v.s)}, nil
			}
			if v.kind == kNull || v.kind == kBytes {
				return v, nil
			}
			return value{kind: kBytes, b: []byte(v.s)}, nil
		}
	}
	return nil
}

// floatExact reports whether f, the float of bits bits that s (a value of
// kind k, read as the double in) converts to, is s's number: an integer
// exactly; a float's value (a double is a double; into a single-precision
// float, one that is one); a decimal's text, as the float prints it
// shortest (0.1 is 0.1).
func floatExact(s string, k int, in, f float64, bits int) bool {
	if n, ok := new(big.Int).SetString(s, 10); ok {
		bf := new(big.Float).SetFloat64(f)
		i, acc := bf.Int(nil)
		return acc == big.Exact && i.Cmp(n) == 0
	}
	if k == kFloat || (bits == 32 && in == f) {
		// A double is a double; a double that is a single-precision
		// float's value (3.4028234663852886e+38) is that float.
		return bits == 64 || in == f
	}
	exact, ok := new(big.Rat).SetString(s)
	back, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, bits))
	return !ok || back.Cmp(exact) == 0
}

// fitsInt reports whether n fits an integer column of type d.
func fitsInt(n int64, d colType) bool {
	if d.unsigned {
		return n >= 0 && (d.bits >= 64 || n < 1<<d.bits)
	}
	return d.bits >= 64 || (n >= -(1<<(d.bits-1)) && n < 1<<(d.bits-1))
}

func intName(d colType) string {
	if d.unsigned {
		return fmt.Sprintf("%d-bit unsigned integer", d.bits)
	}
	return fmt.Sprintf("%d-bit integer", d.bits)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func intValue(n int64) value { return value{kind: kInt, s: strconv.FormatInt(n, 10)} }

// show quotes a value for an error, shortened.
func show(v value) string {
	switch v.kind {
	case kNull:
		return "NULL"
	case kBytes:
		return fmt.Sprintf("%d bytes", len(v.b))
	case kBool:
		return strconv.FormatBool(v.t)
	}
	return strconv.Quote(truncate(v.s))
}

func truncate(s string) string {
	if len(s) <= 60 {
		return s
	}
	i := 60
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// timeLayouts are the forms the three engines print times in.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02",
}

// parseTime reads a time as any engine prints it; one without a zone is
// UTC.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if at, err := time.Parse(l, s); err == nil {
			return at, true
		}
	}
	return time.Time{}, false
}

// canonical returns the function that puts a value (as the readers give
// it: nil, string, []byte, int64, float64, bool) in one form for the
// class of d, for comparing the exported rows with the loaded ones.
func canonical(d colType) func(any) any {
	f := canonicalOf(d)
	return func(v any) any {
		if r, ok := v.(rawText); ok {
			v = string(r)
		}
		return f(v)
	}
}

func canonicalOf(d colType) func(any) any {
	str := func(v any) (string, bool) {
		switch x := v.(type) {
		case string:
			return x, true
		case []byte:
			return string(x), true
		case int64:
			return strconv.FormatInt(x, 10), true
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), true
		case bool:
			return strconv.FormatBool(x), true
		}
		return "", false
	}
	switch d.class {
	case cInt:
		return func(v any) any {
			switch x := v.(type) {
			case bool:
				return boolInt(x)
			case float64:
				if math.Abs(x) < 1<<63 {
					return int64(math.Round(x))
				}
			case string:
				if n, err := strconv.ParseInt(x, 10, 64); err == nil {
					return n
				}
				// A decimal's whole number ("5.00"), which the load
				// carried as 5.
				if c, ok := canonDecimal(x); ok {
					if n, err := strconv.ParseInt(c, 10, 64); err == nil {
						return n
					}
					if strings.Trim(strings.TrimPrefix(c, "-"), "0123456789") == "" {
						return c // past int64 (an unsigned BIGINT)
					}
				}
			}
			return v
		}
	case cDecimal:
		return func(v any) any {
			s, ok := str(v)
			if !ok {
				return v
			}
			if c, ok := canonDecimal(s); ok {
				return c
			}
			return v
		}
	case cFloat, cFloat4:
		return func(v any) any {
			s, ok := str(v)
			if !ok {
				return v
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return v
			}
			if d.class == cFloat4 {
				f = float64(float32(f))
			}
			if f == 0 && d.engine != database.Postgres {
				f = 0 // MySQL and SQLite keep no negative zero
			}
			return f
		}
	case cDate:
		return func(v any) any {
			s, ok := str(v)
			if !ok {
				return v
			}
			if at, ok := parseTime(s); ok && at.UTC().Equal(at.UTC().Truncate(24*time.Hour)) {
				return at.UTC().Format("2006-01-02") // a time at midnight is its date
			}
			return v
		}
	case cBool:
		return func(v any) any {
			s, ok := str(v)
			if !ok {
				return v
			}
			switch strings.ToLower(s) {
			case "1", "t", "true":
				return true
			case "0", "f", "false":
				return false
			}
			return v
		}
	case cBytes:
		return func(v any) any {
			if s, ok := v.(string); ok {
				return []byte(s)
			}
			return v
		}
	case cJSON:
		return func(v any) any {
			s, ok := str(v)
			if !ok {
				return v
			}
			if _, dup := jsonDupKey(s); dup {
				// Its text is the value (a type that keeps one value per
				// key refuses it when it is loaded).
				return v
			}
			dec := json.NewDecoder(strings.NewReader(s))
			dec.UseNumber()
			var x any
			if dec.Decode(&x) != nil {
				return v
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if enc.Encode(canonNumbers(x)) != nil {
				return v
			}
			return strings.TrimSuffix(b.String(), "\n")
		}
	case cTime, cTimeTZ:
		return func(v any) any {
			s, ok := str(v)
			if !ok {
				return v
			}
			if at, ok := parseTime(s); ok {
				return at.UTC().Format(time.RFC3339Nano)
			}
			return v
		}
	}
	return func(v any) any {
		s, ok := str(v)
		if !ok {
			return v
		}
		switch d.form {
		case "clock":
			// 12:34:56.780 (MySQL TIME(3)) and 12:34:56.78 (PostgreSQL)
			// are one time.
			if i := strings.IndexByte(s, '.'); i >= 0 {
				s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
			}
		case "uuid":
			s = strings.ToLower(s)
		}
		return s
	}
}

// jsonDupKey returns a key that one object of the JSON text s holds
// twice, if any: decoded into a map, only the last would be left.
func jsonDupKey(s string) (string, bool) {
	type frame struct {
		object, key bool // an object; expecting a key next
		seen        map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false // the end, or not JSON (checked elsewhere)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.object && top.key {
			k := tok.(string)
			if top.seen[k] {
				return k, true
			}
			top.seen[k], top.key = true, false
			continue
		}
		if top != nil && top.object {
			top.key = true // after this value, a key
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, key: true, seen: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		}
	}
}

// canonNumbers writes JSON numbers in one form (1.0 and 1 are one
// number to PostgreSQL's jsonb).
func canonNumbers(x any) any {
	switch y := x.(type) {
	case map[string]any:
		for k, v := range y {
			y[k] = canonNumbers(v)
		}
	case []any:
		for i, v := range y {
			y[i] = canonNumbers(v)
		}
	case json.Number:
		if c, ok := canonDecimal(string(y)); ok {
			return json.Number(c)
		}
	}
	return x
}

// canonDecimal writes a number's exact value in one form: "12.3456" for
// 12.345600, 1.23456e1 and 0012.3456; "100" for 1e2.
func canonDecimal(s string) (string, bool) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok {
		return "", false
	}
	if r.IsInt() {
		return r.Num().String(), true
	}
	// A decimal's denominator is 2^a 5^b: max(a, b) digits after the
	// point say it exactly, the last one not 0.
	den := new(big.Int).Set(r.Denom())
	count := func(p int64) int {
		n, q, m := 0, new(big.Int), new(big.Int)
		for {
			q.QuoRem(den, big.NewInt(p), m)
			if m.Sign() != 0 {
				return n
			}
			den.Set(q)
			n++
		}
	}
	digits := max(count(2), count(5))
	if den.Cmp(big.NewInt(1)) != 0 {
		digits = 40 // not a decimal (a float's binary fraction is): enough
	}
	return r.FloatString(digits), true
}
