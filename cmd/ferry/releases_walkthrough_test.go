package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ferrydb/ferry/internal/testdb"
)

// walkthroughCommands returns the commands of the walkthrough in
// docs/releases.md: the lines starting with "$ " in its "## Walkthrough"
// section, without the "$ ".
func walkthroughCommands(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "releases.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, "\n## Walkthrough")
	if start < 0 {
		t.Fatal("docs/releases.md has no ## Walkthrough section")
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var cmds []string
	for _, line := range strings.Split(section, "\n") {
		if c, ok := strings.CutPrefix(line, "$ "); ok {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// buildGreeter builds the example's two releases once, beside the ferry
// binary (removed by TestMain).
var buildGreeter = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(filepath.Dir(ferryBin), "greeter")
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./examples/greeter/cmd/...")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the greeter: %v\n%s", err, out)
	}
	return dir, nil
})

// copyDir copies the files of src (recursively) into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestReleasesWalkthrough runs the rolling upgrade of docs/releases.md,
// command by command as the page has them, on every database: the test's
// list of commands must equal the page's, and each is executed as written
// (only the two listen addresses are replaced by free ones).
func TestReleasesWalkthrough(t *testing.T) {
	v1Hello, v2Hello := "Hello, Ada! (greeter v1)\n", "Hello, Ada! (greeter v2)\n"
	type check struct {
		code     int
		contains []string
		matches  []string
	}
	steps := []struct {
		cmd string
		check
	}{
		{"ferry up --to 1", check{0, []string{"now at version 1"}, nil}},
		{"ferry launch -- --addr 127.0.0.1:8081 &", check{0, []string{"launched release v1 (built against schema 1)", "greeter v1 listening on"}, nil}},
		{"curl -s http://127.0.0.1:8081/", check{0, []string{v1Hello}, nil}},
		{"ferry release list", check{0, []string{"is at schema version 1", "v2: release v2 needs schema version 2 or later"}, []string{`(?m)^v1\s+1\s+1 and later\s+yes \(newest\)\s+1$`, `(?m)^v2\s+3\s+2 and later\s+no\s+0$`}}},
		{"ferry wait --release v2 --timeout 2s", check{1, []string{"timed out after 2s waiting for release v2", "the database is at version 1 and 2 or later is needed; not applied yet: 2 (add_display_name)"}, nil}},
		{"ferry up --to 2", check{0, []string{"applying 2 add_display_name ... ok", "now at version 2"}, nil}},
		{"curl -s http://127.0.0.1:8081/", check{0, []string{v1Hello}, nil}},
		{"ferry wait --release v2 --timeout 1m", check{0, []string{"ready: the database is at version 2; release v2"}, nil}},
		{"ferry launch -- --addr 127.0.0.1:8082 &", check{0, []string{"launched release v2 (built against schema 3, runs on 2 and later)", "greeter v2 listening on"}, nil}},
		{"curl -s http://127.0.0.1:8082/", check{0, []string{v2Hello}, nil}},
		{"ferry status", check{0, []string{"Current version:  2", "Live instances:"}, []string{`(?m)^\s+v1\s+1\s+\S+\s+\S+`, `(?m)^\s+v2\s+3\s+\S+\s+\S+`}}},
		{"ferry up", check{1, []string{"refusing to apply contract migration 3 (migrations/00003_drop_name.sql): it breaks release v1 (built against schema 1), which still has 1 live instance", "ferry up --force"}, nil}},
		{"kill -TERM %1", check{0, []string{"greeter v1 stopped"}, nil}},
		{"ferry up", check{0, []string{"applying 3 drop_name ... ok", "now at version 3"}, nil}},
		{"curl -s http://127.0.0.1:8082/", check{0, []string{v2Hello}, nil}},
		{"ferry release list", check{0, []string{"v1: contract migration 3 (migrations/00003_drop_name.sql) is applied"}, []string{`(?m)^v1\s+1\s+1 and later\s+no\s+0$`, `(?m)^v2\s+3\s+2 and later\s+yes \(newest\)\s+1$`}}},
		{"ferry wait --release v1", check{1, []string{"release v1 cannot run on this database (schema version 3), and waiting will not change that"}, nil}},
		{"kill -TERM %2", check{0, []string{"greeter v2 stopped"}, nil}},
	}
	doc := walkthroughCommands(t)
	var want []string
	for _, s := range steps {
		want = append(want, s.cmd)
	}
	if strings.Join(doc, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the walkthrough in docs/releases.md and this test differ; keep them in step.\ndoc:\n  %s\ntest:\n  %s", strings.Join(doc, "\n  "), strings.Join(want, "\n  "))
	}
	bin, err := buildGreeter()
	if err != nil {
		t.Fatal(err)
	}

	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := t.TempDir()
		copyDir(t, filepath.Join("..", "..", "examples", "greeter"), dir)
		copyDir(t, bin, filepath.Join(dir, "bin"))
		addrs := strings.NewReplacer("127.0.0.1:8081", freeAddr(t), "127.0.0.1:8082", freeAddr(t))
		var jobs []*background
		for i, step := range steps {
			cmd := addrs.Replace(step.cmd)
			fields := strings.Fields(cmd)
			var out string
			var code int
			switch {
			case fields[0] == "ferry" && fields[len(fields)-1] == "&":
				b := startFerry(t, dir, db.URLString, "listening on", "launched release", fields[1:len(fields)-1]...)
				jobs = append(jobs, b)
				out = b.out.String() + b.err.String()
			case fields[0] == "ferry":
				r := runFerry(t, dir, db.URLString, fields[1:]...)
				out, code = r.stdout+r.stderr, r.code
			case fields[0] == "curl" && len(fields) == 3 && fields[1] == "-s":
				resp, err := http.Get(fields[2])
				if err != nil {
					t.Fatalf("step %d, %s: %v", i+1, cmd, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					code = 22 // curl --fail's code, for the message below
				}
				out = string(body)
			case fields[0] == "kill" && len(fields) == 3 && fields[1] == "-TERM" && strings.HasPrefix(fields[2], "%"):
				n, err := strconv.Atoi(fields[2][1:])
				if err != nil || n < 1 || n > len(jobs) {
					t.Fatalf("step %d: no job %s", i+1, fields[2])
				}
				code = jobs[n-1].stop(t, syscall.SIGTERM)
				out = jobs[n-1].out.String() + jobs[n-1].err.String()
			default:
				t.Fatalf("step %d: the test cannot run %q", i+1, cmd)
			}
			if code != step.code {
				t.Fatalf("step %d, %s: exit %d, want %d\n%s", i+1, cmd, code, step.code, out)
			}
			for _, s := range step.contains {
				if !strings.Contains(out, s) {
					t.Errorf("step %d, %s: output does not contain %q:\n%s", i+1, cmd, s, out)
				}
			}
			for _, re := range step.matches {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("step %d, %s: output does not match %s:\n%s", i+1, cmd, re, out)
				}
			}
			if t.Failed() {
				return
			}
		}
		if f := fleetOf(t, dir, db.URLString); len(f.Fleet) != 0 {
			t.Errorf("instances left registered after both stopped: %+v", f)
		}
	})
}
