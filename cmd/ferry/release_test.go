package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
)

// releaseMigrations: 1 creates, 2 expands, 3 contracts, 4 expands.
var releaseMigrations = map[string]string{
	"00001_users.sql":        "-- +ferry up\nCREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);\n",
	"00002_display_name.sql": "-- +ferry up\nALTER TABLE users ADD COLUMN display_name VARCHAR(100);\n",
	"00003_drop_name.sql":    "-- +ferry contract\n-- +ferry up\nALTER TABLE users DROP COLUMN name;\n",
	"00004_email.sql":        "-- +ferry up\nALTER TABLE users ADD COLUMN email VARCHAR(100);\n",
}

// releaseProject is a project with releaseMigrations and ferry.yaml
// holding manifest (the YAML of a releases section).
func releaseProject(t *testing.T, manifest string) string {
	t.Helper()
	dir := project(t, releaseMigrations)
	if err := os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// watcher is an io.Writer that collects output and reports when it first
// contains a given text.
type watcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func newWatcher(want string) *watcher { return &watcher{want: want, seen: make(chan struct{})} }

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.want != "" && strings.Contains(w.buf.String(), w.want) {
		w.want = ""
		close(w.seen)
	}
	return n, err
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// background is a ferry process running in the background.
type background struct {
	cmd      *exec.Cmd
	out, err *watcher
	done     chan struct{}
	code     int
}

// startFerry starts ferry in the background and waits until its stdout
// shows outWant and its stderr errWant (either may be empty), failing if
// it exits first.
func startFerry(t *testing.T, dir, dbURL, outWant, errWant string, args ...string) *background {
	t.Helper()
	b := &background{cmd: ferryCmd(dir, dbURL, args...), out: newWatcher(outWant), err: newWatcher(errWant), done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.err
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.cmd.Wait()
		b.code = b.cmd.ProcessState.ExitCode()
		if ws, ok := b.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			b.code = 128 + int(ws.Signal())
		}
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
			return
		default:
		}
		b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			b.cmd.Process.Kill()
		}
	})
	for want, w := range map[string]*watcher{outWant: b.out, errWant: b.err} {
		if want == "" {
			continue
		}
		select {
		case <-w.seen:
		case <-b.done:
			t.Fatalf("ferry %s exited (%d) before it printed %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), b.code, outWant+" / "+errWant, b.out, b.err)
		}
	}
	return b
}

// stop sends sig and returns the exit code.
func (b *background) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-b.done
	return b.code
}

type fleetJSON struct {
	Fleet []struct {
		Release   string `json:"release"`
		Instances []struct {
			ID      string `json:"id"`
			Release string `json:"release"`
			Schema  int64  `json:"schema"`
		} `json:"instances"`
	} `json:"fleet"`
}

func fleetOf(t *testing.T, dir, dbURL string) fleetJSON {
	t.Helper()
	r := runFerry(t, dir, dbURL, "status", "--json")
	var f fleetJSON
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, r.stdout)
	}
	return f
}

