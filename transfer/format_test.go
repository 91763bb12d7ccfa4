package transfer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestRowFormatRoundTrip(t *testing.T) {
	row := []any{nil, "", "multi\nline\t\"q\" \\ ü 🚀 \x01", string([]byte{0xff, 'a'}), []byte{0, 1, 0xff},
		int64(-9223372036854775808), 1.0, 0.1, 1e300, math.Inf(-1), math.NaN(), true, false, "12.340000"}
	line := appendRow(nil, row)
	if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("one line per row: %q", line)
	}
	vals, err := decodeRow(line[:len(line)-1], len(row))
	if err != nil {
		t.Fatal(err)
	}
	want := []value{
		{kind: kNull}, {kind: kText}, {kind: kText, s: row[2].(string)}, {kind: kText, s: string([]byte{0xff, 'a'})},
		{kind: kBytes, b: []byte{0, 1, 0xff}}, {kind: kInt, s: "-9223372036854775808"}, {kind: kFloat, s: "1.0"},
		{kind: kFloat, s: "0.1"}, {kind: kFloat, s: "1e+300"}, {kind: kFloat, s: "-Infinity"}, {kind: kFloat, s: "NaN"},
		{kind: kBool, t: true}, {kind: kBool}, {kind: kText, s: "12.340000"},
	}
	for i, w := range want {
		g := vals[i]
		if g.kind != w.kind || g.s != w.s || string(g.b) != string(w.b) || g.t != w.t {
			t.Errorf("value %d: got %+v, want %+v", i, g, w)
		}
	}
	// Re-encoding the decoded values gives the same line: what a
	// verification re-reads sums the same.
	again := make([]any, len(vals))
	for i, v := range vals {
		again[i] = v.any()
		if v.kind == kText {
			again[i] = v.s
		}
	}
	if got := appendRow(nil, again); string(got) != string(line) {
		t.Errorf("re-encoded:\n%s\nwant\n%s", got, line)
	}
	for _, bad := range []string{`[1,2`, `{"b":1}`, `[1]`, `["x",{"z":"1"}]`, `[1,1e999]`} {
		if _, err := decodeRow([]byte(bad), 2); err == nil {
			t.Errorf("decodeRow(%s) accepted", bad)
		}
	}
}

func TestRowSumOrderIndependent(t *testing.T) {
	var a, b, c rowSum
	lines := []string{"[1]", "[2]", "[3]"}
	for _, l := range lines {
		a.add([]byte(l))
	}
	for i := len(lines) - 1; i >= 0; i-- {
		b.add([]byte(lines[i]))
	}
	c.add([]byte("[1]"))
	c.add([]byte("[1]"))
	c.add([]byte("[3]"))
	if a != b || a == c || a.String() == (rowSum{}).String() {
		t.Fatalf("sums %s %s %s", a, b, c)
	}
	p, err := parseRowSum(a.String())
	if err != nil || p != a {
		t.Fatalf("parse %s: %v %v", a, p, err)
	}
}

func TestLoadOrder(t *testing.T) {
	tables := []*Table{
		{Name: "members", ForeignKeys: []ForeignKey{{RefTable: "teams"}, {RefTable: "users"}}},
		{Name: "teams", ForeignKeys: []ForeignKey{{RefTable: "members"}}},
		{Name: "users", ForeignKeys: []ForeignKey{{RefTable: "users"}}},
		{Name: "logs", ForeignKeys: []ForeignKey{{RefTable: "tasks"}}},
		{Name: "tasks", ForeignKeys: []ForeignKey{{RefTable: "runs"}}},
		{Name: "runs"},
	}
	var got []string
	for _, g := range loadOrder(tables) {
		var names []string
		for _, t := range g {
			names = append(names, t.Name)
		}
		got = append(got, strings.Join(names, "+"))
	}
	pos := map[string]int{}
	for i, g := range got {
		pos[g] = i
	}
	if len(got) != 5 || pos["users"] > pos["members+teams"] || pos["runs"] > pos["tasks"] || pos["tasks"] > pos["logs"] {
		t.Fatalf("order %v", got)
	}
}

