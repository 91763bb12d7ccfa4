package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/internal/tools"
	"github.com/ferrydb/ferry/release"
	"github.com/ferrydb/ferry/server/api"
)

const serveToken = "cli-serve-token-0123456789abcdef"

// served is a running `ferry serve` process.
type served struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

func (s *served) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// startServe runs `ferry serve` with args and waits until it listens.
func startServe(t *testing.T, dir, dbURL string, env []string, args ...string) *served {
	t.Helper()
	cmd := ferryCmd(dir, dbURL, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		s.done <- cmd.Wait()
		close(addr)
	}()
	a, ok := <-addr
	if !ok {
		t.Fatalf("ferry serve exited before listening:\n%s", s.Logs())
	}
	s.addr = a
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	return s
}

// stop sends SIGTERM and waits for a clean exit. Every line the service
// wrote to stderr, the signal's notice included, must be a JSON object.
func (s *served) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("ferry serve after SIGTERM: %v\n%s", err, s.Logs())
	}
	logs := s.Logs()
	if !strings.Contains(logs, `"signal":"terminated"`) {
		t.Errorf("no JSON notice of the signal in the logs:\n%s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("a log line is not JSON: %s", line)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// gooseTarget returns goose's driver and DSN for a test database.
func gooseTarget(db *testdb.DB) (string, string) {
	u := db.URL
	switch db.Kind {
	case database.Postgres:
		return "postgres", u.WithPassword() + "?sslmode=disable"
	case database.MySQL:
		return "mysql", fmt.Sprintf("%s@tcp(%s)/%s?parseTime=true&multiStatements=true", u.User, u.Address(), u.Database)
	}
	return "sqlite3", u.Database
}

func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("FERRY_TEST_REQUIRE_DB") == "1" {
			t.Fatal("python3 is needed for the Metaflow client test")
		}
		t.Skip("python3 not installed")
	}
	return p
}

// TestMetaflowDropIn: a database goose brought to a middle version is
// adopted by `ferry serve --compat metaflow`, which reports the right
// current_version and unapplied_migrations; a stdlib Python script playing
// Metaflow's client upgrades it through PATCH /upgrade with credentials in
// the base URL; goose_db_version agrees with ferry afterwards.
func TestMetaflowDropIn(t *testing.T) {
	py := python(t)
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	goose, err := tools.Goose().Path(c)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"20201002000616_flows.sql": "-- +goose Up\n-- +goose StatementBegin\nSELECT 'up SQL query';\nCREATE TABLE flows_v3 (flow_id VARCHAR(255) PRIMARY KEY);\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TABLE flows_v3;\n",
		"20210202145952_runs.sql":  "-- +goose Up\nCREATE TABLE runs_v3 (run_number INTEGER PRIMARY KEY, flow_id VARCHAR(255));\n\n-- +goose Down\nDROP TABLE runs_v3;\n",
		"20220503175500_idx.sql":   "-- +goose Up\n-- +goose StatementBegin\nSELECT 'up SQL query';\nCREATE INDEX runs_v3_flow ON runs_v3 (flow_id);\n-- +goose StatementEnd\n\n-- +goose Down\nDROP INDEX runs_v3_flow;\n",
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := project(t, files)
		driver, dsn := gooseTarget(db)
		if out, err := exec.Command(goose, "-dir", filepath.Join(dir, "migrations"), driver, dsn, "up-to", "20210202145952").CombinedOutput(); err != nil {
			t.Fatalf("goose: %v\n%s", err, out)
		}
		s := startServe(t, dir, db.URLString, []string{"FERRY_TOKEN=" + serveToken}, "--compat", "metaflow")
		code, body := httpGet(t, "http://"+s.addr+"/db_schema_status")
		var st api.SchemaStatus
		json.Unmarshal([]byte(body), &st)
		if code != 200 || st.CurrentVersion != "20210202145952" || fmt.Sprint(st.UnappliedMigrations) != "[20220503175500]" || st.IsUpToDate {
			t.Fatalf("status of the goose database: %d %s", code, body)
		}
		// Without credentials the upgrade is refused.
		req, _ := http.NewRequest("PATCH", "http://"+s.addr+"/upgrade", nil)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
			t.Fatalf("upgrade without credentials: %v %v", resp, err)
		}
		// Metaflow's client, credentials in the base URL.
		out, err := exec.Command(py, filepath.Join("testdata", "metaflow_migration_client.py"), "http://ferry:"+serveToken+"@"+s.addr).CombinedOutput()
		if err != nil {
			t.Fatalf("Metaflow client: %v\n%s\nservice logs:\n%s", err, out, s.Logs())
		}
		if !strings.Contains(string(out), "upgrade: 200 upgrade success") {
			t.Fatalf("Metaflow client output:\n%s", out)
		}
		// goose sees the version ferry reached.
		gv, err := exec.Command(goose, "-dir", filepath.Join(dir, "migrations"), driver, dsn, "version").CombinedOutput()
		if err != nil || !regexp.MustCompile(`goose: version 20220503175500\b`).Match(gv) {
			t.Fatalf("goose version after the upgrade: %v %s", err, gv)
		}
		s.stop(t)
		// The audit record names who asked, from where, and the versions.
		if !strings.Contains(s.Logs(), `"audit":true`) || !strings.Contains(s.Logs(), `"identity":"env"`) || !strings.Contains(s.Logs(), `"to_version":20220503175500`) {
			t.Fatalf("no audit record in the logs:\n%s", s.Logs())
		}
		if strings.Contains(s.Logs(), serveToken) {
			t.Fatal("the token appears in the logs")
		}
	})
}

