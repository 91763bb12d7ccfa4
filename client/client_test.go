package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydb/ferry/client"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server"
)

const token = "client-test-token-0123456789"

var fast = client.WithRetry(client.Retry{Attempts: 20, Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond})

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// newServer returns a ferry migration service (not yet listening) over a
// fresh SQLite database with three migrations.
func newServer(t *testing.T) *server.Server {
	t.Helper()
	db := testdb.New(t, database.SQLite)
	dir := t.TempDir()
	for i, name := range []string{"00001_a.sql", "00002_b.sql", "00003_c.sql"} {
		os.WriteFile(filepath.Join(dir, name), []byte("-- +ferry up\nCREATE TABLE t"+string(rune('a'+i))+" (id INTEGER);\n"), 0o644)
	}
	s, err := server.New(server.Config{
		DB: db.DB, Tokens: []server.Token{{Name: "test", Secret: token}},
		Logger:          slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		MigratorOptions: []migrate.Option{migrate.WithDir(dir)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestStatusAndUpgradeBothAPIs(t *testing.T) {
	for _, mode := range []client.API{client.APIV1, client.APIMetaflow, client.APIAuto} {
		t.Run(string(mode), func(t *testing.T) {
			ts := httptest.NewServer(newServer(t).Handler())
			defer ts.Close()
			u, _ := url.Parse(ts.URL)
			u.User = url.UserPassword("ferry", token) // credentials in the base URL, as Metaflow writes them
			c, err := client.New(u.String(), client.WithAPI(mode), fast)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(c.BaseURL(), token) {
				t.Fatal("BaseURL shows the token")
			}
			s, err := c.Summary(ctx(t))
			if err != nil || s.IsUpToDate || s.CurrentVersion != "0" || len(s.Unapplied) != 3 {
				t.Fatalf("summary: %+v %v", s, err)
			}
			o, err := c.Upgrade(ctx(t), 0)
			if err != nil || !o.OK() || o.Before.CurrentVersion != "0" || o.After.CurrentVersion != "3" || o.Applied != 3 {
				t.Fatalf("upgrade: %+v %v", o, err)
			}
			if v, err := c.Version(ctx(t)); err != nil || v != "3" {
				t.Fatalf("version %q %v", v, err)
			}
		})
	}
}

func TestWrongToken(t *testing.T) {
	ts := httptest.NewServer(newServer(t).Handler())
	defer ts.Close()
	c, _ := client.New(ts.URL, client.WithToken("not-the-token-0123456789"), fast)
	_, err := c.Upgrade(ctx(t), 0)
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Code != 401 || !strings.Contains(err.Error(), "check the token") {
		t.Fatalf("wrong token: %v", err)
	}
}

// logSignal is a slog handler that reports each message on a channel.
type logSignal struct{ ch chan string }

func (l logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (l logSignal) Handle(_ context.Context, r slog.Record) error {
	select {
	case l.ch <- r.Message:
	default:
	}
	return nil
}
func (l logSignal) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logSignal) WithGroup(string) slog.Handler      { return l }

// TestRetriesUntilServiceStarts: the client keeps trying while the service
// is down (connection refused) and succeeds once it listens.
func TestRetriesUntilServiceStarts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connections are refused

	retried := make(chan string, 1)
	c, _ := client.New("http://"+addr, client.WithToken(token), fast, client.WithLogger(slog.New(logSignal{retried})))
	done := make(chan error, 1)
	var o *client.Outcome
	go func() {
		var err error
		o, err = c.Upgrade(ctx(t), 0)
		done <- err
	}()
	<-retried // the first attempt was refused
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: newServer(t).Handler()}
	go srv.Serve(l)
	defer srv.Close()
	if err := <-done; err != nil || !o.OK() {
		t.Fatalf("upgrade after the service came up: %+v %v", o, err)
	}
}

// TestRetries503: a service answering 503 while it restarts is retried,
// and the upgrade is delivered once.
func TestRetries503(t *testing.T) {
	real := httptest.NewServer(newServer(t).Handler())
	defer real.Close()
	target, _ := url.Parse(real.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused, upgrades atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refused.Add(1) <= 3 {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		if r.Method == "POST" {
			upgrades.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, _ := client.New(front.URL, client.WithToken(token), fast)
	o, err := c.Upgrade(ctx(t), 0)
	if err != nil || !o.OK() || upgrades.Load() != 1 {
		t.Fatalf("upgrade through 503s: %+v %v (delivered %d times)", o, err, upgrades.Load())
	}
}

// TestLostAnswerIsNotResent: the upgrade reaches the service but the answer
// is lost; the client must not send it again, and reads the outcome from
// the status.
func TestLostAnswerIsNotResent(t *testing.T) {
	real := httptest.NewServer(newServer(t).Handler())
	defer real.Close()
	target, _ := url.Parse(real.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var upgrades atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" {
			proxy.ServeHTTP(w, r)
			return
		}
		upgrades.Add(1)
		// Deliver the upgrade, then drop the connection without an answer.
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer front.Close()
	c, _ := client.New(front.URL, client.WithToken(token), fast)
	o, err := c.Upgrade(ctx(t), 0)
	if err != nil || !o.Uncertain || !o.OK() || upgrades.Load() != 1 {
		t.Fatalf("lost answer: %+v %v (sent %d times)", o, err, upgrades.Load())
	}
}

// TestMetaflowTextService: the original Metaflow service answers the
// upgrade in text only; the client reads the status around it itself.
func TestMetaflowTextService(t *testing.T) {
	var upToDate atomic.Bool
	mf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/db_schema_status":
			body := `{"is_up_to_date": false, "current_version": "1", "migration_in_progress": false, "db_schema_versions": ["1", "2"], "unapplied_migrations": ["2"]}`
			if upToDate.Load() {
				body = `{"is_up_to_date": true, "current_version": "2", "migration_in_progress": false, "db_schema_versions": ["1", "2"], "unapplied_migrations": []}`
			}
			w.Write([]byte(body))
		case "/upgrade":
			upToDate.Store(true)
			w.Write([]byte("upgrade success"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer mf.Close()
	c, _ := client.New(mf.URL, fast)
	o, err := c.Upgrade(ctx(t), 0)
	if err != nil || !o.OK() || o.Before.CurrentVersion != "1" || o.After.CurrentVersion != "2" {
		t.Fatalf("Metaflow text service: %+v %v", o, err)
	}
	if _, err := c.Upgrade(ctx(t), 5); err == nil || !strings.Contains(err.Error(), "--to") {
		t.Fatalf("--to against a Metaflow service: %v", err)
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, u := range []string{"ftp://host", "host:8082", "http://user:Secr3tPassw0rd@:x"} {
		_, err := client.New(u)
		if err == nil {
			t.Errorf("New(%q) succeeded", u)
		} else if strings.Contains(err.Error(), "Secr3tPassw0rd") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestOutcomeOK(t *testing.T) {
	for _, tt := range []struct {
		o    client.Outcome
		want bool
	}{
		{client.Outcome{Success: true, After: &client.Summary{IsUpToDate: true, CurrentVersion: "3"}}, true},
		{client.Outcome{Success: true, After: &client.Summary{CurrentVersion: "2"}}, false},
		{client.Outcome{Success: true, After: &client.Summary{CurrentVersion: "2"}, Target: 2}, true},
		{client.Outcome{Success: true, After: &client.Summary{CurrentVersion: "3"}, Target: 2}, true},
		{client.Outcome{Success: true, After: &client.Summary{CurrentVersion: "1"}, Target: 2}, false},
		{client.Outcome{Success: false, After: &client.Summary{IsUpToDate: true, CurrentVersion: "3"}, Target: 2}, false},
		{client.Outcome{Success: true, Target: 2}, false},
	} {
		if got := tt.o.OK(); got != tt.want {
			t.Errorf("%+v: OK() = %v, want %v", tt.o, got, tt.want)
		}
	}
}