func FuzzDecodeRow(f *testing.F) {
	f.Add([]byte(`[null,"a",1,1.5,true,{"b":"AAE="},{"f":"NaN"}]`), 7)
	f.Add([]byte(`["\u0000\n"]`), 1)
	f.Add([]byte(`[-0,0.5e-3,"x",{"s":"/w=="},false]`), 5)
	f.Fuzz(func(t *testing.T, line []byte, n int) {
		// The fast decoder accepts only what encoding/json accepts, and
		// decodes it the same.
		if fast, ok := decodeRowFast(line, n); ok {
			slow, err := decodeRowJSON(line, n)
			if err != nil {
				t.Fatalf("fast decoder accepted %q, encoding/json says %v", line, err)
			}
			for i := range fast {
				a, b := fast[i], slow[i]
				if a.kind != b.kind || a.s != b.s || string(a.b) != string(b.b) || a.t != b.t {
					t.Fatalf("%q value %d: fast %+v, json %+v", line, i, a, b)
				}
			}
		}
		vals, err := decodeRow(line, n)
		if err != nil {
			return
		}
		// What decodes encodes again and decodes to the same values.
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = v.any()
			if v.kind == kText {
				row[i] = v.s
			}
		}
		again, err := decodeRow(appendRow(nil, row)[:len(appendRow(nil, row))-1], n)
		if err != nil {
			t.Fatalf("re-encoded row does not decode: %v", err)
		}
		for i := range vals {
			a, b := vals[i], again[i]
			if a.kind != b.kind || string(a.b) != string(b.b) || a.t != b.t {
				t.Fatalf("value %d: %+v then %+v", i, a, b)
			}
		}
	})
}

