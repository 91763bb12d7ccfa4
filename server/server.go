// Package server is ferry's migration service: it reports schema status and
// performs upgrades over an authenticated HTTP API. It serves the routes of
// the Metaflow metadata service's migration service (see metaflow.go), so
// Metaflow clients and runbooks work unchanged, and ferry's own /v1 API,
// health and readiness checks, and Prometheus metrics.
//
// Upgrades go through the migration engine, so concurrent requests, from one
// service or several replicas, apply each migration once: a request that
// waited for another finds the work done and reports success.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server/api"
	"github.com/ferrydb/ferry/transfer"
)

// DefaultAddr is where the service listens by default: loopback only.
const DefaultAddr = "127.0.0.1:8082"

// Token is a secret accepted on mutating routes, and the name recorded for
// whoever presents it.
type Token struct {
	Name   string
	Secret string
}

// Config configures a Server.
type Config struct {
	// DB is the database the service manages.
	DB *database.DB
	// MigratorOptions build the service's migrator (source, table, lock,
	// history mirror, preflights). The service adds its own hooks.
	MigratorOptions []migrate.Option
	// Logger receives one JSON object per request, per migration step and
	// per upgrade (the audit record). Default: slog.Default().
	Logger *slog.Logger
	// Tokens are accepted on mutating routes. With none, mutations are only
	// allowed when every listen address is loopback.
	Tokens []Token
	// ReadOnly removes the mutating routes.
	ReadOnly bool
	// Version answers GET /version: the newest application release the
	// schema supports (see release.Manifest.NewestCompatible). Default: the
	// current schema version.
	Version func(ctx context.Context, s *migrate.Status, migrations []*migrate.Migration) (string, error)
	// Pipeline is what an upgrade does besides applying migrations: the
	// contract gate and the pre-upgrade backup (ferry serve uses
	// release.Gate and backup.PreUpgrade). Default: none.
	Pipeline migrate.Pipeline
	// Fleet returns what GET /v1/status reports under "fleet" (ferry serve:
	// the live instances of the fleet registry by release, as ferry status
	// --json does). Default: no "fleet" key.
	Fleet func(ctx context.Context) (any, error)
	// UpgradeTimeout bounds one upgrade, lock wait included. Default 1h.
	UpgradeTimeout time.Duration
	// MaxBodyBytes limits request bodies. Default 64 KiB.
	MaxBodyBytes int64
	// Identity is recorded in the history as the process that applies
	// migrations. Default host:pid.
	Identity string
	// AllowedHosts are the host names (Host header, port ignored) the
	// service answers to when no token is configured, besides localhost,
	// loopback addresses and the addresses it listens on: a request for
	// any other host is refused, so that a web page re-bound to 127.0.0.1
	// (DNS rebinding) cannot read or drive the service.
	AllowedHosts []string
	// Lint, when set, lints the pending migrations for every status
	// document (GET /v1/status "lint", and the upgrade answer's
	// init-status). A zero Target is read from the server once.
	Lint *lint.Config
	// NoConsole turns the web console at / off.
	NoConsole bool
	// Releases, when set, gives the console the release manifest's
	// verdicts for a status (ferry serve: release.Manifest.Evaluate).
	Releases func(ctx context.Context, st *migrate.Status, migrations []*migrate.Migration) ([]api.ReleaseVerdict, error)
	// Backups, when set, lists the backups for the console, oldest first
	// (ferry serve: the backup store's).
	Backups func(ctx context.Context) ([]api.Backup, error)
	// StatusMaxAge is how old a status may be when it is served: status
	// documents come from memory, read again from the database at most
	// this often under load, and at once after an upgrade this service
	// ran. Default DefaultStatusMaxAge.
	StatusMaxAge time.Duration
	// StatusTimeout bounds each status request's reads of the database.
	// Default 30s.
	StatusTimeout time.Duration
}