// TestCLILaunchPicksRelease runs ferry launch at several schema versions:
// it starts the newest compatible release with the arguments after --,
// exits with the child's code, and explains when nothing is compatible.
func TestCLILaunchPicksRelease(t *testing.T) {
	manifest := `releases:
  - {name: a, schema: 1, command: [sh, -c, 'echo "release $FERRY_RELEASE args $* db $FERRY_DATABASE_URL"; exit 3', child]}
  - {name: b, schema: 2, command: [sh, -c, 'echo "release $FERRY_RELEASE args $*"; exit 3', child]}
  - {name: c, schema: 4, min_schema: 3, command: [sh, -c, 'echo "release $FERRY_RELEASE args $*"; exit 3', child]}
`
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := releaseProject(t, manifest)
		r := runFerry(t, dir, db.URLString, "launch", "--", "x", "y")
		for _, want := range []string{"no release in ferry.yaml is compatible with schema version 0", "a (built against schema 1): release a needs schema version 1 or later, and the database is at 0", "c (built against schema 4, runs on 3 and later)"} {
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("launch on an empty database: exit %d, %q does not say %q", r.code, r.stderr, want)
			}
		}
		for _, step := range []struct {
			to   string
			want string
		}{{"1", "release a args x y db " + db.URLString}, {"2", "release b args x y"}, {"3", "release c args x y"}, {"4", "release c args x y"}} {
			mustRun(t, dir, db.URLString, "up", "--to", step.to)
			r := runFerry(t, dir, db.URLString, "launch", "--", "x", "y")
			if r.code != 3 || strings.TrimSpace(r.stdout) != step.want {
				t.Errorf("at version %s: exit %d, stdout %q, want %q (stderr %s)", step.to, r.code, r.stdout, step.want, r.stderr)
			}
		}
		r = runFerry(t, dir, db.URLString, "launch", "--release", "a")
		if r.code != 1 || !strings.Contains(r.stderr, "release a cannot run on this database (schema version 4), and waiting will not change that: contract migration 3") {
			t.Errorf("launch --release a: exit %d %s", r.code, r.stderr)
		}
		if r := runFerry(t, dir, db.URLString, "launch", "x"); r.code != exitUsage {
			t.Errorf("arguments without --: exit %d %s", r.code, r.stderr)
		}
		if r := runFerry(t, dir, db.URLString, "launch", "--heartbeat", "20s"); r.code != exitUsage || !strings.Contains(r.stderr, "at least twice --heartbeat 20s") {
			t.Errorf("TTL below twice the heartbeat: exit %d %s", r.code, r.stderr)
		}
		if f := fleetOf(t, dir, db.URLString); len(f.Fleet) != 0 {
			t.Errorf("instances left registered: %+v", f)
		}
	})
}

// TestCLILaunchSignalsAndGate: ferry launch registers the child for its
// lifetime, forwards signals and exits with the child's code; ferry up
// refuses the contract migration while it runs, unless --force.
func TestCLILaunchSignalsAndGate(t *testing.T) {
	manifest := `releases:
  - name: old
    schema: 2
    command: [sh, -c, 'trap "echo got TERM; exit 7" TERM; trap "echo got HUP; exit 5" HUP; echo ready; while :; do sleep 1 & wait $!; done']
  - {name: dies, schema: 2, command: [sh, -c, 'kill -KILL $$']}
`
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := releaseProject(t, manifest)
		mustRun(t, dir, db.URLString, "up", "--to", "2")
		old := startFerry(t, dir, db.URLString, "ready", "launched release old", "launch", "--release", "old", "--instance-id", "web-1", "--heartbeat", "100ms", "--instance-ttl", "1m")
		if !strings.Contains(old.err.String(), "launched release old (built against schema 2) as pid") {
			t.Errorf("launch message: %s", old.err)
		}
		f := fleetOf(t, dir, db.URLString)
		if len(f.Fleet) != 1 || f.Fleet[0].Release != "old" || len(f.Fleet[0].Instances) != 1 || f.Fleet[0].Instances[0].ID != "web-1" || f.Fleet[0].Instances[0].Schema != 2 {
			t.Fatalf("registry while old runs: %+v", f)
		}
		if human := mustRun(t, dir, db.URLString, "status").stdout; !strings.Contains(human, "Live instances:") || !strings.Contains(human, "web-1") {
			t.Errorf("status does not list the instance:\n%s", human)
		}
		r := runFerry(t, dir, db.URLString, "up")
		if r.code != 1 || !strings.Contains(r.stderr, "refusing to apply contract migration 3") || !strings.Contains(r.stderr, "id web-1") {
			t.Fatalf("up while old runs: exit %d %s", r.code, r.stderr)
		}
		if s := statusOf(t, dir, db.URLString); s.CurrentVersion != 2 {
			t.Fatalf("refused up changed the version to %d", s.CurrentVersion)
		}
		// Other signals are forwarded too; a child killed by a signal makes
		// ferry exit with 128 + the signal.
		hup := startFerry(t, dir, db.URLString, "ready", "", "launch", "--release", "old", "--instance-id", "web-2")
		if code := hup.stop(t, syscall.SIGHUP); code != 5 || !strings.Contains(hup.out.String(), "got HUP") {
			t.Errorf("after SIGHUP: exit %d, stdout %q", code, hup.out)
		}
		if r := runFerry(t, dir, db.URLString, "launch", "--release", "dies"); r.code != 128+9 {
			t.Errorf("child killed by SIGKILL: exit %d, want 137 (%s)", r.code, r.stderr)
		}

		r = mustRun(t, dir, db.URLString, "up", "--force")
		if !strings.Contains(r.stdout, "now at version 4") {
			t.Errorf("up --force: %s", r.stdout)
		}
		if code := old.stop(t, syscall.SIGTERM); code != 7 || !strings.Contains(old.out.String(), "got TERM") {
			t.Errorf("after SIGTERM: exit %d, stdout %q, stderr %q", code, old.out, old.err)
		}
		if f := fleetOf(t, dir, db.URLString); len(f.Fleet) != 0 {
			t.Errorf("not deregistered after exit: %+v", f)
		}
	})
}

