package database

import (
	"errors"
	"strings"
	"testing"
)

// TestMySQLParamsNeverReachTheServer: a query parameter the driver does not
// know is sent to the server as SET name=value, unquoted, when it connects.
// ?password=PASSWORD('x') changed the account's password that way. Only the
// driver's parameters, ferry's, and a few session variables with plain
// values pass; the error names the parameter, never its value.
func TestMySQLParamsNeverReachTheServer(t *testing.T) {
	const secret = "Sup3rS3cretValue"
	refused := []string{
		"token=" + secret,
		"api_key=" + secret,
		"init_connect=" + secret,
		"allowAllFiles=true",
		"tls=skip-verify",
		"sql_mode=" + secret + "%27%29%3BDROP",
		"time_zone=" + secret + "()",
		"foo=" + secret,
	}
	for _, q := range refused {
		raw := "mysql://app:pw@127.0.0.1:3306/db?" + q
		_, err := Parse(raw)
		if err == nil {
			t.Errorf("Parse(?%s) accepted a parameter that would reach the server", q)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "pw@") {
			t.Errorf("Parse(?%s) error echoes a value: %v", q, err)
		}
		name, _, _ := strings.Cut(q, "=")
		if !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("Parse(?%s) error does not name the parameter: %v", q, err)
		}
	}
	for _, q := range []string{"parseTime=false", "multiStatements=0"} {
		if _, err := Parse("mysql://app:pw@127.0.0.1:3306/db?" + q); err == nil || !strings.Contains(err.Error(), "ferry always turns") {
			t.Errorf("Parse(?%s): %v, want an error saying ferry turns it on", q, err)
		}
	}
	for _, q := range []string{"parseTime=true", "multiStatements=1", "sql_mode=%27STRICT_ALL_TABLES,NO_ZERO_DATE%27", "lock_wait_timeout=30", "readTimeout=30s", "sslmode=require", "charset=utf8mb4"} {
		if _, err := Parse("mysql://app:pw@127.0.0.1:3306/db?" + q); err != nil {
			t.Errorf("Parse(?%s): %v", q, err)
		}
	}
}

// TestCredentialParams: ?user= and ?password= are the user and password,
// on every server kind: status names the user the driver really uses, and
// the password is redacted like one in the user info (it used to say
// `as user ""` and, on MySQL, send the password to the server as SET).
func TestCredentialParams(t *testing.T) {
	for _, raw := range []string{
		"postgres://127.0.0.1:5432/db?user=bob&password=Hunter2Secret&sslmode=disable",
		"mysql://127.0.0.1:3306/db?user=bob&password=Hunter2Secret",
	} {
		u, err := Parse(raw)
		if err != nil {
			t.Fatalf("Parse(%s): %v", raw, err)
		}
		if u.User != "bob" || u.Password() != "Hunter2Secret" {
			t.Errorf("Parse(%s): user %q password %q", raw, u.User, u.Password())
		}
		if s := u.String(); strings.Contains(s, "Hunter2Secret") || !strings.Contains(s, "bob@") {
			t.Errorf("String() = %s", s)
		}
		if _, ok := u.Params["password"]; ok {
			t.Errorf("%s: password left among the parameters", raw)
		}
	}
	for _, raw := range []string{
		"postgres://alice@h/db?user=bob",
		"mysql://alice:x@h/db?password=y",
	} {
		if _, err := Parse(raw); err == nil || strings.Contains(err.Error(), "x@") {
			t.Errorf("Parse(%s) = %v, want an error saying it is given twice", raw, err)
		}
	}
	if _, err := Parse("postgres://h/db?auth_token=Hunter2Secret"); err == nil || strings.Contains(err.Error(), "Hunter2Secret") {
		t.Errorf("secret-named postgres parameter: %v", err)
	}
	if _, err := Parse("postgres://h/db?statement_timeout=5000&sslpassword=x&application_name=a"); err != nil {
		t.Errorf("postgres settings refused: %v", err)
	}
}

// TestRedactLeavesOtherTextAlone: a short password, or one equal to the
// user name, is removed where it stands as a password, and nowhere else:
// masking every "1" or "postgres" garbled messages and showed what the
// password was.
func TestRedactLeavesOtherTextAlone(t *testing.T) {
	for _, tt := range []struct{ raw, msg, want string }{
		{"mysql://root:1@127.0.0.1:3306/app", "dial 127.0.0.1:3306: Error 1045 for mysql://root:1@127.0.0.1/app", "dial 127.0.0.1:3306: Error 1045 for mysql://root:xxxxx@127.0.0.1/app"},
		{"postgres://postgres:postgres@127.0.0.1/postgres", `database "postgres" as user "postgres": password=postgres`, `database "postgres" as user "postgres": password=xxxxx`},
		{"postgres://app:Hunter2Secret@db/x", "server said Hunter2Secret", "server said xxxxx"},
	} {
		u, err := Parse(tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Redact(errors.New(tt.msg)).Error(); got != tt.want {
			t.Errorf("Redact(%q) for %s = %q, want %q", tt.msg, tt.raw, got, tt.want)
		}
	}
}
