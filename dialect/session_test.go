package dialect

import (
	"strings"
	"testing"
	"time"
)

func TestSessionHidesLiterals(t *testing.T) {
	s := Session{ID: 7, Application: "psql", TxAge: 90 * time.Second, State: "idle in transaction",
		Query: "ALTER USER app PASSWORD 'hunter2' -- it's\n  ; SELECT 'a''b', 'c\\'d'"}
	got := s.String()
	for _, secret := range []string{"hunter2", "a''b", "c\\'d"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q shows %q", got, secret)
		}
	}
	if !strings.Contains(got, `session 7 (application "psql", transaction open 1m30s, idle in transaction), last query: ALTER USER app PASSWORD '?'`) {
		t.Errorf("got %q", got)
	}
}