// Notes are what an upgrade reports besides the engine's result.
type Notes struct {
	// BackupID names the backup taken before the upgrade.
	BackupID string
	// BackupError says why a backup that was due failed (in a mode where
	// the upgrade went on without one).
	BackupError string
	// Joined: the request arrived while another request of this process
	// ran the same upgrade, and shared its outcome; it applied nothing
	// itself.
	Joined bool
}

// Server is the migration service. Create it with New, serve it with Serve
// (or mount Handler), and stop it by cancelling Serve's context.
type Server struct {
	cfg   Config
	snaps *snapshots
	// lintMu guards the last lint report of the pending migrations.
	lintMu   sync.Mutex
	lintKey  string
	lintRep  *lint.Report
	db       *database.DB
	m        *migrate.Migrator
	log      *slog.Logger
	metrics  *metrics
	mux      *http.ServeMux
	identity string
	hosts    *hostSet

	// base is cancelled when the server shuts down: running upgrades stop
	// at their next safe point.
	base       context.Context
	cancelBase context.CancelFunc

	mu      sync.Mutex
	flights map[int64]*flight // running upgrades in this process, by target
	onJoin  func()            // tests: called when a request joins a flight
	wg      sync.WaitGroup    // running upgrades
}

// flight is one upgrade run in this process; concurrent requests for the
// same target share it.
type flight struct {
	done  chan struct{}
	res   *migrate.Result
	notes Notes
	err   error
}

// New builds the service. It loads the migrations (reporting bad files at
// once) but does not need the database to be reachable: /readyz says when it
// is not.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("server: a database is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UpgradeTimeout <= 0 {
		cfg.UpgradeTimeout = time.Hour
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if err := CheckAllowedHosts(cfg.AllowedHosts); err != nil {
		return nil, err
	}
	for _, t := range cfg.Tokens {
		if len(t.Secret) < 16 {
			return nil, fmt.Errorf("token %q is too short: use at least 16 random characters (for example `openssl rand -hex 32`)", t.Name)
		}
	}
	host, _ := os.Hostname()
	if cfg.StatusTimeout <= 0 {
		cfg.StatusTimeout = 30 * time.Second
	}
	if cfg.StatusMaxAge <= 0 {
		cfg.StatusMaxAge = DefaultStatusMaxAge
	}
	s := &Server{cfg: cfg, db: cfg.DB, log: cfg.Logger, flights: map[int64]*flight{}, hosts: newHostSet(cfg.AllowedHosts)}
	s.snaps = newSnapshots(s, cfg.StatusMaxAge)
	s.identity = cfg.Identity
	if s.identity == "" {
		s.identity = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.metrics = newMetrics(s)
	opts := append([]migrate.Option{migrate.WithLogger(cfg.Logger), migrate.WithIdentity(s.identity)}, cfg.MigratorOptions...)
	opts = append(opts, migrate.WithHooks(s.metrics.hooks()))
	m, err := migrate.New(cfg.DB.DB, cfg.DB.Dialect, opts...)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.routes()
	return s, nil
}

// Migrator returns the service's migrator.
func (s *Server) Migrator() *migrate.Migrator { return s.m }

// Registry returns the service's Prometheus registry.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// Handler returns the service's HTTP handler.
func (s *Server) Handler() http.Handler { return s.logRequests(s.guard(s.mux)) }

