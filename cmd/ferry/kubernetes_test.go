package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/ferrydb/ferry/release"
	"github.com/ferrydb/ferry/server"
)

// TestKubernetesExamples checks the manifests in examples/kubernetes
// against the real CLI and service, so that a typo in a flag, a variable,
// a probe's path or port, or a Secret's key fails here rather than in a
// cluster:
//
//   - every ferry invocation (a container whose command is the images'
//     entry point) names a real command and real flags of the cobra tree,
//     and its flags and FERRY_* variables resolve as ferry would resolve
//     them (values included); every FERRY_* variable is one ferry reads
//     (the set is taken from the code); every $(VAR) is defined;
//   - --release names a release of the image's ferry.yaml, and the image
//     (as examples/kubernetes/greeter.Dockerfile builds it) holds the
//     migrations, the manifest and the release's command;
//   - `ferry serve` listens on a non-loopback address at its containerPort
//     with a token, and its probes and the Prometheus scrape path answer
//     200 from the real service while migrations are pending (its
//     readiness probe is not /readyz, which answers 503 then), with the Host
//     header the kubelet sends;
//   - Services select a workload and target a port it declares; Jobs are
//     bounded and name the release; pods run as non-root with a read-only
//     root file system and resource requests and limits;
//   - the deploy sequence runs: on a SQLite database, the init container
//     waits before the migration Job, the Job brings the schema to where
//     both releases run, the init container then passes, and the contract
//     Job finishes the schema.
func TestKubernetesExamples(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(root, "examples", "kubernetes")
	docs := loadK8sDocs(t, dir)
	entry := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	final := entry.stages[len(entry.stages)-1]
	entrypoint := final.entrypoint(t)[0]
	images := newExampleImages(t, root)
	known := knownFerryEnv(t)
	secrets := exampleSecrets(t, docs)

	// The working directory of every ferry invocation is a copy of what the
	// migrations image holds in /app.
	appDir := images.app(t, root, "migrations")
	t.Chdir(appDir)

	seen := map[string]int{} // ferry command path -> invocations
	var invs []*k8sInvocation
	for _, doc := range docs {
		tmpl, ok := podTemplate(doc)
		if !ok {
			continue
		}
		spec := mapAt(tmpl, "spec")
		checkPodPolicy(t, doc, spec)
		if doc.kind == "Job" {
			checkJob(t, doc, spec)
		}
		for _, c := range podContainers(spec) {
			inv := newInvocation(t, doc, tmpl, c, secrets)
			checkContainerPolicy(t, inv)
			if !inv.isFerry(entrypoint, images) {
				continue
			}
			invs = append(invs, inv)
			checkFerryInvocation(t, inv, known, images, seen)
		}
	}
	for _, doc := range docs {
		if doc.kind == "Service" {
			checkService(t, doc, docs)
		}
	}
	for _, want := range []string{"ferry up", "ferry wait", "ferry launch", "ferry serve"} {
		if seen[want] == 0 {
			t.Errorf("no container of examples/kubernetes runs %s (commands seen: %v): the manifests changed shape, or this test no longer recognises them", want, seen)
		}
	}
	if t.Failed() {
		return
	}
	runDeploySequence(t, appDir, invs)
}

// k8sDoc is one YAML document of a manifest file.
type k8sDoc struct {
	file, kind, name string
	obj              map[string]any
}

func (d *k8sDoc) String() string { return fmt.Sprintf("%s: %s %s", d.file, d.kind, d.name) }

func loadK8sDocs(t *testing.T, dir string) []*k8sDoc {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []*k8sDoc
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var obj map[string]any
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			if obj == nil {
				continue
			}
			d := &k8sDoc{file: filepath.Base(f), kind: yamlStr(obj["kind"]), name: yamlStr(mapAt(obj, "metadata")["name"]), obj: obj}
			if d.kind == "" || d.name == "" || yamlStr(obj["apiVersion"]) == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", d.file)
			}
			docs = append(docs, d)
		}
	}
	for _, want := range []string{"migrate-job.yaml", "app-deployment.yaml", "contract-job.yaml", "serve-deployment.yaml", "secret.example.yaml"} {
		if !slices.ContainsFunc(docs, func(d *k8sDoc) bool { return d.file == want }) {
			t.Errorf("examples/kubernetes/%s is missing or empty", want)
		}
	}
	return docs
}

// Accessors for decoded YAML.

func yamlStr(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func mapAt(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		m = next
	}
	return m
}

