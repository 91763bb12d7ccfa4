package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// config is ferry's configuration after resolving, in order of precedence,
// flags, FERRY_* environment variables, ferry.yaml and defaults.
type config struct {
	Database        string        `yaml:"database"`
	Dir             string        `yaml:"dir"`
	Table           string        `yaml:"table"`
	Schema          string        `yaml:"schema"`
	LockTimeout     time.Duration `yaml:"lock_timeout"`
	LockMode        string        `yaml:"lock_mode"`
	AllowOutOfOrder bool          `yaml:"allow_out_of_order"`
	LogFormat       string        `yaml:"log_format"`
	LogLevel        string        `yaml:"log_level"`
	// History mirrors ferry's history into another tool's version table:
	// "ferry" (none), "goose" or "golang-migrate".
	History string `yaml:"history"`

	// Migration service (ferry serve).
	Listen    []string `yaml:"listen"`
	TokenFile string   `yaml:"token_file"`
	ReadOnly  bool     `yaml:"read_only"`
	Compat    string   `yaml:"compat"`
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

	// file is the config file that was read, if any.
	file string
}

func defaults() config {
	return config{
		Database:    database.DefaultURL,
		Dir:         "migrations",
		Table:       migrate.DefaultTable,
		LockTimeout: migrate.DefaultLockTimeout,
		LogFormat:   "text",
		LogLevel:    "warn",
		History:     "ferry",
		Heartbeat:   release.DefaultHeartbeat,
		InstanceTTL: release.DefaultTTL,
	}
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

func duration(what string, dst func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s %q: %w (use a duration such as 15m or 90s)", what, v, err)
		}
		*dst(c) = d
		return nil
	}
}

// settings lists every value that has a flag and an environment variable.
func settings() []setting {
	return []setting{
		{"database", "FERRY_DATABASE_URL", str(func(c *config) *string { return &c.Database })},
		{"dir", "FERRY_DIR", str(func(c *config) *string { return &c.Dir })},
		{"table", "FERRY_TABLE", str(func(c *config) *string { return &c.Table })},
		{"schema", "FERRY_SCHEMA", str(func(c *config) *string { return &c.Schema })},
		{"lock-mode", "FERRY_LOCK_MODE", str(func(c *config) *string { return &c.LockMode })},
		{"log-format", "FERRY_LOG_FORMAT", str(func(c *config) *string { return &c.LogFormat })},
		{"log-level", "FERRY_LOG_LEVEL", str(func(c *config) *string { return &c.LogLevel })},
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
		{"heartbeat", "FERRY_HEARTBEAT", duration("heartbeat", func(c *config) *time.Duration { return &c.Heartbeat })},
		{"instance-ttl", "FERRY_INSTANCE_TTL", duration("instance TTL", func(c *config) *time.Duration { return &c.InstanceTTL })},
		{"allow-out-of-order", "FERRY_ALLOW_OUT_OF_ORDER", boolean(func(c *config) *bool { return &c.AllowOutOfOrder })},
		{"history", "FERRY_HISTORY", str(func(c *config) *string { return &c.History })},
		{"token-file", "FERRY_TOKEN_FILE", str(func(c *config) *string { return &c.TokenFile })},
		{"read-only", "FERRY_READ_ONLY", boolean(func(c *config) *bool { return &c.ReadOnly })},
		{"compat", "FERRY_COMPAT", str(func(c *config) *string { return &c.Compat })},
		{"base-url", "FERRY_BASE_URL", str(func(c *config) *string { return &c.BaseURL })},
		{"listen", "FERRY_LISTEN", func(c *config, v string) error {
			c.Listen = nil
			// The flag's value reads "[a,b]"; the variable's "a,b". Only
			// that outer pair goes: "[::1]:8082" keeps its brackets.
			if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
				v = v[1 : len(v)-1]
			}
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					c.Listen = append(c.Listen, a)
				}
			}
			return nil
		}},
	}
}

func boolean(dst func(*config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			*dst(c) = true
		case "0", "false", "no", "off", "":
			*dst(c) = false
		default:
			return fmt.Errorf("%q: use true or false", v)
		}
		return nil
	}
}

// envRef matches ${VAR} references, expanded in ferry.yaml so that secrets
// can stay in the environment.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// resolve builds the configuration from ferry.yaml, the environment and
// the flags that were set.
func resolve(flags *pflag.FlagSet, getenv func(string) string) (config, error) {
	c := defaults()
	path, explicit := "ferry.yaml", false
	if f := flags.Lookup("config"); f != nil && f.Changed {
		path, explicit = f.Value.String(), true
	} else if p := getenv("FERRY_CONFIG"); p != "" {
		path, explicit = p, true
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		expanded := envRef.ReplaceAllStringFunc(string(data), func(ref string) string {
			return getenv(envRef.FindStringSubmatch(ref)[1])
		})
		dec := yaml.NewDecoder(strings.NewReader(expanded))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
		if c.Backup != "" {
			m, err := backup.ParseMode(c.Backup)
			if err != nil {
				return c, fmt.Errorf("config file %s: backup: %w", path, err)
			}
			c.Backup = string(m)
		}
		c.file = path
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	default:
		return c, fmt.Errorf("config file: %w", err)
	}
	// Metaflow deployments configure the database and the service with
	// their own variables; FERRY_* ones and flags still win.
	if raw, ok := database.FromMetaflowEnv(getenv); ok {
		c.Database = raw
	}
	if port := getenv("MF_MIGRATION_PORT"); port != "" {
		c.Listen = []string{net.JoinHostPort("127.0.0.1", port)}
	}
	if getenv("MF_MIGRATION_ENDPOINTS_ENABLED") == "0" {
		c.ReadOnly = true
	}
	for _, s := range settings() {
		if v := getenv(s.env); v != "" {
			if err := s.apply(&c, v); err != nil {
				return c, fmt.Errorf("%s: %w", s.env, err)
			}
		}
	}
	for _, s := range settings() {
		if f := flags.Lookup(s.flag); f != nil && f.Changed {
			if err := s.apply(&c, f.Value.String()); err != nil {
				return c, usageErrorf("--%s: %v", s.flag, err)
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
