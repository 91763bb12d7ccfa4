package release_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// greeterManifest: v1 reads name (schema 1); v2 reads display_name (added
// by 2) and no longer name (dropped by the contract migration 3).
func greeterManifest(cmd ...string) *release.Manifest {
	return &release.Manifest{Releases: []release.Release{
		{Name: "v1", Schema: 1, Command: cmd},
		{Name: "v2", Schema: 3, MinSchema: 2, Command: cmd},
	}}
}

func TestWaitForReleaseAndVersion(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := testCtx(t)
		m := migrator(t, db, greeterMigrations)
		if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
			t.Fatal(err)
		}
		man := greeterManifest()
		v2, _ := man.Release("v2")
		v1, _ := man.Release("v1")
		fast := release.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}

		// Another migrator applies the expand migration once the wait has
		// begun; the wait then returns.
		other := migrator(t, db, greeterMigrations)
		opts := fast
		opts.Timeout = time.Minute
		upgraded := make(chan error, 1)
		opts.Waiting = func(s *migrate.Status) {
			if s.CurrentVersion != 1 {
				t.Errorf("waiting at version %d", s.CurrentVersion)
			}
			go func() { _, err := other.Up(ctx, migrate.UpOptions{To: 2}); upgraded <- err }()
		}
		res, err := release.WaitForRelease(ctx, m, v2, opts)
		if err != nil || res.Version != 2 || res.Checks < 2 {
			t.Fatalf("WaitForRelease(v2): %+v %v", res, err)
		}
		if err := <-upgraded; err != nil {
			t.Fatal(err)
		}

		// A range check: v1 runs on 2, and version 1 is reached.
		if res, err := release.WaitForRelease(ctx, m, v1, fast); err != nil || res.Checks != 1 {
			t.Fatalf("v1 on schema 2: %+v %v", res, err)
		}
		if _, err := release.WaitForVersion(ctx, m, 1, fast); err != nil {
			t.Fatalf("version 1 on schema 2: %v", err)
		}

		// Timeout: the message says what is missing.
		opts = fast
		opts.Timeout = 200 * time.Millisecond
		_, err = release.WaitForVersion(ctx, m, 4, opts)
		var te *release.WaitTimeoutError
		if !errors.As(err, &te) || !errors.Is(err, release.ErrWaitTimeout) {
			t.Fatalf("WaitForVersion(4): %v", err)
		}
		for _, want := range []string{"timed out after", "waiting for schema version 4", "the database is at version 2 and 4 or later is needed", "not applied yet: 3 (drop_name), 4 (email)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("timeout message %q does not say %q", err, want)
			}
		}
		_, err = release.WaitForVersion(ctx, m, 9, opts)
		if err == nil || !strings.Contains(err.Error(), "the newest migration known here is 4, so the migrations up to 9 must come from") {
			t.Errorf("WaitForVersion(9): %v", err)
		}

		// Once the contract migration is in, waiting for v1 never helps: it
		// fails at once, without waiting for the timeout.
		if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		opts.Timeout = time.Hour
		start := time.Now()
		_, err = release.WaitForRelease(ctx, m, v1, opts)
		var ie *release.IncompatibleError
		if !errors.As(err, &ie) || ie.Verdict.Problem != release.ProblemContract || time.Since(start) > time.Minute {
			t.Fatalf("WaitForRelease(v1) after the contract migration: %v", err)
		}
		for _, want := range []string{"waiting will not change that", "contract migration 3 (", "v1, built against schema 1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
	})
}

