package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server"
	"github.com/ferrydb/ferry/server/api"
)

const token = "s3cret-token-0123456789abcdef"

var migrationFiles = map[string]string{
	"00001_accounts.sql": "-- +ferry up\nCREATE TABLE accounts (id INTEGER PRIMARY KEY, name VARCHAR(50));\n-- +ferry down\nDROP TABLE accounts;\n",
	"00002_orders.sql":   "-- +ferry up\nCREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER);\nCREATE TABLE IF NOT EXISTS runs (v INTEGER);\nINSERT INTO runs (v) VALUES (2);\n",
	"00003_items.sql":    "-- +ferry up\nCREATE TABLE items (id INTEGER PRIMARY KEY);\nCREATE TABLE IF NOT EXISTS runs (v INTEGER);\nINSERT INTO runs (v) VALUES (3);\n",
}

func migrationsDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type service struct {
	*server.Server
	URL string
	db  *database.DB
}

// newService starts the migration service on a loopback port, with its own
// connection pool to db.
// within calls check until it reports true or d has passed (the bound a
// cached status promises), and returns its last value.
func within[T any](t *testing.T, d time.Duration, check func() (T, bool)) (T, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		v, ok := check()
		if ok || time.Now().After(deadline) {
			return v, ok
		}
		<-tick.C
	}
}

func newService(t *testing.T, db *testdb.DB, cfg server.Config, opts ...migrate.Option) *service {
	t.Helper()
	own, err := database.Open(context.Background(), db.URLString, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Close() })
	cfg.DB = own
	cfg.MigratorOptions = append([]migrate.Option{migrate.WithLockTimeout(2 * time.Minute)}, opts...)
	var logs bytes.Buffer
	if cfg.Logger == nil {
		cfg.Logger = newLogger(&logs)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	// The server first: that ends event streams, which the test server's
	// Close would otherwise wait for.
	t.Cleanup(func() { s.Close(); ts.Close() })
	return &service{Server: s, URL: ts.URL, db: own}
}

func do(t *testing.T, method, url string, body io.Reader, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func bearer() map[string]string { return map[string]string{"Authorization": "Bearer " + token} }

func schemaStatus(t *testing.T, base string) api.SchemaStatus {
	t.Helper()
	code, body := do(t, "GET", base+"/db_schema_status", nil, nil)
	if code != 200 {
		t.Fatalf("db_schema_status: %d %s", code, body)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	// Exactly Metaflow's keys and value types.
	want := map[string]string{"is_up_to_date": "bool", "current_version": "string", "migration_in_progress": "bool", "db_schema_versions": "[]any", "unapplied_migrations": "[]any"}
	if len(raw) != len(want) {
		t.Fatalf("db_schema_status keys: %v", raw)
	}
	for k, typ := range want {
		v, ok := raw[k]
		got := fmt.Sprintf("%T", v)
		got = strings.NewReplacer("[]interface {}", "[]any").Replace(got)
		if !ok || got != typ {
			t.Fatalf("db_schema_status[%q] = %T, want %s", k, v, typ)
		}
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				if _, ok := e.(string); !ok {
					t.Fatalf("%s holds a %T, want strings", k, e)
				}
			}
		}
	}
	var doc api.SchemaStatus
	json.Unmarshal([]byte(body), &doc)
	return doc
}

