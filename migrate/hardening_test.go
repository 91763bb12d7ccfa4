package migrate

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// TestByteOrderMark: a file re-saved by a Windows editor starts with a UTF-8
// byte-order mark. It used to be "SQL outside a section" at line 1 (ferry
// and goose files) or be sent to the server (golang-migrate files); it is
// dropped, and the checksum is the same as without it.
func TestByteOrderMark(t *testing.T) {
	const bom = "\ufeff"
	files := map[string]string{
		"00001_ferry.sql":        "-- +ferry up\nCREATE TABLE a (id int);\n-- +ferry down\nDROP TABLE a;\n",
		"00002_goose.sql":        "-- +goose Up\nCREATE TABLE b (id int);\n",
		"00003_migrate.up.sql":   "CREATE TABLE c (id int);\n",
		"00003_migrate.down.sql": "DROP TABLE c;\n",
	}
	plain, withBOM := fstest.MapFS{}, fstest.MapFS{}
	for name, body := range files {
		plain[name] = &fstest.MapFile{Data: []byte(body)}
		withBOM[name] = &fstest.MapFile{Data: []byte(bom + body)}
	}
	want, err := Load(plain, "m", pgSyntax)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(withBOM, "m", pgSyntax)
	if err != nil {
		t.Fatalf("files with a byte-order mark: %v", err)
	}
	for i := range want {
		if got[i].Checksum != want[i].Checksum {
			t.Errorf("%s: checksum %s with a BOM, %s without", got[i].Source, got[i].Checksum, want[i].Checksum)
		}
		if !reflect.DeepEqual(stmts(got[i].Up), stmts(want[i].Up)) || !reflect.DeepEqual(stmts(got[i].Down), stmts(want[i].Down)) {
			t.Errorf("%s: statements %q / %q with a BOM, %q / %q without", got[i].Source, stmts(got[i].Up), stmts(got[i].Down), stmts(want[i].Up), stmts(want[i].Down))
		}
	}
}

// TestAllowEmpty: an unedited `ferry new` file (an empty up section) is a
// file error unless the file says it is meant to be empty.
func TestAllowEmpty(t *testing.T) {
	pf, err := parseFile("1_noop.sql", "-- +ferry up\n-- +ferry allow-empty\n-- nothing to do\n", pgSyntax, annotated)
	if err != nil {
		t.Fatalf("allow-empty: %v", err)
	}
	if len(pf.up.Statements) != 0 {
		t.Fatalf("statements: %q", stmts(pf.up))
	}
	// goose files keep goose's rule, empty is fine, unless the file is
	// still the template a new migration starts with, in any format.
	if _, err := parseFile("2_g.sql", "-- +goose Up\n-- +goose Down\n", pgSyntax, annotated); err != nil {
		t.Errorf("empty goose up: %v", err)
	}
	for _, src := range []string{"-- +goose Up\n" + TODOMarker + "\n\n-- +goose Down\n", "-- +ferry up\n" + TODOMarker + "\n-- +ferry down\nDROP TABLE t;\n"} {
		if _, err := parseFile("4_t.sql", src, pgSyntax, annotated); err == nil || !strings.Contains(err.Error(), "the up section is empty") {
			t.Errorf("an unedited new file: %v", err)
		}
	}
	// An empty golang-migrate file says it is meant to be empty.
	if _, err := parseFile("3_m.up.sql", "-- nothing\n", pgSyntax, migrateUp); err == nil || !strings.Contains(err.Error(), "the file is empty") {
		t.Errorf("empty golang-migrate up: %v", err)
	}
	if _, err := parseFile("3_m.up.sql", "-- +ferry allow-empty\n", pgSyntax, migrateUp); err != nil {
		t.Errorf("empty golang-migrate up with allow-empty: %v", err)
	}
}

// TestVersionReasons: a file name whose version ferry cannot use says why.
func TestVersionReasons(t *testing.T) {
	for name, want := range map[string]string{
		"0_a.sql":                       "version 0 is not allowed",
		"000_a.sql":                     "version 0 is not allowed",
		"12345678901234567890_a.sql":    "has 20 digits: at most 19 fit",
		"9999999999999999999_a.sql":     "too large",
		"42-add.sql":                    "underscore after the version 42",
		"add_users.sql":                 "must start with a version number",
		"00000000000000000000042_a.sql": "",
	} {
		fsys := fstest.MapFS{name: {Data: []byte("-- +ferry up\nSELECT 1;\n")}}
		_, err := Load(fsys, "m", pgSyntax)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		var fe *FileError
		if !errors.As(err, &fe) || fe.File != "m/"+name || !strings.Contains(fe.Msg, want) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", name, err, want)
		}
	}
}

// TestNotText: a migration file that is not UTF-8 text, or whose
// extension is .sql in another case, is refused with its name, not read
// as garbage SQL or skipped.
func TestNotText(t *testing.T) {
	utf16 := func(s string, bom []byte) []byte {
		out := append([]byte(nil), bom...)
		for _, r := range s {
			out = append(out, byte(r), 0)
		}
		return out
	}
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"1_le.sql":       {utf16("-- +ferry up\nSELECT 1;\n", []byte{0xFF, 0xFE}), "the file is UTF-16 text: save it as UTF-8"},
		"2_nobom.sql":    {utf16("-- +ferry up\nSELECT 1;\n", nil), "line 1: the file has a NUL byte"},
		"3_nul.sql":      {[]byte("-- +ferry up\nSELECT 1;\nSELECT '\x00';\n"), "line 3: the file has a NUL byte"},
		"4_upper.SQL":    {[]byte("-- +ferry up\nSELECT 1;\n"), "extension .SQL: ferry reads migration files ending in .sql"},
		"5_mixed.up.Sql": {[]byte("SELECT 1;\n"), "extension .Sql"},
	} {
		fsys := fstest.MapFS{name: {Data: tc.data}}
		_, err := Load(fsys, "m", pgSyntax)
		var fe *FileError
		if !errors.As(err, &fe) || fe.File != "m/"+name || !strings.Contains(fe.Msg, tc.want) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", name, err, tc.want)
		}
	}
	// A file that is not a migration (no version) may end in .SQL.
	if _, err := Load(fstest.MapFS{"README.SQL": {Data: []byte("notes")}}, "m", pgSyntax); err != nil {
		t.Errorf("README.SQL: %v", err)
	}
}

