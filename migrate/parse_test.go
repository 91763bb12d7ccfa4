package migrate

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrydb/ferry/dialect"
)

var (
	pgSyntax    = dialect.Syntax{NestedComments: true, DollarQuotes: true}
	mysqlSyntax = dialect.Syntax{BackslashEscapes: true, HashComments: true}
)

func stmts(sec *Section) []string {
	if sec == nil {
		return nil
	}
	out := make([]string, len(sec.Statements))
	for i, s := range sec.Statements {
		out[i] = s.SQL
	}
	return out
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name  string
		syn   dialect.Syntax
		src   string
		want  []string
		lines []int
	}{
		{
			name: "plain", syn: pgSyntax,
			src:   "-- +ferry up\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
			want:  []string{"CREATE TABLE a (id int)", "CREATE TABLE b (id int)"},
			lines: []int{2, 3},
		},
		{
			name: "semicolons in strings and comments", syn: pgSyntax,
			src:   "-- +ferry up\n-- a comment; with a semicolon\nINSERT INTO t VALUES ('a;b', 'it''s; ok'); /* c; */ INSERT INTO t VALUES (\"x;y\");\n",
			want:  []string{"INSERT INTO t VALUES ('a;b', 'it''s; ok')", "INSERT INTO t VALUES (\"x;y\")"},
			lines: []int{3, 3},
		},
		{
			name: "dollar-quoted function body", syn: pgSyntax,
			src: `-- +ferry up
CREATE FUNCTION f() RETURNS trigger AS $$
BEGIN
  NEW.x := 1; RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE FUNCTION g() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
SELECT $1;
`,
			want: []string{
				"CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  NEW.x := 1; RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql",
				"CREATE FUNCTION g() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
				"SELECT $1",
			},
			lines: []int{2, 7, 8},
		},
		{
			name: "nested comments on postgres", syn: pgSyntax,
			src:  "-- +ferry up\n/* outer /* inner; */ still comment; */ SELECT 1;",
			want: []string{"SELECT 1"},
		},
		{
			name: "postgres E-string backslash", syn: pgSyntax,
			src:  "-- +ferry up\nSELECT E'a\\';b'; SELECT 'c:\\'; SELECT 2;",
			want: []string{"SELECT E'a\\';b'", "SELECT 'c:\\'", "SELECT 2"},
		},
		{
			name: "mysql backslash escapes, hash comments and executable comments", syn: mysqlSyntax,
			src:  "-- +ferry up\n# hash; comment\nINSERT INTO t VALUES ('a\\';b');\n/*!40101 SET NAMES utf8 */;\nSELECT `we;ird`;",
			want: []string{"INSERT INTO t VALUES ('a\\';b')", "/*!40101 SET NAMES utf8 */", "SELECT `we;ird`"},
		},
		{
			name: "last statement without semicolon", syn: pgSyntax,
			src:  "-- +ferry up\nCREATE TABLE a (id int)\n-- +ferry down\nDROP TABLE a\n",
			want: []string{"CREATE TABLE a (id int)"},
		},
		{
			name: "statement block keeps inner semicolons", syn: mysqlSyntax,
			src:   "-- +ferry up\n-- +ferry statement-begin\nCREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN\n  SET NEW.x = 1;\n  SET NEW.y = 2;\nEND;\n-- +ferry statement-end\nSELECT 1;\n",
			want:  []string{"CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN\n  SET NEW.x = 1;\n  SET NEW.y = 2;\nEND;", "SELECT 1"},
			lines: []int{3, 8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pf, err := parseFile("m.sql", tt.src, tt.syn, annotated)
			if err != nil {
				t.Fatal(err)
			}
			if got := stmts(pf.up); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("statements:\n got %q\nwant %q", got, tt.want)
			}
			if tt.lines != nil {
				for i, l := range tt.lines {
					if got := pf.up.Statements[i].Line; got != l {
						t.Errorf("statement %d line = %d, want %d", i+1, got, l)
					}
				}
			}
		})
	}
}

