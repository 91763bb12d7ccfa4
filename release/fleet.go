package release

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// DefaultInstancesTable is the table of the fleet registry.
const DefaultInstancesTable = "ferry_instances"

// Defaults of the fleet registry: an instance writes a heartbeat every
// DefaultHeartbeat, and is taken for gone when DefaultTTL passes without
// one.
const (
	DefaultHeartbeat = 10 * time.Second
	DefaultTTL       = 30 * time.Second
)

// pruneAfter is how long an expired registration stays in the table (for
// people looking for an instance that died without deregistering) before
// a new registration deletes it.
const pruneAfter = time.Hour

// Instance is one running process of a release.
type Instance struct {
	// ID identifies the instance; Register fills in a random one when it
	// is empty. At most 64 characters (a pod name fits).
	ID string `json:"id"`
	// Host is the instance's host name (default os.Hostname).
	Host string `json:"host"`
	// PID is the instance's process id (default os.Getpid).
	PID int `json:"pid"`
	// Release is the release's name.
	Release string `json:"release"`
	// Schema is the schema version the release was built against, and
	// MinSchema the oldest it runs on (0: the same as Schema). The contract
	// gate decides from these, so it needs no manifest.
	Schema    int64 `json:"schema"`
	MinSchema int64 `json:"min_schema,omitempty"`
}

// LiveInstance is a registered instance whose heartbeat has not expired.
// Times are the database server's clock.
type LiveInstance struct {
	Instance
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"last_heartbeat"`
	ExpiresAt   time.Time `json:"expires_at"`
	// SinceHeartbeat is how long ago the last heartbeat was written.
	SinceHeartbeat time.Duration `json:"-"`
	// SinceHeartbeatMS is SinceHeartbeat in milliseconds, for JSON.
	SinceHeartbeatMS int64 `json:"since_heartbeat_ms"`
}

// String describes the instance for messages.
func (l LiveInstance) String() string {
	return fmt.Sprintf("host %s, id %s, pid %d, last heartbeat %s ago", l.Host, l.ID, l.PID, l.SinceHeartbeat.Round(time.Millisecond))
}

// Option configures the fleet registry for Register, Live and Gate.
type Option func(*options) error

type options struct {
	table     string
	heartbeat time.Duration
	ttl       time.Duration
	log       *slog.Logger
	force     bool
}

var tableName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`) })

// WithTable names the registry table (default ferry_instances).
func WithTable(name string) Option {
	return func(o *options) error {
		if !tableName().MatchString(name) {
			return fmt.Errorf("instances table name %q: use letters, digits and underscores, starting with a letter, at most 63 characters", name)
		}
		o.table = name
		return nil
	}
}

// WithHeartbeat sets how often a registered instance writes its heartbeat
// (default 10s).
func WithHeartbeat(every time.Duration) Option {
	return func(o *options) error {
		if every < 10*time.Millisecond {
			return fmt.Errorf("heartbeat interval %s is too short (at least 10ms)", every)
		}
		o.heartbeat = every
		return nil
	}
}

// WithTTL sets how long a registration stays live without a heartbeat
// (default 30s). It must be at least twice the heartbeat interval, so that
// one slow heartbeat does not make a running instance look gone.
func WithTTL(ttl time.Duration) Option {
	return func(o *options) error {
		if ttl < 20*time.Millisecond {
			return fmt.Errorf("instance TTL %s is too short (at least 20ms)", ttl)
		}
		o.ttl = ttl
		return nil
	}
}

// WithLogger sets the logger for heartbeat problems and forced contract
// migrations (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.log = l
		}
		return nil
	}
}

// WithForce makes Gate log the instances a contract migration breaks and let
// it through instead of refusing it (ferry up --force).
func WithForce(force bool) Option {
	return func(o *options) error {
		o.force = force
		return nil
	}
}

