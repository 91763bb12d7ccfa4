package transfer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestVerifyTextSum: on MySQL, a table loaded as exported is compared by
// its text sum (see textHash); a table whose text sum differs is read
// again and compared line by line with the export, which reports a
// value changed after the load as a row checksum mismatch, and passes a
// table whose rows are the export's by then. Rows that are not the rows
// the manifest summed fail the import as before.
func TestVerifyTextSum(t *testing.T) {
	tdb := testdb.New(t, database.MySQL)
	files := map[string]string{"001_t.sql": "-- +ferry up\n" +
		"CREATE TABLE accounts (id INT PRIMARY KEY, name TEXT);\n" +
		"CREATE TABLE events (id BIGINT PRIMARY KEY, account_id INT NOT NULL REFERENCES accounts (id), amount DECIMAL(12, 2), at DATETIME(6), body TEXT, raw VARBINARY(16));\n" +
		"CREATE TABLE counters (id INT PRIMARY KEY, n BIGINT UNSIGNED NOT NULL);\n"}
	seedSQL := []string{
		"INSERT INTO accounts VALUES (1, 'ä\\nb'), (2, NULL), (3, '')",
		"INSERT INTO events SELECT seq, 1 + seq % 3, seq / 100, TIMESTAMP '2026-01-01 00:00:00.5' + INTERVAL seq SECOND, IF(seq % 7 = 0, NULL, CONCAT('line ', seq, '\\t\\\\')), UNHEX(HEX(seq)) FROM seq_1_to_500",
		"INSERT INTO counters VALUES (1, 18446744073709551615), (2, 7)",
	}
	st, m, mig := exportOf(t, tdb.DB, files, seedSQL, ExportOptions{})
	// run imports export id into a new target, calling changed (if set)
	// between the load and the verification's read, and again with each
	// message logged.
	run := func(id string, opts ImportOptions, changed func(target *database.DB, msg string)) (*database.DB, string, error) {
		t.Helper()
		var log bytes.Buffer
		target := openURL(t, testdb.Create(t, tdb))
		h := slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})
		opts.Logger = slog.New(h)
		if changed != nil {
			opts.Logger = slog.New(onMessage{h, func(msg string) { changed(target, msg) }})
			opts.partsListed = func() { changed(target, "") }
		}
		_, err := Import(tctx(t), st, id, target, mig(target), opts)
		return target, log.String(), err
	}
	bySum := func(log, table string) bool {
		return strings.Contains(log, `msg="rows match the rows loaded, by their text sum" table=`+table)
	}
	readAgain := func(log, table string) bool {
		return strings.Contains(log, "reading the table again to compare each row's line with the export's\" table="+table)
	}

	target, log, err := run(m.ID, ImportOptions{}, nil)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	sameData(t, tdb.DB, target, "the import")
	for _, table := range []string{"accounts", "events", "counters"} {
		if !bySum(log, table) || readAgain(log, table) {
			t.Errorf("%s was not compared by its text sum alone:\n%s", table, log)
		}
	}

	_, log, err = run(m.ID, ImportOptions{}, func(target *database.DB, msg string) {
		if msg == "" {
			exec(t, target, "UPDATE events SET body = 'changed' WHERE id = 5")
		}
	})
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "events") || !strings.Contains(err.Error(), "row_checksum") {
		t.Errorf("a value changed after the load: %v", err)
	}
	if bySum(log, "events") || !readAgain(log, "events") || !bySum(log, "accounts") {
		t.Errorf("the changed table was not read again (alone):\n%s", log)
	}

	target, log, err = run(m.ID, ImportOptions{}, func(target *database.DB, msg string) {
		switch {
		case msg == "":
			exec(t, target, "UPDATE events SET body = 'changed' WHERE id = 5")
		case strings.HasPrefix(msg, "the rows read back do not match"):
			exec(t, target, "UPDATE events SET body = 'line 5\\t\\\\' WHERE id = 5")
		}
	})
	if err != nil {
		t.Fatalf("a value changed and put back before the table is read again: %v", err)
	}
	sameData(t, tdb.DB, target, "the import read again")
	if !readAgain(log, "events") {
		t.Errorf("events was not read again:\n%s", log)
	}

	// The chunks' rows are the rows the text sum is taken of; the
	// manifest's row checksum is what they must add up to, as before.
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Export(tctx(t), st, tdb.DB, mig(tdb.DB), ExportOptions{Encrypt: EncryptAll, Recipients: []age.Recipient{key.Recipient()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, log, err = run(sealed.ID, ImportOptions{Identities: []age.Identity{key}}, nil); err != nil || !bySum(log, "events") {
		t.Errorf("an encrypted export: %v\n%s", err, log)
	}
	forged, err := Export(tctx(t), st, tdb.DB, mig(tdb.DB), ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forgeChunk(t, st, forged, "events", func(b []byte) []byte { return bytes.Replace(b, []byte(`"line 5\t\\"`), []byte(`"forged"`), 1) })
	if _, log, err = run(forged.ID, ImportOptions{}, nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "row_checksum") || bySum(log, "events") {
		t.Errorf("a chunk changed with its sha256 in the manifest: %v\n%s", err, log)
	}
	editManifest(t, st, m.ID, func(doc map[string]any) {
		doc["tables"].([]any)[0].(map[string]any)["row_checksum"] = new(rowSum).String()
	})
	if _, log, err = run(m.ID, ImportOptions{}, nil); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "accounts") || bySum(log, "accounts") {
		t.Errorf("a row checksum that is not the rows': %v\n%s", err, log)
	}
}

// TestVerifyTextSumSliced: a table with a row that the verification reads
// in slices has no text sum, however it was loaded (LOAD DATA streams a
// long row; INSERTs take it whole): it is compared line by line, once.
func TestVerifyTextSumSliced(t *testing.T) {
	tdb := testdb.New(t, database.MySQL)
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE notes (id INT PRIMARY KEY, body LONGTEXT);\nCREATE TABLE tags (id INT PRIMARY KEY, name VARCHAR(5));\n"}
	st, m, mig := exportOf(t, tdb.DB, files, []string{"INSERT INTO notes VALUES (1, 'a'), (2, REPEAT('x', 100))", "INSERT INTO tags VALUES (1, 'a')"},
		ExportOptions{Options: Options{largeRow: 30}})
	for _, noLoadData := range []bool{false, true} {
		var log bytes.Buffer
		target := openURL(t, testdb.Create(t, tdb))
		opts := ImportOptions{Options: Options{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})), largeRow: 30}, noLoadData: noLoadData}
		if _, err := Import(tctx(t), st, m.ID, target, mig(target), opts); err != nil {
			t.Fatal(err)
		}
		sameData(t, tdb.DB, target, "the import")
		if l := log.String(); strings.Contains(l, "reading the table again") || strings.Contains(l, "by their text sum\" table=notes") || !strings.Contains(l, "by their text sum\" table=tags") {
			t.Errorf("noLoadData %v:\n%s", noLoadData, l)
		}
	}
}

