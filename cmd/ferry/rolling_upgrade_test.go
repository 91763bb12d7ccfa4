package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/release"
)

// TestRollingUpgradeUnderLoad runs the deploy sequence of docs/releases.md
// on three replicas of examples/greeter behind a round-robin proxy, with
// requests flowing through it the whole time, on every database: expand
// (`ferry up --to 2`), replace the v1 replicas one by one by v2 (each
// started by `ferry launch --release v2` once `ferry wait --release v2`
// said it can run, put into rotation when it answers, and each v1 drained
// from rotation before its SIGTERM), then contract (`ferry up` in a retry
// loop, refused while a v1 lives). Every request must succeed with the
// right greeting; no v2 may serve before the expand migration is in; the
// contract migration may start only once the last v1 left the registry.
func TestRollingUpgradeUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a fleet of processes on every database")
	}
	bin, err := buildGreeter()
	if err != nil {
		t.Fatal(err)
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		rollUnderLoad(t, db, bin)
	})
}

const (
	rollReplicas = 3
	rollWorkers  = 4
	contractRef  = "contract migration 3 (migrations/00003_drop_name.sql)"
)

// fleetProc is a greeter replica and the `ferry launch` that runs it.
type fleetProc struct {
	*replica
	launch   *background
	launched time.Time // when ferry launch was started
}

