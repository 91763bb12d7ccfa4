package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/transfer"
)

// TestCLITransfer: export, list and verify through the binary; a target
// whose import is unfinished is shown by status, refused by up, and
// finished by running the import again.
func TestCLITransfer(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := project(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY, v VARCHAR(20));\nINSERT INTO a VALUES (1, 'one');\nINSERT INTO a VALUES (2, 'two');\n",
		})
		mustRun(t, dir, db.URLString, "up")
		store := filepath.Join(t.TempDir(), "exports")
		var created struct {
			OK     bool `json:"ok"`
			Export struct {
				ID string `json:"id"`
			} `json:"export"`
		}
		r := mustRun(t, dir, db.URLString, "export", "--to", store, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || !created.OK || created.Export.ID == "" {
			t.Fatalf("export --json: %v\n%s", err, r.stdout)
		}
		id := created.Export.ID
		if r := mustRun(t, dir, db.URLString, "export", "list", "--store", store); !strings.Contains(r.stdout, id) {
			t.Errorf("export list: %s", r.stdout)
		}
		mustRun(t, dir, db.URLString, "export", "verify", store+"/"+id)

		// An import cut short, as its ledger records it.
		targetURL := testdb.Create(t, db)
		target, err := database.Open(context.Background(), targetURL, database.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer target.Close()
		cutShort(t, target, id, "started")
		var st struct {
			Imports []struct {
				ExportID string `json:"export_id"`
			} `json:"imports_in_progress"`
		}
		r = mustRun(t, dir, targetURL, "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Imports) != 1 || st.Imports[0].ExportID != id {
			t.Fatalf("status --json during an import: %v\n%s", err, r.stdout)
		}
		if r := mustRun(t, dir, targetURL, "status"); !strings.Contains(r.stdout, "Import in progress") {
			t.Errorf("status text: %s", r.stdout)
		}
		if r := runFerry(t, dir, targetURL, "up"); r.code != 1 || !strings.Contains(r.stderr, "has not finished") {
			t.Errorf("up during an import: exit %d: %s", r.code, r.stderr)
		}
		if r := mustRun(t, dir, targetURL, "import", "--from", store+"/"+id); !strings.Contains(r.stdout, "went on from where an earlier run stopped") {
			t.Errorf("the resumed import: %s", r.stdout)
		}
		r = mustRun(t, dir, targetURL, "status", "--json")
		if strings.Contains(r.stdout, "imports_in_progress") {
			t.Errorf("status after the import: %s", r.stdout)
		}
		mustRun(t, dir, targetURL, "up")
	})
}

// TestCLIExportCompress: --compress, or FERRY_EXPORT_COMPRESS when the
// flag is not given, picks the chunks' compression, whatever its case;
// anything else is a usage error that writes nothing.
func TestCLIExportCompress(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO a VALUES (1, 'one');\n",
	})
	mustRun(t, dir, db.URLString, "up")
	store := filepath.Join(t.TempDir(), "exports")
	export := func(env string, args ...string) (string, int, string) {
		t.Helper()
		cmd := ferryCmd(dir, db.URLString, append([]string{"export", "--json"}, args...)...)
		if env != "" {
			cmd.Env = append(cmd.Env, env)
		}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", ee.ExitCode(), errb.String()
		} else if err != nil {
			t.Fatal(err)
		}
		var created struct {
			Export struct {
				Format      int    `json:"format"`
				Compression string `json:"compression"`
				Tables      []struct {
					Chunks []struct {
						Name string `json:"name"`
					} `json:"chunks"`
				} `json:"tables"`
			} `json:"export"`
		}
		if err := json.Unmarshal([]byte(out.String()), &created); err != nil || len(created.Export.Tables) != 1 || len(created.Export.Tables[0].Chunks) != 1 {
			t.Fatalf("export --json: %v\n%s", err, out.String())
		}
		e := created.Export
		return fmt.Sprintf("%d %s %s", e.Format, e.Compression, filepath.Ext(e.Tables[0].Chunks[0].Name)), 0, errb.String()
	}
	for _, c := range []struct {
		env  string
		args []string
		want string
	}{
		{"", nil, "2 s2 .s2"},
		{"", []string{"--compress", "gzip"}, "1  .gz"},
		{"FERRY_EXPORT_COMPRESS=gzip", nil, "1  .gz"},
		{"FERRY_EXPORT_COMPRESS= GZip", nil, "1  .gz"},
		{"", []string{"--compress", "S2"}, "2 s2 .s2"},
		{"FERRY_EXPORT_COMPRESS=gzip", []string{"--compress", "s2"}, "2 s2 .s2"},
	} {
		if got, code, stderr := export(c.env, append([]string{"--to", store}, c.args...)...); got != c.want {
			t.Errorf("%s ferry export %v: %q (exit %d: %s), want %q", c.env, c.args, got, code, stderr, c.want)
		}
	}
	empty := filepath.Join(t.TempDir(), "none")
	if _, code, stderr := export("FERRY_EXPORT_COMPRESS=ZStd", "--to", empty); code != 2 || !strings.Contains(stderr, `FERRY_EXPORT_COMPRESS "ZStd": use s2 or gzip`) {
		t.Errorf("FERRY_EXPORT_COMPRESS=ZStd: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("a usage error made the store: %v", err)
	}
}

