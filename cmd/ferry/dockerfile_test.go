package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The Dockerfile at the repository's root cannot be built here (CI has no
// container engine), so this test checks what it can without one: its
// `go build` line, run exactly as written, makes a static binary that runs;
// the default image is distroless and non-root; the tools target has the
// database clients that backups use; and .dockerignore keeps nothing out
// of the build context that the build needs.

// repoRoot is the module's root, two directories above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	return root
}

// dockerInstr is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstr struct {
	line int    // where it starts
	cmd  string // upper case: FROM, RUN, COPY, ...
	rest string // everything after the keyword
}

// dockerStage is a FROM and the instructions up to the next FROM.
type dockerStage struct {
	image, name string
	instrs      []dockerInstr
}

// find returns the stage's instructions of one kind.
func (s *dockerStage) find(cmd string) []dockerInstr {
	var out []dockerInstr
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// args returns the stage's ARG defaults declared before line (an ARG is
// visible to a RUN only when its stage declares it).
func (s *dockerStage) args(before int) map[string]string {
	out := map[string]string{}
	for _, in := range s.find("ARG") {
		if in.line < before {
			name, def, _ := strings.Cut(in.rest, "=")
			out[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(def), `"`)
		}
	}
	return out
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM and the
// stages in order (the last one is what `docker build` builds by default).
type dockerfile struct {
	globalArgs map[string]string
	stages     []*dockerStage
}

// stage returns the stage named name.
func (d *dockerfile) stage(t *testing.T, name string) *dockerStage {
	t.Helper()
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("the Dockerfile has no stage %q", name)
	return nil
}

// parseDockerfile reads what this project's Dockerfiles use: comments,
// continuation lines, ARG, FROM ... AS name, and instructions.
func parseDockerfile(t *testing.T, file string) *dockerfile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &dockerfile{globalArgs: map[string]string{}}
	var cur *dockerStage
	add := func(line int, text string) {
		cmd, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
		in := dockerInstr{line: line, cmd: strings.ToUpper(cmd), rest: strings.TrimSpace(rest)}
		switch {
		case in.cmd == "FROM":
			fields := strings.Fields(in.rest)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") { // --platform=...
				fields = fields[1:]
			}
			if len(fields) == 0 {
				t.Fatalf("%s:%d: FROM without an image", file, line)
			}
			cur = &dockerStage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				cur.name = fields[2]
			}
			d.stages = append(d.stages, cur)
		case cur == nil && in.cmd == "ARG":
			name, def, _ := strings.Cut(in.rest, "=")
			d.globalArgs[strings.TrimSpace(name)] = strings.TrimSpace(def)
		case cur == nil:
			t.Fatalf("%s:%d: %s before the first FROM", file, line, in.cmd)
		default:
			cur.instrs = append(cur.instrs, in)
		}
	}
	sc := bufio.NewScanner(f)
	var text strings.Builder
	start := 0
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		// Comment lines are dropped, inside a continued instruction too.
		if trimmed == "" && text.Len() == 0 || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if text.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			text.WriteString(body)
			continue
		}
		text.WriteString(line)
		add(start, text.String())
		text.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if text.Len() > 0 {
		t.Fatalf("%s: the last instruction ends with a backslash", file)
	}
	if len(d.stages) == 0 {
		t.Fatalf("%s: no FROM", file)
	}
	return d
}

// runCommand strips a RUN instruction's flags (--mount=..., --network=...)
// and returns its shell command.
func runCommand(rest string) string {
	for strings.HasPrefix(rest, "--") {
		_, after, ok := strings.Cut(rest, " ")
		if !ok {
			return ""
		}
		rest = strings.TrimSpace(after)
	}
	return rest
}

// execForm reads an instruction in exec form (["a", "b"]).
func execForm(t *testing.T, in dockerInstr) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(in.rest), &argv); err != nil {
		t.Fatalf("Dockerfile:%d: %s %s is not in exec form ([\"...\"]): %v", in.line, in.cmd, in.rest, err)
	}
	return argv
}

// entrypoint returns the stage's ENTRYPOINT (the last one counts).
func (s *dockerStage) entrypoint(t *testing.T) []string {
	t.Helper()
	eps := s.find("ENTRYPOINT")
	if len(eps) == 0 {
		t.Fatalf("Dockerfile stage %s (FROM %s) has no ENTRYPOINT", s.name, s.image)
	}
	return execForm(t, eps[len(eps)-1])
}