func TestGooseFormat(t *testing.T) {
	src := `-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION f() RETURNS int AS '
  SELECT 1;
' LANGUAGE sql;
-- +goose StatementEnd
CREATE TABLE t (id int);

-- +goose Down
DROP TABLE t;
DROP FUNCTION f;
`
	pf, err := parseFile("00002_f.sql", src, pgSyntax, annotated)
	if err != nil {
		t.Fatal(err)
	}
	if pf.format != FormatGoose {
		t.Errorf("format = %q", pf.format)
	}
	wantUp := []string{"CREATE OR REPLACE FUNCTION f() RETURNS int AS '\n  SELECT 1;\n' LANGUAGE sql;", "CREATE TABLE t (id int)"}
	if got := stmts(pf.up); !reflect.DeepEqual(got, wantUp) {
		t.Errorf("up = %q", got)
	}
	if got := stmts(pf.down); !reflect.DeepEqual(got, []string{"DROP TABLE t", "DROP FUNCTION f"}) {
		t.Errorf("down = %q", got)
	}
	noTx, err := parseFile("3_x.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (id);\n", pgSyntax, annotated)
	if err != nil {
		t.Fatal(err)
	}
	if !noTx.noTx {
		t.Error("NO TRANSACTION not honoured")
	}
}

