package release

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ferrydb/ferry/migrate"
)

// Select returns the release to run on the database's current schema: the
// one called name, checked with Compatible (an *IncompatibleError when it
// cannot run), or for an empty name the newest compatible release (a
// *NoneCompatibleError when there is none).
func Select(ctx context.Context, m *migrate.Migrator, man *Manifest, name string) (Release, *migrate.Status, error) {
	if man == nil {
		man = &Manifest{}
	}
	// Compatibility depends on every migration's contract flag.
	if err := m.Check(); err != nil {
		return Release{}, nil, err
	}
	s, err := m.StatusWith(ctx, migrate.StatusOptions{Applied: -1})
	if err != nil {
		return Release{}, nil, err
	}
	if name == "" {
		r, err := man.NewestCompatible(DatabaseOf(s), m.Migrations())
		return r, s, err
	}
	r, err := man.Release(name)
	if err != nil {
		return Release{}, s, err
	}
	if v := Compatible(r, DatabaseOf(s), m.Migrations()); !v.OK {
		return Release{}, s, &IncompatibleError{Verdict: v}
	}
	return r, s, nil
}

// DefaultSignals are the signals a supervisor forwards to its child:
// SIGINT, SIGTERM, SIGHUP and SIGQUIT.
func DefaultSignals() []os.Signal {
	return []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}
}

// LaunchOptions configure Launch.
type LaunchOptions struct {
	// Manifest lists the releases.
	Manifest *Manifest
	// Release names the release to run; empty runs the newest release
	// compatible with the database's schema.
	Release string
	// Args are appended to the release's command; for a release without a
	// command they are the command.
	Args []string
	// Env is the child's environment (nil: this process's). Launch adds
	// FERRY_RELEASE, FERRY_RELEASE_SCHEMA and, when registered,
	// FERRY_INSTANCE_ID. Pass secrets such as the database URL here, never
	// in Args.
	Env []string
	// Dir is the child's working directory ("" for this process's).
	Dir string
	// Stdin, Stdout and Stderr are the child's (nil: the null device).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Signals are forwarded to the child while it runs: DefaultSignals()
	// for a supervisor. Nil forwards none.
	Signals []os.Signal
	// Sidecar, if set, runs beside the child, for example the migration
	// service. Its context is cancelled when the child exits, and Launch
	// waits for it to return. If it fails while the child runs, Launch
	// stops the child with SIGTERM and returns the sidecar's error.
	Sidecar func(ctx context.Context) error
	// DB, if set, is where the child is registered in the fleet registry
	// for its lifetime, so that contract migrations that break it wait
	// until it is gone. Instance sets its id and host (Release, Schema and
	// MinSchema come from the release); Registry configures the registry.
	DB       *sql.DB
	Instance Instance
	Registry []Option
	// Started, if set, is called once the child runs.
	Started func(r Release, inst Instance, pid int)
	// Log receives progress and problems (default: discard).
	Log *slog.Logger
}

// LaunchResult describes how the child ended.
type LaunchResult struct {
	Release Release
	// Instance is the registered instance (zero when not registered).
	Instance Instance
	// ExitCode is the child's exit code, or 128 plus the signal number
	// when a signal killed it (as shells report it).
	ExitCode int
	// Signal is the signal that killed the child, if one did.
	Signal os.Signal
}

