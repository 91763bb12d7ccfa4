package release

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ferrydb/ferry/migrate"
)

// ErrIncompatible is wrapped by *IncompatibleError.
var ErrIncompatible = errors.New("release is not compatible with the database")

// IncompatibleError is returned when a named release cannot run on the
// database's schema version.
type IncompatibleError struct {
	Verdict Verdict
}

func (e *IncompatibleError) Error() string {
	if e.Verdict.Final() {
		return fmt.Sprintf("release %s cannot run on this database (schema version %d), and waiting will not change that: %s", e.Verdict.Release.Name, e.Verdict.Database, e.Verdict.Reason)
	}
	return fmt.Sprintf("release %s cannot run on this database yet: %s", e.Verdict.Release.Name, e.Verdict.Reason)
}

func (e *IncompatibleError) Unwrap() error { return ErrIncompatible }

// ErrWaitTimeout is wrapped by *WaitTimeoutError.
var ErrWaitTimeout = errors.New("timed out waiting for the database")

// WaitTimeoutError says what was still missing when a wait timed out.
type WaitTimeoutError struct {
	// Timeout is the time limit that ran out; Waited how long it really took.
	Timeout, Waited time.Duration
	// Target describes what was awaited: a release or a version.
	Target string
	// Current is the last schema version seen, Need the lowest version that
	// would have done.
	Current, Need int64
	// Latest is the newest migration version known to this process.
	Latest int64
	// Pending and Failed are the migrations not applied at the last poll.
	Pending []migrate.PendingMigration
	Failed  []migrate.Failure
	// LastErr is the error of the last poll, if it failed (for example
	// because the database could not be reached).
	LastErr error
	// Blocked is why a database at the right version was not ready yet
	// (WaitOptions.Blocked), at the last poll.
	Blocked string
}

func (e *WaitTimeoutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "timed out after %s waiting for %s: ", e.Timeout, e.Target)
	if e.LastErr != nil {
		fmt.Fprintf(&b, "the last check failed: %v", e.LastErr)
		return b.String()
	}
	if e.Blocked != "" {
		fmt.Fprintf(&b, "the database is at version %d, but %s", e.Current, e.Blocked)
		return b.String()
	}
	fmt.Fprintf(&b, "the database is at version %d and %d or later is needed", e.Current, e.Need)
	var upTo []string
	for _, p := range e.Pending {
		if p.Version <= e.Need {
			upTo = append(upTo, fmt.Sprintf("%d (%s)", p.Version, p.Name))
		}
	}
	if len(upTo) > 0 {
		fmt.Fprintf(&b, "; not applied yet: %s", strings.Join(upTo, ", "))
	}
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "; migration %d (%s) %s and needs repair", f.Version, f.Name, f.State)
	}
	if e.Latest < e.Need {
		fmt.Fprintf(&b, "; the newest migration known here is %d, so the migrations up to %d must come from a newer release's migration files", e.Latest, e.Need)
	}
	return b.String()
}

func (e *WaitTimeoutError) Unwrap() error { return ErrWaitTimeout }

// WaitOptions configure WaitForRelease and WaitForVersion.
type WaitOptions struct {
	// Timeout bounds the wait; 0 waits until ctx ends.
	Timeout time.Duration
	// MinDelay and MaxDelay bound the exponential backoff (with jitter)
	// between two checks. Defaults 100ms and 2s.
	MinDelay, MaxDelay time.Duration
	// Waiting, if set, is called once when the first check finds the
	// database not ready, with that check's status.
	Waiting func(s *migrate.Status)
	// Retrying, if set, is called when a check fails (the database cannot
	// be reached, say) after the last one did not, with the error; the
	// wait goes on until the timeout.
	Retrying func(err error)
	// Blocked, if set, is asked once the schema is ready: a non-empty
	// reason (an import whose data is not all loaded yet) keeps the wait
	// going. An error wrapping ErrNeverReady stops it; another is retried.
	Blocked func(ctx context.Context) (string, error)
}

// ErrNeverReady is wrapped by an error of WaitOptions.Blocked that no
// waiting can change (an import that cannot be finished): the wait
// returns it at once.
var ErrNeverReady = errors.New("waiting cannot make the database ready")

