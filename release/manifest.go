// Package release owns what ferry knows about the application's releases:
// the release manifest, the rule that says which releases can run on a
// schema version, launching the newest compatible release as a child
// process, waiting until the database can run a release, and the fleet
// registry of running instances that keeps contract migrations from
// breaking releases that still run.
//
// A fleet never switches versions at once: during a rolling or blue/green
// deploy the old and the new release run side by side against one
// database. Migrations are therefore expand migrations (the default: older
// releases keep working) or contract migrations (annotated
// `-- +ferry contract`: older releases break). Compatible states the rule;
// Gate is a migrate.Gate that holds back a contract migration while a
// release it would break still has live instances (see Register).
//
// The package knows nothing about HTTP or the command line; the ferry CLI
// and the migration service call it.
package release

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Release is one release of the application, as listed in the manifest.
type Release struct {
	// Name identifies the release ("v2", "2026.11.3", a git tag, ...).
	Name string `yaml:"name" json:"name"`
	// Schema is the schema version the release was built against: the
	// version of the newest migration its code knows about.
	Schema int64 `yaml:"schema" json:"schema"`
	// MinSchema is the oldest schema version the release can run on
	// (0: the same as Schema). A release that reads a new column needs at
	// least the migration that adds it.
	MinSchema int64 `yaml:"min_schema,omitempty" json:"min_schema,omitempty"`
	// Command starts the release (argv, not a shell string). ferry launch
	// appends the arguments given after "--".
	Command []string `yaml:"command,omitempty" json:"command,omitempty"`
}

// Min returns the oldest schema version the release runs on.
func (r Release) Min() int64 {
	if r.MinSchema > 0 {
		return r.MinSchema
	}
	return r.Schema
}

// String names the release and the schema it was built against, for
// messages.
func (r Release) String() string {
	if r.Min() != r.Schema {
		return fmt.Sprintf("%s (built against schema %d, runs on %d and later)", r.Name, r.Schema, r.Min())
	}
	return fmt.Sprintf("%s (built against schema %d)", r.Name, r.Schema)
}

// Manifest lists the releases of an application. Its YAML form is the
// releases section of ferry.yaml, or a file of its own with the same
// section:
//
//	releases:
//	  - name: v1
//	    schema: 1
//	    command: [bin/greeter-v1]
//	  - name: v2
//	    schema: 3
//	    min_schema: 2
//	    command: [bin/greeter-v2, --verbose]
//
// Releases are compared by Schema: the newest release is the one built
// against the highest schema version; among releases built against the same
// version, the one listed last.
type Manifest struct {
	Releases []Release `yaml:"releases" json:"releases"`
	// Source names where the manifest was read from, for messages.
	Source string `yaml:"-" json:"-"`
}

// ErrBadManifest is wrapped by the errors of ParseManifest, LoadManifest and
// Validate.
var ErrBadManifest = errors.New("invalid release manifest")

// ErrUnknownRelease is returned when a release name is not in the manifest.
var ErrUnknownRelease = errors.New("unknown release")

// ParseManifest reads a manifest file's content: a YAML document with a
// releases list. Unknown keys are errors, so a typo is not ignored. source
// names the file in messages.
func ParseManifest(data []byte, source string) (*Manifest, error) {
	m := &Manifest{}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(m); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w %s: %w", ErrBadManifest, source, err)
	}
	m.Source = source
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// LoadManifest reads and validates the manifest file at path.
func LoadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("release manifest: %w", err)
	}
	return ParseManifest(data, path)
}

// Validate checks that every release has a unique name and a schema
// version, and that its minimum schema is not above the schema it was built
// against.
func (m *Manifest) Validate() error {
	var errs []string
	seen := map[string]bool{}
	for i, r := range m.Releases {
		what := fmt.Sprintf("release %d", i+1)
		if r.Name != "" {
			what = fmt.Sprintf("release %q", r.Name)
		}
		switch {
		case strings.TrimSpace(r.Name) == "":
			errs = append(errs, fmt.Sprintf("%s has no name", what))
		case seen[r.Name]:
			errs = append(errs, fmt.Sprintf("%s is listed twice", what))
		}
		seen[r.Name] = true
		if r.Schema <= 0 {
			errs = append(errs, fmt.Sprintf("%s has no schema: set schema to the version of the newest migration it was built with", what))
		}
		if r.MinSchema < 0 || r.MinSchema > r.Schema {
			errs = append(errs, fmt.Sprintf("%s: min_schema %d must be between 1 and its schema %d (leave it out to mean the same as schema)", what, r.MinSchema, r.Schema))
		}
		for _, a := range r.Command {
			if a == "" {
				errs = append(errs, fmt.Sprintf("%s: command has an empty argument", what))
				break
			}
		}
	}
	if len(errs) > 0 {
		src := m.Source
		if src == "" {
			src = "releases"
		}
		return fmt.Errorf("%w %s: %s", ErrBadManifest, src, strings.Join(errs, "; "))
	}
	return nil
}

// Release returns the release called name.
func (m *Manifest) Release(name string) (Release, error) {
	for _, r := range m.Releases {
		if r.Name == name {
			return r, nil
		}
	}
	names := make([]string, len(m.Releases))
	for i, r := range m.Releases {
		names[i] = r.Name
	}
	if len(names) == 0 {
		return Release{}, fmt.Errorf("%w %q: the manifest lists no releases (add a releases section to ferry.yaml, or pass --releases FILE)", ErrUnknownRelease, name)
	}
	return Release{}, fmt.Errorf("%w %q: the manifest lists %s", ErrUnknownRelease, name, strings.Join(names, ", "))
}

// newer reports whether release i of the manifest is newer than release j.
func (m *Manifest) newer(i, j int) bool {
	a, b := m.Releases[i], m.Releases[j]
	if a.Schema != b.Schema {
		return a.Schema > b.Schema
	}
	return i > j
}