func TestServeRefusesPublicAddressWithoutToken(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nSELECT 1;\n"})
	r := runFerry(t, dir, "", "serve", "--listen", "0.0.0.0:0")
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to serve upgrades on 0.0.0.0:0 without a token") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// IPv6 addresses keep their brackets, from the flag and the variable.
	r = runFerry(t, dir, "", "serve", "--listen", "[::]:0")
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to serve upgrades on [::]:0 without a token") {
		t.Fatalf("--listen [::]:0: exit %d: %s", r.code, r.stderr)
	}
	cmd := ferryCmd(dir, "", "serve")
	cmd.Env = append(cmd.Env, "FERRY_LISTEN=[::]:0")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "refusing to serve upgrades on [::]:0 without a token") {
		t.Fatalf("FERRY_LISTEN=[::]:0: %v: %s", err, out)
	}
	// Read-only needs no token; MF_MIGRATION_ENDPOINTS_ENABLED=0 means read-only.
	s := startServe(t, dir, "", []string{"MF_MIGRATION_ENDPOINTS_ENABLED=0"})
	req, _ := http.NewRequest("PATCH", "http://"+s.addr+"/upgrade", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("upgrade on a read-only service: %v %v", resp, err)
	}
	s.stop(t)
}

// TestServeListensBeforeTheDatabase: the ports are taken before the
// database is reached, so a port in use is reported at once, and not
// after a wait for an unreachable database.
func TestServeListensBeforeTheDatabase(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nSELECT 1;\n"})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// Port 1 on loopback refuses connections: the database is down.
	r := runFerry(t, dir, "postgres://postgres@127.0.0.1:1/ferry?sslmode=disable", "serve", "--listen", taken.Addr().String())
	if r.code != 1 || !strings.Contains(r.stderr, "listen on "+taken.Addr().String()) {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "database not reachable") {
		t.Fatalf("the database was reached before the port was taken: %s", r.stderr)
	}
}

