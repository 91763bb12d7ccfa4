package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server"
)

// newLogger logs JSON lines into w, safely from many goroutines.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(&lockedWriter{w: w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestProbesLogQuietly: a successful probe or scrape is logged at debug
// level (they come every few seconds), any other request, and a failed
// probe, at info.
func TestProbesLogQuietly(t *testing.T) {
	db := testdb.New(t, "sqlite")
	var logs bytes.Buffer
	s := newService(t, db, server.Config{Logger: newLogger(&logs)}, migrate.WithDir(migrationsDir(t, map[string]string{
		"00001_a.sql": "-- +ferry up\nCREATE TABLE a (id INTEGER);\n",
	})))
	for _, p := range []string{"/ping", "/healthz", "/metrics", "/readyz", "/db_schema_status"} {
		do(t, "GET", s.URL+p, nil, nil)
	}
	s.Close() // every request logged
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct{ Level, Msg, Path string }
		if err := json.Unmarshal([]byte(line), &rec); err == nil && rec.Msg == "request" {
			levels[rec.Path] = rec.Level
		}
	}
	// /readyz is 503 here: a migration is pending.
	want := map[string]string{"/ping": "DEBUG", "/healthz": "DEBUG", "/metrics": "DEBUG", "/readyz": "INFO", "/db_schema_status": "INFO"}
	for p, l := range want {
		if levels[p] != l {
			t.Errorf("%s logged at %q, want %s (all: %v)", p, levels[p], l, levels)
		}
	}
}
