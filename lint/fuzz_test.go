package lint_test

import (
	"testing"
	"testing/fstest"

	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
)

// FuzzCheck lints arbitrary migration files on every dialect: lint reads
// whatever SQL it is given, so no input may make it panic or loop, and
// every finding must point into the file.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"CREATE INDEX a ON t (x);",
		"ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT random(), ALTER COLUMN y TYPE text USING y::text;",
		"ALTER TABLE t ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES u (id) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT c;",
		"CREATE TABLE n (id int); DROP TABLE t; ALTER TABLE n RENAME TO t;",
		"ALTER TABLE t MODIFY c varchar(10) AFTER b, ALGORITHM=INPLACE, LOCK=NONE;",
		"-- ferry:lint-ignore drop-table why\nDROP TABLE t;",
		"DO $$ BEGIN END $$; ALTER TYPE m ADD VALUE 'x';",
		"ALTER TABLE `t` CHANGE `a` `b` bigint; /*!50001 CREATE INDEX i ON t (c) */",
		"ALTER TABLE [t] ADD COLUMN c DEFAULT (-1);",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		for _, d := range []string{"postgres", "mysql", "sqlite"} {
			fsys := fstest.MapFS{
				"1_base.sql":   {Data: []byte("-- +ferry up\nCREATE TABLE t (id int, x varchar(5), y int);\n")},
				"2_change.sql": {Data: []byte("-- +ferry up\n" + sql + "\n")},
			}
			migs, err := migrate.Load(fsys, "", syntaxOf(d))
			if err != nil {
				continue // not a migration file: migrate reports it
			}
			rep, err := lint.Check(migs, lint.Config{Dialect: d})
			if err != nil {
				t.Fatalf("%s: %v", d, err)
			}
			lines := 2 + len(sql) // an upper bound on the file's lines
			for _, f := range rep.Findings {
				if f.Line < 1 || f.Line > lines || f.Column < 1 {
					t.Fatalf("%s: finding %s at %d:%d outside the file", d, f.Rule, f.Line, f.Column)
				}
			}
		}
	})
}
