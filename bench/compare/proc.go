package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Tools compared. client is the lower bound: the database's own client.
const (
	toolFerry   = "ferry"
	toolGoose   = "goose"
	toolMigrate = "golang-migrate"
	toolClient  = "client"
)

// migrationTools are the tools that keep a history (every case but the
// lower bound).
var migrationTools = []string{toolFerry, toolGoose, toolMigrate}

// bins are the tools' executables.
type bins struct {
	ferry, goose, migrate string
	// workdir is the children's working directory: empty, so that no
	// ferry.yaml or ./migrations of the caller changes what a tool does.
	workdir string
}

// format is the migration file format a tool reads.
func format(tool string) string {
	switch tool {
	case toolGoose:
		return formatGoose
	case toolMigrate:
		return formatMigrate
	}
	return formatFerry
}

// upCmd applies every migration in dir with a tool, as its users run it.
func (b *bins) upCmd(ctx context.Context, tool string, f *fresh, dir string) *exec.Cmd {
	var cmd *exec.Cmd
	switch tool {
	case toolFerry:
		cmd = exec.CommandContext(ctx, b.ferry, "up", "--dir", dir, "--database", f.ferryURL())
	case toolGoose:
		driver, dsn := f.gooseArgs()
		cmd = exec.CommandContext(ctx, b.goose, "-dir", dir, driver, dsn, "up")
	case toolMigrate:
		cmd = exec.CommandContext(ctx, b.migrate, "-path", dir, "-database", f.migrateURL(), "up")
	default:
		panic("upCmd: unknown tool " + tool)
	}
	return cmd
}

// statusCmd asks a tool what is applied: ferry status, goose status, and
// golang-migrate's nearest, migrate version.
func (b *bins) statusCmd(ctx context.Context, tool string, f *fresh, dir string) *exec.Cmd {
	switch tool {
	case toolFerry:
		return exec.CommandContext(ctx, b.ferry, "status", "--dir", dir, "--database", f.ferryURL())
	case toolGoose:
		driver, dsn := f.gooseArgs()
		return exec.CommandContext(ctx, b.goose, "-dir", dir, driver, dsn, "status")
	case toolMigrate:
		return exec.CommandContext(ctx, b.migrate, "-path", dir, "-database", f.migrateURL(), "version")
	}
	panic("statusCmd: unknown tool " + tool)
}

// outcome is one finished process.
type outcome struct {
	Wall time.Duration
	CPU  time.Duration // user + system time of the process
	Exit int
	Out  string // combined output, for errors
	// End is when the process exited.
	End time.Time
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if len(t.b) > t.max {
		return "..." + string(t.b[len(t.b)-t.max:])
	}
	return string(t.b)
}

// prepare sets the environment, working directory and output of cmd.
func (b *bins) prepare(cmd *exec.Cmd) *tailBuffer {
	if cmd.Env == nil {
		cmd.Env = childEnv()
	}
	cmd.Dir = b.workdir
	out := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	return out
}

// timeCmd runs cmd to completion and measures it: wall-clock time from
// start to exit, and its CPU time.
func (b *bins) timeCmd(cmd *exec.Cmd) (outcome, error) {
	out := b.prepare(cmd)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return outcome{}, fmt.Errorf("start %s: %w", filepath.Base(cmd.Path), err)
	}
	return b.wait(cmd, start, out), nil
}

// wait waits for a started cmd.
func (b *bins) wait(cmd *exec.Cmd, start time.Time, out *tailBuffer) outcome {
	err := cmd.Wait()
	end := time.Now()
	o := outcome{Wall: end.Sub(start), End: end, Out: out.String()}
	if ps := cmd.ProcessState; ps != nil {
		o.CPU = ps.UserTime() + ps.SystemTime()
		o.Exit = ps.ExitCode()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		o.Exit = -1
		o.Out += "\n" + err.Error()
	}
	return o
}

// mustSucceed runs cmd and returns an error naming the command and its
// output if it exits non-zero.
func (b *bins) mustSucceed(cmd *exec.Cmd) (outcome, error) {
	o, err := b.timeCmd(cmd)
	if err != nil {
		return o, err
	}
	if o.Exit != 0 {
		return o, fmt.Errorf("%s exited %d:\n%s", commandLine(cmd), o.Exit, strings.TrimSpace(o.Out))
	}
	return o, nil
}

// commandLine describes cmd for errors, without its arguments' secrets
// (the benchmark's URLs carry no password unless the admin URL did).
func commandLine(cmd *exec.Cmd) string {
	args := make([]string, len(cmd.Args))
	copy(args, cmd.Args)
	args[0] = filepath.Base(args[0])
	for i, a := range args {
		if strings.Contains(a, "@") {
			args[i] = redactURL(a)
		}
	}
	return strings.Join(args, " ")
}

// redactURL hides a password in user:password@host.
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	start := strings.Index(s, "://")
	if start < 0 {
		start = 0
	} else {
		start += 3
	}
	if at < start {
		return s
	}
	if i := strings.Index(s[start:at], ":"); i >= 0 {
		return s[:start+i] + ":xxxxx" + s[at:]
	}
	return s
}
