package migrate

import (
	"testing"
	"time"
)

func TestMentions(t *testing.T) {
	sql := "ALTER TABLE busy ADD COLUMN extra int;\nUPDATE \"Orders\" SET x = 1; -- busy_log too"
	for name, want := range map[string]bool{"busy": true, "orders": true, "Orders": true, "busy_log": true, "bus": false, "extra_busy": false, "x": true, "int": true, "y": false} {
		if got := mentions(sql, name); got != want {
			t.Errorf("mentions(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	w := LockWait{Backoff: time.Second, MaxBackoff: 30 * time.Second}
	for n, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 40: 30 * time.Second} {
		for range 20 {
			if d := backoff(w, n); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %s, want between %s and %s", n, d, full/2, full)
			}
		}
	}
	if d := backoff(LockWait{}, 3); d != 0 {
		t.Errorf("no backoff configured: %s", d)
	}
}

func TestConcurrently(t *testing.T) {
	for sql, want := range map[string]bool{
		"CREATE INDEX CONCURRENTLY i ON t (a)":                            true,
		"create unique index concurrently i on t (a)":                     true,
		"-- build it\n/* quietly */ CREATE INDEX CONCURRENTLY i ON t (a)": true,
		"DROP INDEX CONCURRENTLY IF EXISTS i":                             true,
		"REINDEX (VERBOSE) TABLE CONCURRENTLY t":                          true,
		"REINDEX INDEX CONCURRENTLY i":                                    true,
		"ALTER TABLE t ADD COLUMN edited_concurrently bool":               false,
		"ALTER TABLE t ADD COLUMN concurrently bool":                      false,
		"CREATE INDEX i ON t (a) -- not CONCURRENTLY":                     false,
		"COMMENT ON TABLE t IS 'CREATE INDEX CONCURRENTLY'":               false,
		"CREATE TABLE concurrently (id int)":                              false,
	} {
		if got := concurrently(sql); got != want {
			t.Errorf("concurrently(%q) = %v, want %v", sql, got, want)
		}
	}
}