// TestImportLeavesNoEmptyFile: an import or copy into a SQLite file that
// did not exist, failing before it writes anything, removes the file it
// made; a file that was there, or that holds a migrated database, stays.
func TestImportLeavesNoEmptyFile(t *testing.T) {
	src := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO a VALUES (1, 'one');\n",
	})
	mustRun(t, dir, src.URLString, "up")
	store := filepath.Join(t.TempDir(), "exports")
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	r := mustRun(t, dir, src.URLString, "export", "--to", store, "--encrypt", "all", "--passphrase-file", pass, "--json")
	var created struct {
		Export struct {
			ID string `json:"id"`
		} `json:"export"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, dir, src.URLString, "export", "--to", store, "--encrypt", "all", "--passphrase-file", pass); !strings.Contains(r.stdout, "--database URL --passphrase-file FILE\n") {
		t.Errorf("the hint after an encrypted export does not name the key:\n%s", r.stdout)
	}
	files := t.TempDir()
	target := func(name string) (string, string) {
		p := filepath.Join(files, name)
		return p, "sqlite:" + p
	}
	exists := func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	}

	p, u := target("missing-export.db")
	if r := runFerry(t, dir, u, "import", "--from", store+"/20261130T000000Z-abcdef"); r.code != 1 || !strings.Contains(r.stderr, "not found") || exists(p) {
		t.Errorf("an export that is not there: exit %d, file left %v: %s", r.code, exists(p), r.stderr)
	}
	p, u = target("no-key.db")
	if r := runFerry(t, dir, u, "import", "--from", store+"/"+created.Export.ID); r.code != 1 || exists(p) {
		t.Errorf("no key: exit %d, file left %v: %s", r.code, exists(p), r.stderr)
	}
	p, u = target("copy-unmanaged.db")
	empty := filepath.Join(files, "empty-source.db")
	os.WriteFile(empty, nil, 0o644)
	if r := runFerry(t, dir, "", "copy", "--from", "sqlite:"+empty, "--to", u); r.code == 0 || exists(p) {
		t.Errorf("copy of a database ferry does not manage: exit %d, file left %v: %s", r.code, exists(p), r.stderr)
	}
	// A file that was there stays, empty or not.
	p, u = target("was-there.db")
	os.WriteFile(p, nil, 0o644)
	if r := runFerry(t, dir, u, "import", "--from", store+"/"+created.Export.ID); r.code != 1 || !exists(p) {
		t.Errorf("a file that was there: exit %d, file left %v: %s", r.code, exists(p), r.stderr)
	}
	p, u = target("imported.db")
	if r := runFerry(t, dir, u, "import", "--from", store+"/"+created.Export.ID, "--passphrase-file", pass); r.code != 0 || !exists(p) {
		t.Errorf("import: exit %d, file there %v: %s", r.code, exists(p), r.stderr)
	}
}

// TestCLIExportSince: --since with --time-column keeps the recent rows
// and their children; without a time column it is a usage error.
func TestCLIExportSince(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE runs (id INTEGER PRIMARY KEY, at TEXT NOT NULL);\nCREATE TABLE logs (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs (id));\n" +
			"INSERT INTO runs VALUES (1, '2020-01-01 00:00:00'), (2, '2999-01-01 00:00:00');\nINSERT INTO logs VALUES (1, 1), (2, 2), (3, 2);\n",
	})
	mustRun(t, dir, db.URLString, "up")
	store := filepath.Join(t.TempDir(), "exports")
	if r := runFerry(t, dir, db.URLString, "export", "--to", store, "--since", "30d"); r.code != 2 || !strings.Contains(r.stderr, "--time-column") {
		t.Errorf("--since without a time column: exit %d: %s", r.code, r.stderr)
	}
	if r := runFerry(t, dir, db.URLString, "export", "--to", store, "--since", "soon", "--time-column", "runs=at"); r.code != 2 || !strings.Contains(r.stderr, "30d") {
		t.Errorf("--since soon: exit %d: %s", r.code, r.stderr)
	}
	if r := runFerry(t, dir, db.URLString, "export", "--to", store, "--since", "2999-01-01", "--time-column", "runs=at"); r.code != 2 || !strings.Contains(r.stderr, "is in the future") {
		t.Errorf("--since in the future: exit %d: %s", r.code, r.stderr)
	}
	if r := runFerry(t, dir, db.URLString, "export", "--to", store, "--since", "30d", "--time-column", "nosuch=at"); r.code != 2 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("--time-column of a table that is not there: exit %d: %s", r.code, r.stderr)
	}
	r := mustRun(t, dir, db.URLString, "export", "--to", store, "--since", "30d", "--time-column", "runs=at", "--json")
	var created struct {
		Export struct {
			Tables []struct {
				Name string `json:"name"`
				Rows int64  `json:"rows"`
			} `json:"tables"`
		} `json:"export"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || len(created.Export.Tables) != 2 {
		t.Fatalf("export --json: %v\n%s", err, r.stdout)
	}
	for _, tb := range created.Export.Tables {
		if want := map[string]int64{"runs": 1, "logs": 2}[tb.Name]; tb.Rows != want {
			t.Errorf("%s: %d rows exported, want %d", tb.Name, tb.Rows, want)
		}
	}
	if r := mustRun(t, dir, db.URLString, "export", "list", "--store", store); !strings.Contains(r.stdout, "since ") {
		t.Errorf("export list does not show the window:\n%s", r.stdout)
	}
	// ferry.yaml's time columns, on tables the selection leaves out.
	if err := os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("export_time_columns:\n  runs: at\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runFerry(t, dir, db.URLString, "export", "--to", store, "--since", "30d", "--tables", "logs"); r.code != 2 || !strings.Contains(r.stderr, "export_time_columns in ferry.yaml names runs, which --tables/--exclude leave out") {
		t.Errorf("--since with ferry.yaml's time columns left out: exit %d: %s", r.code, r.stderr)
	}
}