func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := do(t, "GET", base+"/metrics", nil, nil)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s not found", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStatusUpgradeReadinessMetrics(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := newService(t, db, server.Config{Tokens: []server.Token{{Name: "deploy", Secret: token}}}, migrate.WithDir(migrationsDir(t, migrationFiles)))

		if code, body := do(t, "GET", s.URL+"/ping", nil, nil); code != 200 || body != "pong" {
			t.Fatalf("ping: %d %q", code, body)
		}
		if code, body := do(t, "GET", s.URL+"/healthz", nil, nil); code != 200 {
			t.Fatalf("healthz: %d %q", code, body)
		}
		st := schemaStatus(t, s.URL)
		if st.IsUpToDate || st.CurrentVersion != "0" || st.MigrationInProgress ||
			fmt.Sprint(st.DBSchemaVersions) != "[1 2 3]" || fmt.Sprint(st.UnappliedMigrations) != "[1 2 3]" {
			t.Fatalf("fresh status: %+v", st)
		}
		if code, body := do(t, "GET", s.URL+"/readyz", nil, nil); code != 503 || !strings.Contains(body, "3 pending") {
			t.Fatalf("readyz before upgrade: %d %s", code, body)
		}
		if code, body := do(t, "GET", s.URL+"/version", nil, nil); code != 200 || body != "0" {
			t.Fatalf("version: %d %q", code, body)
		}
		if v := metric(t, s.URL, "ferry_schema_pending_migrations"); v != 3 {
			t.Fatalf("pending metric %v", v)
		}

		// No token, a wrong token: 401, nothing applied.
		for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong-token-0123456789"}} {
			if code, _ := do(t, "PATCH", s.URL+"/upgrade", nil, hdr); code != 401 {
				t.Fatalf("upgrade with %v: %d", hdr, code)
			}
			if code, _ := do(t, "POST", s.URL+"/v1/upgrade", nil, hdr); code != 401 {
				t.Fatalf("v1 upgrade with %v: %d", hdr, code)
			}
		}
		if schemaStatus(t, s.URL).CurrentVersion != "0" {
			t.Fatal("an unauthorized request applied migrations")
		}

		// /v1/upgrade to version 1 with the Bearer token.
		code, body := do(t, "POST", s.URL+"/v1/upgrade", strings.NewReader(`{"to": 1}`), bearer())
		var up api.Upgrade[api.Status]
		if err := json.Unmarshal([]byte(body), &up); err != nil || code != 200 {
			t.Fatalf("v1 upgrade: %d %s", code, body)
		}
		if up.UpgradeResult != api.UpgradeSuccess || up.InitStatus.CurrentVersion != 0 || up.FinalStatus.CurrentVersion != 1 || len(up.Applied) != 1 {
			t.Fatalf("v1 upgrade answer: %+v", up)
		}

		// The Metaflow route with the token as basic auth password (text answer).
		req, _ := http.NewRequest("PATCH", s.URL+"/upgrade", nil)
		req.SetBasicAuth("ferry", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "upgrade success" {
			t.Fatalf("PATCH /upgrade: %d %q", resp.StatusCode, b)
		}
		st = schemaStatus(t, s.URL)
		if !st.IsUpToDate || st.CurrentVersion != "3" || len(st.UnappliedMigrations) != 0 {
			t.Fatalf("status after upgrade: %+v", st)
		}
		if code, _ := do(t, "GET", s.URL+"/readyz", nil, nil); code != 200 {
			t.Fatalf("readyz after upgrade: %d", code)
		}
		if v := metric(t, s.URL, "ferry_schema_pending_migrations"); v != 0 {
			t.Fatalf("pending metric after upgrade %v", v)
		}
		if v := metric(t, s.URL, `ferry_upgrades_total{outcome="success"}`); v != 2 {
			t.Fatalf("upgrades metric %v", v)
		}
		if v := metric(t, s.URL, "ferry_schema_up_to_date"); v != 1 {
			t.Errorf("up to date metric after the upgrade = %v", v)
		}
		if v := metric(t, s.URL, "ferry_imports_in_progress"); v != 0 {
			t.Errorf("imports in progress metric = %v", v)
		}
		if v := metric(t, s.URL, "ferry_schema_current_version"); v != 3 {
			t.Fatalf("current version metric %v", v)
		}
		if v := metric(t, s.URL, "ferry_last_upgrade_timestamp_seconds"); v < float64(time.Now().Add(-time.Hour).Unix()) {
			t.Fatalf("last upgrade metric %v", v)
		}

		// JSON answer from PATCH /upgrade when asked for; nothing left to do.
		hdr := bearer()
		hdr["Accept"] = "application/json"
		code, body = do(t, "PATCH", s.URL+"/upgrade", nil, hdr)
		var mu api.Upgrade[api.SchemaStatus]
		if err := json.Unmarshal([]byte(body), &mu); err != nil || code != 200 || mu.UpgradeResult != api.UpgradeSuccess || !mu.FinalStatus.IsUpToDate || mu.FinalStatus.CurrentVersion != "3" {
			t.Fatalf("PATCH /upgrade JSON: %d %s", code, body)
		}

		// /v1/status and /v1/history.
		code, body = do(t, "GET", s.URL+"/v1/status", nil, nil)
		var vs api.Status
		if err := json.Unmarshal([]byte(body), &vs); err != nil || code != 200 || vs.CurrentVersion != 3 || vs.Database == "" || len(vs.Applied) != 3 {
			t.Fatalf("v1 status: %d %s", code, body)
		}
		if !strings.Contains(vs.Applied[0].AppliedBy, "ferry serve") || !strings.Contains(vs.Applied[0].AppliedBy, "for deploy@") {
			t.Errorf("history does not say who asked: %q", vs.Applied[0].AppliedBy)
		}
		code, body = do(t, "GET", s.URL+"/v1/history", nil, nil)
		if code != 200 || strings.Count(body, `"operation":"up"`) != 3 {
			t.Fatalf("v1 history: %d %s", code, body)
		}
	})
}