// user returns the stage's last USER, "" if none.
func (s *dockerStage) user() string {
	us := s.find("USER")
	if len(us) == 0 {
		return ""
	}
	return us[len(us)-1].rest
}

// nonRootUser reports whether a USER value names someone other than root.
func nonRootUser(u string) bool {
	name, _, _ := strings.Cut(u, ":")
	return name != "" && name != "root" && name != "0"
}

// copies returns the stage's COPY instructions as (from, sources, dest);
// from is "" for the build context.
func (s *dockerStage) copies() []struct {
	from string
	srcs []string
	dest string
} {
	var out []struct {
		from string
		srcs []string
		dest string
	}
	for _, in := range s.find("COPY") {
		fields := strings.Fields(in.rest)
		from := ""
		for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
			if v, ok := strings.CutPrefix(fields[0], "--from="); ok {
				from = v
			}
			fields = fields[1:]
		}
		if len(fields) < 2 {
			continue
		}
		out = append(out, struct {
			from string
			srcs []string
			dest string
		}{from, fields[:len(fields)-1], fields[len(fields)-1]})
	}
	return out
}

// dockerBinary is where the images put ferry.
const dockerBinary = "/usr/local/bin/ferry"

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	d := parseDockerfile(t, filepath.Join(root, "Dockerfile"))

	// The build stage: one RUN builds ./cmd/ferry into /out/ferry, static.
	var build *dockerStage
	var buildRun dockerInstr
	for _, s := range d.stages {
		for _, in := range s.find("RUN") {
			if strings.Contains(in.rest, "go build") {
				if build != nil {
					t.Fatalf("Dockerfile:%d: a second RUN with go build (the first is at line %d); this test runs the one that builds ferry", in.line, buildRun.line)
				}
				build, buildRun = s, in
			}
		}
	}
	if build == nil {
		t.Fatal("the Dockerfile has no RUN ... go build line")
	}
	if !strings.HasPrefix(build.image, "golang:") {
		t.Errorf("Dockerfile:%d: the build stage is FROM %s, want a golang image", buildRun.line, build.image)
	}
	// The Go image's version is the one go.mod asks for (major.minor), so
	// that the build does not need a toolchain download (the golang images
	// set GOTOOLCHAIN=local).
	goVersion := os.Expand(strings.TrimPrefix(build.image, "golang:"), func(k string) string { return d.globalArgs[k] })
	goVersion, _, _ = strings.Cut(goVersion, "-")
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod); m == nil {
		t.Error("go.mod has no go line")
	} else if goVersion != string(m[1]) {
		t.Errorf("the build stage uses Go %q, go.mod says go %s", goVersion, m[1])
	}

	command := runCommand(buildRun.rest)
	for _, want := range []string{"CGO_ENABLED=0 ", "go build ", " -o /out/ferry ", "./cmd/ferry"} {
		if !strings.Contains(command+" ", want) {
			t.Fatalf("Dockerfile:%d: the build line %q does not have %q; it must build a static ferry into /out/ferry", buildRun.line, command, strings.TrimSpace(want))
		}
	}
	// The default image (the last stage) and the tools image copy that
	// binary to where their entry point runs it.
	final := d.stages[len(d.stages)-1]
	tools := d.stage(t, "tools")
	for _, s := range []*dockerStage{final, tools} {
		found := false
		for _, c := range s.copies() {
			if c.from == build.name && slices.Equal(c.srcs, []string{"/out/ferry"}) && c.dest == dockerBinary {
				found = true
			}
		}
		if !found {
			t.Errorf("stage %s (FROM %s) does not COPY --from=%s /out/ferry %s", s.name, s.image, build.name, dockerBinary)
		}
		if ep := s.entrypoint(t); !slices.Equal(ep, []string{dockerBinary}) {
			t.Errorf("stage %s: ENTRYPOINT %q, want [%q]", s.name, ep, dockerBinary)
		}
		if w := s.find("WORKDIR"); len(w) == 0 || w[len(w)-1].rest != "/app" {
			t.Errorf("stage %s: want WORKDIR /app (ferry reads ./migrations and ./ferry.yaml there)", s.name)
		}
	}
	// Distroless and non-root.
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") {
		t.Errorf("the default image is FROM %s, want gcr.io/distroless/static-...", final.image)
	}
	if !strings.HasSuffix(final.image, ":nonroot") && !nonRootUser(final.user()) {
		t.Errorf("the default image runs as root: FROM %s without :nonroot, USER %q", final.image, final.user())
	}
	if u := final.user(); u != "" && !nonRootUser(u) {
		t.Errorf("the default image has USER %q", u)
	}
	// The tools image: non-root, with the PostgreSQL and MariaDB clients
	// (pg_dump/pg_restore, mariadb-dump/mariadb) that backups run.
	if !nonRootUser(tools.user()) {
		t.Errorf("the tools image runs as root (USER %q)", tools.user())
	}
	var installs string
	for _, in := range tools.find("RUN") {
		installs += " " + runCommand(in.rest)
	}
	for _, pkg := range []string{"postgresql-client", "mariadb-client"} {
		if !regexp.MustCompile(`apt-get install[^;&]*\s"?` + regexp.QuoteMeta(pkg)).MatchString(installs) {
			t.Errorf("the tools image does not apt-get install %s", pkg)
		}
	}

	checkDockerignore(t, root)

	if runtime.GOOS != "linux" {
		t.Skip("the static-binary check reads ELF: Linux only")
	}
	// Run the build line as written, in the module's root, with the
	// stage's ARG defaults in the environment as docker passes them, and
	// the binary written into a temporary directory instead of /out.
	out := filepath.Join(t.TempDir(), "ferry")
	command = strings.Replace(command, "-o /out/ferry ", "-o '"+out+"' ", 1)
	const testVersion = "v0.0.0-dockerfile-test"
	env := os.Environ()
	for k, v := range build.args(buildRun.line) {
		if k == "VERSION" {
			v = testVersion
		}
		env = append(env, k+"="+v)
	}
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir, cmd.Env = root, env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build line failed: %s: %v\n%s", command, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (it has a %s program header); the distroless static image cannot run it", p.Type)
		}
	}
	if f.Section(".interp") != nil || f.Section(".dynamic") != nil {
		t.Error("the binary has an .interp or .dynamic section: it is not static")
	}
	f.Close()
	b, err := exec.Command(out, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "ferry version "+testVersion) {
		t.Errorf("%s --version: %v: %q, want the VERSION build argument (%s)", out, err, b, testVersion)
	}
	if b, err := exec.Command(out, "up", "--help").CombinedOutput(); err != nil || !strings.Contains(string(b), "Apply the pending migrations") {
		t.Errorf("%s up --help: %v: %s", out, err, b)
	}
}