// TestCLITransferSelection: --tables, --exclude and --sensitive that do
// not fit the database, and a copy onto its source, are usage errors
// (exit 2), and an export that would hold no table is refused.
func TestCLITransferSelection(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE runs (id INTEGER PRIMARY KEY);\nCREATE TABLE logs (id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs (id));\n",
	})
	mustRun(t, dir, db.URLString, "up")
	store := filepath.Join(t.TempDir(), "exports")
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--to", store, "--tables", "nope"}, `no table "nope" to export`},
		{[]string{"export", "--to", store, "--exclude", "nope"}, `no table "nope" to export`},
		{[]string{"export", "--to", store, "--tables", "runs", "--exclude", "runs"}, "leave no table to export"},
		{[]string{"export", "--to", store, "--tables", "logs"}, "which --tables/--exclude leave out"},
		{[]string{"export", "--to", store, "--encrypt", "sensitive", "--sensitive", "nope", "--passphrase-file", pass}, `the export has no table "nope"`},
		{[]string{"export", "--to", store, "--encrypt", "sensitive", "--sensitive", "runs.nope", "--passphrase-file", pass}, `table runs has no column "nope"`},
		{[]string{"copy", "--from", db.URLString, "--to", db.URLString}, "a copy to itself"},
		{[]string{"copy", "--from", db.URLString, "--to", db.URLString, "--json"}, "a copy to itself"},
		{[]string{"export", "--to", store, "--tables", "nope", "--json"}, `"ok": false`},
		{[]string{"copy", "--from", db.URLString, "--to", db.URLString, "--json"}, `"ok": false`},
		{[]string{"import", "--from", store + "/nope", "--json"}, `"ok": false`},
		{[]string{"export", "prune", "--store", store}, "ferry export prune needs --keep N"},
		{[]string{"export", "prune", "--store", store, "--json"}, `"error": "ferry export prune needs --keep N`},
		{[]string{"export", "list", "--to", store}, "`ferry export list` takes the store as --store"},
		{[]string{"import", "--from", store + "/nope", "--keep-paused", "--resume-recorded"}, "give one"},
		{[]string{"export", "--store", store}, "`ferry export` takes the store as --to"},
		{[]string{"import", "--to", store}, "`ferry import` takes the export as --from STORE/ID"},
		{[]string{"export", "delete", "--json"}, `"error": "ferry export delete takes one export`},
		{[]string{"import", "extra", "--json"}, `"error": "ferry import takes no arguments`},
	} {
		r := runFerry(t, dir, db.URLString, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr+r.stdout, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q: %s%s", c.args, r.code, c.want, r.stdout, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(store); len(entries) != 0 {
		t.Errorf("refused exports left %d entries in the store", len(entries))
	}
	// A partial export says so, in the list and in the import.
	mustRun(t, dir, db.URLString, "export", "--to", store, "--tables", "runs", "--encrypt", "all", "--passphrase-file", pass)
	if r := mustRun(t, dir, db.URLString, "export", "list", "--store", store); !strings.Contains(r.stdout, "1 of 2") || !strings.Contains(r.stdout, "s2, encrypted (all)") {
		t.Errorf("export list of a partial, encrypted export:\n%s", r.stdout)
	}
	ids, _ := os.ReadDir(store)
	target := "sqlite:" + filepath.Join(t.TempDir(), "partial.db")
	if r := mustRun(t, dir, target, "import", "--from", filepath.Join(store, ids[0].Name()), "--passphrase-file", pass); !strings.Contains(r.stdout, "not in the export (taken with --tables or --exclude), so left as the migrations made them: logs") {
		t.Errorf("import of a partial export:\n%s", r.stdout)
	}
}

