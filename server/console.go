package server

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/internal/advice"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server/api"
)

// The console: GET / renders the status as one HTML page (html/template,
// everything embedded, nothing fetched from elsewhere), usable without
// JavaScript; app.js follows /v1/events and redraws the page's main part
// when the status changes, and sends the Upgrade form through
// POST /v1/upgrade. Without JavaScript the form posts to
// POST /console/upgrade, the same upgrade as POST /v1/upgrade.

//go:embed console
var consoleFS embed.FS

// consoleCSP allows the page its own script and style and nothing else.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// historyPageSize is how many history rows a console page shows.
const historyPageSize = 50

// consoleTmpl is parsed on first use, not at start-up: every ferry
// command links this package, few render the console.
var consoleTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("console").Funcs(template.FuncMap{
		"since": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return roughly(time.Since(t)) + " ago"
		},
		"ms":   func(ms int64) string { return roughly(time.Duration(ms) * time.Millisecond) },
		"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"size": func(n int64) string {
			switch {
			case n >= 1<<30:
				return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
			case n >= 1<<20:
				return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
			case n >= 1<<10:
				return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
			}
			return fmt.Sprintf("%d B", n)
		},
	}).ParseFS(consoleFS, "console/*.tmpl"))
})

// roughly shows a duration to a sensible precision.
func roughly(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// consoleView is what the page shows.
type consoleView struct {
	Status *api.Status
	// Tag is the status document's ETag: the page's script compares it
	// with the events' ids.
	Tag      string
	ReadOnly bool
	// LintOn: the service lints pending migrations.
	LintOn bool
	// BackupsOn: a backup store is configured.
	BackupsOn bool
	// TokenRequired: the Upgrade form asks for a token.
	TokenRequired bool
	Pending       []consolePending
	Fleet         []consoleRelease
	Releases      []api.ReleaseVerdict
	Backups       []api.Backup
	// SideErrors are parts of the page that could not be read (the
	// manifest, the backup store); the rest still shows.
	SideErrors []string
	History    []api.HistoryRow
	// Older is the ?before= of the next page of history, 0 without one.
	Older int64
	// Newer: this is not the newest page.
	Newer bool
	// Message and Error report an upgrade the page was sent back from.
	Message, Error string
}

// consolePending is a pending migration with its flags and findings.
type consolePending struct {
	api.PendingMigration
	NoTransaction, Contract bool
	// HeldBy are live releases older than a contract migration (the fleet
	// gate holds it while they run).
	HeldBy   []string
	Findings []api.LintFinding
}

// consoleRelease is a release's live instances, as the fleet reports them.
type consoleRelease struct {
	Release   string `json:"release"`
	Schema    int64  `json:"schema"`
	Instances []struct {
		ID               string `json:"id"`
		Host             string `json:"host"`
		PID              int    `json:"pid"`
		SinceHeartbeatMS int64  `json:"since_heartbeat_ms"`
	} `json:"instances"`
}

func (s *Server) consoleRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.console)
	static := http.FileServerFS(consoleFS)
	for _, f := range []string{"app.js", "style.css"} {
		mux.HandleFunc("GET /console/"+f, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			static.ServeHTTP(w, r)
		})
	}
	if s.cfg.ReadOnly {
		mux.HandleFunc("/console/upgrade", s.disabled)
	} else {
		mux.HandleFunc("POST /console/upgrade", s.consoleUpgrade)
	}
}

