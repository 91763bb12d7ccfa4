package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/server/api"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/compat"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
	"github.com/ferrydb/ferry/server"
)

func (a *app) serveCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve schema status and upgrades over an authenticated HTTP API (Metaflow-compatible)",
		Long: `Serve the migration service: schema status, upgrades, health, readiness and
Prometheus metrics over HTTP. It answers the Metaflow migration service's
routes (GET /ping, /version, /db_schema_status, PATCH /upgrade) and ferry's
own (/v1/status, POST /v1/upgrade, /v1/history?after=&limit=, /v1/events,
/healthz, /readyz, /metrics). See docs/service.md.

GET / is a web console (--no-console turns it off): status, the lock
holder, pending migrations with their lint findings, the fleet, backups and
the history, updated live over /v1/events, with an Upgrade button that asks
for the token (POST /console/upgrade without JavaScript).

Status answers come from memory, read again from the database at most every
--status-max-age (250ms) under load and at once after this service's own
upgrade, with ETags (If-None-Match gets 304).

Security: upgrades need a token (--token-file, or FERRY_TOKEN), sent as
"Authorization: Bearer TOKEN" or as the password of HTTP basic auth. Without
a token, upgrades are allowed only when every listen address is loopback;
a non-loopback address without a token refuses to start unless --read-only.
Requests that change something are refused when a browser says they come
from a page of another site (Origin, Sec-Fetch-Site). Without a token, every
request must also name a host the service answers to (localhost, its
loopback and listen addresses, or --allowed-host), so that a web page cannot
reach it through DNS rebinding.

GET /version answers the newest release of the manifest (the releases
section of ferry.yaml, or --releases) that the schema supports, or the
schema version when there is no manifest. Upgrades go through the same
contract gate as "ferry up": a contract migration waits until no live
instance needs the old schema.

Metaflow deployments: MF_METADATA_DB_* (database), DB_SCHEMA_NAME,
MF_MIGRATION_PORT and MF_MIGRATION_ENDPOINTS_ENABLED=false (read-only; also 0, no, off) are read;
--compat metaflow keeps goose's goose_db_version up to date and adopts its
history at start-up.

Logs are JSON lines on stderr (every request, migration step and upgrade
audit record). SIGTERM stops accepting requests, lets a running upgrade stop
at its next safe point (releasing the migration lock) and exits.`,
		Example: "  ferry serve\n  FERRY_TOKEN=$(cat /run/secrets/ferry) ferry serve --listen 0.0.0.0:8082 --compat metaflow\n  ferry serve --read-only --listen :8082",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.prepareService(cmd)
			if err != nil {
				return err
			}
			defer svc.close()
			return svc.serve(cmd.Context())
		},
	}
	serviceFlags(c)
	releasesFlag(c)
	return c
}

// serviceFlags adds the migration service's flags (ferry serve, and ferry
// launch --serve).
func serviceFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringSlice("listen", []string{server.DefaultAddr}, "address to listen on, repeatable (env FERRY_LISTEN, comma-separated; MF_MIGRATION_PORT sets the port on loopback)")
	f.String("token-file", "", "file of tokens accepted for upgrades, one per line, SECRET or NAME:SECRET (env FERRY_TOKEN_FILE; or the token itself in FERRY_TOKEN)")
	f.Bool("read-only", false, "serve status only: no upgrade routes (env FERRY_READ_ONLY; MF_MIGRATION_ENDPOINTS_ENABLED=false)")
	f.String("compat", "", "compatibility mode: metaflow (goose history kept up to date and adopted at start-up) (env FERRY_COMPAT)")
	f.StringSlice("allowed-host", nil, "without a token, also answer requests for this host name (besides localhost and the listen addresses), repeatable (env FERRY_ALLOWED_HOSTS, comma-separated)")
	f.Duration("shutdown-timeout", time.Minute, "how long shutdown waits for requests in flight")
	f.Duration("upgrade-timeout", time.Hour, "longest an upgrade may take, lock wait included")
	f.Bool("no-console", false, "do not serve the web console at / (env FERRY_NO_CONSOLE)")
	f.Duration("status-max-age", server.DefaultStatusMaxAge, "status answers come from memory, read again from the database at most this often under load (and at once after an upgrade this service runs): a change another process makes shows within it; 10ms to 1m (env FERRY_STATUS_MAX_AGE)")
	f.String("lint", "warn", "lint the pending migrations: warn (report the findings in the status and upgrade answers), error (also refuse an upgrade whose migrations have an error-level finding) or off (env FERRY_LINT; ferry.yaml lint.mode)")
}

// service is a migration service ready to serve.
type service struct {
	srv       *server.Server
	db        *database.DB
	pipeline  *upgradePipeline
	listeners []net.Listener
	grace     time.Duration
}