// TestCLIExportDeleteQuiesced: an export killed after pausing workloads
// holds the only list of them; delete refuses it until resumed, or with
// --force.
func TestCLIExportDeleteQuiesced(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n"})
	store := filepath.Join(t.TempDir(), "exports")
	const id = "20261129T170000Z-ab12cd"
	if err := os.MkdirAll(filepath.Join(store, id), 0o755); err != nil {
		t.Fatal(err)
	}
	q := `{"select": "SELECT 1", "pause": "SELECT 1", "resume": "SELECT 1", "paused": [[1]], "resumed_on_source": false, "source": "sqlite:x.db"}`
	if err := os.WriteFile(filepath.Join(store, id, "quiesce.json"), []byte(q), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runFerry(t, dir, db.URLString, "export", "delete", store+"/"+id); r.code == 0 || !strings.Contains(r.stderr, "ferry export resume") {
		t.Fatalf("delete of an export whose paused workloads were not resumed: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(store, id, "quiesce.json")); err != nil {
		t.Fatalf("the refused delete removed the list: %v", err)
	}
	// The store's statement runs only when asked for: shown otherwise.
	if r := runFerry(t, dir, db.URLString, "export", "resume", store+"/"+id); r.code != 2 || !strings.Contains(r.stderr, "records the statement that resumes them: SELECT 1") ||
		!strings.Contains(r.stderr, "--resume-recorded") {
		t.Errorf("export resume without --resume-recorded: exit %d: %s", r.code, r.stderr)
	}
	r := mustRun(t, dir, db.URLString, "export", "delete", store+"/"+id, "--force", "--json")
	if !strings.Contains(r.stdout, `"deleted"`) {
		t.Errorf("delete --force --json: %s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(store, id, "quiesce.json")); !os.IsNotExist(err) {
		t.Errorf("delete --force left the list: %v", err)
	}
}

// TestUnfinishedImportNotReady: a database whose import has not finished
// has its schema but not all of its data. Nothing takes it for ready:
// wait times out on it naming the import, serve's /readyz says 503, its
// /db_schema_status says the schema is not up to date, and serve refuses
// to upgrade it, as up does.
func TestUnfinishedImportNotReady(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := project(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n",
		})
		mustRun(t, dir, db.URLString, "up")
		cutShort(t, db.DB, "20261130T000000Z-abcdef", "started")
		if r := runFerry(t, dir, db.URLString, "wait", "--version", "1", "--timeout", "2s"); r.code != 1 ||
			!strings.Contains(r.stderr, "import of export 20261130T000000Z-abcdef") || !strings.Contains(r.stderr, "has not finished") ||
			strings.Contains(r.stderr, "waiting for schema version 1; the database is at version 1") {
			t.Errorf("wait during an import: exit %d: %s", r.code, r.stderr)
		}
		if r := runFerry(t, dir, db.URLString, "status", "--exit-code"); r.code != 3 || !strings.Contains(r.stdout, "no (an import has not finished)") {
			t.Errorf("status --exit-code during an import: exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		if r := mustRun(t, dir, db.URLString, "status", "--json"); !strings.Contains(r.stdout, `"is_up_to_date": false,`) || !strings.Contains(r.stdout, `"ready": false,`) {
			t.Errorf("status --json during an import: %s", r.stdout)
		}
		s := startServe(t, dir, db.URLString, []string{"FERRY_TOKEN=" + serveToken})
		if code, body := httpGet(t, "http://"+s.addr+"/readyz"); code != 503 || !strings.Contains(body, "has not finished") {
			t.Errorf("/readyz during an import: %d %s", code, body)
		}
		// Metaflow's document has no field for it: the schema is not up to
		// date until the import finishes. ferry's own says which import.
		if code, body := httpGet(t, "http://"+s.addr+"/db_schema_status"); code != 200 || !strings.Contains(body, `"is_up_to_date":false`) || !strings.Contains(body, `"current_version":"1"`) {
			t.Errorf("/db_schema_status during an import: %d %s", code, body)
		}
		if code, body := httpGet(t, "http://"+s.addr+"/v1/status"); code != 200 || !strings.Contains(body, `"imports_in_progress":[{"export_id":"20261130T000000Z-abcdef"`) ||
			!strings.Contains(body, `"is_up_to_date":false,"ready":false`) {
			t.Errorf("/v1/status during an import: %d %s", code, body)
		}
		if code, body := httpGet(t, "http://"+s.addr+"/metrics"); code != 200 || !strings.Contains(body, "\nferry_imports_in_progress 1\n") || !strings.Contains(body, "\nferry_schema_up_to_date 0\n") {
			t.Errorf("/metrics during an import: %d %s", code, body)
		}
		if r := runFerry(t, dir, "", "remote", "status", "--base-url", "http://"+s.addr, "--exit-code"); r.code != 3 ||
			!strings.Contains(r.stdout, "no (an import has not finished)") || !strings.Contains(r.stdout, "Import in progress:  export 20261130T000000Z-abcdef (0 tables loaded)") {
			t.Errorf("remote status --exit-code during an import: exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		if code, body := httpGet(t, "http://"+s.addr+"/"); code != 200 || !strings.Contains(body, `id="badge">import unfinished<`) ||
			!strings.Contains(body, "has not finished (0 tables loaded)") || !strings.Contains(body, "What to do: if it was cut short, run the same import again to finish it") {
			t.Errorf("console during an import: %d %s", code, body)
		}
		s.stop(t)

		// A release with a newer migration: serve does not apply it.
		if err := os.WriteFile(filepath.Join(dir, "migrations", "00002_b.sql"), []byte("-- +ferry up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s = startServe(t, dir, db.URLString, []string{"FERRY_TOKEN=" + serveToken})
		// Pending because of the import: the import is the reason given.
		if code, body := httpGet(t, "http://"+s.addr+"/readyz"); code != 503 || !strings.Contains(body, "has not finished") {
			t.Errorf("/readyz during an import with a migration pending: %d %s", code, body)
		}
		req, _ := http.NewRequest("POST", "http://"+s.addr+"/v1/upgrade", nil)
		req.Header.Set("Authorization", "Bearer "+serveToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), "has not finished") {
			t.Errorf("upgrade during an import: %d %s", resp.StatusCode, body)
		}
		s.stop(t)
		var st struct {
			Current int64 `json:"current_version"`
		}
		r := mustRun(t, dir, db.URLString, "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Current != 1 {
			t.Errorf("status after the refused upgrade: %v %s", err, r.stdout)
		}
	})
}

// TestImportLedgerUnreadable: when serve cannot read the import ledger
// (here a table of that name that is not one; on PostgreSQL, one its role
// may not read), whether an import is unfinished is unknown. What depends
// on it fails closed (/db_schema_status, /readyz); the rest of the status
// still answers, and says why.
func TestImportLedgerUnreadable(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n",
	})
	mustRun(t, dir, db.URLString, "up")
	if _, err := db.DB.ExecContext(context.Background(), "CREATE TABLE ferry_migrations_import (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, dir, db.URLString, []string{"FERRY_TOKEN=" + serveToken})
	defer s.stop(t)
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/db_schema_status", 500, `"detail":"read the import ledger: `},
		{"/readyz", 503, `"reason":"read the import ledger: `},
		{"/v1/status", 200, `"imports_error":"read the import ledger: `},
		{"/version", 200, "1"},
		{"/metrics", 200, "\nferry_schema_up_to_date 0\n"},
		{"/", 200, `id="badge">imports unknown<`},
	} {
		if code, body := httpGet(t, "http://"+s.addr+c.path); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d with %s", c.path, code, body, c.code, c.want)
		}
	}
	if _, body := httpGet(t, "http://"+s.addr+"/metrics"); strings.Contains(body, "ferry_imports_in_progress") {
		t.Errorf("/metrics without the ledger has ferry_imports_in_progress:\n%s", body)
	}
}

// TestUnfinishedCopy: a ferry copy cut short cannot be run again (its
// source has moved on): status and up say to copy anew into an empty
// database, not to run an import that has no store.
func TestUnfinishedCopy(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := project(t, map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n",
		})
		cutShort(t, db.DB, "20261130T000000Z-c0ffee", "started", "copy")
		if r := mustRun(t, dir, db.URLString, "status"); !strings.Contains(r.stdout, "Copy in progress") || !strings.Contains(r.stdout, "run the copy again") || strings.Contains(r.stdout, "ferry import") ||
			!strings.Contains(r.stdout, "no (a copy has not finished") {
			t.Errorf("status: %s", r.stdout)
		}
		if r := mustRun(t, dir, db.URLString, "status", "--json"); !strings.Contains(r.stdout, `"copy": true`) {
			t.Errorf("status --json: %s", r.stdout)
		}
		if r := runFerry(t, dir, db.URLString, "up"); r.code != 1 || !strings.Contains(r.stderr, "a ferry copy (20261130T000000Z-c0ffee)") || !strings.Contains(r.stderr, "copy again") {
			t.Errorf("up: exit %d: %s", r.code, r.stderr)
		}
	})
}

