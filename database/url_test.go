package database

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw                                    string
		kind, host, port, user, db, schema, as string
	}{
		{"postgres://app:pw@db.internal:6543/orders?sslmode=require&schema=billing", Postgres, "db.internal", "6543", "app", "orders", "billing",
			"postgres://app@db.internal:6543/orders?sslmode=require"},
		{"postgresql://app@db/orders", Postgres, "db", "5432", "app", "orders", "", "postgresql://app@db/orders"},
		{"mysql://root:pw@127.0.0.1/app?parseTime=true", MySQL, "127.0.0.1", "3306", "root", "app", "", "mysql://root@127.0.0.1/app?parseTime=true"},
		{"mariadb://root@h:3307/app", MySQL, "h", "3307", "root", "app", "", "mysql://root@h:3307/app"},
		{"sqlite:ferry.db", SQLite, "", "", "", "ferry.db", "", "sqlite:ferry.db"},
		{"sqlite:///var/lib/app/state.db?_pragma=foreign_keys(1)", SQLite, "", "", "", "/var/lib/app/state.db", "", "sqlite:/var/lib/app/state.db"},
		{"sqlite3:data/x.db", SQLite, "", "", "", "data/x.db", "", "sqlite:data/x.db"},
	}
	for _, tt := range tests {
		u, err := Parse(tt.raw)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.raw, err)
			continue
		}
		got := []string{u.Kind, u.Host, u.Port, u.User, u.Database, u.Schema, u.String()}
		want := []string{tt.kind, tt.host, tt.port, tt.user, tt.db, tt.schema, tt.as}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Parse(%q) = %q, want %q", tt.raw, got, want)
		}
	}
}

func TestParseErrorsNeverShowThePassword(t *testing.T) {
	for _, raw := range []string{
		"oracle://scott:tiger@db/orcl",
		"postgres://scott:tiger@db:notaport/x",
		"scott:tiger@db/x",
		"",
		"sqlite:",
	} {
		_, err := Parse(raw)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "tiger") {
			t.Errorf("Parse(%q) error shows the password: %v", raw, err)
		}
	}
	_, err := Parse("oracle://scott:tiger@db/orcl")
	if !errors.Is(err, ErrUnsupportedScheme) {
		t.Errorf("unsupported scheme error does not wrap ErrUnsupportedScheme: %v", err)
	}
}

// TestBarePath: a file path given without sqlite: says how to write it.
func TestBarePath(t *testing.T) {
	for raw, want := range map[string]string{
		"/var/lib/app/app.db": "for a SQLite file, write sqlite:/var/lib/app/app.db",
		"./app.db":            "write sqlite:./app.db",
		"app.sqlite3":         "write sqlite:app.sqlite3",
		"db.internal/app":     "use postgres://, mysql:// or sqlite:path",
		"scott:tiger@db/x":    "use postgres://, mysql:// or sqlite:path",
	} {
		_, err := Parse(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want %q", raw, err, want)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	u, err := Parse("postgres://app:p%40ss%20word@db/x?sslpassword=keypass&sslmode=verify-full")
	if err != nil {
		t.Fatal(err)
	}
	if u.Password() != "p@ss word" {
		t.Fatalf("password = %q", u.Password())
	}
	s := u.String()
	if strings.Contains(s, "p@ss") || strings.Contains(s, "p%40ss") || strings.Contains(s, "keypass") || !strings.Contains(s, "sslpassword=xxxxx") {
		t.Errorf("String() shows a secret: %s", s)
	}
	if !strings.Contains(u.WithPassword(), "p%40ss%20word") {
		t.Errorf("WithPassword() lost the password: %s", u.WithPassword())
	}
	// An error that quotes the password, raw or URL-escaped, is redacted,
	// and still unwraps to its cause.
	cause := errors.New("boom")
	err = u.Redact(fmt.Errorf("driver said p@ss word and p%%40ss%%20word: %w", cause))
	if strings.Contains(err.Error(), "ss word") || strings.Contains(err.Error(), "ss%20word") || !errors.Is(err, cause) {
		t.Errorf("redacted error: %v", err)
	}
}

func TestUnreachableErrorNamesHostNotPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, raw := range []string{"postgres://app:Hunter2Secret@127.0.0.1:1/orders", "mysql://app:Hunter2Secret@127.0.0.1:1/orders"} {
		_, err := Open(ctx, raw, Options{ConnectTimeout: 2 * time.Second})
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("%s: %v", raw, err)
		}
		msg := err.Error()
		if strings.Contains(msg, "Hunter2Secret") || !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, `"orders"`) || !strings.Contains(msg, `user "app"`) {
			t.Errorf("%s: %s", raw, msg)
		}
	}
}