func TestFailedUpgrade(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		files := map[string]string{
			"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
			"00002_b.sql": "-- +ferry up\nINSERT INTO missing_table VALUES (1);\n",
		}
		s := newService(t, db, server.Config{Tokens: []server.Token{{Name: "ci", Secret: token}}}, migrate.WithDir(migrationsDir(t, files)))
		code, body := do(t, "PATCH", s.URL+"/upgrade", nil, bearer())
		if code != 500 || body != "upgrade failed" {
			t.Fatalf("failing upgrade: %d %q", code, body)
		}
		code, body = do(t, "POST", s.URL+"/v1/upgrade", nil, bearer())
		var up api.Upgrade[api.Status]
		json.Unmarshal([]byte(body), &up)
		if code != 500 || up.UpgradeResult != api.UpgradeFailed || !strings.Contains(up.Error, "migration 2 (b) failed at statement 1") || up.FinalStatus.IsUpToDate {
			t.Fatalf("v1 failing upgrade: %d %s", code, body)
		}
		if v := metric(t, s.URL, `ferry_upgrades_total{outcome="failure"}`); v != 2 {
			t.Fatalf("failure metric %v", v)
		}
	})
}

// TestConcurrentUpgradesTwoInstances: two replicas of the service receive
// upgrade requests at once; each migration is applied once and both
// callers get the outcome.
func TestConcurrentUpgradesTwoInstances(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := migrationsDir(t, migrationFiles)
		cfg := server.Config{Tokens: []server.Token{{Name: "deploy", Secret: token}}}
		a, b := newService(t, db, cfg, migrate.WithDir(dir)), newService(t, db, cfg, migrate.WithDir(dir))
		var wg sync.WaitGroup
		results := make([]string, 6)
		codes := make([]int, 6)
		for i := range results {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				base := a.URL
				if i%2 == 1 {
					base = b.URL
				}
				codes[i], results[i] = do(t, "PATCH", base+"/upgrade", nil, bearer())
			}(i)
		}
		wg.Wait()
		for i := range results {
			if codes[i] != 200 || results[i] != "upgrade success" {
				t.Errorf("request %d: %d %q", i, codes[i], results[i])
			}
		}
		var runs int
		db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM runs").Scan(&runs)
		if runs != 2 {
			t.Fatalf("migrations 2 and 3 ran %d times in all, want 2", runs)
		}
		for _, base := range []string{a.URL, b.URL} {
			if st := schemaStatus(t, base); !st.IsUpToDate || st.CurrentVersion != "3" {
				t.Fatalf("%s: %+v", base, st)
			}
		}
	})
}

// blocker is a Go migration that waits until released, so a test can look
// at the service while an upgrade holds the migration lock.
func blocker(version int64) (*migrate.GoMigration, chan struct{}, chan struct{}) {
	started, release := make(chan struct{}), make(chan struct{})
	return &migrate.GoMigration{Version: version, Name: "blocker", Up: func(ctx context.Context, q migrate.Querier) error {
		close(started)
		<-release
		_, err := q.ExecContext(ctx, "CREATE TABLE blocker_done (id INTEGER)")
		return err
	}}, started, release
}