// cutShort writes an import ledger that says export id's import (or
// copy) got as far as steps, as one cut short leaves it.
func cutShort(t *testing.T, db *database.DB, id string, steps ...string) {
	t.Helper()
	qs := []string{"CREATE TABLE ferry_migrations_import (export_id VARCHAR(64) NOT NULL, step VARCHAR(300) NOT NULL, row_count BIGINT NOT NULL, done_at VARCHAR(40) NOT NULL, PRIMARY KEY (export_id, step))"}
	for _, step := range steps {
		qs = append(qs, "INSERT INTO ferry_migrations_import VALUES ('"+id+"', '"+step+"', 0, '2026-11-30T00:00:00Z')")
	}
	for _, q := range qs {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSQLiteBusyAdvice: a SQLite file another process writes to for
// longer than the busy timeout (as during an import's load of a large
// table) gets an answer that says so and what to do, not only
// SQLITE_BUSY.
func TestSQLiteBusyAdvice(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n"})
	mustRun(t, dir, db.URLString, "up")
	ctx := context.Background()
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	r := runFerry(t, dir, db.URLString+"?_pragma=busy_timeout(100)", "status")
	if r.code != 1 || !strings.Contains(r.stderr, "SQLITE_BUSY") || !strings.Contains(r.stderr, "another process has been writing to the SQLite file") || !strings.Contains(r.stderr, "busy_timeout(60000)") {
		t.Errorf("status of a locked SQLite file: exit %d: %s", r.code, r.stderr)
	}
}

// exportedTableA makes a SQLite project whose one migration is create
// (table a), puts rows 1 and 2 in a, exports it, and returns the
// database, the project's directory and the export (for --from).
func exportedTableA(t *testing.T, create string) (db *testdb.DB, dir, from string) {
	t.Helper()
	db = testdb.New(t, database.SQLite)
	dir = project(t, map[string]string{"00001_a.sql": "-- +ferry up\n" + create + ";\n"})
	mustRun(t, dir, db.URLString, "up")
	if _, err := db.DB.ExecContext(context.Background(), "INSERT INTO a VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	mustRun(t, dir, db.URLString, "export", "--to", store)
	ids, err := os.ReadDir(store)
	if err != nil || len(ids) != 1 {
		t.Fatalf("store: %v %v", ids, err)
	}
	return db, dir, filepath.Join(store, ids[0].Name())
}

// TestImportFinalMigrationFails: the data is loaded and verified, and a
// migration after the export's version fails. The import is unfinished
// (ferry up refuses), so the advice is to fix the migration and run the
// same import again, which finishes it; the report's version is the one
// the database is at.
func TestImportFinalMigrationFails(t *testing.T) {
	db, dir, from := exportedTableA(t, "CREATE TABLE a (id INTEGER PRIMARY KEY)")
	bad := filepath.Join(dir, "migrations", "00002_b.sql")
	if err := os.WriteFile(bad, []byte("-- +ferry up\nINSERT INTO a VALUES (1);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := testdb.Create(t, db)
	r := runFerry(t, dir, target, "import", "--from", from, "--json", "--keep-paused")
	if r.code != 1 || !strings.Contains(r.stderr, "run the same `ferry import` again") || strings.Contains(r.stderr, "run `ferry up` again") {
		t.Fatalf("import with a failing final migration: exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		Report struct {
			FinalVersion int64 `json:"final_version"`
			Verified     bool  `json:"verified"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Report.FinalVersion != 1 || !out.Report.Verified {
		t.Errorf("report: final_version %d, verified %v (%v), want 1, true: %s", out.Report.FinalVersion, out.Report.Verified, err, r.stdout)
	}
	// Status says the command that finishes it, with where the export is.
	if r := runFerry(t, dir, target, "status"); !strings.Contains(r.stdout, "loaded and verified; the final migrations are left") ||
		!strings.Contains(r.stdout, "run `ferry import --from file://"+from+" --database "+target+" --keep-paused` again") {
		t.Errorf("status after the failed final migration: %s%s", r.stdout, r.stderr)
	}
	// The last run's flags, quoted for a shell.
	if r := runFerry(t, dir, target, "import", "--from", from, "--resume", "UPDATE a SET id = 'x' WHERE id = ?"); r.code != 1 {
		t.Fatalf("the second run: exit %d: %s", r.code, r.stderr)
	}
	if r := runFerry(t, dir, target, "status"); !strings.Contains(r.stdout, "--database "+target+" --resume 'UPDATE a SET id = '\\''x'\\'' WHERE id = ?'` again") {
		t.Errorf("status after the second run: %s%s", r.stdout, r.stderr)
	}
	if err := os.WriteFile(bad, []byte("-- +ferry up\nINSERT INTO a VALUES (3);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, target, "import", "--from", from)
	if r := runFerry(t, dir, target, "status", "--exit-code", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"ready": true,`) {
		t.Errorf("status after the import finished: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// TestImportFirstMigrationFails: the target's migrations to the export's
// version fail (SQLite's SQL given for a PostgreSQL target): the advice
// is to run the same import again, not ferry up, which refuses.
func TestImportFirstMigrationFails(t *testing.T) {
	_, dir, from := exportedTableA(t, "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT)")
	target := testdb.New(t, database.Postgres).URLString
	r := runFerry(t, dir, target, "import", "--from", from)
	if r.code != 1 || !strings.Contains(r.stderr, "run the same `ferry import` again (with --dir naming the target engine's migrations)") || strings.Contains(r.stderr, "`ferry up` again") {
		t.Fatalf("import with a failing first migration: exit %d: %s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "migrations", "00001_a.sql"), []byte("-- +ferry up\nCREATE TABLE a (id integer PRIMARY KEY);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, target, "import", "--from", from)
	// On MySQL, whose DDL does not roll back, the advice is to start
	// again from an empty database, which is what the target was.
	_, dir, from = exportedTableA(t, "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT)")
	target = testdb.New(t, database.MySQL).URLString
	if r := runFerry(t, dir, target, "import", "--from", from); r.code != 1 || !strings.Contains(r.stderr, "the database held nothing before the import: drop it, create it empty, and run the same `ferry import`") {
		t.Fatalf("import into MySQL with a failing first migration: exit %d: %s", r.code, r.stderr)
	}
}

// TestLedgerHiddenFromRole: MySQL shows a table only to a role with a
// privilege on it. A role granted SELECT table by table, not on the
// import ledger, cannot tell an unfinished import from none, and is told
// so (and what to grant) rather than told that the schema is ready.
func TestLedgerHiddenFromRole(t *testing.T) {
	db := testdb.New(t, database.MySQL)
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n"})
	mustRun(t, dir, db.URLString, "up")
	cutShort(t, db.DB, "20261130T000000Z-abcdef", "started")
	user := testdb.UniqueName("ro")
	for _, q := range []string{"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw'"} {
		if _, err := db.DB.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { db.DB.ExecContext(context.Background(), "DROP USER IF EXISTS '"+user+"'@'%'") })
	for _, tb := range []string{"ferry_migrations", "ferry_migrations_lock", "a"} {
		if _, err := db.DB.ExecContext(context.Background(), "GRANT SELECT ON `"+db.URL.Database+"`.`"+tb+"` TO '"+user+"'@'%'"); err != nil {
			t.Fatal(err)
		}
	}
	u := strings.Replace(db.URLString, "mysql://root@", "mysql://"+user+":pw@", 1)
	if u == db.URLString {
		t.Fatalf("cannot make the role's URL from %s", db.URLString)
	}
	r := runFerry(t, dir, u, "status", "--exit-code")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot tell whether an import into the database has not finished") || !strings.Contains(r.stderr, "grant the role SELECT on the database") {
		t.Errorf("status as a role that cannot see the ledger: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// env is a getenv of the variables kv (name, value, name, value...).
func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

// TestSecretFromEnv: FERRY_*_PASSPHRASE and FERRY_IMPORT_IDENTITY hold the
// secret itself; a value that is a file's path is refused (it would
// silently become the passphrase), and an identity that does not parse
// says what the variable holds.
func TestSecretFromEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(file, []byte("correct horse battery staple\n"), 0o600)
	for _, c := range []struct{ name, value string }{
		{"FERRY_EXPORT_PASSPHRASE", file}, {"FERRY_IMPORT_PASSPHRASE", file}, {"FERRY_IMPORT_IDENTITY", file}, {"FERRY_EXPORT_RECIPIENTS", file},
		// A secret not mounted yet, a folder, a path for the shell.
		{"FERRY_EXPORT_PASSPHRASE", "/run/secrets/ferry-pass"}, {"FERRY_EXPORT_PASSPHRASE", filepath.Dir(file)}, {"FERRY_IMPORT_PASSPHRASE", "~/pass.txt"},
		{"FERRY_EXPORT_PASSPHRASE", "file:///run/secrets/ferry-pass"}, {"FERRY_IMPORT_PASSPHRASE", "./pass"},
	} {
		name := c.name
		a := &app{getenv: env(name, c.value)}
		var err error
		if strings.HasPrefix(name, "FERRY_EXPORT") {
			_, err = a.recipients("", "")
		} else {
			_, err = a.identities("", "")
		}
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), name+" holds the secret itself, not a file's path") {
			t.Errorf("%s=%s: %v", name, c.value, err)
		}
	}
	if _, err := (&app{getenv: env("FERRY_EXPORT_PASSPHRASE", "correct horse battery staple")}).recipients("", ""); err != nil {
		t.Errorf("a passphrase: %v", err)
	}
	if _, err := (&app{getenv: env("FERRY_IMPORT_IDENTITY", "not a key")}).identities("", ""); err == nil || !strings.Contains(err.Error(), "the identity itself, AGE-SECRET-KEY-1..., not a file's path") {
		t.Errorf("an identity that does not parse: %v", err)
	}
}

// TestKeyInputs: what the review of the keys' inputs found. A passphrase
// opens the export whether it came from a file or a variable, line ending
// or not; a secret typed where a file's path belongs is refused and not
// repeated; two kinds of key at once are refused, not one silently
// chosen; a store URL's password is not repeated in a usage error.
func TestKeyInputs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(file, []byte("pw\n"), 0o600)
	rs, err := (&app{getenv: env("FERRY_EXPORT_PASSPHRASE", "pw\n")}).recipients("", "")
	if err != nil {
		t.Fatal(err)
	}
	var sealed bytes.Buffer
	w, _ := age.Encrypt(&sealed, rs...)
	io.WriteString(w, "the export key")
	w.Close()
	ids, err := (&app{getenv: env()}).identities("", file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := age.Decrypt(bytes.NewReader(sealed.Bytes()), ids...); err != nil {
		t.Errorf("the passphrase file does not open what the variable (with its newline) encrypted: %v", err)
	}
	// An export of an older ferry, which kept the variable's newline,
	// still opens with the variable as it was.
	oldRs, _ := transfer.PassphraseRecipient("pw\n")
	var oldSealed bytes.Buffer
	w, _ = age.Encrypt(&oldSealed, oldRs...)
	io.WriteString(w, "the export key")
	w.Close()
	ids, err = (&app{getenv: env("FERRY_IMPORT_PASSPHRASE", "pw\n")}).identities("", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := age.Decrypt(bytes.NewReader(oldSealed.Bytes()), ids...); err != nil {
		t.Errorf("the variable with its newline does not open an older ferry's export: %v", err)
	}

	const key = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
	for _, c := range []struct {
		name             string
		getenv           func(string) string
		identity, phrase string
		want, secret     string
	}{
		{"a key given as --identity", env(), key, "", "a secret key itself (not repeated here)", key},
		{"a passphrase given as --passphrase-file", env(), "", "correct horse battery", "never the passphrase itself", "correct horse"},
		{"both flags", env(), "id.txt", "pass.txt", "exclude each other", ""},
		{"both variables", env("FERRY_IMPORT_IDENTITY", key, "FERRY_IMPORT_PASSPHRASE", "pw"), "", "", "are both set", ""},
	} {
		_, err := (&app{getenv: c.getenv}).identities(c.identity, c.phrase)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.want) || (c.secret != "" && strings.Contains(err.Error(), c.secret)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := (&app{getenv: env()}).recipients(key, ""); err == nil || strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "a secret key itself") {
		t.Errorf("a secret key as --recipients-file: %v", err)
	}
	if _, err := (&app{getenv: env("FERRY_EXPORT_RECIPIENTS", "age1x", "FERRY_EXPORT_PASSPHRASE", "pw")}).recipients("", ""); err == nil || !strings.Contains(err.Error(), "are both set") {
		t.Errorf("both export variables: %v", err)
	}
	if _, _, err := transfer.SplitLocation("s3://AK:STORESECRET1@bucket/exports/badid?region=x"); err == nil || strings.Contains(err.Error(), "STORESECRET1") {
		t.Errorf("a store URL with a password: %v", err)
	}
}

// TestExportEncryptFromEnv: FERRY_EXPORT_ENCRYPT chooses the mode as
// --encrypt does; the variables that configure encryption, set while
// nothing encrypts, refuse the export rather than write it in the clear.
func TestExportEncryptFromEnv(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY, v VARCHAR(20));\nINSERT INTO a VALUES (1, 'hunter2');\n",
	})
	mustRun(t, dir, db.URLString, "up")
	store := filepath.Join(t.TempDir(), "exports")
	for _, c := range []struct {
		env, want string
		args      []string
	}{
		{"FERRY_EXPORT_SENSITIVE=a", "FERRY_EXPORT_SENSITIVE is set, but nothing encrypts this export", nil},
		{"FERRY_EXPORT_PASSPHRASE=pw", "FERRY_EXPORT_PASSPHRASE is set, but nothing encrypts this export", nil},
		{"FERRY_EXPORT_ENCRYPT=everything", `FERRY_EXPORT_ENCRYPT "everything": use all or sensitive`, nil},
		// The mode turned off on the command line, the key still set.
		{"FERRY_EXPORT_ENCRYPT=all FERRY_EXPORT_PASSPHRASE=pw", `FERRY_EXPORT_PASSPHRASE is set, but --encrypt "" turns off the encryption FERRY_EXPORT_ENCRYPT asks for`, []string{"--encrypt", ""}},
		{"FERRY_EXPORT_SENSITIVE=a FERRY_EXPORT_PASSPHRASE=pw", "unset FERRY_EXPORT_SENSITIVE and FERRY_EXPORT_PASSPHRASE", nil},
	} {
		cmd := ferryCmd(dir, db.URLString, append([]string{"export", "--to", store}, c.args...)...)
		cmd.Env = append(cmd.Env, strings.Fields(c.env)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: %v\n%s", c.env, err, out)
		}
	}
	if _, err := os.Stat(store); err == nil {
		t.Error("a refused export created its store")
	}
	cmd := ferryCmd(dir, db.URLString, "export", "--to", store)
	cmd.Env = append(cmd.Env, "FERRY_EXPORT_ENCRYPT=ALL", "FERRY_EXPORT_PASSPHRASE=pw")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--passphrase-file") {
		t.Fatalf("an export encrypted from the environment: %v\n%s", err, out)
	}
	var found bool
	filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			found = found || bytes.Contains(b, []byte("hunter2"))
		}
		return nil
	})
	if found {
		t.Error("the export encrypted from the environment holds the value in the clear")
	}
}

// TestExportResumeSourceFails: an export whose --resume fails on the
// source (--resume-source) does not tell the operator to import with that
// statement (--resume-recorded), but with a corrected one.
func TestExportResumeSourceFails(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_jobs.sql": "-- +ferry up\nCREATE TABLE jobs (id INTEGER PRIMARY KEY, paused INTEGER NOT NULL, name TEXT NOT NULL);\nINSERT INTO jobs VALUES (1, 0, 'a'), (2, 0, 'b');\n",
	})
	mustRun(t, dir, db.URLString, "up")
	store := filepath.Join(t.TempDir(), "exports")
	r := runFerry(t, dir, db.URLString, "export", "--to", store,
		"--pause-select", "SELECT id FROM jobs WHERE paused = 0", "--pause", "UPDATE jobs SET paused = 1 WHERE id = ?",
		"--resume", "UPDATE jobs SET name = NULL WHERE id = ?", "--resume-source")
	if r.code != 1 || !strings.Contains(r.stdout, "where --resume failed") || !strings.Contains(r.stdout, "--database URL --resume SQL\n") ||
		strings.Contains(r.stdout, "--resume-recorded") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// Resumed from a directory with no database configured: refused
	// (not the source), and no SQLite file is made there.
	id := regexp.MustCompile(`\d{8}T\d{6}Z-[0-9a-f]{6}`).FindString(r.stdout)
	elsewhere := t.TempDir()
	if r := runFerry(t, elsewhere, "", "export", "resume", store+"/"+id, "--resume", "UPDATE jobs SET paused = 0 WHERE id = ?"); r.code == 0 || id == "" {
		t.Errorf("export resume of %q on the default database: exit %d %s", id, r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "ferry.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("export resume made a SQLite file where it ran: %v", err)
	}
}

// TestProgressLines: off a terminal, at the default log level, each
// table's progress is a JSON line on stderr (its last one done), whatever
// the log's format; --log-level error leaves them out.
func TestProgressLines(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY, v VARCHAR(20));\nINSERT INTO a VALUES (1, 'one');\n",
	})
	mustRun(t, dir, db.URLString, "up")
	r := mustRun(t, dir, db.URLString, "export", "--to", filepath.Join(t.TempDir(), "exports"))
	var line struct {
		Msg, Op, Table string
		Rows           int64
		Done           bool
	}
	found := false
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if err := json.Unmarshal([]byte(l), &line); err == nil && line.Msg == "progress" && line.Op == "export" && line.Table == "a" && line.Rows == 1 && line.Done {
			found = true
		}
	}
	if !found {
		t.Errorf("no JSON progress line of table a, done:\n%s", r.stderr)
	}
	if r := mustRun(t, dir, db.URLString, "export", "--to", filepath.Join(t.TempDir(), "exports"), "--log-level", "error"); strings.Contains(r.stderr, "progress") {
		t.Errorf("progress at --log-level error:\n%s", r.stderr)
	}
}

// TestExportWithoutFiles: an export reads the source's history table, not
// the migration files: it runs where they are not (a backup host), and a
// bad file beside them stops nothing; the manifest still lists the
// applied migrations with their checksums.
func TestExportWithoutFiles(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\nINSERT INTO a VALUES (1);\n",
	})
	mustRun(t, dir, db.URLString, "up")
	store := filepath.Join(t.TempDir(), "exports")
	elsewhere := t.TempDir() // no migrations directory
	r := mustRun(t, elsewhere, db.URLString, "export", "--to", store, "--json")
	var out struct {
		Export struct {
			Source struct {
				SchemaVersion int64 `json:"schema_version"`
				Migrations    []struct {
					Version  int64  `json:"version"`
					Checksum string `json:"checksum"`
				} `json:"migrations"`
			} `json:"source"`
		} `json:"export"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("export --json: %v\n%s", err, r.stdout)
	}
	if s := out.Export.Source; s.SchemaVersion != 1 || len(s.Migrations) != 1 || s.Migrations[0].Version != 1 || s.Migrations[0].Checksum == "" {
		t.Errorf("exported without the files, the source: %+v", s)
	}
	if err := os.WriteFile(filepath.Join(dir, "migrations", "00002_bad.sql"), []byte("-- +ferry down\nnot a migration"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, db.URLString, "export", "--to", store)
}

// TestDamagedImportStatus: an import whose load stopped at a damaged
// chunk is shown as stopped, with the check of the export and the import
// to run once it is restored, not as one merely cut short.
func TestDamagedImportStatus(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n"})
	mustRun(t, dir, db.URLString, "up")
	cutShort(t, db.DB, "20261130T000000Z-abcdef", "started", "damaged", "from:/srv/exports/20261130T000000Z-abcdef", "keyenv:FERRY_IMPORT_PASSPHRASE")
	r := runFerry(t, dir, db.URLString, "status", "--exit-code")
	if want := "Import stopped:      export 20261130T000000Z-abcdef (0 tables loaded): it stopped at a chunk of the export that is missing or damaged (`ferry export verify /srv/exports/20261130T000000Z-abcdef` names every one): restore the export's objects from a copy of the store and run `ferry import --from /srv/exports/20261130T000000Z-abcdef` again with FERRY_IMPORT_PASSPHRASE set (as it was for the run that started it)"; r.code != 3 || !strings.Contains(r.stdout, want) {
		t.Errorf("status after a load stopped by a damaged chunk: exit %d\n%s\nwant it to say: %s", r.code, r.stdout, want)
	}
	if r := mustRun(t, dir, db.URLString, "status", "--json"); !strings.Contains(r.stdout, `"export_damaged": true`) {
		t.Errorf("status --json: %s", r.stdout)
	}
	if r := runFerry(t, dir, db.URLString, "up"); r.code == 0 || !strings.Contains(r.stderr, "restore the export's objects from a copy of the store") || strings.Contains(r.stderr, "if it was cut short") {
		t.Errorf("up during a stopped import: exit %d: %s", r.code, r.stderr)
	}
	// An import whose verification failed cannot be finished: ferry wait
	// says so at once rather than wait out its timeout.
	if _, err := db.DB.ExecContext(context.Background(), "INSERT INTO ferry_migrations_import VALUES ('20261130T000000Z-aaaaaa', 'mismatch', 1, '2026-11-30T00:00:00Z')"); err != nil {
		t.Fatal(err)
	}
	if r := runFerry(t, dir, db.URLString, "wait", "--version", "1", "--timeout", "10m"); r.code != 1 || !strings.Contains(r.stderr, "waiting cannot make the database ready: the import of export 20261130T000000Z-aaaaaa into it cannot be finished") {
		t.Errorf("wait on an import that cannot be finished: exit %d: %s", r.code, r.stderr)
	}
	// Nor can one whose load met a value the target cannot take.
	if _, err := db.DB.ExecContext(context.Background(), "DELETE FROM ferry_migrations_import WHERE step = 'mismatch'"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DB.ExecContext(context.Background(), "INSERT INTO ferry_migrations_import VALUES ('20261130T000000Z-aaaaaa', 'refused', 0, '2026-11-30T00:00:00Z')"); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, dir, db.URLString, "status"); !strings.Contains(r.stdout, "Import failed:       export 20261130T000000Z-aaaaaa: its load stopped at a value the target cannot take, which running it again meets too") {
		t.Errorf("status after a load stopped at a value: %s", r.stdout)
	}
	if r := runFerry(t, dir, db.URLString, "wait", "--version", "1", "--timeout", "10m"); r.code != 1 || !strings.Contains(r.stderr, "cannot be finished: its load stopped at a value") {
		t.Errorf("wait on an import stopped at a value: exit %d: %s", r.code, r.stderr)
	}
	if r := runFerry(t, dir, db.URLString, "up"); r.code != 1 || !strings.Contains(r.stderr, "cannot be finished: ferry up would change") {
		t.Errorf("up during an import stopped at a value: exit %d: %s", r.code, r.stderr)
	}
}

// TestExportVerifyDamaged: ferry export verify lists each problem once,
// then says how many and what to do, and exits 1.
func TestExportVerifyDamaged(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO a VALUES (1, 'one'), (2, 'two');\n"})
	mustRun(t, dir, db.URLString, "up")
	store := filepath.Join(t.TempDir(), "exports")
	r := mustRun(t, dir, db.URLString, "export", "--to", store, "--json")
	var out struct {
		Export struct {
			ID string `json:"id"`
		} `json:"export"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("export --json: %v\n%s", err, r.stdout)
	}
	chunk := filepath.Join(store, out.Export.ID, "tables", "a", "part-00001.jsonl.s2")
	data, err := os.ReadFile(chunk)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(chunk, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r = runFerry(t, dir, "", "export", "verify", store+"/"+out.Export.ID)
	if r.code != 1 || strings.Count(r.stderr, "part-00001.jsonl.s2 has sha256") != 1 ||
		!strings.Contains(r.stderr, "export "+out.Export.ID+" has 1 problem, listed above: restore its objects from a copy of the store, or export again") {
		t.Errorf("verify of a damaged export: exit %d\n%s", r.code, r.stderr)
	}
	// Without its manifest it is incomplete: the list does not say the
	// store holds no exports.
	if err := os.Remove(filepath.Join(store, out.Export.ID, "manifest.json")); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, dir, "", "export", "list", "--store", store); !strings.Contains(r.stdout, "no export in file://"+store+" can be imported (1 broken or incomplete, above)") {
		t.Errorf("list of a store with an incomplete export only: %s%s", r.stdout, r.stderr)
	}
}