func (s *service) serve(ctx context.Context) error {
	return s.srv.Serve(ctx, s.grace, s.listeners...)
}

// close releases the database and the backup store.
func (s *service) close() {
	s.pipeline.close()
	s.db.Close()
}

// prepareService builds the migration service from the configuration and
// opens its listeners. The caller closes svc.db.
func (a *app) prepareService(cmd *cobra.Command) (*service, error) {
	ctx := cmd.Context()
	// The service logs JSON lines at info level unless told otherwise.
	if !cmd.Flags().Changed("log-format") && a.getenv("FERRY_LOG_FORMAT") == "" {
		a.cfg.LogFormat = "json"
	}
	if !cmd.Flags().Changed("log-level") && a.getenv("FERRY_LOG_LEVEL") == "" {
		a.cfg.LogLevel = "info"
	}
	if err := a.setupLogger(); err != nil {
		return nil, err
	}
	grace, _ := cmd.Flags().GetDuration("shutdown-timeout")
	upgradeTimeout, _ := cmd.Flags().GetDuration("upgrade-timeout")
	statusMaxAge, noConsole := a.cfg.StatusMaxAge, a.cfg.NoConsole
	if statusMaxAge == 0 {
		statusMaxAge = server.DefaultStatusMaxAge
	}
	if statusMaxAge < 10*time.Millisecond || statusMaxAge > time.Minute {
		return nil, usageErrorf("--status-max-age %s: want 10ms to 1m (the default, 250ms, shows another process's change within a quarter second)", statusMaxAge)
	}
	switch a.cfg.Compat {
	case "":
	case "metaflow":
		if a.cfg.History == "ferry" || a.cfg.History == "" {
			a.cfg.History = compat.ToolGoose
		}
	default:
		return nil, usageErrorf("--compat %q: the only compatibility mode is metaflow", a.cfg.Compat)
	}
	listen := a.cfg.Listen
	if len(listen) == 0 {
		listen = []string{server.DefaultAddr}
	}
	for _, addr := range listen {
		if err := server.CheckListenAddr(addr); err != nil {
			return nil, usageError{fmt.Errorf("--listen: %w", err)}
		}
	}
	if err := server.CheckAllowedHosts(a.cfg.AllowedHosts); err != nil {
		return nil, usageError{fmt.Errorf("--allowed-host: %w", err)}
	}
	tokens, err := a.tokens()
	if err != nil {
		return nil, err
	}
	if err := server.CheckListen(listen, len(tokens) > 0, a.cfg.ReadOnly); err != nil {
		return nil, err
	}
	man, err := a.cfg.manifest()
	if err != nil {
		return nil, err
	}
	u, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	// Listen before the database is reached: the ports are taken (or their
	// conflict reported) at once, and connections made while the database
	// is pinged wait in the backlog instead of being refused.
	listeners, err := listenAll(listen)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			closeAll(listeners)
		}
	}()

	// Start even if the database is down: /readyz says so until it is up.
	db, err := database.OpenURL(ctx, u, a.dbOptions(true))
	if err != nil {
		return nil, err
	}
	// Keep connections for concurrent status requests instead of opening
	// one per request (Go's default keeps 2 idle); an upgrade holds one.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	opts := []migrate.Option{
		migrate.WithDir(a.cfg.Dir),
		migrate.WithTable(a.cfg.Table),
		migrate.WithLockTimeout(a.cfg.LockTimeout),
		migrate.WithLockMode(migrate.LockMode(a.cfg.LockMode)),
		migrate.WithAllowOutOfOrder(a.cfg.AllowOutOfOrder),
		migrate.WithLockWait(a.cfg.lockWait()),
	}
	// The same pipeline as ferry up's: the contract gate, then the backup
	// (none is taken for an upgrade the gate holds back entirely).
	a.serving = true
	p, err := a.pipeline(ctx, db, false)
	if err != nil {
		db.Close()
		return nil, err
	}
	svc := &service{db: db, grace: grace, pipeline: p}
	mirror, err := a.historyMirror(db)
	if err != nil {
		svc.close()
		return nil, err
	}
	if mirror != nil {
		opts = append(opts, migrate.WithHistoryMirror(mirror))
	}
	cfg := server.Config{
		DB: db, MigratorOptions: opts, Logger: a.log, Tokens: tokens, ReadOnly: a.cfg.ReadOnly,
		UpgradeTimeout: upgradeTimeout, AllowedHosts: a.cfg.AllowedHosts, Pipeline: p.Pipeline, StatusMaxAge: statusMaxAge, NoConsole: noConsole,
	}
	if a.cfg.LintMode != "off" {
		lc, err := a.cfg.lintConfig(db.URL.Kind, "")
		if err != nil {
			svc.close()
			return nil, usageError{err}
		}
		cfg.Lint = &lc
		if _, err := a.lintGate(&cfg.Pipeline, db); err != nil {
			svc.close()
			return nil, err
		}
	}
	cfg.Fleet = func(ctx context.Context) (any, error) {
		live, err := release.Live(ctx, db, db.Dialect)
		return release.ByRelease(live), err
	}
	if man != nil && len(man.Releases) > 0 {
		cfg.Version = func(_ context.Context, st *migrate.Status, migs []*migrate.Migration) (string, error) {
			r, err := man.NewestCompatible(release.DatabaseOf(st), migs)
			return r.Name, err
		}
		cfg.Releases = func(ctx context.Context, st *migrate.Status, migs []*migrate.Migration) ([]api.ReleaseVerdict, error) {
			live, err := release.Live(ctx, db, db.Dialect)
			if err != nil {
				return nil, err
			}
			counts := map[string]int{}
			for _, l := range live {
				counts[l.Release]++
			}
			newest, newestErr := man.NewestCompatible(release.DatabaseOf(st), migs)
			var out []api.ReleaseVerdict
			for _, v := range man.Evaluate(release.DatabaseOf(st), migs) {
				out = append(out, api.ReleaseVerdict{Name: v.Release.Name, Schema: v.Release.Schema, Compatible: v.OK,
					Newest: newestErr == nil && v.Release.Name == newest.Name, Reason: v.Reason, Live: counts[v.Release.Name]})
			}
			return out, nil
		}
	}
	if store := p.store; store != nil {
		cfg.Backups = func(ctx context.Context) ([]api.Backup, error) {
			list, _, err := store.List(ctx)
			if err != nil {
				return nil, err
			}
			var out []api.Backup
			for _, m := range list {
				reason := m.Reason
				if m.Upgrade != nil {
					reason = fmt.Sprintf("%s %d->%d", m.Reason, m.Upgrade.From, m.Upgrade.To)
				}
				out = append(out, api.Backup{ID: m.ID, CreatedAt: m.CreatedAt, Reason: reason, SizeBytes: m.Size(), SchemaVersion: m.SchemaVersion,
					Restore: backup.RestoreCommand(m.ID, store.String(), db.URL)})
			}
			return out, nil
		}
	}
	srv, err := server.New(cfg)
	if err == nil {
		// Report bad migration files at start-up, not at the first upgrade.
		err = srv.Migrator().Check()
	}
	if err != nil {
		svc.close()
		return nil, err
	}
	if err := db.Ping(ctx); err != nil {
		a.log.Warn("database not reachable yet; serving anyway, /readyz reports it", "error", err)
	} else if a.cfg.Compat == "metaflow" {
		if err := adoptAtStart(ctx, a, srv.Migrator(), mirror, db); err != nil {
			svc.close()
			return nil, err
		}
	}
	svc.srv = srv
	svc.listeners = listeners
	ok = true
	return svc, nil
}

