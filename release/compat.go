package release

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/migrate"
)

// Problem says why a release cannot run on a schema version.
type Problem string

// The problems Compatible reports.
const (
	// ProblemNone: the release can run.
	ProblemNone Problem = ""
	// ProblemBehind: the database is older than the release's minimum
	// schema. Applying pending migrations fixes it.
	ProblemBehind Problem = "behind"
	// ProblemContract: a contract migration above the schema the release
	// was built against is applied. Waiting never fixes it; only a newer
	// release (or reverting the migration) does.
	ProblemContract Problem = "contract"
	// ProblemUnknownSchema: the release is built against a version that no
	// loaded migration has (a typo in the manifest, or migration files
	// older than the manifest).
	ProblemUnknownSchema Problem = "unknown_schema"
	// ProblemUnknownDatabase: the database is at a version above the
	// release's schema that no loaded migration has, so ferry cannot tell
	// whether a contract migration broke the release.
	ProblemUnknownDatabase Problem = "unknown_database"
)

// Database is what the compatibility rule needs to know about a database.
type Database struct {
	// Version is its schema version: the highest applied migration.
	Version int64
	// Missing are applied versions that no loaded migration has (their
	// file was deleted or renamed): ferry cannot tell whether they were
	// contract migrations. Status.Missing lists them.
	Missing []int64
}

// DatabaseOf describes the database that s reports on.
func DatabaseOf(s *migrate.Status) Database {
	d := Database{Version: s.CurrentVersion}
	for _, a := range s.Missing {
		d.Missing = append(d.Missing, a.Version)
	}
	return d
}

// Verdict is the answer of Compatible for one release.
type Verdict struct {
	Release Release `json:"release"`
	// Database is the schema version the release was checked against.
	Database int64 `json:"database_version"`
	// OK: the release can run on Database.
	OK      bool    `json:"compatible"`
	Problem Problem `json:"problem,omitempty"`
	// Contract is the contract migration that breaks the release
	// (ProblemContract): the lowest one above Release.Schema.
	Contract *migrate.Migration `json:"-"`
	// Reason explains a problem for people, naming the versions involved
	// and what to do next; empty when OK.
	Reason string `json:"reason,omitempty"`
}

// Final reports whether waiting for migrations can never make the release
// compatible (the schema only moves forward, so a contract migration that
// broke it stays; an unknown version needs other migration files).
func (v Verdict) Final() bool { return !v.OK && v.Problem != ProblemBehind }

// Compatible applies ferry's compatibility rule: a release built against
// schema V runs on a database at version D when
//
//   - D >= its minimum schema (MinSchema, default V), and
//   - no contract migration lies in (V, D].
//
// Expand migrations above V never break it. migrations are the loaded
// migrations (in any order); the rule needs them to know which versions are
// contract migrations. Unknown versions are refused rather than guessed:
//
//   - V must be the version of a loaded migration; otherwise the release is
//     not compatible (ProblemUnknownSchema), whatever D is.
//   - When D > V and D is not the version of a loaded migration (the
//     database is ahead of these migration files), or an applied migration
//     in (V, D] has no loaded file (db.Missing), ferry cannot see every
//     migration in (V, D], so the release is not compatible
//     (ProblemUnknownDatabase), unless a known contract migration in that
//     range already decides it (ProblemContract).
//
// D = 0 is the empty schema, on which no release runs (V is at least 1).
func Compatible(r Release, db Database, migrations []*migrate.Migration) Verdict {
	return newIndex(migrations).compatible(r, db)
}

// index is what the rule needs to know about a migration set: which
// versions exist and where the contract migrations are.
type index struct {
	known     map[int64]bool
	contracts []*migrate.Migration // in version order
	newest    int64
}

func newIndex(migrations []*migrate.Migration) *index {
	x := &index{known: make(map[int64]bool, len(migrations))}
	for _, m := range migrations {
		x.known[m.Version] = true
		x.newest = max(x.newest, m.Version)
		if m.Contract {
			x.contracts = append(x.contracts, m)
		}
	}
	slices.SortFunc(x.contracts, func(a, b *migrate.Migration) int { return cmp.Compare(a.Version, b.Version) })
	return x
}

// firstContract returns the lowest contract migration in (v, d], or nil.
func (x *index) firstContract(v, d int64) *migrate.Migration {
	i, _ := slices.BinarySearchFunc(x.contracts, v+1, func(m *migrate.Migration, t int64) int { return cmp.Compare(m.Version, t) })
	if i < len(x.contracts) && x.contracts[i].Version <= d {
		return x.contracts[i]
	}
	return nil
}

// firstMissing returns the lowest applied version in (v, d] that has no
// loaded migration, or 0.
func (x *index) firstMissing(db Database, v int64) int64 {
	var first int64
	for _, m := range db.Missing {
		if m > v && m <= db.Version && !x.known[m] && (first == 0 || m < first) {
			first = m
		}
	}
	return first
}