func TestChecksumIgnoresCosmeticEdits(t *testing.T) {
	a, err := parseFile("a.sql", "-- +ferry up\nCREATE TABLE a (id int, name text);\n-- +ferry down\nDROP TABLE a;", pgSyntax, annotated)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseFile("a.sql", "-- header comment\n-- +ferry up\n\n/* why */\nCREATE   TABLE a (\n  id int,   -- the key\n  name text\n)\n-- +ferry down\nDROP TABLE a; -- changed down", pgSyntax, annotated)
	if err != nil {
		t.Fatal(err)
	}
	if a.checksum != b.checksum {
		t.Errorf("cosmetic edit changed the checksum: %s vs %s", a.checksum, b.checksum)
	}
	c, err := parseFile("a.sql", "-- +ferry up\nCREATE TABLE a (id int, name varchar(10));", pgSyntax, annotated)
	if err != nil {
		t.Fatal(err)
	}
	if c.checksum == a.checksum {
		t.Error("a real edit kept the checksum")
	}
	d, err := parseFile("a.sql", "-- +ferry up\nINSERT INTO a VALUES ('x  y');", pgSyntax, annotated)
	if err != nil {
		t.Fatal(err)
	}
	e, err := parseFile("a.sql", "-- +ferry up\nINSERT INTO a VALUES ('x y');", pgSyntax, annotated)
	if err != nil {
		t.Fatal(err)
	}
	if d.checksum == e.checksum {
		t.Error("whitespace inside a string literal must count")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"no up", "CREATE TABLE a (id int);", 1, "SQL outside a section"},
		{"no annotations at all", "-- just a comment\n", 0, "no -- +ferry up section"},
		{"unknown ferry annotation", "-- +ferry up\nSELECT 1;\n-- +ferry upp\n", 3, `unknown annotation "-- +ferry upp"`},
		{"unknown goose annotation", "-- +goose Up\nSELECT 1;\n-- +goose Sideways\n", 3, `unknown annotation "-- +goose Sideways"`},
		{"second up", "-- +ferry up\nSELECT 1;\n-- +ferry up\nSELECT 2;\n", 3, "second up section (the first starts at line 1)"},
		{"mixed formats", "-- +ferry up\nSELECT 1;\n-- +goose Down\n", 3, "mixes -- +ferry and -- +goose"},
		{"unterminated string", "-- +ferry up\nSELECT 1;\nINSERT INTO t VALUES ('oops);\n", 3, "unterminated string starting at line 3"},
		{"unterminated dollar quote", "-- +ferry up\nCREATE FUNCTION f() AS $$ SELECT 1;\n", 2, "unterminated dollar-quoted string $$"},
		{"unterminated comment", "-- +ferry up\n/* never closed\nSELECT 1;", 2, "unterminated /* comment"},
		{"unclosed statement block", "-- +ferry up\n-- +ferry statement-begin\nSELECT 1;\n", 2, "statement-begin has no matching statement-end"},
		{"end without begin", "-- +ferry up\nSELECT 1;\n-- +ferry statement-end\n", 3, "statement-end without statement-begin"},
		{"mysql client DELIMITER", "-- +ferry up\nDELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //\nDELIMITER ;\n", 2, "DELIMITER is a command of the mysql client"},
		{"empty up section", "-- +ferry up\n-- write it here\n-- +ferry down\nDROP TABLE t;\n", 1, "the up section is empty"},
		{"envsub bad dollar", "-- +goose ENVSUB ON\n-- +goose Up\nSELECT $1;\n", 3, "ENVSUB"},
		{"ddl-lock-timeout without a duration", "-- +ferry up\n-- +ferry ddl-lock-timeout\nSELECT 1;\n", 2, "takes a duration such as 30s"},
		{"words after an annotation", "-- +ferry up\n-- +ferry contract maybe\nSELECT 1;\n", 2, `unknown annotation "-- +ferry contract maybe"`},
		{"ddl-lock-timeout not a duration", "-- +ferry up\n-- +ferry ddl-lock-timeout soon\nSELECT 1;\n", 2, `not "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFile("migrations/0001_x.sql", tt.src, pgSyntax, annotated)
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error = %v, want a *FileError", err)
			}
			if fe.File != "migrations/0001_x.sql" || fe.Line != tt.line || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("got %q (line %d), want line %d containing %q", err, fe.Line, tt.line, tt.msg)
			}
		})
	}
}

func TestLoadFormatsAndErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"00001_ferry.sql":           {Data: []byte("-- +ferry up\nCREATE TABLE a (id int);\n-- +ferry down\nDROP TABLE a;\n")},
		"00002_goose.sql":           {Data: []byte("-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n")},
		"00003_migrate.up.sql":      {Data: []byte("CREATE TABLE c (id int);\nCREATE TABLE d (id int);\n")},
		"00003_migrate.down.sql":    {Data: []byte("DROP TABLE d; DROP TABLE c;\n")},
		"00004_only_up.up.sql":      {Data: []byte("-- +ferry no-transaction\nCREATE TABLE e (id int);\n")},
		"README.md":                 {Data: []byte("not a migration")},
		"sub/00009_ignored.sql":     {Data: []byte("whatever")},
		"00005_registered_in_go.go": {Data: []byte("package migrations")},
	}
	goMig := &GoMigration{Version: 5, Name: "registered_in_go", Up: func(ctx context.Context, q Querier) error { return nil }}
	migs, err := Load(fsys, "migrations", pgSyntax, goMig)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range migs {
		got = append(got, string(m.Format)+":"+m.Name)
	}
	want := []string{"ferry:ferry", "goose:goose", "golang-migrate:migrate", "golang-migrate:only_up", "go:registered_in_go"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %q, want %q", got, want)
	}
	if m := migs[2]; len(m.Up.Statements) != 2 || len(m.Down.Statements) != 2 || m.Source != "migrations/00003_migrate.up.sql" {
		t.Errorf("golang-migrate pair parsed wrong: %+v", m)
	}
	if !migs[3].NoTransaction || migs[3].Down != nil {
		t.Errorf("only_up: NoTransaction=%v Down=%v", migs[3].NoTransaction, migs[3].Down)
	}

	bad := fstest.MapFS{
		"0001_a.sql":           {Data: []byte("-- +ferry up\nSELECT 1;\n")},
		"1_b.sql":              {Data: []byte("-- +ferry up\nSELECT 2;\n")},
		"0002_c.down.sql":      {Data: []byte("SELECT 3;\n")},
		"notversioned.sql":     {Data: []byte("-- +ferry up\nSELECT 4;\n")},
		"0003_d.sql":           {Data: []byte("-- +ferry up\nSELECT 'x;\n")},
		"0004_unregistered.go": {Data: []byte("package m")},
	}
	_, err = Load(bad, "db", pgSyntax)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want *LoadError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"duplicate version 1",
		"db/0002_c.down.sql: down migration without an up part",
		"db/notversioned.sql: file name must start with a version number",
		"db/0003_d.sql:2: unterminated string",
		"db/0004_unregistered.go: Go migration file for version 4",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("load error lacks %q:\n%s", want, msg)
		}
	}
	if len(le.Errs) != 5 {
		t.Errorf("got %d problems, want 5:\n%s", len(le.Errs), msg)
	}
}

func TestParseDDLLockTimeout(t *testing.T) {
	for src, want := range map[string]string{
		"-- +ferry up\nSELECT 1;\n":                                "none",
		"-- +ferry ddl-lock-timeout 2m\n-- +ferry up\nSELECT 1;\n": "2m0s",
		"-- +ferry up\n-- +ferry DDL-Lock-Timeout 0\nSELECT 1;\n":  "0s",
	} {
		pf, err := parseFile("m/0001_x.sql", src, pgSyntax, annotated)
		if err != nil {
			t.Fatal(err)
		}
		got := "none"
		if pf.lockWait != nil {
			got = pf.lockWait.String()
		}
		if got != want {
			t.Errorf("%q: lock wait %s, want %s", src, got, want)
		}
	}
}