// checkDockerignore checks that .dockerignore leaves in the build context
// every file that building ferry and the example service needs: go.mod,
// go.sum and the Go and embedded files of every package of this module
// they import, and what examples/kubernetes/greeter.Dockerfile copies.
func checkDockerignore(t *testing.T, root string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	ignore := parseDockerignore(string(data))
	needed := []string{"go.mod", "go.sum"}
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`,
		"./cmd/ferry", "./examples/greeter/cmd/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(root, fields[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(dir, f)))
		}
	}
	g := parseDockerfile(t, filepath.Join(root, "examples", "kubernetes", "greeter.Dockerfile"))
	for _, s := range g.stages {
		for _, c := range s.copies() {
			if c.from != "" {
				continue
			}
			for _, src := range c.srcs {
				if src == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("greeter.Dockerfile copies %s, which is not in the repository: %v", src, err)
				}
				needed = append(needed, src)
			}
		}
	}
	if len(needed) < 20 {
		t.Fatalf("only %d files found that the build needs: the go list above went wrong", len(needed))
	}
	for _, f := range needed {
		if ignore(f) {
			t.Errorf(".dockerignore leaves %s out of the build context, and the build needs it", f)
		}
	}
	// And it does keep out what it should.
	for _, f := range []string{".git/config", "ferry.db", "docs/service.md"} {
		if !ignore(f) {
			t.Errorf(".dockerignore does not leave out %s", f)
		}
	}
}

// parseDockerignore returns a matcher with Docker's rules: patterns are
// relative to the context's root, * and ? do not cross /, ** matches any
// number of directories, a pattern that matches a directory leaves out
// everything in it, ! re-includes, and the last matching pattern wins.
func parseDockerignore(text string) func(string) bool {
	type rule struct {
		re      *regexp.Regexp
		exclude bool
	}
	var rules []rule
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exclude := true
		if p, ok := strings.CutPrefix(line, "!"); ok {
			line, exclude = p, false
		}
		line = strings.TrimPrefix(path.Clean("/"+line), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("(/.*)?$")
		rules = append(rules, rule{regexp.MustCompile(re.String()), exclude})
	}
	return func(p string) bool {
		out := false
		for _, r := range rules {
			if r.re.MatchString(p) {
				out = r.exclude
			}
		}
		return out
	}
}
