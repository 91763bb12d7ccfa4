package migrate

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/dialect"
)

// Seeds shared by the lexer and parser targets: the shapes of the table
// tests in parse_test.go and hardening_test.go (strings, identifiers,
// dollar quotes, nested and executable comments, E-strings, backslash
// escapes, statement blocks, goose annotations, ENVSUB) and their broken
// forms.
var fuzzSQLSeeds = []string{
	"",
	"-- +ferry up\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
	"-- +ferry up\n-- a comment; with a semicolon\nINSERT INTO t VALUES ('a;b', 'it''s; ok'); /* c; */ INSERT INTO t VALUES (\"x;y\");\n",
	"-- +ferry up\nCREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  NEW.x := 1; RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\nCREATE FUNCTION g() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\nSELECT $1;\n",
	"-- +ferry up\n/* outer /* inner; */ still comment; */ SELECT 1;",
	"-- +ferry up\nSELECT E'a\\';b'; SELECT 'c:\\'; SELECT 2;",
	"-- +ferry up\n# hash; comment\nINSERT INTO t VALUES ('a\\';b');\n/*!40101 SET NAMES utf8 */;\nSELECT `we;ird`;",
	"-- +ferry up\nCREATE TABLE a (id int)\n-- +ferry down\nDROP TABLE a\n",
	"-- +ferry up\n-- +ferry statement-begin\nCREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN\n  SET NEW.x = 1;\n  SET NEW.y = 2;\nEND;\n-- +ferry statement-end\nSELECT 1;\n",
	"-- +goose Up\n-- +goose StatementBegin\nCREATE OR REPLACE FUNCTION f() RETURNS int AS '\n  SELECT 1;\n' LANGUAGE sql;\n-- +goose StatementEnd\nCREATE TABLE t (id int);\n\n-- +goose Down\nDROP TABLE t;\nDROP FUNCTION f;\n",
	"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (id);\n",
	"-- header comment\n-- +ferry up\n\n/* why */\nCREATE   TABLE a (\n  id int,   -- the key\n  name text\n)\n-- +ferry down\nDROP TABLE a; -- changed down",
	"-- +ferry up\n-- +ferry allow-empty\n-- nothing to do\n",
	"-- +ferry no-transaction\n-- +ferry contract\n-- +ferry up\nSELECT /*+ hint */ 1;\n",
	"-- +goose Up\n-- +goose Down\n",
	"\r\n-- +ferry up\r\n\tSELECT 1;\r\n",
	"CREATE TABLE c (id int);\nCREATE TABLE d (id int);\n",
	"DROP TABLE d; DROP TABLE c;\n",
	"-- +ferry no-transaction\nCREATE TABLE e (id int);\n",
	"-- nothing\n",
	"CREATE TABLE a (id int);",
	"-- +ferry up\nSELECT 1;\n-- +ferry upp\n",
	"-- +goose Up\nSELECT 1;\n-- +goose Sideways\n",
	"-- +ferry up\nSELECT 1;\n-- +ferry up\nSELECT 2;\n",
	"-- +ferry up\nSELECT 1;\n-- +goose Down\n",
	"-- +ferry up\nSELECT 1;\nINSERT INTO t VALUES ('oops);\n",
	"-- +ferry up\nCREATE FUNCTION f() AS $$ SELECT 1;\n",
	"-- +ferry up\n/* never closed\nSELECT 1;",
	"-- +ferry up\n-- +ferry statement-begin\nSELECT 1;\n",
	"-- +ferry up\nSELECT 1;\n-- +ferry statement-end\n",
	"-- +ferry up\n-- write it here\n-- +ferry down\nDROP TABLE t;\n",
	"-- +goose ENVSUB ON\n-- +goose Up\nSELECT $1;\n",
	"-- +goose Up\nCREATE TABLE ${NOT_YET} (id int);\n-- +goose ENVSUB ON\nCREATE TABLE ${TABLE_NAME} (id int, note text DEFAULT '${NOTE:-none}', region text DEFAULT '$REGION');\nINSERT INTO ${TABLE_NAME} VALUES (1, 'costs $$5', 'pw=${DB_PASSWORD}');\n-- +goose ENVSUB OFF\nSELECT '${TABLE_NAME}';\n-- +goose Down\n-- +goose ENVSUB ON\nDROP TABLE ${TABLE_NAME};\n",
	"-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${DB_PASSWORD:0:4}', '${MISSING}', '${DB_PASSWORD:?gone}';\n",
	"SELECT \"unterminated; `also`",
	"SELECT `tick",
	"SELECT $tag$ body $tag$, $1, a$b$c, $$;",
	"/* a /* b */ c */ -- d\n# e\nSELECT 1",
}

// fuzzSecret is the value of the secret-named variable of fuzzEnv. It holds
// no 'x', so masking cannot make it up.
const fuzzSecret = "Q7vZk9Rw"

// fuzzEnv is the fixed environment the parser target substitutes from.
func fuzzEnv(name string) (string, bool) {
	v, ok := map[string]string{"TABLE_NAME": "things", "REGION": "eu", "EMPTY": "", "DB_PASSWORD": fuzzSecret}[name]
	return v, ok
}

