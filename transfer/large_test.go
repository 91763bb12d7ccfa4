package transfer

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestLargeValues: rows whose values are read in slices (here anything
// past a few dozen bytes, in slices of a few bytes) export to the same
// lines as rows read whole, import, and verify; on MySQL the rows are
// found again by a composite key with text in it.
func TestLargeValues(t *testing.T) {
	testdb.Each(t, func(t *testing.T, tdb *testdb.DB) {
		ctx := tctx(t)
		types := map[string][2]string{
			database.Postgres: {"bytea", "text"},
			database.MySQL:    {"LONGBLOB", "LONGTEXT"},
			database.SQLite:   {"BLOB", "TEXT"},
		}[tdb.Kind]
		files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE files (region VARCHAR(20), id INT, body " + types[0] +
			", note " + types[1] + ", small VARCHAR(10), PRIMARY KEY (region, id));\n"}
		var all []byte
		for i := range 512 {
			all = append(all, byte(i))
		}
		note := strings.Repeat("Zürich \"quoted\" \\ back\nslash\ttab € 日本 \U0001F600 ", 40)
		var seedSQL []string
		st, m, mig := exportOf(t, tdb.DB, files, seedSQL, ExportOptions{})
		// Seeded after the migration: rows whole, large, and large only
		// in sum; NULLs beside them.
		rows := [][]any{
			{"eu", 1, []byte("small"), "short", "s"},
			{"Ünïcode", 2, all, note, "a"},
			{"eu", 3, nil, note, nil},
			{"us", 4, all[:40], string([]rune(note)[:30]), "b"},
			{"us", 5, all[:0], "", ""},
		}
		for _, r := range rows {
			exec(t, tdb.DB, "INSERT INTO files VALUES (?, ?, ?, ?, ?)", r...)
		}
		_ = m
		whole, err := Export(ctx, st, tdb.DB, mig(tdb.DB), ExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sliced, err := Export(ctx, st, tdb.DB, mig(tdb.DB), ExportOptions{Options: Options{largeRow: 30}, ChunkBytes: 2000})
		if err != nil {
			t.Fatal(err)
		}
		wt, stt := whole.table("files"), sliced.table("files")
		if wt.Rows != 5 || stt.Rows != 5 || wt.RowChecksum != stt.RowChecksum {
			t.Errorf("rows %d and %d, checksums %s and %s: reading in slices changed the rows", wt.Rows, stt.Rows, wt.RowChecksum, stt.RowChecksum)
		}
		if a, b := tableLines(t, st, whole, "files"), tableLines(t, st, sliced, "files"); !slices.Equal(a, b) {
			t.Errorf("lines differ:\nwhole  %.300q\nsliced %.300q", a, b)
		}
		if len(stt.Chunks) < 2 {
			t.Errorf("%d chunks: a large row does not end its chunk", len(stt.Chunks))
		}
		if _, err := st.Check(ctx, sliced.ID, nil); err != nil {
			t.Errorf("check: %v", err)
		}
		target := openURL(t, testdb.Create(t, tdb))
		if _, err := Import(ctx, st, sliced.ID, target, mig(target), ImportOptions{Options: Options{largeRow: 30}}); err != nil {
			t.Fatalf("import: %v", err)
		}
		sameData(t, tdb.DB, target, "the import of the sliced export")
		// The verification reads large values in slices too: a change
		// in the middle of one is seen.
		target2 := openURL(t, testdb.Create(t, tdb))
		m2 := mig(target2)
		im := ImportOptions{Options: Options{largeRow: 30}}
		if _, err := Import(ctx, st, whole.ID, target2, m2, im); err != nil {
			t.Fatalf("import: %v", err)
		}
		sum := func() string {
			var sl rowSum
			sl, _, err := sumRows(ctx, target2, tdb.Kind, &wt.Table, nil, nil, 30, func(int64) {})
			if err != nil {
				t.Fatal(err)
			}
			return sl.String()
		}
		if got := sum(); got != wt.RowChecksum {
			t.Errorf("sum of the loaded rows %s, want %s", got, wt.RowChecksum)
		}
		exec(t, target2, "UPDATE files SET note = REPLACE(note, 'Zürich', 'Zurich') WHERE id = 2")
		if got := sum(); got == wt.RowChecksum {
			t.Errorf("a changed large value leaves the checksum as it was")
		}
	})
}

// tableLines returns the lines of table's chunks in export m, sorted.
func tableLines(t *testing.T, st *Store, m *Manifest, table string) []string {
	t.Helper()
	var out []string
	for _, c := range m.table(table).Chunks {
		r, err := st.openChunk(tctx(t), m.ID, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		for {
			line, err := r.line()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(line))
		}
		r.close()
	}
	slices.Sort(out)
	return out
}

// TestLargeValuesFoundAgain: a row read again for its large values is the
// row the export flagged, where a careless lookup would find another: two
// partitions' rows at the same ctid (PostgreSQL), DECIMAL keys that are
// one number as doubles (MySQL).
func TestLargeValuesFoundAgain(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, 100) }
	cases := map[string]struct {
		migration string
		seed      []string
	}{
		database.Postgres: {
			migration: "CREATE TABLE ev (region text, id int, body text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);\n" +
				"CREATE TABLE ev_eu PARTITION OF ev FOR VALUES IN ('eu');\nCREATE TABLE ev_us PARTITION OF ev FOR VALUES IN ('us');\n",
			seed: []string{"INSERT INTO ev VALUES ('eu', 1, '" + long("e") + "'), ('us', 1, '" + long("u") + "')"},
		},
		database.MySQL: {
			migration: "CREATE TABLE ev (k DECIMAL(30,1) PRIMARY KEY, body LONGTEXT);\n",
			seed:      []string{"INSERT INTO ev VALUES (12345678901234567890.1, '" + long("e") + "'), (12345678901234567890.2, '" + long("u") + "')"},
		},
	}
	for kind, c := range cases {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			tdb := testdb.New(t, kind)
			files := map[string]string{"001_t.sql": "-- +ferry up\n" + c.migration}
			st, whole, mig := exportOf(t, tdb.DB, files, c.seed, ExportOptions{})
			sliced, err := Export(tctx(t), st, tdb.DB, mig(tdb.DB), ExportOptions{Options: Options{largeRow: 30}})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := tableLines(t, st, whole, "ev"), tableLines(t, st, sliced, "ev"); !slices.Equal(a, b) {
				t.Errorf("lines differ:\nwhole  %.200q\nsliced %.200q", a, b)
			}
		})
	}
}