// TestCLIWait: ferry wait returns when another process upgrades the
// database, times out saying what is missing, and fails at once when
// waiting cannot help.
func TestCLIWait(t *testing.T) {
	manifest := "releases:\n  - {name: a, schema: 1}\n  - {name: b, schema: 4, min_schema: 2}\n"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := releaseProject(t, manifest)
		mustRun(t, dir, db.URLString, "up", "--to", "1")
		w := startFerry(t, dir, db.URLString, "", "ferry: waiting for release b", "wait", "--release", "b", "--timeout", "2m")
		if !strings.Contains(w.err.String(), "the database is at version 1 (timeout 2m0s)") {
			t.Errorf("waiting message: %s", w.err)
		}
		mustRun(t, dir, db.URLString, "up", "--to", "2")
		<-w.done
		if w.code != 0 || !strings.Contains(w.out.String(), "ready: the database is at version 2; release b") {
			t.Fatalf("wait after the upgrade: exit %d\nstdout %s\nstderr %s", w.code, w.out, w.err)
		}

		// A range check: a is still compatible with 2, and 1 is reached.
		mustRun(t, dir, db.URLString, "wait", "--release", "a", "--timeout", "0")
		r := mustRun(t, dir, db.URLString, "wait", "--version", "1", "--json")
		var doc struct {
			Ready   bool  `json:"ready"`
			Version int64 `json:"current_version"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || !doc.Ready || doc.Version != 2 {
			t.Errorf("wait --json: %v %s", err, r.stdout)
		}

		r = runFerry(t, dir, db.URLString, "wait", "--version", "4", "--timeout", "300ms")
		for _, want := range []string{"timed out after", "waiting for schema version 4", "the database is at version 2 and 4 or later is needed", "not applied yet: 3 (drop_name), 4 (email)"} {
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("wait timeout: exit %d, %q does not say %q", r.code, r.stderr, want)
			}
		}

		mustRun(t, dir, db.URLString, "up")
		r = runFerry(t, dir, db.URLString, "wait", "--release", "a", "--timeout", "1h")
		if r.code != 1 || !strings.Contains(r.stderr, "waiting will not change that: contract migration 3") {
			t.Errorf("wait for a broken release: exit %d %s", r.code, r.stderr)
		}
		for _, args := range [][]string{{"wait"}, {"wait", "--release", "a", "--version", "2"}, {"wait", "--version", "2", "--timeout", "-1s"}} {
			if r := runFerry(t, dir, db.URLString, args...); r.code != exitUsage {
				t.Errorf("ferry %v: exit %d, want 2", args, r.code)
			}
		}
		if r := runFerry(t, dir, db.URLString, "wait", "--release", "zz"); r.code != 1 || !strings.Contains(r.stderr, `unknown release "zz": the manifest lists a, b`) {
			t.Errorf("unknown release: exit %d %s", r.code, r.stderr)
		}
	})
}

// TestCLIReleaseList covers the human and JSON listing and the manifest's
// sources: ferry.yaml, --releases and FERRY_RELEASES.
func TestCLIReleaseList(t *testing.T) {
	dir := releaseProject(t, "releases:\n  - {name: a, schema: 1}\n  - {name: b, schema: 4, min_schema: 2}\n")
	os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("releases:\n  - {name: z, schema: 3}\n"), 0o644)
	mustRun(t, dir, "", "up", "--to", "3")
	r := mustRun(t, dir, "", "release", "list", "--json")
	var doc struct {
		Version  int64  `json:"current_version"`
		Newest   string `json:"newest_compatible"`
		Releases []struct {
			Name     string `json:"name"`
			OK       bool   `json:"compatible"`
			Problem  string `json:"problem"`
			Breaking int64  `json:"breaking_migration"`
		} `json:"releases"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err, r.stdout)
	}
	if doc.Version != 3 || doc.Newest != "b" || len(doc.Releases) != 2 || doc.Releases[0].OK || doc.Releases[0].Problem != "contract" || doc.Releases[0].Breaking != 3 || !doc.Releases[1].OK {
		t.Errorf("release list --json: %+v", doc)
	}
	human := mustRun(t, dir, "", "release", "list").stdout
	if !strings.Contains(human, "a: contract migration 3 (migrations/00003_drop_name.sql) is applied") || !strings.Contains(human, "yes (newest)") {
		t.Errorf("release list:\n%s", human)
	}
	if r := mustRun(t, dir, "", "release", "list", "--releases", "other.yaml"); !regexp.MustCompile(`(?m)^z\s`).MatchString(r.stdout) || regexp.MustCompile(`(?m)^a\s`).MatchString(r.stdout) {
		t.Errorf("--releases: %s", r.stdout)
	}
	cmd := ferryCmd(dir, "", "release", "list")
	cmd.Env = append(cmd.Env, "FERRY_RELEASES=other.yaml")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "releases from other.yaml") {
		t.Errorf("FERRY_RELEASES: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("releases:\n  - {name: a, schema: 1, comand: [x]}\n"), 0o644)
	if r := runFerry(t, dir, "", "release", "list"); r.code != exitUsage || !strings.Contains(r.stderr, "field comand not found") {
		t.Errorf("typo in the manifest: exit %d %s", r.code, r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "ferry.yaml"), []byte("dir: migrations\n"), 0o644)
	if r := runFerry(t, dir, "", "release", "list"); r.code != 1 || !strings.Contains(r.stderr, "no releases: add a releases section to ferry.yaml") {
		t.Errorf("no manifest: exit %d %s", r.code, r.stderr)
	}
	if r := runFerry(t, dir, "", "release"); r.code != exitUsage {
		t.Errorf("release without a subcommand: exit %d", r.code)
	}
}

// TestCLIContractWait: up --contract-wait applies the expand migrations,
// waits while a release the contract migration breaks has live
// instances, without holding the migration lock, applies it once they
// have left, and reports every migration it applied; a wait that runs
// out is the gate's refusal, saying how long it waited.
func TestCLIContractWait(t *testing.T) {
	manifest := `releases:
  - name: old
    schema: 1
    command: [sh, -c, 'trap "exit 0" TERM; echo ready; while :; do sleep 1 & wait $!; done']
`
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := releaseProject(t, manifest)
		mustRun(t, dir, db.URLString, "up", "--to", "1")
		old := startFerry(t, dir, db.URLString, "ready", "launched release old", "launch", "--release", "old", "--instance-id", "web-1", "--heartbeat", "100ms", "--instance-ttl", "1m")

		up := startFerry(t, dir, db.URLString, "", "waiting for the instances it breaks to leave", "up", "--contract-wait", "2m", "--json")
		if !strings.Contains(up.err.String(), "id web-1") {
			t.Errorf("the wait does not name the instance: %s", up.err)
		}
		// While it waits, the expand migration is in and the migration
		// lock is free.
		r := runFerry(t, dir, db.URLString, "status", "--json")
		var st struct {
			CurrentVersion int64 `json:"current_version"`
			InProgress     bool  `json:"migration_in_progress"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.CurrentVersion != 2 || st.InProgress {
			t.Fatalf("while up waits: %+v %v\n%s", st, err, r.stdout)
		}
		if code := old.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("old exited %d", code)
		}
		<-up.done
		var res struct {
			Result struct {
				Migrations []struct {
					Version int64 `json:"version"`
				} `json:"migrations"`
				From int64 `json:"from_version"`
			} `json:"result"`
		}
		err := json.Unmarshal([]byte(up.out.String()), &res)
		if applied := res.Result.Migrations; up.code != 0 || err != nil || res.Result.From != 1 || len(applied) != 3 || applied[0].Version != 2 || applied[2].Version != 4 {
			t.Fatalf("up --contract-wait after old left: exit %d %v\nstdout: %s\nstderr: %s", up.code, err, up.out, up.err)
		}
		if n := strings.Count(up.err.String(), "waiting for the instances"); n != 1 {
			t.Errorf("the wait was logged %d times for one unchanged instance:\n%s", n, up.err)
		}

		// A wait that runs out, on another database of the project.
		other := "sqlite:" + filepath.Join(dir, "other.db")
		mustRun(t, dir, other, "up", "--to", "1")
		old2 := startFerry(t, dir, other, "ready", "launched release old", "launch", "--release", "old", "--heartbeat", "100ms", "--instance-ttl", "1m")
		r = runFerry(t, dir, other, "up", "--contract-wait", "1s")
		if r.code != 1 || !strings.Contains(r.stderr, "refusing to apply contract migration 3") || !strings.Contains(r.stderr, "Waited 1s (--contract-wait)") {
			t.Fatalf("up --contract-wait 1s while old runs: exit %d %s", r.code, r.stderr)
		}
		if s := statusOf(t, dir, other); s.CurrentVersion != 2 {
			t.Fatalf("after the wait ran out: version %d, want 2 (the expand migration)", s.CurrentVersion)
		}
		old2.stop(t, syscall.SIGTERM)
	})
}

// TestCLIReleaseListDuringImport: while an import into the database has
// not finished, release list says so (as status does, and in the same
// JSON shape), and that launch and wait refuse until it finishes, instead
// of showing a release ready to start with no word of it; it still lists
// the releases and exits 0, as status does without --exit-code.
func TestCLIReleaseListDuringImport(t *testing.T) {
	const id = "20261130T000000Z-abcdef"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := releaseProject(t, "releases:\n  - {name: v1, schema: 1}\n  - {name: v2, schema: 2}\n")
		mustRun(t, dir, db.URLString, "up", "--to", "1")
		if r := mustRun(t, dir, db.URLString, "release", "list", "--json"); strings.Contains(r.stdout, "imports_in_progress") || !strings.Contains(r.stdout, `"ready": true`) {
			t.Errorf("release list --json with no import: %s", r.stdout)
		}
		if r := mustRun(t, dir, db.URLString, "release", "list"); strings.Contains(r.stdout, "in progress") {
			t.Errorf("release list with no import: %s", r.stdout)
		}
		cutShort(t, db.DB, id, "started", "table:users", "from:/exports/"+id)

		human := mustRun(t, dir, db.URLString, "release", "list").stdout
		for _, want := range []string{
			"Import in progress:  the import of export " + id + " into the database has not finished, so its data is incomplete: ferry launch and ferry wait refuse until it finishes",
			"if it was cut short, run `ferry import --from /exports/" + id + "` again to finish it",
			"yes (newest), once the import finishes",
			"Not compatible (ferry up and ferry launch refuse while the import is unfinished):",
		} {
			if !strings.Contains(human, want) {
				t.Errorf("release list during an import lacks %q:\n%s", want, human)
			}
		}
		var doc struct {
			Newest  string `json:"newest_compatible"`
			Ready   *bool  `json:"ready"`
			Imports []struct {
				ExportID string   `json:"export_id"`
				Tables   []string `json:"tables_loaded"`
				Command  string   `json:"command"`
			} `json:"imports_in_progress"`
		}
		r := mustRun(t, dir, db.URLString, "release", "list", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Newest != "v1" || doc.Ready == nil || *doc.Ready || len(doc.Imports) != 1 || doc.Imports[0].ExportID != id ||
			len(doc.Imports[0].Tables) != 1 || doc.Imports[0].Command != "ferry import --from /exports/"+id {
			t.Errorf("release list --json during an import: %v %+v\n%s", err, doc, r.stdout)
		}
		// What the listing says: launch refuses.
		if r := runFerry(t, dir, db.URLString, "launch", "--", "true"); r.code != 1 || !strings.Contains(r.stderr, "has not finished, so its data is incomplete: no release starts on it") {
			t.Errorf("launch during an import: exit %d: %s", r.code, r.stderr)
		}
	})
}
