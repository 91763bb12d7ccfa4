package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/lint"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// config is ferry's configuration after resolving, in order of precedence,
// flags, FERRY_* environment variables, ferry.yaml and defaults.
type config struct {
	Database    string        `yaml:"database"`
	Dir         string        `yaml:"dir"`
	Table       string        `yaml:"table"`
	Schema      string        `yaml:"schema"`
	LockTimeout time.Duration `yaml:"lock_timeout"`
	LockMode    string        `yaml:"lock_mode"`
	// DDLLockTimeout bounds how long a migration's statement waits for a
	// table lock; DDLRetries how often what gave up is tried again;
	// Preflight what to do about old transactions holding such locks
	// (see migrate.LockWait).
	DDLLockTimeout   time.Duration `yaml:"ddl_lock_timeout"`
	DDLRetries       int           `yaml:"ddl_retries"`
	Preflight        string        `yaml:"preflight"`
	PreflightTimeout time.Duration `yaml:"preflight_timeout"`
	AllowOutOfOrder  bool          `yaml:"allow_out_of_order"`
	ContractWait     time.Duration `yaml:"-"` // up --contract-wait, FERRY_CONTRACT_WAIT
	LogFormat        string        `yaml:"log_format"`
	LogLevel         string        `yaml:"log_level"`
	// History mirrors ferry's history into another tool's version table:
	// "ferry" (none), "goose" or "golang-migrate".
	History string `yaml:"history"`

	// ConnectTimeout bounds each attempt to connect to the database,
	// authentication included.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`

	// Migration service (ferry serve).
	Listen []string `yaml:"listen"`
	// AllowedHosts are the Host names the service answers to without a
	// token, besides localhost and its addresses.
	AllowedHosts []string `yaml:"allowed_hosts"`
	TokenFile    string   `yaml:"token_file"`
	ReadOnly     bool     `yaml:"read_only"`
	Compat       string   `yaml:"compat"`
	// BaseURL is the migration service ferry remote talks to.
	BaseURL string `yaml:"base_url"`

	// Releases is the release manifest (see package release);
	// ReleasesFile, when set, replaces it with a file of its own.
	Releases     []release.Release `yaml:"releases"`
	ReleasesFile string            `yaml:"releases_file"`
	// Heartbeat and InstanceTTL configure the fleet registry entries that
	// ferry launch writes.
	Heartbeat   time.Duration `yaml:"heartbeat"`
	InstanceTTL time.Duration `yaml:"instance_ttl"`

	// BackupStore is where backups go ("" until configured; the backup
	// commands then use ./ferry-backups, and `ferry up` takes none).
	BackupStore string `yaml:"backup_store"`
	// Backup is `ferry up`'s backup mode: auto, required or off ("": auto
	// when a store is configured, off otherwise).
	Backup string `yaml:"backup"`
	// BackupToolDir is where pg_dump, mysqldump and friends are taken from
	// instead of PATH.
	BackupToolDir string `yaml:"backup_tool_dir"`

	// ExportTimeColumns names each table's time column for `ferry export
	// --since` (table: column).
	ExportTimeColumns map[string]string `yaml:"export_time_columns"`

	// Lint configures ferry lint and the lint that up runs first.
	Lint lintFile `yaml:"lint"`
	// NoConsole and StatusMaxAge configure ferry serve's console and its
	// status cache.
	NoConsole    bool          `yaml:"no_console"`
	StatusMaxAge time.Duration `yaml:"status_max_age"`
	// LintMode is what up and the service do with lint findings of the
	// pending migrations: warn, error (refuse) or off.
	LintMode string `yaml:"-"`

	// file is the config file that was read, if any.
	file string
	// databaseFrom says where the database URL came from, for advice.
	databaseFrom string
}

func defaults() config {
	return config{
		Database:         database.DefaultURL,
		databaseFrom:     "the default (no --database, FERRY_DATABASE_URL or ferry.yaml database)",
		Dir:              "migrations",
		Table:            migrate.DefaultTable,
		LockTimeout:      migrate.DefaultLockTimeout,
		ConnectTimeout:   database.DefaultConnectTimeout,
		DDLLockTimeout:   migrate.DefaultLockWait().Timeout,
		DDLRetries:       migrate.DefaultLockWait().Retries,
		Preflight:        migrate.DefaultLockWait().Preflight,
		PreflightTimeout: migrate.DefaultLockWait().PreflightTimeout,
		LogFormat:        "text",
		LogLevel:         "warn",
		History:          "ferry",
		LintMode:         "warn",
		Heartbeat:        release.DefaultHeartbeat,
		InstanceTTL:      release.DefaultTTL,
	}
}