func (s *Server) routes() {
	mux := http.NewServeMux()
	s.mux = mux
	s.metaflowRoutes(mux)
	mux.HandleFunc("GET /v1/status", s.v1Status)
	mux.HandleFunc("GET /v1/history", s.v1History)
	mux.HandleFunc("GET /v1/events", s.v1Events)
	if !s.cfg.NoConsole {
		s.consoleRoutes(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	if s.cfg.ReadOnly {
		mux.HandleFunc("/v1/upgrade", s.disabled)
	} else {
		mux.HandleFunc("POST /v1/upgrade", s.authorized(s.v1Upgrade))
	}
}

// disabled answers mutating routes of a read-only service.
func (s *Server) disabled(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusNotFound, "upgrades are disabled: this migration service is read-only (--read-only or MF_MIGRATION_ENDPOINTS_ENABLED=false)")
}

// CheckListen enforces the security policy for listen addresses: with no
// token, a service that can change the schema may only listen on loopback.
func CheckListen(addrs []string, haveToken, readOnly bool) error {
	for _, a := range addrs {
		if err := CheckListenAddr(a); err != nil {
			return err
		}
	}
	if haveToken || readOnly {
		return nil
	}
	for _, a := range addrs {
		if !IsLoopback(a) {
			return fmt.Errorf("refusing to serve upgrades on %s without a token: anyone who reaches that address could change the schema. Set a token (--token-file or FERRY_TOKEN), listen on loopback (127.0.0.1:8082), or serve status only (--read-only)", a)
		}
	}
	return nil
}

// CheckListenAddr refuses a listen address that is not HOST:PORT with a port
// number, before any token or database is looked at.
func CheckListenAddr(a string) error {
	if strings.Contains(a, "/") {
		return fmt.Errorf("listen address %q: want HOST:PORT, such as 127.0.0.1:8082, not a URL", a)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("listen address %q: want HOST:PORT, such as 127.0.0.1:8082, or :8082 for every interface", a)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("listen address %q: the port must be a number from 0 to 65535", a)
	}
	if strings.ContainsAny(host, " \t") {
		return fmt.Errorf("listen address %q: the host has a space in it", a)
	}
	return nil
}

// IsLoopback reports whether a listen address only accepts local clients.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Serve serves on the listeners until ctx is cancelled, then shuts down
// gracefully: it stops accepting requests, lets running upgrades stop at
// their next safe point (which releases the migration lock), and waits up to
// grace for in-flight requests.
func (s *Server) Serve(ctx context.Context, grace time.Duration, listeners ...net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // upgrades extend their own deadline
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		s.hosts.listening(l.Addr())
	}
	for _, l := range listeners {
		s.log.Info("serving", "addr", l.Addr().String(), "read_only", s.cfg.ReadOnly, "auth", len(s.cfg.Tokens) > 0)
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			s.cancelBase()
			srv.Close()
			return err
		}
	}
	s.log.Info("shutting down: running upgrades stop at their next safe point")
	s.cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.wg.Wait()
	return err
}

// Close stops running upgrades at their next safe point and waits for them.
// Use it when the handler is mounted elsewhere instead of served by Serve.
func (s *Server) Close() {
	s.cancelBase()
	s.wg.Wait()
}

// caller identifies who made a request.
type caller struct {
	identity string
	remote   string
}

func (c caller) String() string { return c.identity + "@" + c.remote }

type callerKey struct{}

// authorized wraps a mutating handler with token authentication: a Bearer
// token or the password of HTTP basic auth, compared in constant time.
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := caller{remote: r.RemoteAddr, identity: "anonymous (loopback, no token configured)"}
		if len(s.cfg.Tokens) > 0 {
			name, ok := s.checkToken(r)
			if !ok {
				s.log.Warn("unauthorized request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				w.Header().Add("WWW-Authenticate", `Bearer realm="ferry"`)
				// A Basic challenge makes a browser stop a page's fetch
				// for a password dialog (the console asks for the token
				// itself): only clients that are not a page's script get it.
				if m := r.Header.Get("Sec-Fetch-Mode"); m == "" || m == "navigate" {
					w.Header().Add("WWW-Authenticate", `Basic realm="ferry"`)
				}
				writeText(w, http.StatusUnauthorized, "unauthorized: send the token as 'Authorization: Bearer TOKEN', or as the password of HTTP basic auth (http://ferry:TOKEN@host:8082)")
				return
			}
			c.identity = name
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	}
}

// checkToken returns the name of the token the request presents. Every
// configured token is compared, in constant time, whatever matches.
func (s *Server) checkToken(r *http.Request) (string, bool) {
	var given string
	if user, pass, ok := r.BasicAuth(); ok {
		_ = user
		given = pass
	} else if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		given = strings.TrimSpace(h[7:])
	}
	if given == "" {
		return "", false
	}
	g := sha256.Sum256([]byte(given))
	name, found := "", 0
	for _, t := range s.cfg.Tokens {
		w := sha256.Sum256([]byte(t.Secret))
		if subtle.ConstantTimeCompare(g[:], w[:]) == 1 {
			name, found = t.Name, 1
		}
	}
	return name, found == 1
}