func TestMigrationInProgressOnlyWhileLocked(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		g, started, release := blocker(1)
		dir := migrationsDir(t, map[string]string{"00002_x.sql": "-- +ferry up\nCREATE TABLE x (id INTEGER);\n"})
		noop := &migrate.GoMigration{Version: 1, Name: "blocker", Up: func(context.Context, migrate.Querier) error { return nil }}
		upgrader := newService(t, db, server.Config{}, migrate.WithDir(dir), migrate.WithGoMigrations(g))
		watcher := newService(t, db, server.Config{ReadOnly: true}, migrate.WithDir(dir), migrate.WithGoMigrations(noop))

		// Pending migrations alone do not mean a migration is in progress.
		if st := schemaStatus(t, watcher.URL); st.MigrationInProgress || st.IsUpToDate {
			t.Fatalf("before: %+v", st)
		}
		done := make(chan string)
		go func() {
			_, body := do(t, "PATCH", upgrader.URL+"/upgrade", nil, nil)
			done <- body
		}()
		<-started
		// The watcher serves status from memory, read again at most
		// every StatusMaxAge: another process's lock shows within it.
		if st, ok := within(t, time.Second, func() (api.SchemaStatus, bool) {
			st := schemaStatus(t, watcher.URL)
			return st, st.MigrationInProgress
		}); !ok {
			close(release)
			<-done
			t.Fatalf("while an upgrade holds the lock, a second on: %+v", st)
		}
		close(release)
		if body := <-done; body != "upgrade success" {
			t.Fatalf("upgrade: %q", body)
		}
		// The upgrader read its own status anew at once.
		if st := schemaStatus(t, upgrader.URL); st.MigrationInProgress || !st.IsUpToDate {
			t.Fatalf("after, from the service that upgraded: %+v", st)
		}
		if st, ok := within(t, time.Second, func() (api.SchemaStatus, bool) {
			st := schemaStatus(t, watcher.URL)
			return st, !st.MigrationInProgress && st.IsUpToDate
		}); !ok {
			t.Fatalf("after, a second on, from the watcher: %+v", st)
		}
	})
}

func TestReadOnly(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := newService(t, db, server.Config{ReadOnly: true, Tokens: []server.Token{{Name: "x", Secret: token}}}, migrate.WithDir(migrationsDir(t, migrationFiles)))
		for _, r := range []struct{ method, path string }{{"PATCH", "/upgrade"}, {"POST", "/v1/upgrade"}} {
			code, body := do(t, r.method, s.URL+r.path, nil, bearer())
			if code != 404 || !strings.Contains(body, "read-only") {
				t.Fatalf("%s %s on a read-only service: %d %s", r.method, r.path, code, body)
			}
		}
		if st := schemaStatus(t, s.URL); st.CurrentVersion != "0" {
			t.Fatal("read-only service applied migrations")
		}
	})
}

func TestBadRequests(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	s := newService(t, db, server.Config{Tokens: []server.Token{{Name: "x", Secret: token}}, MaxBodyBytes: 1024}, migrate.WithDir(migrationsDir(t, migrationFiles)))
	if code, body := do(t, "POST", s.URL+"/v1/upgrade", strings.NewReader(`{"to": "soon"}`), bearer()); code != 400 {
		t.Fatalf("bad body: %d %s", code, body)
	}
	big := `{"to": 1, "pad": "` + strings.Repeat("x", 4096) + `"}`
	if code, body := do(t, "POST", s.URL+"/v1/upgrade", strings.NewReader(big), bearer()); code != 413 {
		t.Fatalf("oversized body: %d %s", code, body)
	}
	if code, _ := do(t, "GET", s.URL+"/upgrade", nil, bearer()); code != 405 {
		t.Fatalf("GET /upgrade: %d", code)
	}
	if st := schemaStatus(t, s.URL); st.CurrentVersion != "0" {
		t.Fatal("a bad request applied migrations")
	}
}

func TestCheckListen(t *testing.T) {
	for _, tt := range []struct {
		addrs           []string
		token, readOnly bool
		ok              bool
	}{
		{[]string{"127.0.0.1:8082"}, false, false, true},
		{[]string{"[::1]:8082", "localhost:9000"}, false, false, true},
		{[]string{"0.0.0.0:8082"}, false, false, false},
		{[]string{":8082"}, false, false, false},
		{[]string{"127.0.0.1:8082", "10.0.0.5:8082"}, false, false, false},
		{[]string{"0.0.0.0:8082"}, true, false, true},
		{[]string{"0.0.0.0:8082"}, false, true, true},
	} {
		err := server.CheckListen(tt.addrs, tt.token, tt.readOnly)
		if (err == nil) != tt.ok {
			t.Errorf("CheckListen(%v, token=%v, read-only=%v) = %v", tt.addrs, tt.token, tt.readOnly, err)
		}
	}
}