// databaseIsDefault reports whether no database was configured.
func (c *config) databaseIsDefault() bool {
	return c.Database == database.DefaultURL && strings.HasPrefix(c.databaseFrom, "the default")
}

// lintFile is the lint: section of ferry.yaml.
type lintFile struct {
	// Target is the server the rules assume, e.g. "postgres 15".
	Target string `yaml:"target"`
	// StartAfter: migrations at or below this version are not checked.
	StartAfter int64 `yaml:"start_after"`
	// FailOn is the severity at which ferry lint exits 1.
	FailOn string `yaml:"fail_on"`
	// Rules maps a rule id to off, info, warning or error.
	Rules map[string]string `yaml:"rules"`
	// Mode is what up does first: warn, error or off.
	Mode string `yaml:"mode"`
}

// lintModes are the values of --lint.
var lintModes = []string{"warn", "error", "off"}

// lintConfig returns the lint configuration for a dialect; target, when
// not empty, overrides the file's.
func (c *config) lintConfig(dialect, target string) (lint.Config, error) {
	cfg := lint.Config{Dialect: dialect, StartAfter: c.Lint.StartAfter, Rules: map[string]lint.Severity{}}
	if target == "" {
		target = c.Lint.Target
	}
	if target != "" {
		t, err := lint.ParseTarget(target)
		if err != nil {
			return cfg, err
		}
		if t.Engine == "mariadb" && dialect == "mysql" || t.Engine == dialect {
			cfg.Target = t
		} else {
			return cfg, fmt.Errorf("lint target %s does not match the database, which is %s", t, dialect)
		}
	}
	for id, v := range c.Lint.Rules {
		if v == "off" {
			cfg.Rules[id] = lint.Off
			continue
		}
		sev, err := lint.ParseSeverity(v)
		if err != nil {
			return cfg, fmt.Errorf("lint rule %s: %w (or off)", id, err)
		}
		cfg.Rules[id] = sev
	}
	return cfg, nil
}

var preflights = []string{migrate.PreflightWait, migrate.PreflightRefuse, migrate.PreflightOff}

// lockWait is the configured migrate.LockWait.
func (c *config) lockWait() migrate.LockWait {
	w := migrate.DefaultLockWait()
	w.Timeout, w.Retries, w.Preflight, w.PreflightTimeout = c.DDLLockTimeout, c.DDLRetries, c.Preflight, c.PreflightTimeout
	return w
}

// setting ties one configuration value to its flag and environment
// variable.
type setting struct {
	flag, env string
	apply     func(c *config, v string) error
}

func str(dst func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error { *dst(c) = v; return nil }
}

// oneOf is str for a setting with a fixed set of values.
func oneOf(dst func(*config) *string, allowed ...string) func(*config, string) error {
	return func(c *config, v string) error {
		if err := checkOneOf(v, allowed...); err != nil {
			return err
		}
		*dst(c) = v
		return nil
	}
}

func checkOneOf(v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	var shown []string
	for _, a := range allowed {
		if a != "" {
			shown = append(shown, a)
		}
	}
	return fmt.Errorf("%q: use %s", v, orList(shown))
}

// orList joins "a", "b", "c" as "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// The values of the settings that have a fixed set.
var (
	lockModes  = []string{"", "session", "lease"}
	histories  = []string{"", "ferry", "goose", "golang-migrate"}
	logFormats = []string{"text", "json"}
	logLevels  = []string{"debug", "info", "warn", "error"}
	compats    = []string{"", "metaflow"}
)

