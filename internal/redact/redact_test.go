package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://app:Secret1@db/x?sslmode=require":        "postgres://app@db/x?sslmode=require",
		"http://ferry:tok@host:8082/?token=tok2":             "http://ferry@host:8082/?token=xxxxx",
		"s3://b/p?endpoint=http://u:PW@minio:9000":           "s3://b/p?endpoint=http%3A%2F%2Fu%40minio%3A9000",
		"file://user:Secret1@/var/b":                         "file://user@/var/b",
		"mysql://u:p@ss:w@rd@h:3306/db":                      "mysql://u@h:3306/db",
		"postgres://u:pw@h:notaport/x?password=zz&sslkey=/k": "postgres://u@h:notaport/x?password=xxxxx&sslkey=xxxxx",
		"sqlite:data/app.db":                                 "sqlite:data/app.db",
	} {
		if got := URL(raw); got != want {
			t.Errorf("URL(%q) = %q, want %q", raw, got, want)
		}
	}
	if s := URLSecrets("s3://b/p?endpoint=http://u:PW@minio:9000&secret_key=K"); !strings.Contains(strings.Join(s, " "), "PW") || !strings.Contains(strings.Join(s, " "), "K") {
		t.Errorf("URLSecrets: %q", s)
	}
}

func TestPassword(t *testing.T) {
	for _, tt := range []struct{ s, pw, want string }{
		{"dial 127.0.0.1: for mysql://root:1@h and Error 1045", "1", "dial 127.0.0.1: for mysql://root:xxxxx@h and Error 1045"},
		{"password=postgres user=postgres dbname=postgres", "postgres", "password=xxxxx user=postgres dbname=postgres"},
		{"password=postgresql", "postgres", "password=postgresql"},
	} {
		if got := Password(tt.s, tt.pw); got != tt.want {
			t.Errorf("Password(%q, %q) = %q, want %q", tt.s, tt.pw, got, tt.want)
		}
	}
}

func TestIsSecretVariable(t *testing.T) {
	for name, want := range map[string]bool{
		"DB_PASSWORD": true, "DB_PASS": true, "PGPASS": true, "API_TOKEN": true, "AWS_SECRET_ACCESS_KEY": true,
		"DATABASE_URL": true, "PG_DSN": true, "DB_CONN": true, "REPLICA_CONNECTION_STRING": true,
		"TABLE_NAME": false, "REGION": false, "BASE_URL": false, "SCHEMA": false,
	} {
		if got := IsSecretVariable(name); got != want {
			t.Errorf("IsSecretVariable(%q) = %v, want %v", name, got, want)
		}
	}
	// Query parameters keep the narrower rule.
	if IsSecretName("connect_timeout") {
		t.Error("connect_timeout is not a secret parameter")
	}
}