// Launch picks a release (see Select), registers it in the fleet registry
// when opts.DB is set, checks once more that it is still compatible, and
// runs its command as a child process until it exits: forwarding
// opts.Signals to it, running opts.Sidecar beside it, and deregistering it
// afterwards. Cancelling ctx sends SIGTERM to the child; Launch still waits
// for it to exit.
//
// The error is nil when the child ran, whatever its exit code; it is set
// when no release could be started (none compatible, no command, the
// command not found) or the sidecar failed.
func Launch(ctx context.Context, m *migrate.Migrator, opts LaunchOptions) (*LaunchResult, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r, _, err := Select(ctx, m, opts.Manifest, opts.Release)
	if err != nil {
		return nil, err
	}
	argv := append(append([]string(nil), r.Command...), opts.Args...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("release %s has no command: add `command: [program, args...]` to it in the manifest, or give the command after `--`", r.Name)
	}
	res := &LaunchResult{Release: r}

	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	env = append(env[:len(env):len(env)], "FERRY_RELEASE="+r.Name, "FERRY_RELEASE_SCHEMA="+strconv.FormatInt(r.Schema, 10))

	if opts.DB != nil {
		inst := opts.Instance
		inst.Release, inst.Schema, inst.MinSchema = r.Name, r.Schema, r.MinSchema
		reg, err := Register(ctx, opts.DB, m.Dialect(), inst, append([]Option{WithLogger(log)}, opts.Registry...)...)
		if err != nil {
			return nil, err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := reg.Close(cctx); err != nil {
				log.Warn("deregistering failed", "error", err)
			}
		}()
		res.Instance = reg.Instance()
		env = append(env, "FERRY_INSTANCE_ID="+res.Instance.ID)
		// A contract migration may have gone in between the choice and the
		// registration; from now on the gate sees this instance.
		s, err := m.StatusWith(ctx, migrate.StatusOptions{Applied: -1})
		if err != nil {
			return nil, err
		}
		if v := Compatible(r, DatabaseOf(s), m.Migrations()); !v.OK {
			return nil, &IncompatibleError{Verdict: v}
		}
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, opts.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	cmd.SysProcAttr = sysProcAttr()
	var sigs chan os.Signal
	if len(opts.Signals) > 0 {
		// Subscribe before the child starts, so that no signal is lost.
		sigs = make(chan os.Signal, 8)
		signal.Notify(sigs, opts.Signals...)
		defer signal.Stop(sigs)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start release %s (%s): %w", r.Name, argv[0], err)
	}
	log.Info("started release", "release", r.Name, "pid", cmd.Process.Pid, "instance", res.Instance.ID)
	if opts.Started != nil {
		opts.Started(r, res.Instance, cmd.Process.Pid)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	sctx, stopSidecar := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSidecar()
	var sidecar chan error
	if opts.Sidecar != nil {
		sidecar = make(chan error, 1)
		go func() { sidecar <- opts.Sidecar(sctx) }()
	}
	var sidecarErr error
	done := ctx.Done()
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-exited:
			break loop
		case sig := <-sigs:
			log.Info("forwarding signal", "signal", sig, "pid", cmd.Process.Pid)
			if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
				log.Warn("forwarding a signal failed", "signal", sig, "error", err)
			}
		case <-done:
			done = nil
			terminate(cmd.Process, log)
		case err := <-sidecar:
			sidecar = nil
			if err != nil {
				sidecarErr = err
				log.Error("the sidecar failed; stopping the release", "release", r.Name, "error", err)
				terminate(cmd.Process, log)
			}
		}
	}
	stopSidecar()
	if sidecar != nil {
		if err := <-sidecar; err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("the sidecar returned an error when stopped", "error", err)
		}
	}
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return res, fmt.Errorf("wait for release %s: %w", r.Name, waitErr)
	}
	res.ExitCode = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal, res.ExitCode = ws.Signal(), 128+int(ws.Signal())
	}
	log.Info("release exited", "release", r.Name, "code", res.ExitCode)
	if sidecarErr != nil {
		return res, fmt.Errorf("sidecar of release %s failed, so the release was stopped: %w", r.Name, sidecarErr)
	}
	return res, nil
}

// terminate asks the child to stop (SIGTERM; where that cannot be sent,
// it kills it).
func terminate(p *os.Process, log *slog.Logger) {
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		log.Warn("SIGTERM failed; killing the release", "error", err)
		_ = p.Kill()
	}
}