func listAt(m map[string]any, key string) []map[string]any {
	var out []map[string]any
	l, _ := m[key].([]any)
	for _, v := range l {
		if mv, ok := v.(map[string]any); ok {
			out = append(out, mv)
		}
	}
	return out
}

func yamlStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, yamlStr(x))
	}
	return out
}

// podTemplate returns a workload's pod template.
func podTemplate(d *k8sDoc) (map[string]any, bool) {
	switch d.kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		return mapAt(d.obj, "spec", "template"), true
	case "CronJob":
		return mapAt(d.obj, "spec", "jobTemplate", "spec", "template"), true
	}
	return nil, false
}

// podContainer is a container and whether it is an init container.
type podContainer struct {
	c    map[string]any
	init bool
}

func podContainers(spec map[string]any) []podContainer {
	var out []podContainer
	for _, c := range listAt(spec, "initContainers") {
		out = append(out, podContainer{c, true})
	}
	for _, c := range listAt(spec, "containers") {
		out = append(out, podContainer{c, false})
	}
	return out
}

// exampleSecrets reads the Secrets (and ConfigMaps) of the examples:
// name -> key -> value.
func exampleSecrets(t *testing.T, docs []*k8sDoc) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, d := range docs {
		if d.kind != "Secret" && d.kind != "ConfigMap" {
			continue
		}
		if d.kind == "Secret" && d.file != "secret.example.yaml" {
			t.Errorf("%s: Secrets belong in secret.example.yaml, with placeholders", d)
		}
		vals := map[string]string{}
		for _, key := range []string{"stringData", "data"} {
			for k, v := range mapAt(d.obj, key) {
				vals[k] = yamlStr(v)
				if d.kind == "Secret" && !strings.Contains(yamlStr(v), "REPLACE-ME") {
					t.Errorf("%s: %s.%s holds no REPLACE-ME placeholder: the example must not look like a usable secret", d, key, k)
				}
			}
		}
		out[d.name] = vals
	}
	return out
}

// k8sInvocation is one container of a workload, with its environment and
// argv as the kubelet would give them.
type k8sInvocation struct {
	doc        *k8sDoc
	template   map[string]any
	c          map[string]any
	name       string
	init       bool
	image      string
	argv       []string          // command + args, $(VAR) expanded
	env        map[string]string // values, Secrets and field references resolved
	envOrder   []string
	secretVars map[string]bool // variables that come from a Secret
	ports      map[string]int  // containerPort by name (and by number)
}

func (inv *k8sInvocation) String() string {
	return fmt.Sprintf("%s: container %s", inv.doc, inv.name)
}

// podName is what metadata.name resolves to in a pod.
const podName = "greeter-5d8f7c9b4-x2x7q"

func newInvocation(t *testing.T, doc *k8sDoc, tmpl map[string]any, pc podContainer, secrets map[string]map[string]string) *k8sInvocation {
	t.Helper()
	c := pc.c
	inv := &k8sInvocation{doc: doc, template: tmpl, c: c, name: yamlStr(c["name"]), init: pc.init, image: yamlStr(c["image"]),
		env: map[string]string{}, secretVars: map[string]bool{}, ports: map[string]int{}}
	for _, e := range listAt(c, "env") {
		name := yamlStr(e["name"])
		v, isSecret := envValue(t, inv, e, secrets)
		inv.env[name] = v
		inv.envOrder = append(inv.envOrder, name)
		if isSecret {
			inv.secretVars[name] = true
		}
	}
	for _, p := range listAt(c, "ports") {
		n, _ := p["containerPort"].(int)
		if n <= 0 {
			t.Errorf("%s: containerPort %v", inv, p["containerPort"])
			continue
		}
		inv.ports[strconv.Itoa(n)] = n
		if name := yamlStr(p["name"]); name != "" {
			inv.ports[name] = n
		}
	}
	for _, key := range []string{"command", "args"} {
		for _, a := range yamlStrings(c[key]) {
			inv.argv = append(inv.argv, expandK8sVars(t, inv, a))
		}
	}
	return inv
}