// upgrade runs Up for a request, sharing a run already going in this
// process for the same target. It runs on the server's context, not the
// request's: a client that goes away does not stop a migration half-way.
func (s *Server) upgrade(c caller, to int64) (*migrate.Result, Notes, error) {
	s.mu.Lock()
	if f, ok := s.flights[to]; ok {
		s.mu.Unlock()
		if s.onJoin != nil {
			s.onJoin()
		}
		<-f.done
		// The outcome is shared; the migrations were applied by the
		// request that ran them, and its audit record says so.
		notes := f.notes
		notes.Joined = true
		if f.res == nil {
			return nil, notes, f.err
		}
		res := *f.res
		res.Migrations = []migrate.Applied{}
		return &res, notes, f.err
	}
	f := &flight{done: make(chan struct{})}
	s.flights[to] = f
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.flights, to)
		s.mu.Unlock()
		close(f.done)
		s.wg.Done()
	}()
	ctx, cancel := context.WithTimeout(s.base, s.cfg.UpgradeTimeout)
	defer cancel()
	// An import loads its data at the export's schema version and
	// migrates it itself: an upgrade now would leave it unable to go on
	// (as ferry up refuses).
	if err := s.importUnfinished(ctx); err != nil {
		f.err = err
		return nil, f.notes, err
	}
	out, err := s.m.Upgrade(ctx, migrate.UpOptions{To: to, AppliedBy: "ferry serve " + s.identity + " for " + c.String()}, s.cfg.Pipeline)
	// Whatever it did, the next status is read anew.
	s.snaps.invalidate()
	f.res, f.err = out.Result, err
	if b := out.Backup; b != nil {
		f.notes.BackupID = b.ID
		if b.Err != nil {
			f.notes.BackupError = b.Err.Error()
		}
	}
	return f.res, f.notes, f.err
}

// audit writes the audit record of one upgrade request.
func (s *Server) audit(c caller, route string, start time.Time, res *migrate.Result, notes Notes, err error) {
	s.metrics.upgraded(err)
	attrs := []any{
		"audit", true, "route", route, "remote", c.remote, "identity", c.identity,
		"at", start.UTC().Format(time.RFC3339Nano), "duration_ms", time.Since(start).Milliseconds(),
	}
	outcome := "success"
	if err != nil {
		outcome = "failure"
	}
	attrs = append(attrs, "outcome", outcome)
	if res != nil {
		attrs = append(attrs, "from_version", res.From, "to_version", res.To, "applied", len(res.Migrations), "lock_waited_ms", res.LockWaited.Milliseconds())
	}
	if notes.Joined {
		attrs = append(attrs, "joined", true)
	}
	if notes.BackupID != "" {
		attrs = append(attrs, "backup_id", notes.BackupID)
	}
	if notes.BackupError != "" {
		attrs = append(attrs, "backup_error", notes.BackupError)
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
		s.log.Error("upgrade", attrs...)
		return
	}
	s.log.Info("upgrade", attrs...)
}

// statusDoc returns ferry's status document, from the snapshot.
func (s *Server) statusDoc(ctx context.Context) (*api.Status, error) {
	snap, err := s.snaps.get(ctx)
	if err != nil {
		return nil, err
	}
	return snap.doc, nil
}

// statusDocFrom builds ferry's status document from a status.
func (s *Server) statusDocFrom(ctx context.Context, st *migrate.Status) (*api.Status, error) {
	var fleet any
	var err error
	if s.cfg.Fleet != nil {
		if fleet, err = s.cfg.Fleet(ctx); err != nil {
			return nil, fmt.Errorf("read the fleet registry: %w", err)
		}
	}
	doc := api.FromStatus(st, s.db.URL.String(), fleet)
	if s.cfg.Lint != nil && len(st.Pending) > 0 {
		rep, err := s.lintPending(ctx, st.Pending)
		if err != nil {
			return nil, err
		}
		doc.Lint = api.FromLintReport(rep)
	}
	return doc, nil
}

