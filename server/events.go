package server

import (
	"fmt"
	"net/http"
	"time"
)

// GET /v1/events is a server-sent-event stream: a "status" event with the
// /v1/status document at once, and again whenever it changes (a lock taken
// or released, a migration applied, a fleet instance come or gone), read
// at most every StatusMaxAge; a "status-error" event when the status cannot
// be read. A comment every 15 seconds keeps proxies from closing an idle
// stream.
func (s *Server) v1Events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The stream outlives the server's write timeout.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	stop := s.snaps.watch()
	defer stop()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	sent := ""
	for {
		changed := s.snaps.changes()
		snap, err := s.snaps.get(r.Context())
		switch {
		case err != nil && r.Context().Err() != nil:
			return
		case err != nil:
			if msg := "error: " + err.Error(); msg != sent {
				fmt.Fprintf(w, "event: status-error\ndata: %s\n\n", oneLine(err.Error()))
				sent = msg
			}
		case snap.v1Tag != sent:
			fmt.Fprintf(w, "event: status\nid: %s\ndata: %s\n\n", snap.v1Tag, snap.v1)
			sent = snap.v1Tag
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.base.Done():
			return
		case <-changed:
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
		}
	}
}

// oneLine keeps an event's data on one line.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}