func fuzzSyntax(mysql bool) dialect.Syntax {
	if mysql {
		return mysqlSyntax
	}
	return pgSyntax
}

// lineAt is the 1-based line of byte offset i of src.
func lineAt(src string, i int) int { return 1 + strings.Count(src[:i], "\n") }

// FuzzLex: the pieces tile the source (in order, no gaps, no overlap,
// within bounds), each has the line and start-of-line flag of its offset
// and the shape of its kind; an error is a lexError at an existing line.
func FuzzLex(f *testing.F) {
	for _, s := range fuzzSQLSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, src string, mysql bool) {
		syn := fuzzSyntax(mysql)
		pieces, err := lex(src, syn)
		lines := strings.Count(src, "\n") + 1
		if err != nil {
			var le *lexError
			if !errors.As(err, &le) {
				t.Fatalf("error %v (%T) is not a *lexError", err, err)
			}
			if le.line < 1 || le.line > lines {
				t.Fatalf("error at line %d of a %d-line source: %v", le.line, lines, err)
			}
			if !strings.Contains(le.msg, "line "+strconv.Itoa(le.line)) {
				t.Fatalf("error at line %d does not say so: %v", le.line, err)
			}
			return
		}
		pos := 0
		for i, p := range pieces {
			if p.start != pos || p.end <= p.start || p.end > len(src) {
				t.Fatalf("piece %d is [%d,%d), want it to start at %d and end by %d: %+v", i, p.start, p.end, pos, len(src), pieces)
			}
			pos = p.end
			if want := lineAt(src, p.start); p.line != want {
				t.Fatalf("piece %d at offset %d: line %d, want %d", i, p.start, p.line, want)
			}
			lineStart := strings.LastIndexByte(src[:p.start], '\n') + 1
			if want := strings.Trim(src[lineStart:p.start], " \t\r\f\v") == ""; p.bol != want {
				t.Fatalf("piece %d at offset %d: bol %v, want %v", i, p.start, p.bol, want)
			}
			if i > 0 && p.kind == pCode && pieces[i-1].kind == pCode {
				t.Fatalf("pieces %d and %d are both code: a run of code is one piece", i-1, i)
			}
			text := src[p.start:p.end]
			if msg := pieceShape(p.kind, text, syn); msg != "" {
				t.Fatalf("piece %d (kind %d) %q: %s", i, p.kind, text, msg)
			}
		}
		if pos != len(src) {
			t.Fatalf("pieces end at %d of %d bytes", pos, len(src))
		}
	})
}

// pieceShape says what is wrong with text as a piece of kind, or "".
func pieceShape(kind pieceKind, text string, syn dialect.Syntax) string {
	switch kind {
	case pSemicolon:
		if text != ";" {
			return "a semicolon piece is not \";\""
		}
	case pLineComment:
		if !strings.HasPrefix(text, "--") && !(syn.HashComments && text[0] == '#') {
			return "a line comment does not start with -- or #"
		}
		if strings.Contains(text, "\n") {
			return "a line comment holds a newline"
		}
	case pBlockComment:
		if len(text) < 4 || !strings.HasPrefix(text, "/*") || !strings.HasSuffix(text, "*/") {
			return "a block comment is not /* ... */"
		}
	case pQuoted:
		switch text[0] {
		case '\'', '"', '`':
			if len(text) < 2 || text[len(text)-1] != text[0] {
				return "a quoted piece does not end with its quote"
			}
		case '$':
			tag, ok := dollarTag(text, 0)
			if !ok || len(text) < 2*len(tag) || !strings.HasSuffix(text, tag) {
				return "a dollar-quoted piece does not end with its tag"
			}
		case '/':
			if !strings.HasPrefix(text, "/*!") && !strings.HasPrefix(text, "/*+") || !strings.HasSuffix(text, "*/") {
				return "a quoted comment is not /*! ... */ or /*+ ... */"
			}
		default:
			return "a quoted piece starts with no quote"
		}
	case pCode:
		if strings.ContainsAny(text, ";'\"`") || strings.Contains(text, "--") || strings.Contains(text, "/*") || syn.HashComments && strings.Contains(text, "#") {
			return "code holds the start of another kind of piece"
		}
	default:
		return "unknown kind"
	}
	return ""
}

