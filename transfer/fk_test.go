package transfer

import (
	"bytes"
	"log/slog"
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
				byKey := func(a, b Problem) int {
					switch {
					case a.Detail < b.Detail:
						return -1
					case a.Detail > b.Detail:
						return 1
					}
					return 0
				}
				slices.SortFunc(got, byKey)
				w := slices.Clone(want)
				slices.SortFunc(w, byKey)
				if !slices.Equal(got, w) {
					t.Errorf("memoryKeys %d: problems\n got %+v\nwant %+v", memoryKeys, got, w)
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