// WaitResult is the outcome of a successful wait.
type WaitResult struct {
	// Version is the schema version that satisfied the wait.
	Version int64
	Waited  time.Duration
	// Checks is how many times the database was read.
	Checks int
}

// WaitForVersion blocks until the database's schema version is v or
// later, checking with m.Status and backing off between checks. It is a
// range check: a database already past v is ready. On timeout it returns a
// *WaitTimeoutError naming the current version and what is not applied.
func WaitForVersion(ctx context.Context, m *migrate.Migrator, v int64, opts WaitOptions) (*WaitResult, error) {
	return wait(ctx, m, fmt.Sprintf("schema version %d", v), v, opts, func(s *migrate.Status) (bool, error) {
		return s.CurrentVersion >= v, nil
	})
}

// WaitForRelease blocks until release r can run on the database by the
// compatibility rule (see Compatible). A database that moved past the
// release's schema is still ready as long as no contract migration broke
// it. When the release can never become compatible by waiting (a contract
// migration broke it, or a version is unknown) it returns an
// *IncompatibleError at once. On timeout it returns a *WaitTimeoutError.
func WaitForRelease(ctx context.Context, m *migrate.Migrator, r Release, opts WaitOptions) (*WaitResult, error) {
	// Compatibility depends on every migration's contract flag.
	if err := m.Check(); err != nil {
		return nil, err
	}
	return wait(ctx, m, "release "+r.String(), r.Min(), opts, func(s *migrate.Status) (bool, error) {
		v := Compatible(r, DatabaseOf(s), m.Migrations())
		if v.Final() {
			return false, &IncompatibleError{Verdict: v}
		}
		return v.OK, nil
	})
}

func wait(ctx context.Context, m *migrate.Migrator, target string, need int64, opts WaitOptions, ready func(*migrate.Status) (bool, error)) (*WaitResult, error) {
	if opts.MinDelay <= 0 {
		opts.MinDelay = 100 * time.Millisecond
	}
	if opts.MaxDelay < opts.MinDelay {
		opts.MaxDelay = max(2*time.Second, opts.MinDelay)
	}
	start := time.Now()
	// The timeout is a hard bound: it cuts a check in flight (a
	// connection attempt to a server that does not answer) too.
	wctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	delay := opts.MinDelay
	var last *migrate.Status
	var lastErr error
	var blocked string
	checks := 0
	timedOut := func() error {
		te := &WaitTimeoutError{Timeout: opts.Timeout, Waited: time.Since(start), Target: target, Need: need, LastErr: lastErr, Blocked: blocked}
		if last != nil {
			te.Current, te.Latest, te.Pending, te.Failed = last.CurrentVersion, last.LatestVersion, last.PendingMigrations, last.Failed
		}
		return te
	}
	for {
		// Each check gets its own time limit too, so that one hanging
		// check does not use up the whole wait.
		cctx, cancel := context.WithTimeout(wctx, max(opts.MaxDelay, 5*time.Second))
		s, err := m.StatusWith(cctx, migrate.StatusOptions{Applied: -1})
		var ok bool
		if err == nil {
			if ok, err = ready(s); err != nil {
				cancel()
				return nil, err
			}
			blocked = ""
			if ok && opts.Blocked != nil {
				var b string
				if b, err = opts.Blocked(cctx); err == nil && b != "" {
					ok, blocked = false, b
				}
				if errors.Is(err, ErrNeverReady) {
					cancel()
					return nil, err
				}
			}
		}
		cancel()
		checks++
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err == nil:
			last, lastErr = s, nil
			if ok {
				return &WaitResult{Version: s.CurrentVersion, Waited: time.Since(start), Checks: checks}, nil
			}
			if checks == 1 && opts.Waiting != nil {
				opts.Waiting(s)
			}
		default:
			if wctx.Err() != nil && lastErr == nil && last == nil {
				lastErr = err
			}
			if wctx.Err() != nil {
				return nil, timedOut()
			}
			if lastErr == nil && opts.Retrying != nil {
				opts.Retrying(err)
			}
			lastErr = err
		}
		pause := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			pause.Stop()
			return nil, ctx.Err()
		case <-wctx.Done():
			pause.Stop()
			return nil, timedOut()
		case <-pause.C:
		}
		delay = min(2*delay, opts.MaxDelay)
	}
}