// TestEnvsub: goose's ENVSUB substitutes variables between ON and OFF, as
// goose does, with the checksum taken before substitution, the values of
// secret-named variables masked in what is shown, and a variable that is
// not set an error naming file, line and variable.
func TestEnvsub(t *testing.T) {
	src := `-- +goose Up
CREATE TABLE ${NOT_YET} (id int);
-- +goose ENVSUB ON
CREATE TABLE ${TABLE_NAME} (id int, note text DEFAULT '${NOTE:-none}', region text DEFAULT '$REGION');
INSERT INTO ${TABLE_NAME} VALUES (1, 'costs $$5', 'pw=${DB_PASSWORD}');
-- +goose ENVSUB OFF
SELECT '${TABLE_NAME}';
-- +goose Down
-- +goose ENVSUB ON
DROP TABLE ${TABLE_NAME};
`
	env := map[string]string{"TABLE_NAME": "things", "REGION": "eu", "DB_PASSWORD": "Hunter2Secret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	pf, err := parseFileEnv("m/1_x.sql", src, pgSyntax, annotated, lookup)
	if err != nil {
		t.Fatal(err)
	}
	wantUp := []string{
		"CREATE TABLE ${NOT_YET} (id int)",
		"CREATE TABLE things (id int, note text DEFAULT 'none', region text DEFAULT 'eu')",
		"INSERT INTO things VALUES (1, 'costs $5', 'pw=Hunter2Secret')",
		"SELECT '${TABLE_NAME}'",
	}
	if got := stmts(pf.up); !reflect.DeepEqual(got, wantUp) {
		t.Errorf("up:\n got %q\nwant %q", got, wantUp)
	}
	if got := stmts(pf.down); !reflect.DeepEqual(got, []string{"DROP TABLE things"}) {
		t.Errorf("down: %q", got)
	}
	if shown := pf.up.Statements[2].Display(); strings.Contains(shown, "Hunter2Secret") || !strings.Contains(shown, "pw=xxxxx") {
		t.Errorf("shown: %q", shown)
	}
	if !reflect.DeepEqual(pf.secrets, []string{"Hunter2Secret"}) {
		t.Errorf("secrets: %q", pf.secrets)
	}
	// The checksum does not depend on the environment.
	env["TABLE_NAME"] = "other"
	pf2, err := parseFileEnv("m/1_x.sql", src, pgSyntax, annotated, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if pf2.checksum != pf.checksum {
		t.Error("the checksum changed with the environment")
	}
	// A variable that is not set.
	delete(env, "TABLE_NAME")
	_, err = parseFileEnv("m/1_x.sql", src, pgSyntax, annotated, lookup)
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != "m/1_x.sql" || fe.Line != 4 || !strings.Contains(fe.Msg, "TABLE_NAME is not set") {
		t.Errorf("unset variable: %v", err)
	}
	// A secret in a server's error message is hidden.
	m := &Migration{secrets: pf.secrets}
	if msg := m.hide(errors.New(`syntax error at or near "Hunter2Secret"`)).Error(); strings.Contains(msg, "Hunter2Secret") {
		t.Errorf("hide: %s", msg)
	}
}

// TestEnvsubSplitsAfterSubstituting: goose substitutes the lines of a file
// before it splits them into statements, so a value may hold a statement
// or turn $$$$ into a dollar quote; and it reads only the part it runs, so
// a variable used only by the down part is needed only to revert.
func TestEnvsubSplitsAfterSubstituting(t *testing.T) {
	env := map[string]string{"EXTRA": "CREATE TABLE extra (id int);", "WHO": "ops"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	src := "-- +goose Up\n-- +goose ENVSUB ON\nDO $$$$ BEGIN RAISE NOTICE '${WHO}'; END $$$$;\n${EXTRA}\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t ${DROP_MODE};\n"
	pf, err := parseFileEnv("m/1_x.sql", src, pgSyntax, annotated, lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"DO $$ BEGIN RAISE NOTICE 'ops'; END $$", "CREATE TABLE extra (id int)", "CREATE TABLE t (id int)"}
	if got := stmts(pf.up); !reflect.DeepEqual(got, want) {
		t.Errorf("up:\n got %q\nwant %q", got, want)
	}
	var fe *FileError
	if !errors.As(pf.downErr, &fe) || fe.Line != 7 || !strings.Contains(fe.Msg, "DROP_MODE is not set") {
		t.Errorf("down part's error: %v", pf.downErr)
	}
	// The checksum is the file's as written.
	env["EXTRA"] = "CREATE TABLE other (id int);"
	pf2, err := parseFileEnv("m/1_x.sql", src, pgSyntax, annotated, lookup)
	if err != nil || pf2.checksum != pf.checksum {
		t.Errorf("checksum changed with the environment: %v", err)
	}
	// A comment line that cannot be substituted is left alone.
	if _, err := parseFileEnv("m/2_y.sql", "-- +goose ENVSUB ON\n-- +goose Up\n-- costs $5\nSELECT 1;\n", pgSyntax, annotated, lookup); err != nil {
		t.Errorf("comment line with a $: %v", err)
	}
}