// FuzzParseFile: an error is a *FileError naming the file at an existing
// line (0: the whole file); a parsed file has the sections its kind says,
// statements that are non-empty, start at an existing line and (without
// ENVSUB) are the source's text at that line, the same checksum on a
// second parse, and never shows the value of a secret-named variable.
func FuzzParseFile(f *testing.F) {
	for _, s := range fuzzSQLSeeds {
		for kind := range 3 {
			f.Add(s, uint8(kind), false)
			f.Add(s, uint8(kind), true)
		}
	}
	f.Fuzz(func(t *testing.T, src string, k uint8, mysql bool) {
		const file = "db/00001_fuzz.sql"
		kind := fileKind(k % 3)
		syn := fuzzSyntax(mysql)
		lines := strings.Count(src, "\n") + 1
		envsub := strings.Contains(strings.ToUpper(src), "ENVSUB")
		secretFree := !strings.Contains(src, fuzzSecret)
		pf, err := parseFileEnv(file, src, syn, kind, fuzzEnv)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FileError", err, err)
			}
			if fe.File != file || fe.Line < 0 || fe.Line > lines {
				t.Fatalf("error names %s line %d, want %s and a line in 0..%d: %v", fe.File, fe.Line, file, lines, err)
			}
			if secretFree && strings.Contains(err.Error(), fuzzSecret) {
				t.Fatalf("error shows the value of DB_PASSWORD: %v", err)
			}
			return
		}
		switch {
		case kind == annotated && (pf.up == nil || pf.format != FormatFerry && pf.format != FormatGoose):
			t.Fatalf("annotated file: format %q, up %v", pf.format, pf.up)
		case kind == migrateUp && (pf.up == nil || pf.down != nil || pf.format != FormatMigrate):
			t.Fatalf(".up.sql file: format %q, up %v, down %v", pf.format, pf.up, pf.down)
		case kind == migrateDown && (pf.down == nil || pf.up != nil || pf.format != FormatMigrate):
			t.Fatalf(".down.sql file: format %q, up %v, down %v", pf.format, pf.up, pf.down)
		case pf.up != nil && len(pf.checksum) != 64, pf.up == nil && pf.checksum != "":
			t.Fatalf("checksum %q with up section %v", pf.checksum, pf.up)
		}
		for _, sec := range []*Section{pf.up, pf.down} {
			if sec == nil {
				continue
			}
			if sec.File != file {
				t.Fatalf("section names file %q, want %q", sec.File, file)
			}
			for i, st := range sec.Statements {
				if st.Line < 1 || st.Line > lines {
					t.Fatalf("statement %d %q at line %d of a %d-line file", i, st.SQL, st.Line, lines)
				}
				if secretFree && strings.Contains(st.Display(), fuzzSecret) {
					t.Fatalf("statement %d shows the value of DB_PASSWORD: %q", i, st.Display())
				}
				if envsub {
					continue
				}
				if strings.TrimSpace(st.SQL) == "" {
					t.Fatalf("statement %d is empty: %q", i, st.SQL)
				}
				if !occursAtLine(src, st.SQL, st.Line) {
					t.Fatalf("statement %d %q is not the source's text at line %d", i, st.SQL, st.Line)
				}
			}
		}
		again, err := parseFileEnv(file, src, syn, kind, fuzzEnv)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		if again.checksum != pf.checksum {
			t.Fatalf("checksum %s, then %s", pf.checksum, again.checksum)
		}
	})
}

// occursAtLine reports whether sub occurs in src starting on the given line.
func occursAtLine(src, sub string, line int) bool {
	for off := 0; ; {
		i := strings.Index(src[off:], sub)
		if i < 0 {
			return false
		}
		if lineAt(src, off+i) == line {
			return true
		}
		off += i + 1
		if off > len(src) {
			return false
		}
	}
}

// FuzzVersionPrefix: a usable version is positive and is the number the
// name's leading digits spell, followed by '_' and the name; an unusable
// one says why. splitVersion and FileVersion agree with it.
func FuzzVersionPrefix(f *testing.F) {
	for _, s := range []string{
		"00042_add_users", "1_x", "0_a", "000_a", "12345678901234567890_a", "9999999999999999999_a",
		"9223372036854775807_max", "9223372036854775808_over", "42-add", "add_users", "42", "42_",
		"00000000000000000000042_a", "20261129120000_timestamp", "_x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, base string) {
		v, name, reason := parseVersionPrefix(base)
		sv, sname, ok := splitVersion(base)
		if sv != v || sname != name || ok != (reason == "") {
			t.Fatalf("splitVersion(%q) = %d, %q, %v; parseVersionPrefix = %d, %q, %q", base, sv, sname, ok, v, name, reason)
		}
		digits := len(base) - len(strings.TrimLeft(base, "0123456789"))
		for _, suffix := range []string{".sql", ".up.sql", ".down.sql"} {
			fv, fok := FileVersion(base + suffix)
			if fv != v || fok != (reason == "") {
				t.Fatalf("FileVersion(%q) = %d, %v; parseVersionPrefix = %d, %q", base+suffix, fv, fok, v, reason)
			}
		}
		if reason != "" {
			if v != 0 || name != "" {
				t.Fatalf("parseVersionPrefix(%q) = %d, %q with reason %q", base, v, name, reason)
			}
			return
		}
		if v <= 0 {
			t.Fatalf("parseVersionPrefix(%q) = %d: not positive", base, v)
		}
		want, err := strconv.ParseInt(strings.TrimLeft(base[:digits], "0"), 10, 64)
		if err != nil || want != v {
			t.Fatalf("parseVersionPrefix(%q) = %d, the digits %q spell %d (%v)", base, v, base[:digits], want, err)
		}
		if base[digits] != '_' || name != base[digits+1:] {
			t.Fatalf("parseVersionPrefix(%q): name %q, want what follows %q_", base, name, base[:digits])
		}
	})
}
