package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmoke runs the whole harness on SQLite with a tiny workload: every
// case once, so that the harness keeps working. It measures nothing worth
// reading (the real run is `make bench`); it checks that every case
// produced numbers, that ferry passed its own correctness checks, and that
// nothing is left behind.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry and runs three tools")
	}
	work := t.TempDir()
	out := filepath.Join(work, "results.json")
	var stdout, stderr bytes.Buffer
	code := cli([]string{
		"-databases", "sqlite", "-n", "8,16", "-runs", "1", "-status-runs", "1",
		"-procs", "4", "-concurrent-n", "8", "-concurrent-runs", "1",
		"-warmup", "50ms", "-window", "150ms", "-windows", "1", "-workers", "2",
		"-json", out, "-work", work, "-q",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{8, 16} {
		for _, tool := range []string{toolClient, toolFerry, toolGoose, toolMigrate} {
			if c := find(r.Apply, "sqlite", n, tool); c == nil || len(c.Wall) != 1 || c.Median <= 0 {
				t.Errorf("case 1, N=%d, %s: %+v", n, tool, c)
			}
		}
		for _, tool := range migrationTools {
			if c := find(r.Status, "sqlite", n, tool); c == nil || c.Median <= 0 {
				t.Errorf("case 2, N=%d, %s: %+v", n, tool, c)
			}
			if c := find(r.Incremental, "sqlite", n, tool); c == nil || c.Median <= 0 {
				t.Errorf("case 3, N=%d, %s: %+v", n, tool, c)
			}
		}
		if c := find(r.Incremental, "sqlite", n, toolClient); c == nil || c.Median <= 0 {
			t.Errorf("case 3, N=%d, the lower bound: %+v", n, c)
		}
		if c := find(r.StatusInProcess, "sqlite", n, "load"); c == nil {
			t.Errorf("case 2 in-process, N=%d: missing", n)
		}
	}
	if len(r.Concurrent) != 3 {
		t.Fatalf("case 4: %d cells, want one per tool", len(r.Concurrent))
	}
	for _, c := range r.Concurrent {
		if c.Tool != toolFerry {
			continue
		}
		if run := c.Runs[0]; run.Failed != 0 || run.Duplicated != 0 || run.Missing != 0 || run.HistoryDuplicated != 0 {
			t.Errorf("case 4, ferry: %+v (errors %v)", run, c.Errors)
		}
	}
	if len(r.Service) != 2 || r.Service[0].Errors != 0 || r.Service[0].RPS <= 0 {
		t.Errorf("case 5: %+v", r.Service)
	}
	if len(r.Targets) != 6 {
		t.Errorf("targets: %+v", r.Targets)
	}
	for _, want := range []string{"### Case 1", "### Case 2", "### Case 3", "### Case 4", "### Case 5", "### Targets"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, stdout.String())
		}
	}
	left, _ := filepath.Glob(filepath.Join(work, "ferry-bench-compare-*"))
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
