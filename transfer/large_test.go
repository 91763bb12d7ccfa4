package transfer

import (
	"context"
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
			// Each value short, together long.
			{"us", 6, all[:20], strings.Repeat("z", 20), "c"},
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
		if wt.Rows != 6 || stt.Rows != 6 || wt.RowChecksum != stt.RowChecksum {
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
			sl, _, err := sumRows(ctx, target2, tdb.Kind, &wt.Table, nil, nil, nil, 30, nil, func(int64) {})
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

// TestLargeValuesEncodings: long text in a column or database that is not
// UTF-8 (a MySQL latin1 column, a PostgreSQL LATIN1 database), and a MySQL
// table whose floating-point key could not find its rows again (read
// whole), round-trip exactly.
func TestLargeValuesEncodings(t *testing.T) {
	long := strings.Repeat("é", 40) + strings.Repeat("a", 40) + "END"
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		if !slices.Contains(testdb.Kinds(), database.MySQL) {
			t.Skip("no MySQL server (set FERRY_TEST_MYSQL_URL)")
		}
		tdb := testdb.New(t, database.MySQL)
		files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE docs (id INT PRIMARY KEY, body LONGTEXT CHARACTER SET latin1, wide LONGTEXT CHARACTER SET utf16);\n" +
			"CREATE TABLE fk (f FLOAT PRIMARY KEY, body LONGTEXT);\n"}
		seed := []string{"INSERT INTO docs VALUES (1, '" + long + "', '" + long + "')", "INSERT INTO fk VALUES (0.1, '" + long + "'), (1e20, '" + long + "')"}
		roundTripLarge(t, tdb, files, seed, "SELECT CONCAT(body, wide) FROM docs", long+long)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		if !slices.Contains(testdb.Kinds(), database.Postgres) {
			t.Skip("no PostgreSQL server (set FERRY_TEST_POSTGRES_URL)")
		}
		admin := testdb.New(t, database.Postgres)
		// A database in LATIN1, read in LATIN1 too: the text comes as
		// the database's bytes, not UTF-8.
		latin1 := func() *database.DB {
			name := testdb.UniqueName("ferry_latin1")
			exec(t, admin.DB, "CREATE DATABASE "+name+" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
			t.Cleanup(func() { admin.DB.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
			u := strings.Replace(admin.URLString, "/"+admin.URL.Database, "/"+name, 1)
			if strings.Contains(u, "?") {
				u += "&client_encoding=LATIN1"
			} else {
				u += "?client_encoding=LATIN1"
			}
			return openURL(t, u)
		}
		src, target := latin1(), latin1()
		files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE docs (id int PRIMARY KEY, body text);\n"}
		st, _, mig := exportOf(t, src, files, nil, ExportOptions{})
		exec(t, src, "INSERT INTO docs SELECT 1, repeat(chr(233), 40) || repeat('a', 40) || 'END'")
		m, err := Export(tctx(t), st, src, mig(src), ExportOptions{Options: Options{largeRow: 30}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Import(tctx(t), st, m.ID, target, mig(target), ImportOptions{Options: Options{largeRow: 30}}); err != nil {
			t.Fatalf("import: %v", err)
		}
		q := "SELECT octet_length(body) || ' ' || md5(convert_to(body, 'UTF8')) FROM docs"
		if got, want := queryString(t, target, q), queryString(t, src, q); got != want {
			t.Errorf("the body changed in the round trip: %s, want %s", got, want)
		}
	})
}

// roundTripLarge exports tdb's data (migrated by files, seeded) with
// values past 30 bytes read in slices, imports it into a new database, and
// checks that query gives want there.
func roundTripLarge(t *testing.T, tdb *testdb.DB, files map[string]string, seed []string, query, want string) {
	t.Helper()
	st, _, mig := exportOf(t, tdb.DB, files, nil, ExportOptions{})
	for _, q := range seed {
		exec(t, tdb.DB, q)
	}
	m, err := Export(tctx(t), st, tdb.DB, mig(tdb.DB), ExportOptions{Options: Options{largeRow: 30}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Check(tctx(t), m.ID, nil); err != nil {
		t.Errorf("check: %v", err)
	}
	target := openURL(t, testdb.Create(t, tdb))
	if _, err := Import(tctx(t), st, m.ID, target, mig(target), ImportOptions{Options: Options{largeRow: 30}}); err != nil {
		t.Fatalf("import: %v", err)
	}
	if got := queryString(t, target, query); got != want {
		t.Errorf("%s after the round trip:\n got %q\nwant %q", query, got, want)
	}
	sameData(t, tdb.DB, target, "the round trip")
}

// TestMaxBytes: only a type that bounds every value to a length skips the
// export's length test; an array of such values is as long as it likes.
func TestMaxBytes(t *testing.T) {
	for _, c := range []struct {
		kind, typ string
		want      int64
	}{
		{database.Postgres, "character varying(20)", 80},
		{database.Postgres, "character(3)", 12},
		{database.Postgres, "character varying(20)[]", -1},
		{database.Postgres, "character varying", -1},
		{database.Postgres, "text", -1},
		{database.Postgres, "bytea", -1},
		{database.MySQL, "varchar(20)", 80},
		{database.MySQL, "varbinary(255)", 255},
		{database.MySQL, "text", 65535},
		{database.MySQL, "tinyblob", 255},
		{database.MySQL, "mediumtext", -1},
		{database.MySQL, "longblob", -1},
	} {
		if got := maxBytes(c.kind, c.typ); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.kind, c.typ, got, c.want)
		}
	}
}

// TestImportBoundsWholeRows: a row line an import must hold whole (here
// into SQLite) and that is longer than the bound is refused with its
// chunk, not read into memory however long: a small chunk can spell a
// huge row.
func TestImportBoundsWholeRows(t *testing.T) {
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n"}
	src := testdb.New(t, database.SQLite)
	st, m, mig := exportOf(t, src.DB, files, []string{"INSERT INTO big VALUES (1, 'short'), (2, printf('%.*c', 20000, 'x'))"}, ExportOptions{})
	target := testdb.New(t, database.SQLite).DB
	_, err := Import(tctx(t), st, m.ID, target, mig(target), ImportOptions{Options: Options{largeRow: 1024, maxWholeRow: 8192}})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "tables/big/part-00001") || !strings.Contains(err.Error(), "holds a row whose line is longer than") {
		t.Fatalf("import of a row past the bound: %v", err)
	}
	target = testdb.New(t, database.SQLite).DB
	if _, err := Import(tctx(t), st, m.ID, target, mig(target), ImportOptions{Options: Options{largeRow: 1024}}); err != nil {
		t.Fatalf("the same import within the default bound: %v", err)
	}
}
