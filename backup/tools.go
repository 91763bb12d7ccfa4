package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/database"
)

// ErrTool is returned (wrapped) when a client tool is missing, too old for
// the server, or fails.
var ErrTool = errors.New("backup tool problem")

// tool is a client program found on this machine.
type tool struct {
	name, path, version string
	major, minor        int
	mariadb             bool
}

// findTool looks for the first of names in dir (when set) or in PATH.
func findTool(dir string, names ...string) (string, string, error) {
	for _, n := range names {
		if dir != "" {
			p := filepath.Join(dir, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return n, p, nil
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return n, p, nil
		}
	}
	where := "PATH"
	if dir != "" {
		where = dir
	}
	return "", "", fmt.Errorf("%w: %s not found in %s", ErrTool, strings.Join(names, " or "), where)
}

var versionNumber = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(\d+)\.(\d+)(?:\.(\d+))?`) })

// toolVersion runs `path --version` and returns its first line.
func toolVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s --version: %v", ErrTool, path, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}

// parseMajorMinor returns the first x.y[.z] number after skip in s.
func parseMajorMinor(s, after string) (int, int, bool) {
	if i := strings.Index(s, after); after != "" && i >= 0 {
		s = s[i+len(after):]
	}
	m := versionNumber().FindStringSubmatch(s)
	if m == nil {
		// PostgreSQL 10 and later may print a bare major ("pg_dump (PostgreSQL) 17devel").
		if d := regexp.MustCompile(`\d+`).FindString(s); d != "" {
			n, _ := strconv.Atoi(d)
			return n, 0, true
		}
		return 0, 0, false
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	return a, b, true
}

// runner runs a client tool with its connection settings and password in
// its environment, never on its command line, and keeps the end of its
// stderr (passwords removed) for the error message.
type runner struct {
	tool   *tool
	env    []string
	secret string
}

// stderrTail keeps the last bytes written to it.
type stderrTail struct {
	mu  sync.Mutex
	buf []byte
}

const stderrKeep = 8 << 10

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	if len(s.buf) > stderrKeep {
		s.buf = append([]byte(nil), s.buf[len(s.buf)-stderrKeep:]...)
	}
	return len(p), nil
}

func (s *stderrTail) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(string(bytes.ToValidUTF8(s.buf, []byte("?"))))
}

// run runs the tool with args, stdin and stdout. The error names the tool
// and carries its stderr.
func (r *runner) run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	cmd := exec.CommandContext(ctx, r.tool.path, args...)
	cmd.Env = append(childEnviron(), r.env...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	var tail stderrTail
	cmd.Stderr = &tail
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := tail.String()
	if r.secret != "" {
		msg = strings.ReplaceAll(msg, r.secret, "xxxxx")
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s stopped: %w", r.tool.name, context.Cause(ctx))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if msg == "" {
			msg = "no message"
		}
		return fmt.Errorf("%w: %s failed (%v): %s", ErrTool, r.tool.name, ee, msg)
	}
	// A failure to start, or to copy its input or output (the store).
	return fmt.Errorf("%s: %w", r.tool.name, err)
}

// childEnviron is this process's environment without ferry's own
// settings: FERRY_DATABASE_URL holds a password the tool has no use for.
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_") {
			env = append(env, kv)
		}
	}
	return env
}

// pgEnv maps a PostgreSQL URL to libpq environment variables, so that
// pg_dump and pg_restore get host, user, password and TLS settings without
// any of it on their command line.
func pgEnv(u *database.URL, dbname string) []string {
	env := []string{
		"PGHOST=" + u.Host, "PGPORT=" + u.Port, "PGUSER=" + u.User, "PGDATABASE=" + dbname,
		"PGPASSWORD=" + u.Password(),
		"PGAPPNAME=ferry-backup",
	}
	params := map[string]string{
		"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
		"sslcrl": "PGSSLCRL", "connect_timeout": "PGCONNECT_TIMEOUT", "target_session_attrs": "PGTARGETSESSIONATTRS",
		"application_name": "PGAPPNAME", "host": "PGHOST", "port": "PGPORT", "options": "PGOPTIONS",
		"gssencmode": "PGGSSENCMODE", "channel_binding": "PGCHANNELBINDING",
	}
	for k, v := range u.Params {
		if e, ok := params[k]; ok && len(v) > 0 {
			env = append(env, e+"="+v[len(v)-1])
		}
	}
	if u.Password() == "" {
		// Do not let an inherited PGPASSWORD leak into another server.
		env = append(env, "PGPASSWORD=")
	}
	return env
}

// mysqlOptionFile writes a [client] option file (0600, in a private 0700
// directory) with the connection settings and password for mysqldump and
// mysql. The returned function removes it.
func mysqlOptionFile(u *database.URL, mariadb bool) (string, func(), error) {
	dir, err := os.MkdirTemp("", "ferry-backup-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	var b strings.Builder
	b.WriteString("[client]\n")
	opt := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, quoteOption(v)) }
	opt("user", u.User)
	if u.Password() != "" {
		opt("password", u.Password())
	}
	if sock := u.Params.Get("socket"); sock != "" {
		opt("socket", sock)
	} else {
		opt("host", u.Host)
		opt("port", u.Port)
		b.WriteString("protocol=TCP\n")
	}
	if v := u.Params.Get("sslrootcert"); v != "" {
		opt("ssl-ca", v)
	}
	if v := u.Params.Get("sslcert"); v != "" {
		opt("ssl-cert", v)
	}
	if v := u.Params.Get("sslkey"); v != "" {
		opt("ssl-key", v)
	}
	switch mode := u.Params.Get("sslmode"); {
	case mode == "":
	case mariadb:
		switch mode {
		case "disable":
			b.WriteString("skip-ssl\n")
		case "verify-ca", "verify-full":
			b.WriteString("ssl\nssl-verify-server-cert\n")
		default:
			b.WriteString("ssl\n")
		}
	default:
		m := map[string]string{"disable": "DISABLED", "preferred": "PREFERRED", "prefer": "PREFERRED", "require": "REQUIRED", "verify-ca": "VERIFY_CA", "verify-full": "VERIFY_IDENTITY"}[mode]
		if m != "" {
			opt("ssl-mode", m)
		}
	}
	path := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}

// quoteOption quotes a value for a MySQL option file.
func quoteOption(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}
