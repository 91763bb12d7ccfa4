package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server"
)

// request sends one request with the given Host header (empty: the URL's)
// and headers.
func request(t *testing.T, method, url, host, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// TestBrowsersCannotDriveTheService: without a token, a loopback service
// could be driven by any web page (a text/plain cross-origin POST needs no
// preflight) and read through DNS rebinding. Cross-origin changes are
// refused always; without a token, so are requests for a foreign Host and
// cross-site reads.
func TestBrowsersCannotDriveTheService(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		open := newService(t, db, server.Config{AllowedHosts: []string{"ferry.internal"}}, migrate.WithDir(migrationsDir(t, migrationFiles)))
		refused := []struct {
			method, path, host string
			hdr                map[string]string
		}{
			{"POST", "/v1/upgrade", "", map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}},
			{"POST", "/v1/upgrade", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}},
			{"PATCH", "/upgrade", "", map[string]string{"Origin": "null"}},
			{"POST", "/v1/upgrade", "evil.example:8082", nil},
			{"GET", "/v1/status", "evil.example:8082", nil},
			{"GET", "/db_schema_status", "rebound.attacker.test", nil},
			{"GET", "/v1/status", "", map[string]string{"Sec-Fetch-Site": "cross-site"}},
			{"GET", "/v1/history", "", map[string]string{"Origin": "https://evil.example"}},
		}
		for _, r := range refused {
			code, body := request(t, r.method, open.URL+r.path, r.host, "", r.hdr)
			if code != http.StatusForbidden || !strings.Contains(body, "refused") {
				t.Errorf("%s %s (host %q, %v): %d %s, want 403", r.method, r.path, r.host, r.hdr, code, body)
			}
		}
		if st := schemaStatus(t, open.URL); st.CurrentVersion != "0" {
			t.Fatalf("a refused request applied migrations: at %s", st.CurrentVersion)
		}
		for _, host := range []string{"", "localhost:8082", "ferry.internal", "[::1]:8082"} {
			if code, body := request(t, "GET", open.URL+"/v1/status", host, "", map[string]string{"Sec-Fetch-Site": "same-origin"}); code != 200 {
				t.Errorf("GET /v1/status for host %q: %d %s", host, code, body)
			}
		}
		if code, body := request(t, "POST", open.URL+"/v1/upgrade", "", "", map[string]string{"Sec-Fetch-Site": "same-origin"}); code != 200 {
			t.Fatalf("same-origin upgrade: %d %s", code, body)
		}

		// With a token, reads answer any Host, and a cross-origin change is
		// still refused, token or not.
		guarded := newService(t, db, server.Config{Tokens: []server.Token{{Name: "x", Secret: token}}}, migrate.WithDir(migrationsDir(t, migrationFiles)))
		if code, body := request(t, "GET", guarded.URL+"/v1/status", "migrations.example.com", "", nil); code != 200 {
			t.Errorf("GET with a token and another host: %d %s", code, body)
		}
		hdr := bearer()
		hdr["Origin"] = "https://evil.example"
		if code, body := request(t, "POST", guarded.URL+"/v1/upgrade", "", "", hdr); code != http.StatusForbidden {
			t.Errorf("cross-origin POST with the token: %d %s", code, body)
		}
	})
}