func buildOptions(opts []Option) (*options, error) {
	o := &options{
		table:     DefaultInstancesTable,
		heartbeat: DefaultHeartbeat,
		ttl:       DefaultTTL,
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.ttl < 2*o.heartbeat {
		return nil, fmt.Errorf("instance TTL %s must be at least twice the heartbeat interval %s", o.ttl, o.heartbeat)
	}
	return o, nil
}

// instancesDDL creates the registry table. The types are common to
// PostgreSQL, MySQL and SQLite; times are the server's clock in
// milliseconds since the Unix epoch (dialect.Dialect.NowMillis), so that
// the clocks of the fleet's hosts do not matter.
func instancesDDL(d dialect.Dialect, table string) string {
	ddl := `CREATE TABLE IF NOT EXISTS ` + d.Table(table) + ` (
	id VARCHAR(64) NOT NULL PRIMARY KEY,
	release_name VARCHAR(255) NOT NULL,
	schema_version BIGINT NOT NULL,
	min_schema BIGINT NOT NULL,
	host VARCHAR(255) NOT NULL,
	pid BIGINT NOT NULL,
	started_at BIGINT NOT NULL,
	heartbeat_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
)`
	if d.Name() == "mysql" {
		ddl += " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
	}
	return ddl
}

// ensureTable creates the registry table if it is missing. Several
// instances may start at the same moment, and concurrent CREATE TABLE IF
// NOT EXISTS can fail on PostgreSQL (a unique violation in its catalog):
// a failure is fine when the table exists afterwards.
func ensureTable(ctx context.Context, q dialect.Querier, d dialect.Dialect, table string) error {
	var err error
	for attempt := range 5 {
		var ok bool
		if ok, err = d.TableExists(ctx, q, table); err == nil && ok {
			return nil
		}
		if err = d.Prepare(ctx, q); err == nil {
			if _, err = q.ExecContext(ctx, instancesDDL(d, table)); err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.NewTimer(time.Duration(attempt+1) * 20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return fmt.Errorf("create the fleet registry table %s: %w", table, err)
}

// ErrDuplicateInstance is returned by Register when a live instance already
// has the same id.
var ErrDuplicateInstance = errors.New("instance id is already registered")

// Registration is a registered instance. Its heartbeat runs until Close.
type Registration struct {
	inst Instance
	db   *sql.DB
	d    dialect.Dialect
	o    *options

	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error
}

// Register records a running instance of a release in the fleet registry
// (creating the table on first use) and keeps it live with a heartbeat
// goroutine until Close. While it is live, Gate refuses contract
// migrations that would break its release.
//
// Applications that embed ferry call Register at start-up with their own
// release and Close when they shut down; ferry launch does it for the
// child it runs. If the process dies without Close, the registration
// expires after the TTL (WithTTL) and no longer counts.
func Register(ctx context.Context, db *sql.DB, d dialect.Dialect, inst Instance, opts ...Option) (*Registration, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if inst.Release == "" || len(inst.Release) > 255 {
		return nil, errors.New("register: the instance needs a release name of at most 255 characters")
	}
	if inst.Schema <= 0 || inst.MinSchema < 0 || inst.MinSchema > inst.Schema {
		return nil, fmt.Errorf("register release %s: schema %d and min_schema %d: schema must be positive and min_schema between 0 and schema", inst.Release, inst.Schema, inst.MinSchema)
	}
	if inst.ID == "" {
		inst.ID = NewInstanceID()
	}
	if len(inst.ID) > 64 {
		return nil, fmt.Errorf("register: instance id %q is longer than 64 characters", inst.ID)
	}
	if inst.Host == "" {
		inst.Host, _ = os.Hostname()
		if inst.Host == "" {
			inst.Host = "unknown-host"
		}
	}
	if len(inst.Host) > 255 {
		inst.Host = inst.Host[:255]
	}
	if inst.PID == 0 {
		inst.PID = os.Getpid()
	}
	if err := ensureTable(ctx, db, d, o.table); err != nil {
		return nil, err
	}
	p, t, now := d.Placeholder, d.Table(o.table), d.NowMillis()
	// Best effort: forget registrations that expired long ago, and an
	// expired one with this id (a restarted pod keeps its name).
	if _, err := db.ExecContext(ctx, "DELETE FROM "+t+" WHERE expires_at < "+now+" - "+p(1)+" OR (id = "+p(2)+" AND expires_at <= "+now+")", pruneAfter.Milliseconds(), inst.ID); err != nil {
		o.log.Debug("pruning expired instances failed", "error", err)
	}
	r := &Registration{inst: inst, db: db, d: d, o: o, stop: make(chan struct{}), done: make(chan struct{})}
	if err := r.insert(ctx); err != nil {
		if live, _ := r.exists(ctx); live {
			return nil, fmt.Errorf("%w: %q is live already (give each instance its own id, or leave the id empty for a random one)", ErrDuplicateInstance, inst.ID)
		}
		return nil, fmt.Errorf("register instance %s of release %s in %s: %w", inst.ID, inst.Release, o.table, err)
	}
	o.log.Info("registered instance", "id", inst.ID, "release", inst.Release, "schema", inst.Schema, "ttl", o.ttl)
	go r.heartbeat()
	return r, nil
}

// NewInstanceID returns a random instance id (16 hex digits).
func NewInstanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Instance returns the registered instance, with the defaults filled in.
func (r *Registration) Instance() Instance { return r.inst }

func (r *Registration) insert(ctx context.Context) error {
	p, now := r.d.Placeholder, r.d.NowMillis()
	_, err := r.db.ExecContext(ctx, "INSERT INTO "+r.d.Table(r.o.table)+
		" (id, release_name, schema_version, min_schema, host, pid, started_at, heartbeat_at, expires_at) VALUES ("+
		p(1)+", "+p(2)+", "+p(3)+", "+p(4)+", "+p(5)+", "+p(6)+", "+now+", "+now+", "+now+" + "+p(7)+")",
		r.inst.ID, r.inst.Release, r.inst.Schema, r.inst.MinSchema, r.inst.Host, r.inst.PID, r.o.ttl.Milliseconds())
	return err
}

func (r *Registration) exists(ctx context.Context) (bool, error) {
	var n int
	err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+r.d.Table(r.o.table)+" WHERE id = "+r.d.Placeholder(1)+" AND expires_at > "+r.d.NowMillis(), r.inst.ID).Scan(&n)
	return n > 0, err
}

// beat writes one heartbeat. If the row is gone (deleted by hand, or
// pruned after the instance missed its heartbeats for an hour) it is
// written again.
func (r *Registration) beat(ctx context.Context) error {
	p, now := r.d.Placeholder, r.d.NowMillis()
	res, err := r.db.ExecContext(ctx, "UPDATE "+r.d.Table(r.o.table)+" SET heartbeat_at = "+now+", expires_at = "+now+" + "+p(1)+" WHERE id = "+p(2),
		r.o.ttl.Milliseconds(), r.inst.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	// MySQL counts changed rows, not matched ones: a heartbeat within the
	// same millisecond as the last changes nothing. Only insert when the
	// row is really missing.
	var n int
	if err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+r.d.Table(r.o.table)+" WHERE id = "+p(1), r.inst.ID).Scan(&n); err != nil || n > 0 {
		return err
	}
	r.o.log.Warn("the instance's registration was gone; registering it again", "id", r.inst.ID, "release", r.inst.Release)
	return r.insert(ctx)
}

func (r *Registration) heartbeat() {
	defer close(r.done)
	tick := time.NewTicker(r.o.heartbeat)
	defer tick.Stop()
	lastOK := time.Now()
	expired := false
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.o.ttl)
		err := r.beat(ctx)
		cancel()
		switch {
		case err == nil:
			if expired {
				r.o.log.Warn("heartbeat restored", "id", r.inst.ID, "release", r.inst.Release)
			}
			lastOK, expired = time.Now(), false
		case time.Since(lastOK) >= r.o.ttl && !expired:
			expired = true
			r.o.log.Error("heartbeat failing for longer than the TTL: the fleet registry now takes this instance for gone, so a contract migration that breaks its release may be applied",
				"id", r.inst.ID, "release", r.inst.Release, "since", lastOK.Format(time.RFC3339), "error", err)
		default:
			r.o.log.Warn("heartbeat failed", "id", r.inst.ID, "release", r.inst.Release, "error", err)
		}
	}
}

// Close stops the heartbeat and deregisters the instance. It is safe to
// call more than once.
func (r *Registration) Close(ctx context.Context) error {
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		_, err := r.db.ExecContext(ctx, "DELETE FROM "+r.d.Table(r.o.table)+" WHERE id = "+r.d.Placeholder(1), r.inst.ID)
		if err != nil {
			r.err = fmt.Errorf("deregister instance %s of release %s (it expires by itself after %s): %w", r.inst.ID, r.inst.Release, r.o.ttl, err)
			return
		}
		r.o.log.Info("deregistered instance", "id", r.inst.ID, "release", r.inst.Release)
	})
	return r.err
}