// lintPending lints the pending migrations. The report depends only on
// which migrations are pending (the files do not change under a running
// service), so the last one is kept.
func (s *Server) lintPending(ctx context.Context, pending []int64) (*lint.Report, error) {
	key := fmt.Sprint(pending)
	s.lintMu.Lock()
	defer s.lintMu.Unlock()
	if s.lintKey == key {
		return s.lintRep, nil
	}
	cfg := *s.cfg.Lint
	if cfg.Target.Engine == "" {
		t, err := lint.ServerTarget(ctx, s.db.DB, cfg.Dialect)
		if err != nil {
			return nil, err
		}
		s.cfg.Lint.Target, cfg.Target = t, t
	}
	cfg.Only = map[int64]bool{}
	for _, v := range pending {
		cfg.Only[v] = true
	}
	rep, err := lint.Check(s.m.Migrations(), cfg)
	if err != nil {
		return nil, err
	}
	s.lintKey, s.lintRep = key, rep
	return rep, nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, api.Ready{Reason: err.Error()})
		return
	}
	snap, err := s.snaps.get(ctx)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, api.Ready{Reason: "read schema status: " + err.Error()})
		return
	}
	st := snap.st
	doc := api.Ready{Ready: st.IsUpToDate, CurrentVersion: st.CurrentVersion, LatestVersion: st.LatestVersion}
	// An unfinished import first: the migrations it has yet to run are
	// pending because of it, and running them is not what fixes it.
	switch err := unfinished(snap.imports); {
	case snap.importsErr != nil:
		doc.Ready, doc.Reason = false, snap.importsErr.Error()
	case err != nil:
		doc.Ready, doc.Reason = false, err.Error()
	case !st.IsUpToDate:
		doc.Reason = fmt.Sprintf("schema at version %d, latest is %d: %d pending, %d failed", st.CurrentVersion, st.LatestVersion, len(st.Pending), len(st.Failed))
	}
	if !doc.Ready {
		writeJSON(w, http.StatusServiceUnavailable, doc)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// importUnfinished returns an error naming an import into the database
// that has not finished (its data is incomplete), or one reading its
// ledger.
func (s *Server) importUnfinished(ctx context.Context) error {
	imports, err := transfer.UnfinishedImports(ctx, s.db, s.m.Table())
	if err != nil {
		return fmt.Errorf("read the import ledger: %w", err)
	}
	return unfinished(imports)
}

// unfinished returns an error naming the first of imports, if any.
func unfinished(imports []transfer.Unfinished) error {
	if len(imports) > 0 {
		return fmt.Errorf("%s into the database %s: its data is incomplete; %s", imports[0].What(), imports[0].Standing(), imports[0].IfCutShort())
	}
	return nil
}

// statusRecorder captures the status code and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	bytes int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests logs every request as one line (never its credentials), and
// limits request bodies.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.metrics.request(r.Method, routeOf(r), rec.code)
		level := slog.LevelInfo
		if quietRoutes[routeOf(r)] && rec.code < 400 {
			// Probes and scrapes come every few seconds from every
			// kubelet and Prometheus: at info they would bury the rest.
			level = slog.LevelDebug
		}
		s.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", rec.code, "bytes", rec.bytes,
			"duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr, "request_id", id, "user_agent", r.UserAgent())
	})
}

// quietRoutes are the routes logged at debug level when they succeed.
var quietRoutes = map[string]bool{"GET /ping": true, "GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// routeOf is the route pattern a request matched, for metric labels.
func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// Compact: a status of a long history lists every version, and
	// indenting it cost a fifth of the service's CPU at 10,000 versions.
	// Pipe through jq to read it.
	_ = json.NewEncoder(w).Encode(v)
}

// extendWrite gives a long upgrade time to finish writing its answer.
func (s *Server) extendWrite(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.UpgradeTimeout + time.Minute))
}
