package transfer

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestImportFindsOrphans: rows whose parent is missing (a SQLite source
// never checked its foreign keys; a MySQL one had the checks off) fail
// the verification with the count per foreign key, whether the key is
// checked as the rows are read (one integer column, a small parent) or
// by a query afterwards (a text key, a parent too large to hold, a
// parent value that is not an integer).
func TestImportFindsOrphans(t *testing.T) {
	for _, kind := range []string{database.SQLite, database.MySQL} {
		t.Run(kind, func(t *testing.T) {
			tdb := testdb.New(t, kind)
			files := map[string]string{"001_t.sql": `-- +ferry up
CREATE TABLE p (id INTEGER PRIMARY KEY, num INTEGER UNIQUE, code VARCHAR(10) UNIQUE);
CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER, p_num INTEGER, p_code VARCHAR(10),
    CONSTRAINT c_p_id FOREIGN KEY (p_id) REFERENCES p (id),
    CONSTRAINT c_p_num FOREIGN KEY (p_num) REFERENCES p (num),
    CONSTRAINT c_p_code FOREIGN KEY (p_code) REFERENCES p (code));
`}
			insert := "INSERT INTO c VALUES (1, 1, 10, 'a'), (2, 3, 10, 'a'), (3, NULL, 30, 'z'), (4, 4, 40, NULL)"
			parents := "INSERT INTO p VALUES (1, 10, 'a'), (2, 20, 'b')"
			if kind == database.MySQL {
				insert = "SET STATEMENT foreign_key_checks = 0 FOR " + insert
			} else {
				// SQLite keeps what it is given: a parent value that is not
				// an integer leaves p_num to the query.
				parents = "INSERT INTO p VALUES (1, 10, 'a'), (2, 20, 'b'), (5, 'x', 'c')"
			}
			st, m, mig := exportOf(t, tdb.DB, files, []string{parents, insert}, ExportOptions{})
			if m.Tables[0].Name != "c" || len(m.Tables[0].ForeignKeys) != 3 {
				t.Fatalf("the manifest's first table: %+v", m.Tables[0])
			}
			orphans := map[string]int64{"p_id": 2, "p_num": 2, "p_code": 1} // 3 and 4; 30 and 40; 'z'
			var want []Problem
			for _, fk := range m.Tables[0].ForeignKeys {
				want = append(want, orphanProblem("c", fk, orphans[fk.Columns[0]]))
			}
			for _, memoryKeys := range []int64{0, 1} {
				target := openURL(t, testdb.Create(t, tdb))
				var log bytes.Buffer
				opts := ImportOptions{Options: Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}, memoryKeys: memoryKeys}
				rep, err := Import(tctx(t), st, m.ID, target, mig(target), opts)
				if err == nil {
					t.Fatalf("memoryKeys %d: the import of orphans passed", memoryKeys)
				}
				var got []Problem
				for _, p := range rep.Problems {
					if p.What == "foreign_key" {
						got = append(got, p)
					}
				}
				// In the order of the keys, wherever each was checked.
				if !slices.Equal(got, want) {
					t.Errorf("memoryKeys %d: problems\n got %+v\nwant %+v", memoryKeys, got, want)
				}
				// In memory: p_id always; p_num where p's values are
				// integers; never p_code, nor any with a parent too large.
				var inMemory []string
				for _, line := range strings.Split(log.String(), "\n") {
					if strings.Contains(line, "checked as the rows were read") {
						inMemory = append(inMemory, line[strings.Index(line, "foreign_key="):])
					}
				}
				wantMemory := []string{"foreign_key=c_p_id parent_keys=2", "foreign_key=c_p_num parent_keys=2"}
				switch {
				case memoryKeys == 1:
					wantMemory = nil
				case kind == database.SQLite:
					wantMemory = []string{"foreign_key=" + fkName(m.Tables[0], "p_id") + " parent_keys=3"}
				}
				if !slices.Equal(inMemory, wantMemory) {
					t.Errorf("memoryKeys %d: checked in memory %q, want %q", memoryKeys, inMemory, wantMemory)
				}
			}
		})
	}
}

func fkName(t TableExport, col string) string {
	for _, fk := range t.ForeignKeys {
		if fk.Columns[0] == col {
			return fk.Name
		}
	}
	return ""
}