// checkFile checks the values read from the config file that the YAML
// decoder cannot: sets of values, positive durations, names.
func (c *config) checkFile() error {
	if err := migrate.CheckTableName(c.Table); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	if c.Lint.Target != "" {
		if _, err := lint.ParseTarget(c.Lint.Target); err != nil {
			return fmt.Errorf("lint.target: %w", err)
		}
	}
	known := map[string]bool{}
	for _, r := range lint.Rules() {
		known[r.ID] = true
	}
	for id, v := range c.Lint.Rules {
		if !known[id] {
			return fmt.Errorf("lint.rules: %q is not a rule (ferry lint --rules lists them)", id)
		}
		if _, err := lint.ParseSeverity(v); err != nil && v != "off" {
			return fmt.Errorf("lint.rules.%s: %q: use off, info, warning or error", id, v)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"lock_timeout", c.LockTimeout}, {"connect_timeout", c.ConnectTimeout},
		{"heartbeat", c.Heartbeat}, {"instance_ttl", c.InstanceTTL}, {"preflight_timeout", c.PreflightTimeout},
	} {
		if err := positive(d.key, d.v); err != nil {
			return err
		}
	}
	if c.DDLLockTimeout < 0 {
		return fmt.Errorf("ddl_lock_timeout must be 0 (no limit) or positive, got %s", c.DDLLockTimeout)
	}
	if c.DDLRetries < 0 {
		return fmt.Errorf("ddl_retries must be 0 or more, got %d", c.DDLRetries)
	}
	for _, e := range []struct {
		key, v  string
		allowed []string
	}{
		{"lock_mode", c.LockMode, lockModes},
		{"preflight", c.Preflight, preflights},
		{"history", c.History, histories},
		{"log_format", c.LogFormat, logFormats},
		{"log_level", c.LogLevel, logLevels},
		{"compat", c.Compat, compats},
		{"lint.mode", c.Lint.Mode, append([]string{""}, lintModes...)},
		{"lint.fail_on", c.Lint.FailOn, []string{"", "info", "warning", "error"}},
	} {
		if err := checkOneOf(e.v, e.allowed...); err != nil {
			return fmt.Errorf("%s: %w", e.key, err)
		}
	}
	return nil
}

func duration(what string, dst func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s %q: %w (use a duration such as 15m or 90s)", what, v, err)
		}
		if err := positive(what, d); err != nil {
			return err
		}
		*dst(c) = d
		return nil
	}
}

// durationOrZero is duration for a setting where 0 means something (no
// limit, no wait): it refuses only a negative duration or a malformed
// one, advising "use a duration such as <advice>".
func durationOrZero(what, advice string, dst func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("%s %q: use a duration such as %s", what, v, advice)
		}
		*dst(c) = d
		return nil
	}
}

// positive refuses a duration of 0 or less.
func positive(what string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s must be positive, got %s", what, d)
	}
	return nil
}