// TestGracefulShutdown: SIGTERM-style shutdown while an upgrade runs stops
// it at the next safe point (after the running migration), answers the
// request, and releases the migration lock.
func TestGracefulShutdown(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		g, started, release := blocker(1)
		dir := migrationsDir(t, map[string]string{"00002_x.sql": "-- +ferry up\nCREATE TABLE x (id INTEGER);\n"})
		own, err := database.Open(context.Background(), db.URLString, database.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer own.Close()
		var logs bytes.Buffer
		s, err := server.New(server.Config{DB: own, Logger: newLogger(&logs), MigratorOptions: []migrate.Option{migrate.WithDir(dir), migrate.WithGoMigrations(g)}})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		served := make(chan error)
		go func() { served <- s.Serve(ctx, time.Minute, l) }()
		base := "http://" + l.Addr().String()
		answer := make(chan string)
		go func() {
			_, body := do(t, "POST", base+"/v1/upgrade", nil, nil)
			answer <- body
		}()
		<-started
		stop() // the service is told to shut down while migration 1 runs
		close(release)
		body := <-answer
		if !strings.Contains(body, `"upgrade-result":"upgrade failed"`) || !strings.Contains(body, "interrupted") {
			t.Fatalf("answer of the interrupted upgrade: %s", body)
		}
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir), migrate.WithGoMigrations(g))
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.CurrentVersion != 1 || len(st.Pending) != 1 || st.Lock.Held {
			t.Fatalf("after shutdown: version %d, pending %v, lock %s", st.CurrentVersion, st.Pending, st.Lock)
		}
		// Every log line is one JSON object; the audit record is among them.
		var sawAudit bool
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			if obj["audit"] == true {
				sawAudit = obj["outcome"] == "failure" && obj["from_version"] == float64(0) && obj["to_version"] == float64(1) && obj["identity"] != nil && obj["remote"] != nil
			}
		}
		if !sawAudit {
			t.Fatalf("no complete audit record in the logs:\n%s", logs.String())
		}
	})
}

// TestJoinedUpgradeAppliesNothing: a request that arrives while another
// request of the same process runs the upgrade shares its outcome, but
// its answer and its audit record do not claim the migrations: the sum of
// "applied" over the audit records is the number applied.
func TestJoinedUpgradeAppliesNothing(t *testing.T) {
	db := testdb.New(t, database.SQLite)
	g, started, release := blocker(1)
	dir := migrationsDir(t, map[string]string{"00002_x.sql": "-- +ferry up\nCREATE TABLE x (id INTEGER);\n"})
	var logs bytes.Buffer
	s := newService(t, db, server.Config{Logger: newLogger(&logs)}, migrate.WithDir(dir), migrate.WithGoMigrations(g))
	joined := make(chan struct{})
	server.OnJoin(s.Server, func() { close(joined) })
	answers := make(chan string, 2)
	upgrade := func() {
		_, body := do(t, "POST", s.URL+"/v1/upgrade", nil, nil)
		answers <- body
	}
	go upgrade()
	<-started
	go upgrade()
	<-joined
	close(release)
	applied := []int{}
	for range 2 {
		var doc struct {
			Result  string `json:"upgrade-result"`
			Applied []struct {
				Version int64 `json:"version"`
			} `json:"applied"`
		}
		if err := json.Unmarshal([]byte(<-answers), &doc); err != nil || doc.Result != "upgrade success" {
			t.Fatalf("answer: %v %+v", err, doc)
		}
		applied = append(applied, len(doc.Applied))
	}
	slices.Sort(applied)
	if !slices.Equal(applied, []int{0, 2}) {
		t.Fatalf("applied per answer %v, want one 2 and one 0", applied)
	}
	var audited, joinedRecords int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Audit   bool `json:"audit"`
			Applied int  `json:"applied"`
			Joined  bool `json:"joined"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Audit {
			audited += rec.Applied
			if rec.Joined {
				joinedRecords++
			}
		}
	}
	if audited != 2 || joinedRecords != 1 {
		t.Fatalf("audit records claim %d applied, %d joined; want 2 and 1:\n%s", audited, joinedRecords, logs.String())
	}
}