// envValue resolves one env entry: a value, a Secret's or ConfigMap's key
// (which must exist in the examples), or a field of the pod.
func envValue(t *testing.T, inv *k8sInvocation, e map[string]any, secrets map[string]map[string]string) (string, bool) {
	t.Helper()
	name := yamlStr(e["name"])
	if v, ok := e["value"]; ok {
		return expandK8sVars(t, inv, yamlStr(v)), false
	}
	from := mapAt(e, "valueFrom")
	for _, ref := range []string{"secretKeyRef", "configMapKeyRef"} {
		if r := mapAt(from, ref); len(r) > 0 {
			v, ok := secrets[yamlStr(r["name"])][yamlStr(r["key"])]
			if !ok {
				t.Errorf("%s: env %s comes from %s %s key %s, which examples/kubernetes does not define", inv, name, ref, yamlStr(r["name"]), yamlStr(r["key"]))
			}
			return v, ref == "secretKeyRef"
		}
	}
	if f := mapAt(from, "fieldRef"); len(f) > 0 {
		switch p := yamlStr(f["fieldPath"]); p {
		case "metadata.name":
			return podName, false
		case "metadata.namespace":
			return "default", false
		case "status.podIP":
			return "10.0.0.7", false
		case "spec.nodeName":
			return "node-1", false
		default:
			t.Errorf("%s: env %s: fieldRef %q: this test does not know that field", inv, name, p)
		}
	}
	t.Errorf("%s: env %s has neither a value nor a valueFrom this test knows", inv, name)
	return "", false
}

var k8sVarRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandK8sVars expands $(VAR) as the kubelet does. A reference to a
// variable the container does not define would stay in the text as it is:
// that is a mistake here.
func expandK8sVars(t *testing.T, inv *k8sInvocation, s string) string {
	t.Helper()
	return k8sVarRef.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		name := ref[2 : len(ref)-1]
		v, ok := inv.env[name]
		if !ok {
			t.Errorf("%s: %q refers to $(%s), which the container's env does not define (before it); the kubelet would leave it as it is", inv, s, name)
			return ref
		}
		return v
	})
}

// isFerry reports whether the container runs ferry: its command is the
// images' entry point, or it has none and its image is built FROM ferry.
func (inv *k8sInvocation) isFerry(entrypoint string, images *exampleImages) bool {
	cmd := yamlStrings(inv.c["command"])
	if len(cmd) > 0 {
		return cmd[0] == entrypoint
	}
	_, ok := images.target[inv.image]
	return ok || strings.HasPrefix(inv.image, "ghcr.io/ferrydb/ferry")
}

// ferryArgs are the arguments after the ferry binary.
func (inv *k8sInvocation) ferryArgs() []string {
	if len(yamlStrings(inv.c["command"])) > 0 {
		return inv.argv[1:]
	}
	return inv.argv
}

// getenv is the container's environment, as ferry's getenv.
func (inv *k8sInvocation) getenv(k string) string { return inv.env[k] }

// knownFerryEnv is every FERRY_* variable ferry reads, from the code: the
// settings table, and every getenv("FERRY_...") call of this package.
func knownFerryEnv(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, s := range settings() {
		known[s.env] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.Ident:
				fn = f.Name
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			}
			if fn != "getenv" && fn != "Getenv" && fn != "LookupEnv" {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(v, "FERRY_") {
					known[v] = true
				}
			}
			return true
		})
	}
	for _, must := range []string{"FERRY_DATABASE_URL", "FERRY_TOKEN", "FERRY_CONFIG", "FERRY_INSTANCE_ID"} {
		if !known[must] {
			t.Fatalf("the set of variables ferry reads, as found in the code, lacks %s: %v", must, known)
		}
	}
	return known
}

// exampleImages are the images examples/kubernetes/greeter.Dockerfile
// builds: image name -> target stage, as its build commands say.
type exampleImages struct {
	df     *dockerfile
	target map[string]string
}

func newExampleImages(t *testing.T, root string) *exampleImages {
	t.Helper()
	file := filepath.Join(root, "examples", "kubernetes", "greeter.Dockerfile")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	im := &exampleImages{df: parseDockerfile(t, file), target: map[string]string{}}
	for _, m := range regexp.MustCompile(`--target (\S+) -t (\S+)`).FindAllStringSubmatch(string(data), -1) {
		im.target[m[2]] = m[1]
	}
	if len(im.target) < 2 {
		t.Fatalf("greeter.Dockerfile's comments name %d images (docker build ... --target T -t IMAGE); want the migrations and the app image", len(im.target))
	}
	return im
}

// contents returns the paths a target puts into the image (its COPY
// destinations and those of the stages it is built FROM), and whether the
// target is built FROM ferry's image.
func (im *exampleImages) contents(t *testing.T, target string) ([]string, bool) {
	t.Helper()
	var dests []string
	for target != "" {
		s := im.df.stage(t, target)
		for _, c := range s.copies() {
			dests = append(dests, c.dest)
		}
		target = ""
		if slices.ContainsFunc(im.df.stages, func(o *dockerStage) bool { return o.name == s.image }) {
			target = s.image
		} else {
			img := os.Expand(s.image, func(k string) string { return strings.Trim(im.df.globalArgs[k], `"`) })
			return dests, strings.HasPrefix(img, "ghcr.io/ferrydb/ferry")
		}
	}
	return dests, false
}