func rollUnderLoad(t *testing.T, db *testdb.DB, bin string) {
	began := time.Now()
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "..", "examples", "greeter"), dir)
	copyDir(t, bin, filepath.Join(dir, "bin"))
	url := db.URLString

	// Yesterday's state: schema 1, three v1 replicas in rotation, traffic.
	mustRun(t, dir, url, "up", "--to", "1")
	lb := newBalancer(rollWorkers)
	front := httptest.NewServer(lb)
	t.Cleanup(front.Close)
	t.Cleanup(lb.transport.CloseIdleConnections)
	var v1s, v2s []*fleetProc
	for i := range rollReplicas {
		p := startReplica(t, dir, url, "v1", fmt.Sprintf("greeter-v1-%d", i))
		lb.add(p.replica)
		v1s = append(v1s, p)
	}
	reg := watchRegistry(t, db)
	load := startLoad(front.URL+"/", rollWorkers)
	t.Cleanup(load.stop)
	for _, p := range v1s {
		waitFor(t, 10*time.Second, p.name+" serves through the proxy", func() bool { return load.servedBy(p.name) > 0 })
	}

	// Step 1, expand. The first v2's init container is already waiting.
	initc := startFerry(t, dir, url, "", "ferry: waiting for release v2", "wait", "--release", "v2", "--timeout", "1m")
	initExit := exitTime(initc)
	expandStart := time.Now()
	if r := runFerry(t, dir, url, "up", "--to", "2"); r.code != 0 || !strings.Contains(r.stdout, "applying 2 add_display_name ... ok") {
		t.Fatalf("expand: ferry up --to 2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	expandDone := time.Now()
	<-initc.done
	if initc.code != 0 || !strings.Contains(initc.out.String(), "ready: the database is at version 2; release v2") {
		t.Fatalf("ferry wait --release v2: exit %d\n%s%s", initc.code, initc.out, initc.err)
	}
	if at := <-initExit; at.Before(expandStart) {
		t.Errorf("ferry wait --release v2 said ready at %s, before the expand migration started at %s", at.Format(time.StampMicro), expandStart.Format(time.StampMicro))
	}
	expand := historyRow(t, dir, url, 2)
	if expand.AppliedAt.Before(expandStart) || expand.AppliedAt.After(expandDone) {
		t.Errorf("history: migration 2 applied at %s, outside the run of ferry up (%s to %s)", expand.AppliedAt, expandStart, expandDone)
	}
	refused(t, dir, url, v1s)

	// Step 2, roll: surge one v2, then drain and stop one v1, repeatedly.
	// The contract step runs as a pipeline would, in a retry loop, from
	// before the last v1 is stopped.
	var contract *contractLoop
	var lastTerm, lastExit time.Time
	var drained int64
	for i := range rollReplicas {
		if i > 0 {
			if r := runFerry(t, dir, url, "wait", "--release", "v2", "--timeout", "1m"); r.code != 0 || !strings.Contains(r.stdout, "ready: the database is at version 2") {
				t.Fatalf("ferry wait --release v2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		}
		p := startReplica(t, dir, url, "v2", fmt.Sprintf("greeter-v2-%d", i))
		lb.add(p.replica)
		v2s = append(v2s, p)
		waitFor(t, 10*time.Second, p.name+" serves through the proxy", func() bool { return load.servedBy(p.name) > 0 })

		old := v1s[i]
		if i == rollReplicas-1 {
			contract = startContractLoop(dir, url)
			t.Cleanup(contract.stop)
			<-contract.first
		}
		n, ok := lb.drain(old.replica, 30*time.Second)
		drained += n
		if !ok {
			t.Fatalf("%s: requests dispatched to it still unanswered after 30s", old.name)
		}
		lastTerm = time.Now()
		if code := old.launch.stop(t, syscall.SIGTERM); code != 0 || !strings.Contains(old.launch.out.String(), "greeter v1 stopped") {
			t.Fatalf("%s: ferry launch exited %d after SIGTERM\n%s%s", old.name, code, old.launch.out, old.launch.err)
		}
		lastExit = time.Now()
		if i < rollReplicas-1 {
			refused(t, dir, url, v1s[i+1:])
		}
	}

	// Step 3, contract: the loop's `ferry up` goes through once the last
	// v1 has deregistered, and not before.
	attempts := contract.wait()
	last := attempts[len(attempts)-1]
	contractDone := last.end
	if last.err != nil || last.r.code != 0 || !strings.Contains(last.r.stdout, "applying 3 drop_name ... ok") {
		t.Fatalf("contract: the last of %d attempts of ferry up: exit %d, %v\n%s%s", len(attempts), last.r.code, last.err, last.r.stdout, last.r.stderr)
	}
	for i, a := range attempts[:len(attempts)-1] {
		want := "refusing to apply " + contractRef + ": it breaks release v1 (built against schema 1), which still has 1 live instance: host "
		if a.err != nil || a.r.code != 1 || !strings.Contains(a.r.stderr, want) || !strings.Contains(a.r.stderr, "id "+v1s[rollReplicas-1].name+",") {
			t.Errorf("contract attempt %d: exit %d, %v, want 1 and %q naming %s\n%s%s", i+1, a.r.code, a.err, want, v1s[rollReplicas-1].name, a.r.stdout, a.r.stderr)
		}
		if a.start.After(lastExit) {
			t.Errorf("contract attempt %d started %s after the last v1's ferry launch exited, and was still refused", i+1, a.start.Sub(lastExit))
		}
	}
	if len(attempts) < 2 {
		t.Errorf("the contract loop's first attempt, made while the last v1 ran, was not refused")
	}
	contractRow := historyRow(t, dir, url, 3)
	v1Seen, err := reg.stop()
	if err != nil {
		t.Fatalf("poll the fleet registry: %v", err)
	}
	if contractRow.AppliedAt.Before(lastTerm) || !contractRow.AppliedAt.After(v1Seen) {
		t.Errorf("contract migration 3 started at %s: before the last v1 was gone (SIGTERM at %s, a v1 still registered at %s)",
			contractRow.AppliedAt.Format(time.StampMicro), lastTerm.Format(time.StampMicro), v1Seen.Format(time.StampMicro))
	}
	fleet := fleetOf(t, dir, url)
	if len(fleet.Fleet) != 1 || fleet.Fleet[0].Release != "v2" || len(fleet.Fleet[0].Instances) != rollReplicas {
		t.Errorf("fleet after the contract migration: %+v, want %d instances of v2 only", fleet, rollReplicas)
	}

	// v2 keeps serving on schema 3: each replica answers a few more
	// requests than there are workers, so at least one was sent after the
	// contract migration committed.
	for _, p := range v2s {
		n := load.servedBy(p.name)
		waitFor(t, 10*time.Second, p.name+" serves on schema 3", func() bool { return load.servedBy(p.name) > n+rollWorkers })
	}
	load.stop()
	for _, p := range v2s {
		if _, ok := lb.drain(p.replica, 30*time.Second); !ok {
			t.Fatalf("%s: requests dispatched to it still unanswered after 30s", p.name)
		}
		if code := p.launch.stop(t, syscall.SIGTERM); code != 0 || !strings.Contains(p.launch.out.String(), "greeter v2 stopped") {
			t.Errorf("%s: ferry launch exited %d after SIGTERM\n%s%s", p.name, code, p.launch.out, p.launch.err)
		}
	}
	if f := fleetOf(t, dir, url); len(f.Fleet) != 0 {
		t.Errorf("instances left registered after every replica stopped: %+v", f)
	}

	// The traffic's verdict.
	first, failed := load.firstFailures(5)
	if failed > 0 {
		t.Errorf("%d requests failed during the rolling upgrade; the first:\n  %s", failed, first)
	}
	load.mu.Lock()
	var v1AfterExpand, v2AfterContract int
	var early []string
	for _, s := range load.samples {
		switch {
		case s.release == "v1" && s.start.After(contractRow.AppliedAt):
			early = append(early, fmt.Sprintf("v1 (%s) was sent a request at %s, after contract migration 3 started at %s",
				s.replica, s.start.Format(time.StampMicro), contractRow.AppliedAt.Format(time.StampMicro)))
		case s.release == "v1" && s.start.After(expandDone):
			v1AfterExpand++
		case s.release == "v2" && s.start.Before(expandDone):
			early = append(early, fmt.Sprintf("v2 (%s) served a request sent at %s, before the expand migration was in (ferry up --to 2 returned at %s)",
				s.replica, s.start.Format(time.StampMicro), expandDone.Format(time.StampMicro)))
		case s.release == "v2" && s.start.After(contractDone):
			v2AfterContract++
		}
	}
	if len(early) > 0 {
		t.Errorf("%d requests served by a release the schema did not allow; the first:\n  %s", len(early), strings.Join(early[:min(5, len(early))], "\n  "))
	}
	load.mu.Unlock()
	if v1AfterExpand == 0 || v2AfterContract == 0 {
		t.Errorf("v1 answered %d requests on schema 2 and v2 %d on schema 3; want some of each", v1AfterExpand, v2AfterContract)
	}
	for _, p := range v2s {
		if p.launched.Before(expandDone) {
			t.Errorf("%s was started at %s, before the expand migration was in at %s", p.name, p.launched.Format(time.StampMicro), expandDone.Format(time.StampMicro))
		}
	}

	rep := load.report()
	t.Logf("requests served: %d (v1 %d, v2 %d; v1 on schema 2: %d, v2 on schema 3: %d), %.0f/s; failures: %d",
		rep.total, rep.perRelease["v1"], rep.perRelease["v2"], v1AfterExpand, v2AfterContract, float64(rep.total)/rep.duration.Seconds(), failed)
	t.Logf("longest gap between successive successful responses: %s (at +%s of the load); requests in flight to a v1 when it left the rotation, answered before its SIGTERM: %d",
		rep.gap, rep.gapAfter.Sub(load.start).Round(time.Millisecond), drained)
	t.Logf("expand: migration 2 ran %s after ferry up started, took %dms; the first v2 started %s after ferry up returned",
		expand.AppliedAt.Sub(expandStart).Round(time.Millisecond), expand.DurationMS, v2s[0].launched.Sub(expandDone).Round(time.Millisecond))
	t.Logf("contract: %d attempts of ferry up, %d refused; migration 3 started %s after the last v1's SIGTERM, %s after a v1 was last seen registered, %s after its ferry launch exited",
		len(attempts), len(attempts)-1, contractRow.AppliedAt.Sub(lastTerm).Round(time.Millisecond), contractRow.AppliedAt.Sub(v1Seen).Round(time.Millisecond), contractRow.AppliedAt.Sub(lastExit).Round(time.Millisecond))
	t.Logf("load ran %s; the whole test %s", rep.duration.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

var listening = regexp.MustCompile(`greeter (v\d) listening on (\S+)`)

// startReplica starts release rel as instance name with `ferry launch` and
// returns once it answers GET / correctly (its readiness check). It is not
// in rotation yet.
func startReplica(t *testing.T, dir, dbURL, rel, name string) *fleetProc {
	t.Helper()
	launched := time.Now()
	b := startFerry(t, dir, dbURL, "listening on", "launched release "+rel,
		"launch", "--release", rel, "--instance-id", name, "--heartbeat", "1s", "--", "--addr", "127.0.0.1:0")
	m := listening.FindStringSubmatch(b.out.String())
	if m == nil || m[1] != rel {
		t.Fatalf("%s: no address of greeter %s in %q", name, rel, b.out)
	}
	want := "Hello, Ada! (greeter " + rel + ")\n"
	probe := &http.Client{Timeout: 2 * time.Second}
	var last string
	waitFor(t, 10*time.Second, name+" answers its readiness check", func() bool {
		resp, err := probe.Get("http://" + m[2] + "/")
		if err != nil {
			last = err.Error()
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = resp.Status + " " + string(body)
		return resp.StatusCode == http.StatusOK && string(body) == want
	}, func() string { return last })
	probe.CloseIdleConnections()
	return &fleetProc{replica: &replica{name: name, release: rel, addr: m[2]}, launch: b, launched: launched}
}

// refused runs `ferry up` and checks that it refuses the contract migration
// for the v1 replicas still running (live), naming each, and leaves the
// schema at version 2.
func refused(t *testing.T, dir, dbURL string, live []*fleetProc) {
	t.Helper()
	noun := "instances"
	if len(live) == 1 {
		noun = "instance"
	}
	want := fmt.Sprintf("refusing to apply %s: it breaks release v1 (built against schema 1), which still has %d live %s: ", contractRef, len(live), noun)
	r := runFerry(t, dir, dbURL, "up")
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("ferry up with %d v1 replicas running: exit %d, want 1 and %q\n%s%s", len(live), r.code, want, r.stdout, r.stderr)
	}
	for _, p := range live {
		if !strings.Contains(r.stderr, "id "+p.name+",") {
			t.Errorf("ferry up's refusal does not name %s:\n%s", p.name, r.stderr)
		}
	}
	if s := statusOf(t, dir, dbURL); s.CurrentVersion != 2 {
		t.Fatalf("after the refusal the database is at version %d, want 2", s.CurrentVersion)
	}
}

// waitFor polls cond until it holds, failing the test after timeout; the
// optional detail says what was seen last.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			for _, d := range detail {
				msg += ": " + d()
			}
			t.Fatalf("timed out after %s waiting until %s%s", timeout, what, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exitTime reports when b's process is seen to exit.
func exitTime(b *background) <-chan time.Time {
	c := make(chan time.Time, 1)
	go func() { <-b.done; c <- time.Now() }()
	return c
}

// historyRow returns the applied `up` row of version v from `ferry history
// --json`.
func historyRow(t *testing.T, dir, dbURL string, v int64) historyJSON {
	t.Helper()
	r := mustRun(t, dir, dbURL, "history", "--json")
	var rows []historyJSON
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("history JSON: %v\n%s", err, r.stdout)
	}
	for _, h := range rows {
		if h.Version == v && h.Operation == "up" && h.State == "applied" {
			return h
		}
	}
	t.Fatalf("history has no applied up row for version %d:\n%s", v, r.stdout)
	return historyJSON{}
}

type historyJSON struct {
	Version    int64     `json:"version"`
	Operation  string    `json:"operation"`
	State      string    `json:"state"`
	AppliedAt  time.Time `json:"applied_at"`
	DurationMS int64     `json:"duration_ms"`
}

// registryWatch polls the fleet registry and remembers when a poll that
// still found a live v1 instance began: the instance was registered at
// some moment after that.
type registryWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	v1Seen time.Time
	err    error
}

func watchRegistry(t *testing.T, db *testdb.DB) *registryWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &registryWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			at := time.Now()
			live, err := release.Live(ctx, db.DB, db.Dialect)
			if err != nil {
				if ctx.Err() == nil {
					w.err = err
				}
				return
			}
			for _, l := range live {
				if l.Release == "v1" {
					w.v1Seen = at
				}
			}
			time.Sleep(5 * time.Millisecond) // the polling interval
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// stop ends the polling and returns when the last poll that found a v1
// instance began.
func (w *registryWatch) stop() (time.Time, error) {
	w.cancel()
	<-w.done
	return w.v1Seen, w.err
}

// contractLoop runs `ferry up` until it succeeds, as a deploy pipeline's
// contract step does; first is closed when the first attempt ended.
type contractLoop struct {
	first    chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
	attempts []attempt
}

type attempt struct {
	start, end time.Time
	r          result
	err        error
}

func startContractLoop(dir, dbURL string) *contractLoop {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	c := &contractLoop{first: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			a := attempt{start: time.Now()}
			a.r, a.err = ferryProcess(ctx, dir, dbURL, "up")
			a.end = time.Now()
			c.attempts = append(c.attempts, a)
			if len(c.attempts) == 1 {
				close(c.first)
			}
			if a.err != nil || a.r.code != 1 {
				return
			}
			select { // the pipeline's retry interval
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}()
	return c
}

// wait returns the attempts once the loop ended.
func (c *contractLoop) wait() []attempt {
	<-c.done
	return c.attempts
}

func (c *contractLoop) stop() { c.cancel(); <-c.done }

// ferryProcess runs ferry like runFerry, but may run on any goroutine: it
// returns an error instead of failing the test.
func ferryProcess(ctx context.Context, dir, dbURL string, args ...string) (result, error) {
	cmd := ferryCmd(dir, dbURL, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	defer stop()
	err := cmd.Wait()
	r := result{out.String(), errb.String(), 0}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
		if ctx.Err() != nil {
			return r, fmt.Errorf("ferry %s killed: %w", strings.Join(args, " "), ctx.Err())
		}
	} else if err != nil {
		return r, err
	}
	return r, nil
}