func TestRemote(t *testing.T) {
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
		"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\n",
	})
	dbURL := "sqlite:" + filepath.Join(dir, "remote.db")
	s := startServe(t, dir, dbURL, []string{"FERRY_TOKEN=" + serveToken})
	base := "http://" + s.addr
	remote := func(env []string, args ...string) result {
		cmd := ferryCmd(dir, "", append([]string{"remote"}, args...)...)
		cmd.Env = append(cmd.Env, env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return result{out.String(), errb.String(), code}
	}
	if r := remote(nil, "status", "--base-url", base, "--exit-code"); r.code != exitPending || !strings.Contains(r.stdout, "Current version:  0") {
		t.Fatalf("remote status: %+v", r)
	}
	if r := remote(nil, "upgrade", "--base-url", base); r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("remote upgrade without a token: %+v", r)
	}
	r := remote([]string{"FERRY_TOKEN=" + serveToken, "FERRY_BASE_URL=" + base}, "upgrade", "--to", "1", "--json")
	var o struct {
		Success bool `json:"success"`
		After   struct {
			CurrentVersion string `json:"current_version"`
			IsUpToDate     bool   `json:"is_up_to_date"`
		} `json:"final-status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &o); err != nil || !o.Success || o.After.CurrentVersion != "1" || o.After.IsUpToDate {
		t.Fatalf("remote upgrade --to 1: %+v (%v)", r, err)
	}
	// An upgrade to a target succeeds when it reaches the target, even
	// though later migrations stay pending; then the rest.
	if r.code != 0 {
		t.Fatalf("upgrade --to 1 exit %d: %s", r.code, r.stderr)
	}
	r = remote(nil, "upgrade", "--base-url", "http://ferry:"+serveToken+"@"+s.addr)
	if r.code != 0 || !strings.Contains(r.stdout, "upgrade success") || !strings.Contains(r.stdout, "version 1 -> 2") {
		t.Fatalf("remote upgrade: %+v", r)
	}
	if r := remote(nil, "status", "--base-url", base, "--exit-code", "--api", "metaflow"); r.code != 0 {
		t.Fatalf("remote status after upgrade: %+v", r)
	}
	// The history, a page at a time.
	if r := remote(nil, "history", "--base-url", base, "--limit", "1"); r.code != 0 || !strings.Contains(r.stdout, " 1 a  up applied") || strings.Contains(r.stdout, " 2 b ") || !strings.Contains(r.stdout, "(more: ferry remote history --base-url "+base+" --after 1 --limit 1)") {
		t.Fatalf("remote history --limit 1: %+v", r)
	}
	if r := remote(nil, "history", "--base-url", base, "--limit", "1", "--all"); r.code != 0 || !strings.Contains(r.stdout, " 1 a ") || !strings.Contains(r.stdout, " 2 b ") || strings.Contains(r.stdout, "more:") {
		t.Fatalf("remote history --all: %+v", r)
	}
	s.stop(t)
}

// TestServeVersionAndContractGate: GET /version follows the release
// manifest, and an upgrade through the service is refused while a live
// instance of an old release needs what a contract migration removes.
func TestServeVersionAndContractGate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := project(t, map[string]string{
			"00001_users.sql":     "-- +ferry up\nCREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(50));\n",
			"00002_add_nick.sql":  "-- +ferry up\nALTER TABLE users ADD COLUMN nick VARCHAR(50);\n",
			"00003_drop_name.sql": "-- +ferry up\n-- +ferry contract\nALTER TABLE users DROP COLUMN name;\n",
		})
		os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("releases:\n  - {name: v1, schema: 1}\n  - {name: v2, schema: 2}\n  - {name: v3, schema: 3}\n"), 0o644)
		mustRun(t, dir, db.URLString, "up", "--to", "1")
		s := startServe(t, dir, db.URLString, []string{"FERRY_TOKEN=" + serveToken})
		if code, body := httpGet(t, "http://"+s.addr+"/version"); code != 200 || body != "v1" {
			t.Fatalf("/version at schema 1: %d %q", code, body)
		}
		// The console shows the manifest's verdicts.
		if code, body := httpGet(t, "http://"+s.addr+"/"); code != 200 || !strings.Contains(body, `id="releases"`) || !strings.Contains(body, "<td>v1</td><td>1</td>\n      <td>yes (newest)") || !strings.Contains(body, "<td>v3</td>") {
			t.Fatalf("console at schema 1: %d\n%s", code, body)
		}
		// A v1 instance is live.
		reg, err := release.Register(context.Background(), db.DB.DB, db.Dialect, release.Instance{Release: "v1", Schema: 1})
		if err != nil {
			t.Fatal(err)
		}
		upgrade := func() (int, string) {
			req, _ := http.NewRequest("POST", "http://"+s.addr+"/v1/upgrade", nil)
			req.Header.Set("Authorization", "Bearer "+serveToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		// /v1/status is the ferry status --json document, fleet included;
		// the service reads status again at most every 250ms, so the new
		// instance shows within a second.
		var v1 string
		deadline := time.Now().Add(time.Second)
		for {
			_, v1 = httpGet(t, "http://"+s.addr+"/v1/status")
			if strings.Contains(v1, reg.Instance().ID) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // polling against the deadline
		}
		cli := mustRun(t, dir, db.URLString, "status", "--json").stdout
		var v1Doc, cliDoc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(v1), &v1Doc); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(cli), &cliDoc); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(v1Doc["fleet"]), reg.Instance().ID) || len(v1Doc) != len(cliDoc) {
			t.Fatalf("/v1/status is not ferry status --json:\n%s\n%s", v1, cli)
		}
		for k := range cliDoc {
			if _, ok := v1Doc[k]; !ok {
				t.Errorf("/v1/status lacks %q", k)
			}
		}
		code, body := upgrade()
		if code != 500 || !strings.Contains(body, "v1") || !strings.Contains(body, reg.Instance().ID) {
			t.Fatalf("upgrade while v1 lives: %d %s", code, body)
		}
		// The expand migration below the contract one was applied.
		if code, body := httpGet(t, "http://"+s.addr+"/version"); code != 200 || body != "v2" {
			t.Fatalf("/version at schema 2: %d %q", code, body)
		}
		if err := reg.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if code, body := upgrade(); code != 200 {
			t.Fatalf("upgrade after v1 stopped: %d %s", code, body)
		}
		if code, body := httpGet(t, "http://"+s.addr+"/version"); code != 200 || body != "v3" {
			t.Fatalf("/version at schema 3: %d %q", code, body)
		}
		s.stop(t)
	})
}

// TestLaunchServe: ferry launch --serve runs the migration service beside
// the release and stops it when the release exits.
func TestLaunchServe(t *testing.T) {
	dir := project(t, map[string]string{"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n"})
	os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("releases:\n  - {name: app, schema: 1, command: [cat]}\n"), 0o644)
	mustRun(t, dir, "", "up")
	cmd := ferryCmd(dir, "", "launch", "--serve", "--listen", "127.0.0.1:0")
	stdin, _ := cmd.StdinPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var addr string
	sc := bufio.NewScanner(stderr)
	for addr == "" && sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
			addr = rec.Addr
		}
	}
	if addr == "" {
		t.Fatal("ferry launch --serve never served")
	}
	go io.Copy(io.Discard, stderr)
	if code, body := httpGet(t, "http://"+addr+"/version"); code != 200 || body != "app" {
		t.Fatalf("/version beside the release: %d %q", code, body)
	}
	stdin.Close() // the release (cat) exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ferry launch: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/ping"); err == nil {
		t.Fatal("the service still answers after the release exited")
	}
}

// TestServeBackupBeforeUpgrade: with a backup store configured, an upgrade
// through the service takes a backup first; the answer and the audit record
// name it, and a failed upgrade's answer says how to restore.
func TestServeBackupBeforeUpgrade(t *testing.T) {
	dir := project(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\nINSERT INTO a VALUES (1);\n",
		"00002_b.sql": "-- +ferry up\nCREATE TABLE b (id INTEGER);\n",
	})
	store := filepath.Join(dir, "backups")
	dbURL := "sqlite:" + filepath.Join(dir, "app.db")
	mustRun(t, dir, dbURL, "up", "--to", "1")
	s := startServe(t, dir, dbURL, []string{"FERRY_TOKEN=" + serveToken, "FERRY_BACKUP_STORE=" + store})
	post := func() (int, api.Upgrade[api.Status]) {
		req, _ := http.NewRequest("POST", "http://"+s.addr+"/v1/upgrade", nil)
		req.Header.Set("Authorization", "Bearer "+serveToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var up api.Upgrade[api.Status]
		json.NewDecoder(resp.Body).Decode(&up)
		return resp.StatusCode, up
	}
	code, up := post()
	if code != 200 || up.BackupID == "" {
		t.Fatalf("upgrade with a store: %d %+v", code, up)
	}
	list := mustRun(t, dir, dbURL, "backup", "list", "--store", store, "--json").stdout
	if !strings.Contains(list, up.BackupID) {
		t.Fatalf("backup %s not in the store:\n%s", up.BackupID, list)
	}
	// The console lists it with the command that restores it.
	if code, body := httpGet(t, "http://"+s.addr+"/"); code != 200 || !strings.Contains(body, `<section id="backups">`) || !strings.Contains(body, "<td>"+up.BackupID+"</td>") || !strings.Contains(body, "ferry backup restore "+up.BackupID) {
		t.Fatalf("console with a backup store: %d\n%s", code, body)
	}
	// A failing migration: the answer says how to get back.
	os.WriteFile(filepath.Join(dir, "migrations", "00003_bad.sql"), []byte("-- +ferry up\nINSERT INTO missing VALUES (1);\n"), 0o644)
	s.stop(t)
	s = startServe(t, dir, dbURL, []string{"FERRY_TOKEN=" + serveToken, "FERRY_BACKUP_STORE=" + store})
	code, up = post()
	if code != 500 || up.BackupID == "" || !strings.Contains(up.Error, "ferry backup restore "+up.BackupID) {
		t.Fatalf("failed upgrade with a store: %d %+v", code, up)
	}
	s.stop(t)
	if !strings.Contains(s.Logs(), `"backup_id":"`+up.BackupID+`"`) {
		t.Fatalf("the audit record lacks the backup id:\n%s", s.Logs())
	}
}