// settings lists every value that has a flag and an environment variable.
func settings() []setting {
	return []setting{
		{"database", "FERRY_DATABASE_URL", str(func(c *config) *string { return &c.Database })},
		{"dir", "FERRY_DIR", str(func(c *config) *string { return &c.Dir })},
		{"table", "FERRY_TABLE", func(c *config, v string) error {
			if err := migrate.CheckTableName(v); err != nil {
				return err
			}
			c.Table = v
			return nil
		}},
		{"schema", "FERRY_SCHEMA", str(func(c *config) *string { return &c.Schema })},
		{"lock-mode", "FERRY_LOCK_MODE", oneOf(func(c *config) *string { return &c.LockMode }, lockModes...)},
		{"log-format", "FERRY_LOG_FORMAT", oneOf(func(c *config) *string { return &c.LogFormat }, logFormats...)},
		{"log-level", "FERRY_LOG_LEVEL", oneOf(func(c *config) *string { return &c.LogLevel }, logLevels...)},
		{"store", "FERRY_BACKUP_STORE", str(func(c *config) *string { return &c.BackupStore })},
		{"backup-tool-dir", "FERRY_BACKUP_TOOL_DIR", str(func(c *config) *string { return &c.BackupToolDir })},
		{"backup", "FERRY_BACKUP", func(c *config, v string) error {
			m, err := backup.ParseMode(v)
			if err != nil {
				return err
			}
			c.Backup = string(m)
			return nil
		}},
		{"releases", "FERRY_RELEASES", str(func(c *config) *string { return &c.ReleasesFile })},
		{"lock-timeout", "FERRY_LOCK_TIMEOUT", duration("lock timeout", func(c *config) *time.Duration { return &c.LockTimeout })},
		{"ddl-lock-timeout", "FERRY_DDL_LOCK_TIMEOUT", durationOrZero("DDL lock timeout", "5s or 1m, or 0 for no limit", func(c *config) *time.Duration { return &c.DDLLockTimeout })},
		{"ddl-retries", "FERRY_DDL_RETRIES", func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("DDL retries %q: want a whole number, 0 or more", v)
			}
			c.DDLRetries = n
			return nil
		}},
		{"no-console", "FERRY_NO_CONSOLE", boolean(func(c *config) *bool { return &c.NoConsole })},
		{"status-max-age", "FERRY_STATUS_MAX_AGE", duration("status max age", func(c *config) *time.Duration { return &c.StatusMaxAge })},
		{"lint", "FERRY_LINT", oneOf(func(c *config) *string { return &c.LintMode }, lintModes...)},
		{"preflight", "FERRY_PREFLIGHT", oneOf(func(c *config) *string { return &c.Preflight }, preflights...)},
		{"preflight-timeout", "FERRY_PREFLIGHT_TIMEOUT", duration("preflight timeout", func(c *config) *time.Duration { return &c.PreflightTimeout })},
		{"heartbeat", "FERRY_HEARTBEAT", duration("heartbeat", func(c *config) *time.Duration { return &c.Heartbeat })},
		{"instance-ttl", "FERRY_INSTANCE_TTL", duration("instance TTL", func(c *config) *time.Duration { return &c.InstanceTTL })},
		{"allow-out-of-order", "FERRY_ALLOW_OUT_OF_ORDER", boolean(func(c *config) *bool { return &c.AllowOutOfOrder })},
		{"contract-wait", "FERRY_CONTRACT_WAIT", durationOrZero("contract wait", "30m, or 0 to refuse at once", func(c *config) *time.Duration { return &c.ContractWait })},
		{"history", "FERRY_HISTORY", oneOf(func(c *config) *string { return &c.History }, histories...)},
		{"token-file", "FERRY_TOKEN_FILE", str(func(c *config) *string { return &c.TokenFile })},
		{"read-only", "FERRY_READ_ONLY", boolean(func(c *config) *bool { return &c.ReadOnly })},
		{"compat", "FERRY_COMPAT", oneOf(func(c *config) *string { return &c.Compat }, compats...)},
		{"allowed-host", "FERRY_ALLOWED_HOSTS", list(func(c *config) *[]string { return &c.AllowedHosts })},
		{"connect-timeout", "FERRY_CONNECT_TIMEOUT", duration("connect timeout", func(c *config) *time.Duration { return &c.ConnectTimeout })},
		{"base-url", "FERRY_BASE_URL", str(func(c *config) *string { return &c.BaseURL })},
		{"listen", "FERRY_LISTEN", list(func(c *config) *[]string { return &c.Listen })},
	}
}

// list reads a comma-separated list (a string-slice flag, or a variable).
func list(dst func(*config) *[]string) func(*config, string) error {
	return func(c *config, v string) error {
		out := dst(c)
		*out = nil
		// The flag's value reads "[a,b]"; the variable's "a,b". Only
		// that outer pair goes: "[::1]:8082" keeps its brackets.
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			v = v[1 : len(v)-1]
		}
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				*out = append(*out, a)
			}
		}
		return nil
	}
}

func boolean(dst func(*config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*dst(c) = b
		return nil
	}
}

// parseBool reads a boolean as operators write it: 1/0, true/false,
// yes/no, on/off, in any case.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on", "y", "t":
		return true, nil
	case "0", "false", "no", "off", "n", "f", "":
		return false, nil
	}
	return false, fmt.Errorf("%q: use true or false", v)
}

// envRef matches the ${...} references of ferry.yaml: ${VAR},
// ${VAR:-default} (unset or empty), ${VAR-default} (unset),
// ${VAR:?message} and ${VAR?message} (an error); anyRef any ${...}.
var (
	envRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`) })
	anyRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{[^}]*\}?`) })
)

