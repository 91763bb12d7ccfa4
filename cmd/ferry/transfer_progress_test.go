package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/transfer"
)

func TestProgressLine(t *testing.T) {
	half := progressLine(transfer.Progress{Op: "load", Table: "events", Rows: 500, Bytes: 10 << 20, Total: 1000}, 10*time.Second)
	for _, want := range []string{"load", "events", "500 rows", "10.0 MiB", "1.0 MiB/s", "[##########..........]  50%", "ETA 10s"} {
		if !strings.Contains(half, want) {
			t.Errorf("%q lacks %q", half, want)
		}
	}
	done := progressLine(transfer.Progress{Op: "export", Table: "t", Rows: 7, Total: 7, Done: true}, 1500*time.Millisecond)
	if !strings.Contains(done, "done in 1.5s") || strings.Contains(done, "ETA") || strings.Contains(done, "[") {
		t.Errorf("done line %q", done)
	}
	unknown := progressLine(transfer.Progress{Op: "export", Table: "t", Rows: 100, Bytes: 1000, Total: -1}, time.Second)
	if strings.Contains(unknown, "ETA") || strings.Contains(unknown, "%") {
		t.Errorf("a table of unknown size has no bar: %q", unknown)
	}
}