func TestMySQLTLSParameters(t *testing.T) {
	for _, tt := range []struct {
		mode                   string
		tls, skipVerify, plain bool
	}{
		{"disable", false, false, false},
		{"preferred", true, true, true},
		{"require", true, true, false},
		{"verify-full", true, false, false},
	} {
		u, err := Parse("mysql://app:pw@db.example:3306/x?sslmode=" + tt.mode + "&wait_timeout=60")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := mysqlConfig(u, Options{ConnectTimeout: time.Second})
		if err != nil {
			t.Fatalf("%s: %v", tt.mode, err)
		}
		if (cfg.TLS != nil) != tt.tls {
			t.Errorf("%s: TLS config = %v", tt.mode, cfg.TLS)
		}
		if cfg.TLS != nil && (cfg.TLS.InsecureSkipVerify != tt.skipVerify || cfg.TLS.ServerName != "db.example") {
			t.Errorf("%s: skip verify %v, server name %q", tt.mode, cfg.TLS.InsecureSkipVerify, cfg.TLS.ServerName)
		}
		if cfg.AllowFallbackToPlaintext != tt.plain {
			t.Errorf("%s: fallback to plaintext = %v", tt.mode, cfg.AllowFallbackToPlaintext)
		}
		if cfg.Passwd != "pw" || cfg.Addr != "db.example:3306" || cfg.Params["wait_timeout"] != "60" {
			t.Errorf("%s: config %+v", tt.mode, cfg)
		}
	}
	u, _ := Parse("mysql://app@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
	if _, err := mysqlConfig(u, Options{}); err == nil || !strings.Contains(err.Error(), "sslrootcert") {
		t.Errorf("missing CA file: %v", err)
	}
	// A URL that cannot work is refused when it is read.
	for raw, want := range map[string]string{
		"mysql://app@db/x?sslmode=sometimes":    `sslmode "sometimes": use disable`,
		"postgres://app@db/x?sslmode=sometimes": `sslmode "sometimes": use disable, allow, prefer, require, verify-ca, verify-full`,
		"mysql://app@db/x?timeout=abc":          `invalid duration "abc"`,
		"postgres://app:pw@db:99999/x":          `invalid port "99999"`,
		"mysql://app@db:0/x":                    `invalid port "0"`,
		"postgres://app@db/x?connect_timeout=x": "connect_timeout",
	} {
		if _, err := Parse(raw); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "pw@") {
			t.Errorf("Parse(%s) = %v, want an error saying %q", raw, err, want)
		}
	}
}

func TestSchemaOnlyForPostgres(t *testing.T) {
	_, err := Open(context.Background(), "sqlite:"+t.TempDir()+"/x.db", Options{Schema: "app", NoPing: true})
	if err == nil || !strings.Contains(err.Error(), "only supported for PostgreSQL") {
		t.Fatalf("schema on SQLite: %v", err)
	}
}

func TestFromMetaflowEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, ok, _ := FromMetaflowEnv(env(nil)); ok {
		t.Fatal("no MF_ variables should mean no URL")
	}
	raw, ok, _ := FromMetaflowEnv(env(map[string]string{
		"MF_METADATA_DB_HOST": "db.internal", "MF_METADATA_DB_PORT": "6432", "MF_METADATA_DB_USER": "metaflow",
		"MF_METADATA_DB_PSWD": "p@ss word", "MF_METADATA_DB_NAME": "metaflow", "MF_METADATA_DB_SSL_MODE": "verify-full",
		"MF_METADATA_DB_SSL_ROOT_CERT_PATH": "/etc/ca.pem", "DB_SCHEMA_NAME": "mf",
	}))
	if !ok {
		t.Fatal("MF_ variables ignored")
	}
	u, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "db.internal" || u.Port != "6432" || u.User != "metaflow" || u.Password() != "p@ss word" || u.Database != "metaflow" ||
		u.Schema != "mf" || u.Params.Get("sslmode") != "verify-full" || u.Params.Get("sslrootcert") != "/etc/ca.pem" {
		t.Fatalf("parsed %+v (%s)", u, u)
	}
	// Metaflow's defaults, and a DSN taking precedence over the parts.
	raw, _, _ = FromMetaflowEnv(env(map[string]string{"MF_METADATA_DB_HOST": "h"}))
	if u, _ := Parse(raw); u.User != "postgres" || u.Password() != "postgres" || u.Database != "postgres" || u.Port != "5432" {
		t.Fatalf("defaults: %+v", u)
	}
	raw, _, _ = FromMetaflowEnv(env(map[string]string{"MF_METADATA_DB_DSN": "dbname=mfdb user=mf password='it\\'s q' host=pg port=5433 sslmode=require", "MF_METADATA_DB_HOST": "ignored"}))
	u, err = Parse(raw)
	if err != nil || u.Host != "pg" || u.Port != "5433" || u.Database != "mfdb" || u.Password() != "it's q" || u.Params.Get("sslmode") != "require" {
		t.Fatalf("DSN: %+v %v", u, err)
	}
	// A DSN without a password gets none (libpq then reads PGPASSWORD or
	// .pgpass), a URL is taken as it is, and one that does not parse is
	// an error.
	raw, _, _ = FromMetaflowEnv(env(map[string]string{"MF_METADATA_DB_DSN": "host=pg dbname=mfdb"}))
	if u, _ := Parse(raw); u.Password() != "" || u.User != "postgres" || u.Host != "pg" {
		t.Fatalf("DSN without a password: %+v", u)
	}
	raw, _, _ = FromMetaflowEnv(env(map[string]string{"MF_METADATA_DB_DSN": "postgresql://app:pw@db.internal:5432/metaflow", "DB_SCHEMA_NAME": "mf"}))
	if u, err := Parse(raw); err != nil || u.Host != "db.internal" || u.User != "app" || u.Database != "metaflow" || u.Schema != "mf" {
		t.Fatalf("DSN as a URL: %+v %v", u, err)
	}
	for _, bad := range []string{"host=pg dbname", "just words", "password='unterminated"} {
		if _, _, err := FromMetaflowEnv(env(map[string]string{"MF_METADATA_DB_DSN": bad})); err == nil || strings.Contains(err.Error(), "unterminated") {
			t.Errorf("DSN %q: %v", bad, err)
		}
	}
}
