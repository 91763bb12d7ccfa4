package dialect

import (
	"strings"
	"testing"
	"time"
)

func TestSessionHidesLiterals(t *testing.T) {
	for _, q := range []string{
		"ALTER USER app PASSWORD 'hunter2'",
		`SELECT 1 WHERE "hunter2" <> 'x'`, // MySQL's double-quoted string
		`SELECT 'C:\' <> 'hunter2'`,       // a standard string ending in a backslash
		"SELECT $$hunter2$$", "SELECT $q$hunter2$q$", "SELECT E'\\'hunter2'",
	} {
		s := Session{ID: 7, Application: "psql", TxAge: 90 * time.Second, State: "idle in transaction", Query: q}
		if got := s.String(); strings.Contains(got, "hunter2") {
			t.Errorf("%q shows the secret", got)
		}
	}
	s := Session{ID: 7, Application: "psql", TxAge: 90 * time.Second, State: "idle in transaction", Query: "ALTER USER app\n  PASSWORD 'hunter2'"}
	if got := s.String(); got != `session 7 (application "psql", transaction open 1m30s, idle in transaction), last query: ALTER USER app PASSWORD ...` {
		t.Errorf("got %q", got)
	}
}
