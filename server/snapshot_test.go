package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server"
	"github.com/ferrydb/ferry/server/api"
)

// statusReads reads ferry_status_reads_total from /metrics.
func statusReads(t *testing.T, base string) int {
	t.Helper()
	_, body := do(t, "GET", base+"/metrics", nil, nil)
	m := regexp.MustCompile(`(?m)^ferry_status_reads_total (\d+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no ferry_status_reads_total in /metrics")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestStatusFromMemory: status requests share reads of the database, carry
// ETags and answer 304 to a client that has the document; a change by
// another process shows within a second, and one this service makes at
// once.
func TestStatusFromMemory(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := migrationsDir(t, migrationFiles)
		s := newService(t, db, server.Config{StatusMaxAge: time.Hour, Tokens: []server.Token{{Name: "x", Secret: token}}}, migrate.WithDir(dir))

		// 200 concurrent requests: one read of the database.
		before := statusReads(t, s.URL)
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Get(s.URL + "/db_schema_status")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		if n := statusReads(t, s.URL) - before; n > 1 {
			t.Errorf("200 status requests read the database %d times, want at most 1", n)
		}

		// ETag and 304.
		for _, path := range []string{"/db_schema_status", "/v1/status"} {
			resp, err := http.Get(s.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			tag := resp.Header.Get("ETag")
			if !strings.HasPrefix(strings.TrimPrefix(tag, "W/"), `"`) {
				t.Fatalf("%s: ETag %q", path, tag)
			}
			code, body := do(t, "GET", s.URL+path, nil, map[string]string{"If-None-Match": tag})
			if code != http.StatusNotModified || body != "" {
				t.Errorf("%s with If-None-Match: %d %q, want 304 and no body", path, code, body)
			}
			if code, _ := do(t, "GET", s.URL+path, nil, map[string]string{"If-None-Match": `"other"`}); code != 200 {
				t.Errorf("%s with another ETag: %d, want 200", path, code)
			}
		}

		// This service's upgrade shows at once, even with an hour's max age.
		if code, body := do(t, "POST", s.URL+"/v1/upgrade", strings.NewReader(`{"to": 1}`), bearer()); code != 200 {
			t.Fatalf("upgrade: %d %s", code, body)
		}
		if st := schemaStatus(t, s.URL); st.CurrentVersion != "1" {
			t.Fatalf("after this service's upgrade: current version %s, want 1 at once", st.CurrentVersion)
		}
	})
}

// TestStatusTagIgnoresAges: the /v1/status tag changes with the status,
// not with the heartbeat ages that grow at every read.
func TestStatusTagIgnoresAges(t *testing.T) {
	db := testdb.New(t, "sqlite")
	dir := migrationsDir(t, migrationFiles)
	var mu sync.Mutex
	age, instances := 0, 1
	fleet := func(context.Context) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		age += 1000
		var list []map[string]any
		for i := 0; i < instances; i++ {
			list = append(list, map[string]any{"id": fmt.Sprint(i), "since_heartbeat_ms": age})
		}
		return []map[string]any{{"release": "v1", "instances": list}}, nil
	}
	// Read the status at every request.
	s := newService(t, db, server.Config{StatusMaxAge: time.Nanosecond, Fleet: fleet}, migrate.WithDir(dir))
	tag := func() string {
		resp, err := http.Get(s.URL + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	first := tag()
	if second := tag(); second != first {
		t.Errorf("the tag changed with only a heartbeat age: %s, then %s", first, second)
	}
	mu.Lock()
	instances = 2
	mu.Unlock()
	if third := tag(); third == first {
		t.Errorf("the tag stayed %s when an instance came", first)
	}
}

// TestStatusSeesOtherProcesses: with the default max age, a migration
// another process applies shows within a second.
func TestStatusSeesOtherProcesses(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := migrationsDir(t, migrationFiles)
		s := newService(t, db, server.Config{}, migrate.WithDir(dir))
		if st := schemaStatus(t, s.URL); st.CurrentVersion != "0" {
			t.Fatalf("before: %+v", st)
		}
		other, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Up(context.Background(), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		applied := time.Now()
		st, ok := within(t, time.Second, func() (api.SchemaStatus, bool) {
			st := schemaStatus(t, s.URL)
			return st, st.IsUpToDate
		})
		if !ok {
			t.Fatalf("a second after another process applied every migration: %+v", st)
		}
		t.Logf("seen after %s", time.Since(applied).Round(time.Millisecond))
	})
}

// TestHistoryPages: /v1/history?after=&limit= pages through the history
// with a Link to the next page; bad parameters are 400.
func TestHistoryPages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := migrationsDir(t, migrationFiles)
		s := newService(t, db, server.Config{}, migrate.WithDir(dir))
		m, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Up(context.Background(), migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		var versions []int64
		next := "/v1/history?limit=2"
		for pages := 0; next != ""; pages++ {
			if pages > 3 {
				t.Fatal("more pages than rows")
			}
			resp, err := http.Get(s.URL + next)
			if err != nil {
				t.Fatal(err)
			}
			var rows []api.HistoryRow
			if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for _, r := range rows {
				versions = append(versions, r.Version)
			}
			next = ""
			if l := resp.Header.Get("Link"); l != "" {
				next = strings.TrimPrefix(strings.SplitN(l, ">", 2)[0], "<")
			}
		}
		if fmt.Sprint(versions) != "[1 2 3]" {
			t.Errorf("paged history versions %v, want [1 2 3]", versions)
		}
		for _, bad := range []string{"?after=-1", "?limit=0", "?limit=5000", "?after=x"} {
			if code, _ := do(t, "GET", s.URL+"/v1/history"+bad, nil, nil); code != 400 {
				t.Errorf("/v1/history%s: %d, want 400", bad, code)
			}
		}
	})
}

// TestEvents: /v1/events sends the status at once, and again when another
// process changes it.
func TestEvents(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := migrationsDir(t, migrationFiles)
		s := newService(t, db, server.Config{}, migrate.WithDir(dir))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		events := make(chan api.Status)
		go func() {
			defer close(events)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					var st api.Status
					if err := json.Unmarshal([]byte(data), &st); err != nil {
						t.Errorf("event data: %v", err)
						return
					}
					events <- st
				}
			}
		}()
		if st := <-events; st.CurrentVersion != 0 || st.IsUpToDate {
			t.Fatalf("first event: %+v", st)
		}
		other, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Up(ctx, migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		// The stream may show the other process midway (its lock held, a
		// migration running) before it shows the end; every event is a
		// status, never an error, and the versions only go up.
		var last int64
		for {
			var st api.Status
			var ok bool
			select {
			case st, ok = <-events:
			case <-ctx.Done():
				t.Fatal("no up-to-date event after another process applied the migrations")
			}
			if !ok {
				t.Fatalf("the stream ended before it showed the other process's upgrade (last version %d)", last)
			}
			if st.CurrentVersion < last {
				t.Fatalf("event went back from version %d: %+v", last, st)
			}
			last = st.CurrentVersion
			if st.IsUpToDate {
				if st.CurrentVersion != 3 || st.MigrationInProgress {
					t.Fatalf("up-to-date event: %+v", st)
				}
				break
			}
		}
		cancel()
	})
}