func (x *index) compatible(r Release, db Database) Verdict {
	d := db.Version
	v := Verdict{Release: r, Database: d}
	contract := x.firstContract(r.Schema, d)
	missing := x.firstMissing(db, r.Schema)
	switch {
	case !x.known[r.Schema]:
		v.Problem = ProblemUnknownSchema
		if x.newest == 0 {
			v.Reason = fmt.Sprintf("release %s is built against schema %d, but no migrations are loaded: point ferry at the migrations directory (--dir)", r.Name, r.Schema)
		} else {
			v.Reason = fmt.Sprintf("release %s is built against schema %d, but no loaded migration has that version (the newest is %d): fix the manifest, or run ferry with the migration files up to %d", r.Name, r.Schema, x.newest, r.Schema)
		}
	case d < r.Min():
		v.Problem = ProblemBehind
		v.Reason = fmt.Sprintf("release %s needs schema version %d or later, and the database is at %d: apply the migrations up to %d (ferry up)", r.Name, r.Min(), d, r.Min())
	case contract != nil:
		v.Problem, v.Contract = ProblemContract, contract
		v.Reason = fmt.Sprintf("contract migration %s is applied (the database is at %d) and breaks release %s, built against schema %d; only releases built against schema %d or later run here",
			contract, d, r.Name, r.Schema, contract.Version)
	case d > r.Schema && !x.known[d]:
		v.Problem = ProblemUnknownDatabase
		v.Reason = fmt.Sprintf("the database is at version %d, which none of the loaded migrations has (the newest is %d), so ferry cannot tell whether a contract migration above %d breaks release %s: run ferry with the migration files up to %d",
			d, x.newest, r.Schema, r.Name, d)
	case missing != 0:
		v.Problem = ProblemUnknownDatabase
		v.Reason = fmt.Sprintf("migration %d is applied but none of the loaded migrations has it (its file is gone), so ferry cannot tell whether it is a contract migration that breaks release %s, built against schema %d: restore its file to the migrations directory",
			missing, r.Name, r.Schema)
	default:
		v.OK = true
	}
	return v
}

// Evaluate applies Compatible to every release of the manifest, in manifest
// order.
func (m *Manifest) Evaluate(db Database, migrations []*migrate.Migration) []Verdict {
	x := newIndex(migrations)
	out := make([]Verdict, len(m.Releases))
	for i, r := range m.Releases {
		out[i] = x.compatible(r, db)
	}
	return out
}

// ErrNoneCompatible is wrapped by *NoneCompatibleError.
var ErrNoneCompatible = errors.New("no compatible release")

// NoneCompatibleError is returned by NewestCompatible when no release of the
// manifest can run on the database's schema version.
type NoneCompatibleError struct {
	Database int64
	// Verdicts explain each release, in manifest order.
	Verdicts []Verdict
	Source   string
}

func (e *NoneCompatibleError) Error() string {
	src := ""
	if e.Source != "" {
		src = " in " + e.Source
	}
	if len(e.Verdicts) == 0 {
		return fmt.Sprintf("no release is compatible with schema version %d: the manifest%s lists no releases (add a releases section to ferry.yaml, or pass --releases FILE)", e.Database, src)
	}
	parts := make([]string, len(e.Verdicts))
	for i, v := range e.Verdicts {
		parts[i] = fmt.Sprintf("%s: %s", v.Release, v.Reason)
	}
	return fmt.Sprintf("no release%s is compatible with schema version %d:\n  %s", src, e.Database, strings.Join(parts, "\n  "))
}

func (e *NoneCompatibleError) Unwrap() error { return ErrNoneCompatible }

// NewestCompatible returns the newest release of the manifest that runs on
// schema version d (newest: built against the highest schema version; among
// equals, listed last). When none does it returns a *NoneCompatibleError
// that explains every release.
func (m *Manifest) NewestCompatible(db Database, migrations []*migrate.Migration) (Release, error) {
	verdicts := m.Evaluate(db, migrations)
	best := -1
	for i, v := range verdicts {
		if v.OK && (best < 0 || m.newer(i, best)) {
			best = i
		}
	}
	if best < 0 {
		return Release{}, &NoneCompatibleError{Database: db.Version, Verdicts: verdicts, Source: m.Source}
	}
	return m.Releases[best], nil
}

// Version is what the migration service answers on GET /version: the name
// of the newest release of man compatible with the database's current
// schema version or, when man is nil or lists no releases, that schema
// version in decimal. When releases are listed but none is compatible, it
// returns a *NoneCompatibleError.
func Version(ctx context.Context, m *migrate.Migrator, man *Manifest) (string, error) {
	s, err := m.StatusWith(ctx, migrate.StatusOptions{Applied: -1})
	if err != nil {
		return "", err
	}
	if man == nil || len(man.Releases) == 0 {
		return strconv.FormatInt(s.CurrentVersion, 10), nil
	}
	if err := m.Check(); err != nil {
		return "", err
	}
	r, err := man.NewestCompatible(DatabaseOf(s), m.Migrations())
	if err != nil {
		return "", err
	}
	return r.Name, nil
}