// Live lists the registered instances whose heartbeat has not expired, by
// the database server's clock, ordered by release and start time. It
// changes nothing: without a registry table there are no instances.
func Live(ctx context.Context, q dialect.Querier, d dialect.Dialect, opts ...Option) ([]LiveInstance, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	ok, err := d.TableExists(ctx, q, o.table)
	if err != nil {
		return nil, fmt.Errorf("look up the fleet registry table %s: %w", o.table, err)
	}
	if !ok {
		return []LiveInstance{}, nil
	}
	now := d.NowMillis()
	rows, err := q.QueryContext(ctx, "SELECT id, release_name, schema_version, min_schema, host, pid, started_at, heartbeat_at, expires_at, "+now+
		" FROM "+d.Table(o.table)+" WHERE expires_at > "+now+" ORDER BY release_name, started_at, id")
	if err != nil {
		return nil, fmt.Errorf("read the fleet registry %s: %w", o.table, err)
	}
	defer rows.Close()
	out := []LiveInstance{}
	for rows.Next() {
		var l LiveInstance
		var started, beat, expires, at int64
		if err := rows.Scan(&l.ID, &l.Release, &l.Schema, &l.MinSchema, &l.Host, &l.PID, &started, &beat, &expires, &at); err != nil {
			return nil, fmt.Errorf("read the fleet registry %s: %w", o.table, err)
		}
		l.StartedAt, l.HeartbeatAt, l.ExpiresAt = time.UnixMilli(started).UTC(), time.UnixMilli(beat).UTC(), time.UnixMilli(expires).UTC()
		l.SinceHeartbeat = time.Duration(max(at-beat, 0)) * time.Millisecond
		l.SinceHeartbeatMS = l.SinceHeartbeat.Milliseconds()
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the fleet registry %s: %w", o.table, err)
	}
	return out, nil
}

// ReleaseInstances groups live instances by release.
type ReleaseInstances struct {
	Release   string         `json:"release"`
	Schema    int64          `json:"schema"`
	Instances []LiveInstance `json:"instances"`
}

// ByRelease groups live instances by release name, in the order Live
// returns them. Schema is that of the release's first instance.
func ByRelease(live []LiveInstance) []ReleaseInstances {
	out := []ReleaseInstances{}
	idx := map[string]int{}
	for _, l := range live {
		i, ok := idx[l.Release]
		if !ok {
			i = len(out)
			idx[l.Release] = i
			out = append(out, ReleaseInstances{Release: l.Release, Schema: l.Schema})
		}
		out[i].Instances = append(out[i].Instances, l)
	}
	return out
}