// TestImportBlobKeys: to SQLite a BLOB is never equal to an integer,
// whatever its bytes spell (x'31' is not 1): a child's or a parent's
// BLOB in an integer key is an orphan, or leaves no parent, as SQLite's
// own foreign_key_check and the query count them.
func TestImportBlobKeys(t *testing.T) {
	tdb := testdb.New(t, database.SQLite)
	files := map[string]string{"001_t.sql": `-- +ferry up
CREATE TABLE p (id INTEGER PRIMARY KEY, k INTEGER UNIQUE);
CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p (id), k INTEGER REFERENCES p (k));
`}
	seed := []string{"INSERT INTO p VALUES (1, 1), (2, x'35')", "INSERT INTO c VALUES (1, x'31', NULL), (2, 1, 5), (3, 2, 1)"}
	st, m, mig := exportOf(t, tdb.DB, files, seed, ExportOptions{})
	for _, memoryKeys := range []int64{0, 1} {
		target := openURL(t, testdb.Create(t, tdb))
		rep, err := Import(tctx(t), st, m.ID, target, mig(target), ImportOptions{memoryKeys: memoryKeys})
		if err == nil {
			t.Fatalf("memoryKeys %d: the import of orphans passed", memoryKeys)
		}
		got := map[string]string{}
		for _, p := range rep.Problems {
			if p.What == "foreign_key" {
				got[p.Detail[strings.Index(p.Detail, "(")+1:strings.Index(p.Detail, ")")]] = p.Got
			}
		}
		if want := map[string]string{"id": "1", "k": "1"}; !maps.Equal(got, want) {
			t.Errorf("memoryKeys %d: orphans per parent column %v, want %v", memoryKeys, got, want)
		}
	}
}

// TestImportKeyWithoutParentColumns: SQLite takes REFERENCES p without
// columns to a p without a primary key (and cannot enforce it): the
// import says the key is not checked, and goes on.
func TestImportKeyWithoutParentColumns(t *testing.T) {
	tdb := testdb.New(t, database.SQLite)
	files := map[string]string{"001_t.sql": `-- +ferry up
CREATE TABLE p (k INTEGER);
CREATE TABLE c (id INTEGER PRIMARY KEY, k INTEGER REFERENCES p);
`}
	st, m, mig := exportOf(t, tdb.DB, files, []string{"INSERT INTO p VALUES (1)", "INSERT INTO c VALUES (1, 2)"}, ExportOptions{})
	target := openURL(t, testdb.Create(t, tdb))
	var log bytes.Buffer
	opts := ImportOptions{Options: Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}}
	if rep, err := Import(tctx(t), st, m.ID, target, mig(target), opts); err != nil {
		t.Fatalf("import: %v %+v", err, rep.Problems)
	}
	if !strings.Contains(log.String(), `level=WARN msg="foreign key not checked: it names no parent columns`) {
		t.Errorf("no warning:\n%s", log.String())
	}
}

// TestImportSharesParentKeys: two foreign keys to one parent column hold
// its values once: both fit in room for one copy.
func TestImportSharesParentKeys(t *testing.T) {
	tdb := testdb.New(t, database.SQLite)
	files := map[string]string{"001_t.sql": `-- +ferry up
CREATE TABLE p (id INTEGER PRIMARY KEY);
CREATE TABLE c (id INTEGER PRIMARY KEY, a INTEGER REFERENCES p (id), b INTEGER REFERENCES p (id));
`}
	st, m, mig := exportOf(t, tdb.DB, files, []string{"INSERT INTO p VALUES (1), (2)", "INSERT INTO c VALUES (1, 1, 3), (2, 4, 2)"}, ExportOptions{})
	target := openURL(t, testdb.Create(t, tdb))
	var log bytes.Buffer
	opts := ImportOptions{Options: Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}, memoryKeys: 2}
	rep, err := Import(tctx(t), st, m.ID, target, mig(target), opts)
	if err == nil {
		t.Fatal("the import of orphans passed")
	}
	if n := strings.Count(log.String(), "checked as the rows were read"); n != 2 {
		t.Errorf("%d keys checked in memory, want 2:\n%s", n, log.String())
	}
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.Got)
	}
	if !slices.Equal(got, []string{"1", "1"}) {
		t.Errorf("problems %+v, want one orphan per key", rep.Problems)
	}
}