// holds reports whether an image target has the file or directory p.
func (im *exampleImages) holds(t *testing.T, target, p string) bool {
	dests, _ := im.contents(t, target)
	for _, d := range dests {
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// app copies what a target puts into /app from the build context into a
// temporary directory: the image's working directory, to run ferry in.
func (im *exampleImages) app(t *testing.T, root, target string) string {
	t.Helper()
	dir := t.TempDir()
	n := 0
	for _, c := range im.df.stage(t, target).copies() {
		rel, ok := strings.CutPrefix(c.dest, "/app/")
		if c.from != "" || !ok || len(c.srcs) != 1 {
			continue
		}
		src, dst := filepath.Join(root, c.srcs[0]), filepath.Join(dir, rel)
		st, err := os.Stat(src)
		if err != nil {
			t.Fatalf("greeter.Dockerfile: COPY %s %s: %v", c.srcs[0], c.dest, err)
		}
		if st.IsDir() {
			err = os.CopyFS(dst, os.DirFS(src))
		} else {
			var data []byte
			if data, err = os.ReadFile(src); err == nil {
				err = os.WriteFile(dst, data, 0o644)
			}
		}
		if err != nil {
			t.Fatalf("greeter.Dockerfile: COPY %s %s: %v", c.srcs[0], c.dest, err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("greeter.Dockerfile: target %s copies nothing into /app", target)
	}
	return dir
}

// checkFerryInvocation checks one ferry container against the CLI.
func checkFerryInvocation(t *testing.T, inv *k8sInvocation, known map[string]bool, images *exampleImages, seen map[string]int) {
	t.Helper()
	args := inv.ferryArgs()
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: inv.getenv}
	root := a.rootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Errorf("%s: ferry %q: no such command (%v)", inv, args, err)
		return
	}
	if cmd.HasSubCommands() || !cmd.Runnable() {
		t.Errorf("%s: ferry %q: %s needs a subcommand", inv, args, cmd.CommandPath())
		return
	}
	seen[cmd.CommandPath()]++
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: ferry %q: %v (see `%s --help`)", inv, args, err, cmd.CommandPath())
		return
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Errorf("%s: ferry %q: %v", inv, args, err)
	}
	if f := cmd.Flags().Lookup("force"); f != nil && f.Changed {
		t.Errorf("%s: ferry %q: --force applies contract migrations while the releases they break still run; a deploy step never needs it", inv, args)
	}
	if cmd.Name() == "launch" && len(cmd.Flags().Args()) > 0 && cmd.ArgsLenAtDash() != 0 {
		t.Errorf("%s: ferry %q: the release's arguments must come after --", inv, args)
	}
	for _, name := range inv.envOrder {
		if strings.HasPrefix(name, "FERRY_") && !known[name] {
			t.Errorf("%s: env %s: ferry reads no such variable (it reads %s)", inv, name, strings.Join(sortedKeys(known), ", "))
		}
	}
	// Resolve the flags and variables as ferry does: a bad value (a
	// duration, a lint mode, a listen address, a database URL) is an error.
	cfg, err := resolve(cmd.Flags(), inv.getenv)
	if err != nil {
		t.Errorf("%s: ferry %q: %v", inv, args, err)
		return
	}
	a.cfg = cfg
	if err := a.setupLogger(); err != nil {
		t.Errorf("%s: %v", inv, err)
	}
	if cfg.databaseIsDefault() {
		t.Errorf("%s: ferry %q has no database: set FERRY_DATABASE_URL (the default, ./ferry.db, is not writable in the image)", inv, args)
	} else if _, err := a.databaseURL(); err != nil {
		t.Errorf("%s: the database URL (from %s): %v", inv, cfg.databaseFrom, err)
	}

	// What the image must hold: the migrations, the manifest, the
	// release's command.
	target, built := images.target[inv.image]
	if !built {
		t.Errorf("%s: image %s is not one that greeter.Dockerfile builds (its comments' docker build ... -t IMAGE)", inv, inv.image)
		return
	}
	if _, fromFerry := images.contents(t, target); !fromFerry {
		t.Errorf("%s: image %s (target %s) is not built FROM ferry's image", inv, inv.image, target)
	}
	if d := path.Join("/app", cfg.Dir); !images.holds(t, target, d) {
		t.Errorf("%s: image %s (target %s) does not hold the migrations at %s", inv, inv.image, target, d)
	}
	if f := cmd.Flags().Lookup("release"); f != nil && f.Changed {
		if cfg.ReleasesFile == "" && !images.holds(t, target, "/app/ferry.yaml") {
			t.Errorf("%s: --release needs the release manifest, and image %s holds no /app/ferry.yaml", inv, inv.image)
		}
		man, err := cfg.manifest()
		if err != nil {
			t.Fatalf("%s: the release manifest: %v", inv, err)
		}
		i := slices.IndexFunc(man.Releases, func(r release.Release) bool { return r.Name == f.Value.String() })
		if i < 0 {
			t.Errorf("%s: --release %s: %s has no such release", inv, f.Value.String(), man.Source)
		} else if cmd.Name() == "launch" {
			argv := append(slices.Clone(man.Releases[i].Command), cmd.Flags().Args()...)
			if len(argv) == 0 {
				t.Errorf("%s: release %s has no command and ferry launch no arguments", inv, f.Value.String())
			} else if p := path.Join("/app", argv[0]); !path.IsAbs(argv[0]) && !images.holds(t, target, p) {
				t.Errorf("%s: release %s runs %s, and image %s (target %s) does not hold %s", inv, f.Value.String(), argv[0], inv.image, target, p)
			}
			// The release listens on the port the container declares.
			for name, port := range inv.ports {
				if _, err := strconv.Atoi(name); err == nil && !strings.Contains(strings.Join(argv, " "), ":"+name) {
					t.Errorf("%s: containerPort %d does not appear in the release's arguments %q", inv, port, argv)
				}
			}
		}
		if tag := inv.image[strings.LastIndex(inv.image, ":")+1:]; tag != f.Value.String() {
			t.Errorf("%s: --release %s runs in image %s: a release's pods run that release's image", inv, f.Value.String(), inv.image)
		}
	}
	serve := cmd.Name() == "serve"
	if f := cmd.Flags().Lookup("serve"); f != nil && f.Value.String() == "true" {
		serve = true
	}
	if serve {
		checkServe(t, inv, a, cmd)
	} else {
		for _, p := range probes(inv) {
			if len(mapAt(p.probe, "httpGet")) > 0 {
				t.Errorf("%s: %s probe: HTTP, but the container runs ferry %s, which serves nothing", inv, p.kind, cmd.Name())
			}
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// probe is one of a container's probes.
type probe struct {
	kind  string
	probe map[string]any
}

func probes(inv *k8sInvocation) []probe {
	var out []probe
	for _, k := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		if p := mapAt(inv.c, k); len(p) > 0 {
			out = append(out, probe{k, p})
		}
	}
	return out
}

// port resolves a probe's or Service's port (a name or a number) to a
// containerPort.
func (inv *k8sInvocation) port(v any) (int, bool) {
	n, ok := inv.ports[yamlStr(v)]
	return n, ok
}

// checkServe checks a container that runs the migration service: where
// it listens, its token, and what its probes and the metrics scrape get
// from the real service.
func checkServe(t *testing.T, inv *k8sInvocation, a *app, cmd *cobra.Command) {
	t.Helper()
	listen := a.cfg.Listen
	if len(listen) == 0 {
		listen = []string{server.DefaultAddr}
	}
	listenPorts := map[int]bool{}
	for _, addr := range listen {
		if server.IsLoopback(addr) {
			t.Errorf("%s: ferry serve listens on %s, loopback: nothing outside the pod reaches it (--listen :PORT)", inv, addr)
		}
		_, p, err := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		if err != nil || n == 0 {
			t.Errorf("%s: listen address %q", inv, addr)
			continue
		}
		listenPorts[n] = true
		if _, ok := inv.ports[p]; !ok {
			t.Errorf("%s: ferry serve listens on port %s, which is not a containerPort of the container (%v)", inv, p, inv.ports)
		}
	}
	// The token in the example Secret is a placeholder that ferry refuses,
	// so that an unedited copy does not serve upgrades behind a token
	// anyone can read.
	tokens, tokErr := a.tokens()
	if inv.secretVars["FERRY_TOKEN"] && tokErr == nil {
		t.Errorf("%s: the example token %q is accepted by ferry serve: make the placeholder one that it refuses", inv, inv.env["FERRY_TOKEN"])
	}
	haveToken := len(tokens) > 0 || tokErr != nil && (inv.env["FERRY_TOKEN"] != "" || a.cfg.TokenFile != "")
	if err := server.CheckListen(listen, haveToken, a.cfg.ReadOnly); err != nil {
		t.Errorf("%s: %v", inv, err)
	}

	// The real service, as the container's flags and variables configure
	// it, on a SQLite database with every migration pending.
	env := map[string]string{}
	for k, v := range inv.env {
		env[k] = v
	}
	if env["FERRY_TOKEN"] != "" {
		env["FERRY_TOKEN"] = serveToken
	}
	a.getenv = func(k string) string { return env[k] }
	if tokErr != nil {
		if a.cfg.TokenFile != "" {
			t.Fatalf("%s: --token-file: this test gives only FERRY_TOKEN a usable value", inv)
		}
	}
	a.cfg.Database = "sqlite://" + filepath.Join(t.TempDir(), "serve.db")
	a.cfg.Listen = []string{"127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd.SetContext(ctx)
	svc, err := a.prepareService(cmd)
	if err != nil {
		t.Errorf("%s: ferry serve does not start: %v", inv, err)
		return
	}
	closeAll(svc.listeners)
	defer svc.close()
	defer svc.srv.Close()
	h := svc.srv.Handler()
	get := func(p string, port int, headers map[string]string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, p, nil)
		// The kubelet and Prometheus ask for the pod's IP and port.
		req.Host = net.JoinHostPort("10.0.0.7", strconv.Itoa(port))
		req.Header.Set("User-Agent", "kube-probe/1.33")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz", 0, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("%s: /readyz answers %d with every migration pending, want 503 (what this test assumes): %s", inv, code, body)
	}
	kinds := map[string]bool{}
	for _, p := range probes(inv) {
		hg := mapAt(p.probe, "httpGet")
		if len(hg) == 0 {
			t.Errorf("%s: %s: ferry serve answers HTTP: use an httpGet probe", inv, p.kind)
			continue
		}
		kinds[p.kind] = true
		port, ok := inv.port(hg["port"])
		if !ok {
			t.Errorf("%s: %s: port %v is not a containerPort of the container", inv, p.kind, hg["port"])
		} else if !listenPorts[port] {
			t.Errorf("%s: %s: port %d is not one ferry serve listens on (%v)", inv, p.kind, port, listen)
		}
		if s := yamlStr(hg["scheme"]); s != "" && s != "HTTP" {
			t.Errorf("%s: %s: scheme %s; ferry serve speaks HTTP", inv, p.kind, s)
		}
		p0 := yamlStr(hg["path"])
		if p.kind != "livenessProbe" && strings.HasPrefix(p0, "/readyz") {
			t.Errorf("%s: %s: %s answers 503 while migrations are pending, which would take the service that applies them out of its Service; probe /ping or /healthz", inv, p.kind, p0)
		}
		headers := map[string]string{}
		for _, hh := range listAt(hg, "httpHeaders") {
			headers[yamlStr(hh["name"])] = yamlStr(hh["value"])
		}
		if code, body := get(p0, port, headers); code != http.StatusOK {
			t.Errorf("%s: %s: GET %s answers %d with migrations pending, want 200: %.200s", inv, p.kind, p0, code, body)
		}
	}
	for _, want := range []string{"livenessProbe", "readinessProbe"} {
		if !kinds[want] {
			t.Errorf("%s: ferry serve has no HTTP %s", inv, want)
		}
	}
	// Metrics, scraped by annotation.
	ann := mapAt(inv.template, "metadata", "annotations")
	if yamlStr(ann["prometheus.io/scrape"]) != "true" {
		t.Errorf("%s: the pod has no prometheus.io/scrape: \"true\" annotation", inv)
		return
	}
	port, err := strconv.Atoi(yamlStr(ann["prometheus.io/port"]))
	if err != nil || !listenPorts[port] {
		t.Errorf("%s: prometheus.io/port %q is not a port ferry serve listens on (%v)", inv, yamlStr(ann["prometheus.io/port"]), listen)
	}
	mp := yamlStr(ann["prometheus.io/path"])
	if mp == "" {
		mp = "/metrics" // Prometheus's default
	}
	if code, body := get(mp, port, nil); code != http.StatusOK || !strings.Contains(body, "ferry_schema_pending_migrations") {
		t.Errorf("%s: prometheus.io/path: GET %s answers %d without ferry's metrics: %.200s", inv, mp, code, body)
	}
}

// checkPodPolicy checks what every pod of the examples does: no service
// account token, non-root.
func checkPodPolicy(t *testing.T, doc *k8sDoc, spec map[string]any) {
	t.Helper()
	if spec["automountServiceAccountToken"] != false {
		t.Errorf("%s: set automountServiceAccountToken: false (ferry does not talk to the Kubernetes API)", doc)
	}
	sc := mapAt(spec, "securityContext")
	if sc["runAsNonRoot"] != true {
		t.Errorf("%s: the pod's securityContext lacks runAsNonRoot: true", doc)
	}
	if u, ok := sc["runAsUser"].(int); ok && u == 0 {
		t.Errorf("%s: runAsUser 0", doc)
	}
}

func checkContainerPolicy(t *testing.T, inv *k8sInvocation) {
	t.Helper()
	sc := mapAt(inv.c, "securityContext")
	if sc["readOnlyRootFilesystem"] != true {
		t.Errorf("%s: securityContext lacks readOnlyRootFilesystem: true", inv)
	}
	if sc["allowPrivilegeEscalation"] != false {
		t.Errorf("%s: securityContext lacks allowPrivilegeEscalation: false", inv)
	}
	if !slices.Contains(yamlStrings(mapAt(sc, "capabilities")["drop"]), "ALL") {
		t.Errorf("%s: securityContext does not drop ALL capabilities", inv)
	}
	if sc["runAsNonRoot"] == false || sc["runAsUser"] == 0 {
		t.Errorf("%s: the container runs as root", inv)
	}
	res := mapAt(inv.c, "resources")
	for _, k := range []string{"requests.cpu", "requests.memory", "limits.memory"} {
		group, name, _ := strings.Cut(k, ".")
		if yamlStr(mapAt(res, group)[name]) == "" {
			t.Errorf("%s: no resources.%s", inv, k)
		}
	}
	if len(inv.argv) == 0 && inv.image == "" {
		t.Errorf("%s: no image", inv)
	}
}

// checkJob checks that a Job is bounded, cleaned up and named after its
// release, and that its pod failure policy names a real container.
func checkJob(t *testing.T, doc *k8sDoc, spec map[string]any) {
	t.Helper()
	js := mapAt(doc.obj, "spec")
	for _, k := range []string{"backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"} {
		if _, ok := js[k].(int); !ok {
			t.Errorf("%s: spec.%s is not set", doc, k)
		}
	}
	rp := yamlStr(spec["restartPolicy"])
	if rp != "Never" && rp != "OnFailure" {
		t.Errorf("%s: restartPolicy %q: a Job's pods need Never or OnFailure", doc, rp)
	}
	names := map[string]bool{}
	for _, c := range podContainers(spec) {
		names[yamlStr(c.c["name"])] = true
		img := yamlStr(c.c["image"])
		if tag := img[strings.LastIndex(img, ":")+1:]; !strings.HasSuffix(doc.name, "-"+tag) {
			t.Errorf("%s: a Job per release: its name should end with the release (-%s, the tag of %s)", doc, tag, img)
		}
	}
	rules := listAt(mapAt(js, "podFailurePolicy"), "rules")
	if len(rules) > 0 && rp != "Never" {
		t.Errorf("%s: podFailurePolicy needs restartPolicy: Never", doc)
	}
	for _, r := range rules {
		on := mapAt(r, "onExitCodes")
		if len(on) == 0 {
			continue
		}
		if c := yamlStr(on["containerName"]); c != "" && !names[c] {
			t.Errorf("%s: podFailurePolicy names container %q, and the Job has %v: the rule never applies", doc, c, sortedKeys(names))
		}
		codes := yamlStrings(on["values"])
		if yamlStr(r["action"]) == "FailJob" && !slices.Equal(codes, []string{strconv.Itoa(exitUsage)}) {
			t.Errorf("%s: podFailurePolicy fails the Job at once on exit codes %v; ferry's exit code for what a retry cannot fix is %d (1 is any failure, worth a retry)", doc, codes, exitUsage)
		}
	}
}

// checkService checks that a Service selects a workload's pods and targets
// a port they declare.
func checkService(t *testing.T, svc *k8sDoc, docs []*k8sDoc) {
	t.Helper()
	sel := mapAt(svc.obj, "spec", "selector")
	if len(sel) == 0 {
		t.Errorf("%s: no selector", svc)
		return
	}
	var pods []map[string]any
	for _, d := range docs {
		tmpl, ok := podTemplate(d)
		if !ok || d.kind == "Job" || d.kind == "CronJob" {
			continue
		}
		labels := mapAt(tmpl, "metadata", "labels")
		match := true
		for k, v := range sel {
			if yamlStr(labels[k]) != yamlStr(v) {
				match = false
			}
		}
		if match {
			pods = append(pods, tmpl)
		}
	}
	if len(pods) == 0 {
		t.Errorf("%s: selects no workload's pods (selector %v)", svc, sel)
		return
	}
	for _, p := range listAt(mapAt(svc.obj, "spec"), "ports") {
		target := yamlStr(p["targetPort"])
		if target == "" {
			target = yamlStr(p["port"])
		}
		for _, tmpl := range pods {
			found := false
			for _, c := range podContainers(mapAt(tmpl, "spec")) {
				for _, cp := range listAt(c.c, "ports") {
					if yamlStr(cp["name"]) == target || yamlStr(cp["containerPort"]) == target {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("%s: targetPort %s is not a port of the pods it selects", svc, target)
			}
		}
	}
}

// runDeploySequence runs the manifests' ferry commands in the order of a
// deploy (docs/kubernetes.md), with the ferry binary, on a SQLite
// database, in a copy of the migrations image's /app:
//
//  1. a new pod's init container (ferry wait) waits: nothing is applied;
//  2. the migration Job applies the expand migrations;
//     both releases of the manifest can run (the rollout has v1 and v2 side by side);
//  3. the init container passes;
//  4. the contract Job applies the rest: the schema is up to date.
func runDeploySequence(t *testing.T, appDir string, invs []*k8sInvocation) {
	t.Helper()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "deploy.db")
	pick := func(file string, init bool) *k8sInvocation {
		var found *k8sInvocation
		for _, inv := range invs {
			if inv.doc.file == file && inv.init == init {
				if found != nil {
					t.Fatalf("%s: more than one ferry container; this test runs one", file)
				}
				found = inv
			}
		}
		if found == nil {
			t.Fatalf("%s: no ferry container (init: %v)", file, init)
		}
		return found
	}
	run := func(inv *k8sInvocation, extra ...string) result {
		t.Helper()
		cmd := exec.Command(ferryBin, append(slices.Clone(inv.ferryArgs()), extra...)...)
		cmd.Dir = appDir
		cmd.Env = cleanEnv()
		for _, k := range inv.envOrder {
			cmd.Env = append(cmd.Env, k+"="+inv.env[k])
		}
		cmd.Env = append(cmd.Env, "FERRY_DATABASE_URL="+dbURL)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		hung := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
		defer hung.Stop()
		err := cmd.Wait()
		r := result{stdout: out.String(), stderr: errb.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	status := func() (doc struct {
		Current  int64   `json:"current_version"`
		UpToDate bool    `json:"is_up_to_date"`
		Pending  []int64 `json:"pending"`
	}) {
		t.Helper()
		r := runFerry(t, appDir, dbURL, "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("ferry status --json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		return doc
	}
	wait := pick("app-deployment.yaml", true)
	migrateJob := pick("migrate-job.yaml", false)
	contractJob := pick("contract-job.yaml", false)

	// 1. Before the migration Job, a new pod waits (cut short here).
	if r := run(wait, "--timeout", "1s"); r.code != 1 || !strings.Contains(r.stderr, "timed out") {
		t.Fatalf("%s before the migration Job: exit %d, want 1 after its timeout:\n%s%s", wait, r.code, r.stdout, r.stderr)
	}
	// 2. The migration Job.
	if r := run(migrateJob); r.code != 0 {
		t.Fatalf("%s: exit %d:\n%s%s", migrateJob, r.code, r.stdout, r.stderr)
	}
	st := status()
	if st.UpToDate || len(st.Pending) == 0 {
		t.Errorf("%s applied every migration (now at %d): the contract migrations belong to the contract Job, after the old release left", migrateJob, st.Current)
	}
	r := runFerry(t, appDir, dbURL, "release", "list", "--json")
	var list struct {
		Releases []struct {
			Name       string `json:"name"`
			Compatible bool   `json:"compatible"`
			Reason     string `json:"reason"`
		} `json:"releases"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Releases) < 2 {
		t.Fatalf("ferry release list --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	for _, rel := range list.Releases {
		if !rel.Compatible {
			t.Errorf("after %s, release %s cannot run (%s): during the rollout the old and the new release run side by side", migrateJob, rel.Name, rel.Reason)
		}
	}
	// 3. The init container passes.
	if r := run(wait); r.code != 0 {
		t.Fatalf("%s after the migration Job: exit %d:\n%s%s", wait, r.code, r.stdout, r.stderr)
	}
	// 4. The contract Job, once the old release has left.
	if r := run(contractJob); r.code != 0 {
		t.Fatalf("%s: exit %d:\n%s%s", contractJob, r.code, r.stdout, r.stderr)
	}
	if st := status(); !st.UpToDate {
		t.Errorf("after %s the schema is at %d with %v pending", contractJob, st.Current, st.Pending)
	}
}