func TestLaunchPicksAndRegisters(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := testCtx(t)
		m := migrator(t, db, greeterMigrations)
		man := greeterManifest("sh", "-c", `echo "$FERRY_RELEASE $FERRY_RELEASE_SCHEMA $FERRY_INSTANCE_ID $1"; exit 3`, "child")
		launch := func(name string) (*release.LaunchResult, string, error) {
			var out bytes.Buffer
			var seen []release.LiveInstance
			res, err := release.Launch(ctx, m, release.LaunchOptions{
				Manifest: man, Release: name, Args: []string{"arg1"}, Stdout: &out, DB: db.DB.DB,
				Instance: release.Instance{ID: "web-1"},
				Started:  func(release.Release, release.Instance, int) { seen = live(t, db) },
			})
			if err == nil && (len(seen) != 1 || seen[0].ID != "web-1" || seen[0].Release != res.Release.Name) {
				t.Errorf("while the child ran, the registry held %+v", seen)
			}
			return res, out.String(), err
		}
		_, _, err := launch("")
		if !errors.Is(err, release.ErrNoneCompatible) || !strings.Contains(err.Error(), "compatible with schema version 0") {
			t.Fatalf("empty database: %v", err)
		}
		for _, step := range []struct {
			to   int64
			want string
		}{{1, "v1 1 web-1 arg1\n"}, {2, "v2 3 web-1 arg1\n"}, {4, "v2 3 web-1 arg1\n"}} {
			to, want := step.to, step.want
			if _, err := m.Up(ctx, migrate.UpOptions{To: to}); err != nil {
				t.Fatal(err)
			}
			res, out, err := launch("")
			if err != nil || out != want || res.ExitCode != 3 || res.Signal != nil {
				t.Fatalf("at version %d: %+v %q %v", to, res, out, err)
			}
			if l := live(t, db); len(l) != 0 {
				t.Fatalf("still registered after the child exited: %+v", l)
			}
		}
		_, _, err = launch("v1")
		var ie *release.IncompatibleError
		if !errors.As(err, &ie) || ie.Verdict.Contract == nil || ie.Verdict.Contract.Version != 3 {
			t.Fatalf("v1 after the contract migration: %v", err)
		}
		if _, _, err := launch("v9"); !errors.Is(err, release.ErrUnknownRelease) {
			t.Fatalf("unknown release: %v", err)
		}
	})
}

func TestLaunchSidecar(t *testing.T) {
	db := testdb.New(t, "sqlite")
	ctx := testCtx(t)
	m := migrator(t, db, greeterMigrations)
	if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}

	t.Run("runs until the child exits", func(t *testing.T) {
		cancelled := make(chan struct{})
		res, err := release.Launch(ctx, m, release.LaunchOptions{
			Manifest: greeterManifest("sh", "-c", "exit 5"),
			Sidecar: func(ctx context.Context) error {
				<-ctx.Done()
				close(cancelled)
				return ctx.Err()
			},
		})
		if err != nil || res.ExitCode != 5 {
			t.Fatalf("%+v %v", res, err)
		}
		select {
		case <-cancelled:
		default:
			t.Fatal("Launch returned before the sidecar stopped")
		}
	})

	t.Run("a failing sidecar stops the child", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pr.Close()
		boom := errors.New("listen tcp 127.0.0.1:8082: address already in use")
		res, err := release.Launch(ctx, m, release.LaunchOptions{
			Manifest: greeterManifest("sh", "-c", `trap 'echo stopping; exit 9' TERM; echo ready; while :; do sleep 1 & wait $!; done`),
			Stdout:   pw,
			Sidecar: func(ctx context.Context) error {
				rd := bufio.NewReader(pr)
				if line, _ := rd.ReadString('\n'); line != "ready\n" {
					t.Errorf("child said %q", line)
				}
				go io.Copy(io.Discard, rd)
				return boom
			},
		})
		pw.Close()
		if !errors.Is(err, boom) || res == nil || res.ExitCode != 9 {
			t.Fatalf("%+v %v", res, err)
		}
	})

	t.Run("no command", func(t *testing.T) {
		_, err := release.Launch(ctx, m, release.LaunchOptions{Manifest: greeterManifest()})
		if err == nil || !strings.Contains(err.Error(), "release v1 has no command") {
			t.Fatal(err)
		}
	})
	t.Run("command not found", func(t *testing.T) {
		_, err := release.Launch(ctx, m, release.LaunchOptions{Manifest: greeterManifest("./no-such-program")})
		if err == nil || !strings.Contains(err.Error(), "start release v1 (./no-such-program)") {
			t.Fatal(err)
		}
	})
}