// TestVerifyTextSumWideCharset: text in a column whose character set
// takes more bytes than UTF-8 (utf32: four to an ASCII character) is
// read in slices at a fourth of the exported length; the load gives such
// a table no text sum, so it is read once.
func TestVerifyTextSumWideCharset(t *testing.T) {
	tdb := testdb.New(t, database.MySQL)
	files := map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE w (id INT PRIMARY KEY, body MEDIUMTEXT CHARACTER SET utf32);\n"}
	// 300,000 characters: 300 KB exported, under inlineBytes; 1.2 MB to
	// LENGTH in utf32, over it.
	st, m, mig := exportOf(t, tdb.DB, files, []string{"INSERT INTO w VALUES (1, REPEAT('x', 300000)), (2, 'short')"}, ExportOptions{})
	var log bytes.Buffer
	target := openURL(t, testdb.Create(t, tdb))
	opts := ImportOptions{Options: Options{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}}
	if _, err := Import(tctx(t), st, m.ID, target, mig(target), opts); err != nil {
		t.Fatal(err)
	}
	sameData(t, tdb.DB, target, "the import")
	if strings.Contains(log.String(), "reading the table again") {
		t.Errorf("read twice:\n%s", log.String())
	}
}

// onMessage is a log handler that calls fn with each message it writes.
type onMessage struct {
	slog.Handler
	fn func(msg string)
}

func (h onMessage) Handle(ctx context.Context, r slog.Record) error {
	h.fn(r.Message)
	return h.Handler.Handle(ctx, r)
}
