package database_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestPostgresTLS connects with each sslmode to the test server, which
// must have TLS on (Debian's default, with its snakeoil certificate for
// "localhost"), and checks what the server says about the connection.
func TestPostgresTLS(t *testing.T) {
	db := testdb.New(t, database.Postgres)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sslOn, certFile string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('ssl'), current_setting('ssl_cert_file')").Scan(&sslOn, &certFile); err != nil {
		t.Fatal(err)
	}
	if sslOn != "on" {
		t.Fatal("the PostgreSQL test server has ssl = off; TLS connections cannot be tested")
	}
	with := func(host string, params map[string]string) string {
		u, _ := url.Parse(db.URLString)
		u.Host = host + ":" + u.Port()
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	encrypted := func(raw string) (bool, error) {
		c, err := database.Open(ctx, raw, database.Options{ConnectTimeout: 10 * time.Second})
		if err != nil {
			return false, err
		}
		defer c.Close()
		var ssl bool
		err = c.QueryRowContext(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
		return ssl, err
	}
	for _, tt := range []struct {
		name    string
		host    string
		params  map[string]string
		ssl     bool
		wantErr string
	}{
		{"disable", "127.0.0.1", map[string]string{"sslmode": "disable"}, false, ""},
		{"require", "127.0.0.1", map[string]string{"sslmode": "require"}, true, ""},
		{"verify-ca", "127.0.0.1", map[string]string{"sslmode": "verify-ca", "sslrootcert": certFile}, true, ""},
		{"verify-full", "localhost", map[string]string{"sslmode": "verify-full", "sslrootcert": certFile}, true, ""},
		{"verify-full, wrong host", "127.0.0.1", map[string]string{"sslmode": "verify-full", "sslrootcert": certFile}, false, "certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ssl, err := encrypted(with(tt.host, tt.params))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error about the %s, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil || ssl != tt.ssl {
				t.Fatalf("encrypted=%v err=%v, want encrypted=%v", ssl, err, tt.ssl)
			}
		})
	}
	// The same through Metaflow's variables.
	u := db.URL
	raw, _, _ := database.FromMetaflowEnv(func(k string) string {
		return map[string]string{
			"MF_METADATA_DB_HOST": "localhost", "MF_METADATA_DB_PORT": u.Port, "MF_METADATA_DB_USER": u.User,
			"MF_METADATA_DB_PSWD": u.Password(), "MF_METADATA_DB_NAME": u.Database,
			"MF_METADATA_DB_SSL_MODE": "verify-full", "MF_METADATA_DB_SSL_ROOT_CERT": certFile,
		}[k]
	})
	if ssl, err := encrypted(raw); err != nil || !ssl {
		t.Fatalf("Metaflow variables with verify-full: encrypted=%v err=%v", ssl, err)
	}
}

// TestMySQLTLS connects to a private TLS MariaDB with each sslmode, a
// wrong CA, a host mismatch, and a client certificate.
func TestMySQLTLS(t *testing.T) {
	srv := testdb.StartMariaDBTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wrongCA := testdb.NewTLSFiles(t).CA
	url := func(user, host, params string) string {
		return fmt.Sprintf("mysql://%s@%s:%d/mysql?%s", user, host, srv.Port, params)
	}
	cipher := func(raw string) (string, error) {
		c, err := database.Open(ctx, raw, database.Options{ConnectTimeout: 10 * time.Second})
		if err != nil {
			return "", err
		}
		defer c.Close()
		var name, value string
		err = c.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &value)
		return value, err
	}
	f := srv.Files
	for _, tt := range []struct {
		name, user, host, params string
		tls                      bool
		wantErr                  string
	}{
		{"disable", "root", "127.0.0.1", "sslmode=disable", false, ""},
		{"require", "root", "127.0.0.1", "sslmode=require", true, ""},
		{"verify-ca", "root", "127.0.0.1", "sslmode=verify-ca&sslrootcert=" + f.CA, true, ""},
		{"verify-full", "root", "localhost", "sslmode=verify-full&sslrootcert=" + f.CA, true, ""},
		{"verify-full, wrong host", "root", "127.0.0.1", "sslmode=verify-full&sslrootcert=" + f.CA, false, "certificate"},
		{"verify-ca, wrong CA", "root", "127.0.0.1", "sslmode=verify-ca&sslrootcert=" + wrongCA, false, "certificate"},
		{"client certificate", "certuser", "localhost", "sslmode=verify-full&sslrootcert=" + f.CA + "&sslcert=" + f.ClientCert + "&sslkey=" + f.ClientKey, true, ""},
		{"client certificate required", "certuser", "localhost", "sslmode=verify-full&sslrootcert=" + f.CA, false, "Access denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.user == "certuser" {
				admin, err := database.Open(ctx, url("root", "127.0.0.1", "sslmode=require"), database.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer admin.Close()
				for _, s := range []string{"CREATE USER IF NOT EXISTS 'certuser'@'%' REQUIRE X509", "GRANT SELECT ON mysql.* TO 'certuser'@'%'"} {
					if _, err := admin.ExecContext(ctx, s); err != nil {
						t.Fatal(err)
					}
				}
			}
			c, err := cipher(url(tt.user, tt.host, tt.params))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error about %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil || (c != "") != tt.tls {
				t.Fatalf("cipher %q, err %v; want TLS %v", c, err, tt.tls)
			}
		})
	}
}