func TestParseInt(t *testing.T) {
	for _, s := range []string{"0", "-0", "42", "-42", "00042", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "-9223372036854775809", "18446744073709551615", "", "-", "4x", "1.5", "+1", "99999999999999999999"} {
		n, ok := parseInt([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if s == "+1" {
			want, err = 0, strconv.ErrSyntax // MySQL never prints a sign
		}
		if ok != (err == nil) || (ok && n != want) {
			t.Errorf("parseInt(%q) = %d %v, strconv says %d %v", s, n, ok, want, err)
		}
	}
	if got := string(appendValue(nil, rawText("a\"b\n"))); got != `"a\"b\n"` {
		t.Errorf("rawText encodes as %s", got)
	}
	if got, want := string(appendValue(nil, rawText{0xff})), string(appendValue(nil, string([]byte{0xff}))); got != want {
		t.Errorf("non-UTF-8 rawText encodes as %s, a string as %s", got, want)
	}
}

// TestStreamRow: a row decoded as it streams, through buffers of every
// small size (so that escapes, base64 quads and surrogate pairs are cut
// everywhere), gives what decodeRow gives; malformed rows fail as they do.
func TestStreamRow(t *testing.T) {
	good := []string{
		string(appendRow(nil, []any{nil, "", "multi\nline\t\"q\" \\ ü 🚀 \x01", string([]byte{0xff, 'a'}), []byte{0, 1, 0xff},
			int64(-9223372036854775808), 1.0, 0.1, 1e300, math.Inf(-1), math.NaN(), true, false, "12.340000", []byte(strings.Repeat("\xfe\x00z", 50))})),
		// Well-formed JSON ferry does not write: other escapes, a pair
		// and lone surrogates, spaces around nothing.
		`["\/\b\f\u00e9\uD83D\uDE00","\uD83D","\uDE00x","\uD83Dz",{"s":"/w=="},{"b":""},-0.5e-3]` + "\n",
		// Whitespace between values, as JSON allows.
		"[ \"a\" , 1 ,\t{\"b\":\"AAEC\"}, null ,true ]\n",
	}
	for _, line := range good {
		ncol := len(mustDecode(t, line))
		want := mustDecode(t, line)
		for size := 16; size <= 48; size++ {
			got, sum, err := streamDecode(line, ncol, size)
			if err != nil {
				t.Fatalf("buffer %d: %v", size, err)
			}
			if want := sha256.Sum256([]byte(strings.TrimSuffix(line, "\n"))); sum != want {
				t.Fatalf("buffer %d: the streamed line's sha256 differs from the line's", size)
			}
			for i, w := range want {
				g := got[i]
				if g.kind != w.kind || g.s != w.s || string(g.b) != string(w.b) || g.t != w.t {
					t.Fatalf("buffer %d value %d: got %+v, want %+v", size, i, g, w)
				}
			}
		}
	}
	// Bytes that are not UTF-8 in a string (ferry writes such text as
	// {"s": base64}): encoding/json would make them U+FFFD.
	for _, bad := range []string{"[\"\xff\xfe\"]", "[\"ab\xe2\x82\"]", "[\"\xc3\"]"} {
		if _, err := decodeRow([]byte(bad), 1); !errors.Is(err, errFormat) {
			t.Errorf("%q decodes: %v", bad, err)
		}
	}
	for _, bad := range []string{`[1,2`, `[1,2]`, `[1]x`, `["a\qb"]`, `["a` + "\x01" + `"]`, `[{"b":"!!!!"}]`, `[{"z":"1"}]`, `[{"f":"1"}]`, `["a"`, `[truex]`,
		"[\"\xff\xfe\"]", "[\"abcdefghijklmnopqrst\xe2\x82\"]", "[\"\xc3\"]"} {
		for size := 16; size <= 20; size++ {
			if _, _, err := streamDecode(bad+"\n", 1, size); err == nil || !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s through a %d-byte buffer: %v, want a corrupt row", bad, size, err)
			}
		}
	}
}

func mustDecode(t *testing.T, line string) []value {
	t.Helper()
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(line), &raw); err != nil {
		t.Fatal(err)
	}
	v, err := decodeRow([]byte(strings.TrimSuffix(line, "\n")), len(raw))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// streamDecode decodes line as a streamRow through a reader of size
// bytes, the first of them already read, as a chunk reader hands it over.
func streamDecode(line string, ncol, size int) ([]value, [sha256.Size]byte, error) {
	br := bufio.NewReaderSize(strings.NewReader(line), size)
	pre, _ := br.Peek(min(size, len(line)))
	pre = append([]byte(nil), pre...)
	br.Discard(len(pre))
	sr := newStreamRow(pre, br, ncol, "test")
	h := sha256.New()
	sr.h = h
	var out []value
	var sum [sha256.Size]byte
	for range ncol {
		v, err := sr.next()
		if err != nil {
			return nil, sum, err
		}
		if v.r != nil {
			b, err := io.ReadAll(v.r)
			if err != nil {
				return nil, sum, err
			}
			if v.kind == kBytes {
				v.b = b
			} else {
				v.s = string(b)
			}
			v.r = nil
		}
		out = append(out, v)
	}
	err := sr.finish()
	h.Sum(sum[:0])
	return out, sum, err
}

// FuzzStreamRow: the streaming decoder (rows too long to hold) accepts
// only lines the line decoder accepts, and gives the same values and the
// line's sha256, through any buffer size.
func FuzzStreamRow(f *testing.F) {
	f.Add([]byte(`[null,"a\"b\\c\n\u00e9\uD83D\uDE00",1,1.5,true,{"b":"AAE="},{"s":"/w=="},{"f":"NaN"}]`), 8, 16)
	f.Add([]byte(`[ "a" , 1 ,{"b":""}]`), 3, 17)
	f.Add([]byte(`["\uD83D",-0.5e-3]`), 2, 20)
	f.Fuzz(func(t *testing.T, line []byte, n, size int) {
		if n < 1 || n > 64 || bytes.IndexByte(line, '\n') >= 0 {
			return
		}
		size = 16 + abs(size)%64
		got, sum, err := streamDecode(string(line)+"\n", n, size)
		if err != nil {
			return
		}
		want, derr := decodeRow(line, n)
		if derr != nil {
			t.Fatalf("the stream decoder accepted %q, the line decoder says %v", line, derr)
		}
		for i := range want {
			a, b := got[i], want[i]
			if a.kind != b.kind || a.s != b.s || string(a.b) != string(b.b) || a.t != b.t {
				t.Fatalf("%q value %d: stream %+v, line %+v", line, i, a, b)
			}
		}
		if sum != sha256.Sum256(line) {
			t.Fatalf("%q: the streamed sha256 differs", line)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestDecodeManifestRefuses: a manifest ferry could not have written is
// refused, saying what is wrong with it, before anything is read.
func TestDecodeManifestRefuses(t *testing.T) {
	const sum = `"row_checksum":"00000000000000000000000000000000"`
	table := func(name string, rows int) string {
		return fmt.Sprintf(`{"name":%q,"columns":[{"name":"id","type":"int"}],"rows":%d,%s,"chunks":[{"name":"tables/%s/part-00001.jsonl.s2","rows":%d}]}`, name, rows, sum, name, rows)
	}
	head := `"format":2,"id":"20261129T170000Z-ab12cd","compression":"s2","source":{"engine":"sqlite","schema_version":%d,"migrations":[{"version":%d}]}`
	for _, c := range []struct{ doc, want string }{
		{"{" + fmt.Sprintf(head, 1, 1) + "}", "no tables field"},
		{"{" + fmt.Sprintf(head, 1, 1) + `,"tables":[` + table("a", 1) + "," + table("a", 1) + "]}", "table a is listed twice"},
		{"{" + fmt.Sprintf(head, -3, 1) + `,"tables":[]}`, "schema version is -3"},
		{"{" + fmt.Sprintf(head, 1, 0) + `,"tables":[]}`, "applied migration 0"},
		{"{" + fmt.Sprintf(head, 1, 1) + `,"tables":[` + table("a", -1) + "]}", "-1 rows"},
	} {
		if _, err := decodeManifest([]byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.doc, err, c.want)
		}
	}
	if _, err := decodeManifest([]byte("{" + fmt.Sprintf(head, 1, 1) + `,"tables":[` + table("a", 1) + "]}")); err != nil {
		t.Errorf("a good manifest: %v", err)
	}
}
