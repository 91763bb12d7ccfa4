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