func (s *Server) console(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.statusContext(r)
	defer cancel()
	q := r.URL.Query()
	v, err := s.consoleView(ctx, q)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "cannot read the status: "+err.Error())
		return
	}
	// The outcome of the form's upgrade comes in a one-time cookie, not in
	// the URL: a link from elsewhere cannot put words on the page.
	if c, err := r.Cookie(flashCookie); err == nil {
		if kind, text, ok := strings.Cut(c.Value, ":"); ok {
			if msg, err := url.QueryUnescape(text); err == nil {
				if kind == "error" {
					v.Error = msg
				} else {
					v.Message = msg
				}
			}
		}
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	}
	name := "page"
	if q.Get("part") == "main" {
		name = "main"
	}
	var b bytes.Buffer
	if err := consoleTmpl().ExecuteTemplate(&b, name, v); err != nil {
		writeText(w, http.StatusInternalServerError, "render the console: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
}

func (s *Server) consoleView(ctx context.Context, q url.Values) (*consoleView, error) {
	snap, err := s.snaps.get(ctx)
	if err != nil {
		return nil, err
	}
	v := &consoleView{Status: snap.doc, Tag: snap.v1Tag, ReadOnly: s.cfg.ReadOnly, TokenRequired: len(s.cfg.Tokens) > 0,
		LintOn: s.cfg.Lint != nil, BackupsOn: s.cfg.Backups != nil}
	if snap.doc.Fleet != nil {
		// The fleet is the producer's type; the console reads its JSON.
		if b, err := json.Marshal(snap.doc.Fleet); err == nil {
			_ = json.Unmarshal(b, &v.Fleet)
		}
	}
	findings := map[int64][]api.LintFinding{}
	if l := snap.doc.Lint; l != nil {
		for _, f := range l.Findings {
			findings[f.Version] = append(findings[f.Version], f)
		}
	}
	all := s.m.Migrations()
	byVersion := make(map[int64]*migrate.Migration, len(all))
	for _, m := range all {
		byVersion[m.Version] = m
	}
	for _, p := range snap.doc.PendingMigrations {
		cp := consolePending{PendingMigration: p, Findings: findings[p.Version]}
		if m := byVersion[p.Version]; m != nil {
			cp.NoTransaction, cp.Contract = m.NoTransaction, m.Contract
		}
		if cp.Contract {
			for _, rel := range v.Fleet {
				if rel.Schema < p.Version && len(rel.Instances) > 0 {
					cp.HeldBy = append(cp.HeldBy, fmt.Sprintf("%s (%d live)", rel.Release, len(rel.Instances)))
				}
			}
		}
		v.Pending = append(v.Pending, cp)
	}
	if s.cfg.Releases != nil {
		if v.Releases, err = s.cfg.Releases(ctx, snap.st, all); err != nil {
			v.SideErrors = append(v.SideErrors, "releases: "+err.Error())
		}
	}
	if s.cfg.Backups != nil {
		if v.Backups, err = s.cfg.Backups(ctx); err != nil {
			v.SideErrors = append(v.SideErrors, "backups: "+err.Error())
		}
		// Newest first, as people look for the last one.
		for i, j := 0, len(v.Backups)-1; i < j; i, j = i+1, j-1 {
			v.Backups[i], v.Backups[j] = v.Backups[j], v.Backups[i]
		}
	}
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	recs, err := s.m.HistoryBefore(ctx, max(before, 0), historyPageSize+1)
	if err != nil {
		return nil, err
	}
	v.Newer = before > 0
	if len(recs) > historyPageSize {
		recs = recs[:historyPageSize]
		v.Older = recs[len(recs)-1].ID
	}
	v.History = api.FromRecords(recs)
	return v, nil
}

// consoleUpgrade is the Upgrade form without JavaScript: the token comes
// in the form; the upgrade is POST /v1/upgrade's; the answer sends the
// browser back to the page with the outcome.
func (s *Server) consoleUpgrade(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		s.consoleBack(w, r, "", "the form could not be read: "+err.Error())
		return
	}
	var to int64
	if v := strings.TrimSpace(r.PostForm.Get("to")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			s.consoleBack(w, r, "", fmt.Sprintf("up to version %q: give the version of a migration, or leave it empty for all", v))
			return
		}
		if err := s.m.CheckTarget(n); err != nil {
			s.consoleBack(w, r, "", err.Error())
			return
		}
		to = n
	}
	if tok := r.PostForm.Get("token"); tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	if len(s.cfg.Tokens) > 0 {
		if _, ok := s.checkToken(r); !ok {
			s.log.Warn("unauthorized request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			s.consoleBack(w, r, "", "wrong or missing token: nothing was applied")
			return
		}
	}
	s.authorized(func(w http.ResponseWriter, r *http.Request) {
		s.extendWrite(w)
		c := r.Context().Value(callerKey{}).(caller)
		start := time.Now()
		res, notes, err := s.upgrade(c, to)
		s.audit(c, "POST /console/upgrade", start, res, notes, err)
		if err != nil {
			s.consoleBack(w, r, "", "upgrade failed: "+advice.Explain(err, nil))
			return
		}
		msg := fmt.Sprintf("upgrade success: %d applied, now at version %d", len(res.Migrations), res.To)
		if len(res.Migrations) == 0 {
			msg = fmt.Sprintf("nothing to apply: at version %d", res.To)
		}
		s.consoleBack(w, r, msg, "")
	})(w, r)
}

// flashCookie carries the outcome of the form's upgrade to the page.
const flashCookie = "ferry_console_outcome"

// consoleBack sends the browser back to the page with the outcome.
func (s *Server) consoleBack(w http.ResponseWriter, r *http.Request, msg, errText string) {
	v := "message:" + url.QueryEscape(msg)
	if errText != "" {
		v = "error:" + url.QueryEscape(errText)
	}
	if len(v) > 3000 {
		v = v[:3000]
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: v, Path: "/", MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