// TestOtherDatabaseKey: a MySQL foreign key to a table of another
// database is not in the manifest: its parent is not exported, and a
// table of the same name here is not its parent.
func TestOtherDatabaseKey(t *testing.T) {
	tdb := testdb.New(t, database.MySQL)
	other := openURL(t, testdb.Create(t, tdb))
	exec(t, other, "CREATE TABLE p (id INT PRIMARY KEY)")
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE p (id INT PRIMARY KEY);\n" +
		"CREATE TABLE c (id INT PRIMARY KEY, local_p INT REFERENCES p (id), other_p INT, FOREIGN KEY (other_p) REFERENCES `" + other.URL.Database + "`.p (id));\n"}
	// The other database goes first at the end: c, which references it, first.
	t.Cleanup(func() { exec(t, tdb.DB, "DROP TABLE IF EXISTS c") })
	_, m, _ := exportOf(t, tdb.DB, files, nil, ExportOptions{})
	for _, tb := range m.Tables {
		if tb.Name != "c" {
			continue
		}
		if len(tb.ForeignKeys) != 1 || tb.ForeignKeys[0].Columns[0] != "local_p" {
			t.Errorf("c's foreign keys in the manifest: %+v, want local_p's only", tb.ForeignKeys)
		}
		return
	}
	t.Fatal("no table c in the manifest")
}

// TestImportChecksTargetForeignKeys: the verification checks the foreign
// keys the target declares, not the export's list of them, which is input:
// an export edited to leave out a parent table and the key to it still
// fails the import.
func TestImportChecksTargetForeignKeys(t *testing.T) {
	for _, kind := range []string{database.SQLite, database.MySQL} {
		t.Run(kind, func(t *testing.T) {
			tdb := testdb.New(t, kind)
			files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER NOT NULL, CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES p (id));\n"}
			st, m, mig := exportOf(t, tdb.DB, files, []string{"INSERT INTO p VALUES (1)", "INSERT INTO c VALUES (1, 1), (2, 1)"}, ExportOptions{})
			editManifest(t, st, m.ID, func(doc map[string]any) {
				var kept []any
				for _, table := range doc["tables"].([]any) {
					if tm := table.(map[string]any); tm["name"] == "c" {
						delete(tm, "foreign_keys")
						kept = append(kept, tm)
					}
				}
				doc["tables"] = kept
			})
			target := openURL(t, testdb.Create(t, tdb))
			rep, err := Import(tctx(t), st, m.ID, target, mig(target), ImportOptions{})
			if !errors.Is(err, ErrMismatch) || rep == nil || !slices.ContainsFunc(rep.Problems, func(p Problem) bool {
				return p.Table == "c" && p.What == "foreign_key" && p.Got == "2"
			}) {
				t.Fatalf("import of an export without its parent table and key: %v %+v", err, rep)
			}
		})
	}
}

// TestParentKeys: a parent's keys are found in a bitmap when they are
// dense and by a search when they are not, at the edges of int64 too.
func TestParentKeys(t *testing.T) {
	for _, tc := range []struct {
		keys  []int64
		dense bool
	}{
		{[]int64{1, 2, 3, 5, 64, 65, 130}, true},
		{[]int64{-70, -3, 0, 9}, true},
		{[]int64{-1 << 63, 0, 1<<63 - 1}, false},
		{[]int64{10, 1000000}, false},
		{[]int64{1<<63 - 2, 1<<63 - 1}, true},
	} {
		p := &parentKeys{keys: tc.keys}
		p.index()
		if (p.dense != nil) != tc.dense {
			t.Errorf("%v: dense %v, want %v", tc.keys, p.dense != nil, tc.dense)
		}
		probes := []int64{-1 << 63, -1<<63 + 1, -71, -70, -69, -1, 0, 1, 4, 63, 64, 66, 129, 130, 131, 192, 999999, 1000000, 1<<63 - 3, 1<<63 - 2, 1<<63 - 1}
		for _, v := range probes {
			want := false
			for _, k := range tc.keys {
				want = want || k == v
			}
			if got := p.has(v); got != want {
				t.Errorf("%v: has(%d) = %v, want %v", tc.keys, v, got, want)
			}
		}
	}
}