// listenAll opens every listen address, or none: a port taken by another
// process fails start-up before the database is touched.
func listenAll(addrs []string) (_ []net.Listener, err error) {
	var out []net.Listener
	defer func() {
		if err != nil {
			closeAll(out)
		}
	}()
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// adoptAtStart takes over goose's history once, so that a Metaflow database
// reports the right version from the first request.
func adoptAtStart(ctx context.Context, a *app, m *migrate.Migrator, t compat.Table, db *database.DB) error {
	list, err := t.Read(ctx, db, m.Migrations())
	if errors.Is(err, compat.ErrNoTable) {
		return nil
	}
	if err != nil {
		return err
	}
	res, err := m.Adopt(ctx, t.Tool(), list)
	if err != nil {
		return fmt.Errorf("adopt %s history: %w", t.Tool(), err)
	}
	if len(res.Migrations) > 0 {
		a.log.Info("adopted history", "from", t.Name(), "migrations", len(res.Migrations), "version", res.To)
	}
	return nil
}

// tokens loads the accepted tokens from --token-file and FERRY_TOKEN.
func (a *app) tokens() ([]server.Token, error) {
	var out []server.Token
	if a.cfg.TokenFile != "" {
		t, err := server.LoadTokens(a.cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		out = append(out, t...)
	}
	if s := a.getenv("FERRY_TOKEN"); s != "" {
		if len(s) < 16 {
			// ParseTokens would name the token "env", its label here.
			return nil, fmt.Errorf("FERRY_TOKEN is too short (%d characters): use at least 16 random characters (for example `openssl rand -hex 32`)", len(s))
		}
		t, err := server.ParseTokens(strings.NewReader("env:" + s))
		if err != nil {
			return nil, fmt.Errorf("FERRY_TOKEN: %w", err)
		}
		out = append(out, t...)
	}
	return out, nil
}