// expandEnv expands the ${VAR} references of a config file, so that
// secrets can stay in the environment. A variable that is not set (or is
// empty) is an error naming it and the line, unless the reference gives a
// default; a ${...} of another form is an error too (it would stay in the
// value as text).
func expandEnv(path, text string, lookup func(string) (string, bool)) (string, error) {
	var errs []string
	lines := strings.SplitAfter(text, "\n")
	for i, line := range lines {
		lines[i] = anyRef().ReplaceAllStringFunc(line, func(ref string) string {
			m := envRef().FindStringSubmatch(ref)
			if m == nil || m[0] != ref {
				errs = append(errs, fmt.Sprintf("%s:%d: %s: ferry.yaml expands ${VAR}, ${VAR:-default}, ${VAR-default} and ${VAR:?message}", path, i+1, ref))
				return ref
			}
			name, op, arg := m[1], m[2], m[3]
			v, ok := lookup(name)
			switch {
			case op == ":-" && v == "", op == "-" && !ok:
				return arg
			case op == ":?" && v == "", op == "?" && !ok:
				msg := arg
				if msg == "" {
					msg = "not set"
				}
				errs = append(errs, fmt.Sprintf("%s:%d: environment variable %s: %s", path, i+1, name, msg))
			case op == "" && v == "":
				errs = append(errs, fmt.Sprintf("%s:%d: environment variable %s is not set or empty (set it, or write ${%s:-default} where a default is meant)", path, i+1, name, name))
			}
			return v
		})
	}
	if len(errs) > 0 {
		return "", errors.New(strings.Join(errs, "\n"))
	}
	return strings.Join(lines, ""), nil
}

// resolve builds the configuration from ferry.yaml, the environment and
// the flags that were set.
func resolve(flags *pflag.FlagSet, getenv func(string) string) (config, error) {
	c := defaults()
	lookupEnv := func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}
	path, explicit := "ferry.yaml", false
	if f := flags.Lookup("config"); f != nil && f.Changed {
		path, explicit = f.Value.String(), true
	} else if p := getenv("FERRY_CONFIG"); p != "" {
		path, explicit = p, true
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		expanded, err := expandEnv(path, string(data), lookupEnv)
		if err != nil {
			return c, usageError{err}
		}
		dec := yaml.NewDecoder(strings.NewReader(expanded))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, usageErrorf("config file %s: %v", path, err)
		}
		if err := c.checkFile(); err != nil {
			return c, usageErrorf("config file %s: %v", path, err)
		}
		if c.Backup != "" {
			m, err := backup.ParseMode(c.Backup)
			if err != nil {
				return c, usageErrorf("config file %s: backup: %v", path, err)
			}
			c.Backup = string(m)
		}
		if c.Lint.Mode != "" {
			c.LintMode = c.Lint.Mode
		}
		c.file = path
		if c.Database != database.DefaultURL {
			c.databaseFrom = "database in " + path
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	default:
		return c, fmt.Errorf("config file: %w", err)
	}
	// Metaflow deployments configure the database and the service with
	// their own variables; FERRY_* ones and flags still win.
	raw, ok, err := database.FromMetaflowEnv(getenv)
	if err != nil {
		return c, usageError{err}
	}
	if ok {
		c.Database, c.databaseFrom = raw, "the MF_METADATA_DB_* variables"
	}
	if port := getenv("MF_MIGRATION_PORT"); port != "" {
		c.Listen = []string{net.JoinHostPort("127.0.0.1", port)}
	}
	if v := getenv("MF_MIGRATION_ENDPOINTS_ENABLED"); v != "" {
		enabled, err := parseBool(v)
		if err != nil {
			return c, usageErrorf("MF_MIGRATION_ENDPOINTS_ENABLED: %v", err)
		}
		c.ReadOnly = !enabled
	}
	for _, s := range settings() {
		if v := getenv(s.env); v != "" {
			if err := s.apply(&c, v); err != nil {
				return c, usageErrorf("%s: %v", s.env, err)
			}
			if s.flag == "database" {
				c.databaseFrom = s.env
			}
		}
	}
	for _, s := range settings() {
		if f := flags.Lookup(s.flag); f != nil && f.Changed {
			if err := s.apply(&c, f.Value.String()); err != nil {
				return c, usageErrorf("--%s: %v", s.flag, err)
			}
			if s.flag == "database" {
				c.databaseFrom = "--database"
			}
		}
	}
	return c, nil
}

// manifest returns the release manifest: the file named by --releases,
// FERRY_RELEASES or releases_file if one is, else the releases section of
// ferry.yaml (possibly empty).
func (c config) manifest() (*release.Manifest, error) {
	if c.ReleasesFile != "" {
		return release.LoadManifest(c.ReleasesFile)
	}
	src := c.file
	if src == "" {
		src = "ferry.yaml"
	}
	m := &release.Manifest{Releases: c.Releases, Source: src}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}
