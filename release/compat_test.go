package release_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// migs builds a migration set: versions, with the contract ones marked by a
// negative sign (-3 is contract migration 3).
func migs(vs ...int64) []*migrate.Migration {
	out := make([]*migrate.Migration, len(vs))
	for i, v := range vs {
		m := &migrate.Migration{Version: v, Name: "m", Source: "migrations/m.sql"}
		if v < 0 {
			m.Version, m.Contract = -v, true
		}
		out[i] = m
	}
	return out
}

func TestCompatible(t *testing.T) {
	expandOnly := migs(1, 2, 3, 4, 5)
	oneContract := migs(1, 2, -3, 4, 5)
	severalContracts := migs(1, -2, 3, -4, 5, -6)
	timestamps := migs(20260101000000, 20260201000000, -20260301000000)
	tests := []struct {
		name     string
		r        release.Release
		d        int64
		migs     []*migrate.Migration
		ok       bool
		problem  release.Problem
		contract int64  // the breaking contract migration
		reason   string // a part of the reason
	}{
		// expand only: a release runs on its own schema and every later one.
		{"expand only: same version", release.Release{Name: "a", Schema: 3}, 3, expandOnly, true, "", 0, ""},
		{"expand only: later version", release.Release{Name: "a", Schema: 3}, 5, expandOnly, true, "", 0, ""},
		{"expand only: one behind", release.Release{Name: "a", Schema: 3}, 2, expandOnly, false, release.ProblemBehind, 0, "needs schema version 3 or later, and the database is at 2"},
		{"expand only: empty database", release.Release{Name: "a", Schema: 1}, 0, expandOnly, false, release.ProblemBehind, 0, "database is at 0"},
		{"expand only: release at version 1", release.Release{Name: "a", Schema: 1}, 5, expandOnly, true, "", 0, ""},

		// one contract migration (3).
		{"one contract: release before it, database before it", release.Release{Name: "a", Schema: 1}, 2, oneContract, true, "", 0, ""},
		{"one contract: release before it, database at it", release.Release{Name: "a", Schema: 2}, 3, oneContract, false, release.ProblemContract, 3, "contract migration 3 (migrations/m.sql) is applied"},
		{"one contract: release before it, database past it", release.Release{Name: "a", Schema: 1}, 5, oneContract, false, release.ProblemContract, 3, "only releases built against schema 3 or later run here"},
		{"one contract: release built against it", release.Release{Name: "a", Schema: 3}, 5, oneContract, true, "", 0, ""},
		{"one contract: release after it", release.Release{Name: "a", Schema: 4}, 5, oneContract, true, "", 0, ""},
		{"one contract: the contract itself is not below V", release.Release{Name: "a", Schema: 3}, 3, oneContract, true, "", 0, ""},

		// several contract migrations (2, 4, 6): the lowest in (V, D] is named.
		{"several: none in range", release.Release{Name: "a", Schema: 2}, 3, severalContracts, true, "", 0, ""},
		{"several: one in range", release.Release{Name: "a", Schema: 2}, 4, severalContracts, false, release.ProblemContract, 4, "built against schema 2"},
		{"several: two in range, lowest named", release.Release{Name: "a", Schema: 1}, 6, severalContracts, false, release.ProblemContract, 2, "only releases built against schema 2 or later"},
		{"several: past all", release.Release{Name: "a", Schema: 6}, 6, severalContracts, true, "", 0, ""},
		{"several: between", release.Release{Name: "a", Schema: 4}, 5, severalContracts, true, "", 0, ""},

		// minimum schema: a release that runs on schemas older than it was built for.
		{"min: below minimum", release.Release{Name: "b", Schema: 5, MinSchema: 3}, 2, expandOnly, false, release.ProblemBehind, 0, "needs schema version 3 or later"},
		{"min: at minimum", release.Release{Name: "b", Schema: 5, MinSchema: 3}, 3, expandOnly, true, "", 0, ""},
		{"min: between minimum and schema", release.Release{Name: "b", Schema: 5, MinSchema: 3}, 4, oneContract, true, "", 0, ""},
		{"min: a contract below V does not matter", release.Release{Name: "b", Schema: 4, MinSchema: 2}, 3, oneContract, true, "", 0, ""},
		{"min: contract above V still breaks", release.Release{Name: "b", Schema: 3, MinSchema: 2}, 6, severalContracts, false, release.ProblemContract, 4, ""},
		{"min: min equal to schema is the default", release.Release{Name: "b", Schema: 3, MinSchema: 3}, 2, expandOnly, false, release.ProblemBehind, 0, ""},

		// timestamps as versions work the same.
		{"timestamps: expand", release.Release{Name: "t", Schema: 20260101000000}, 20260201000000, timestamps, true, "", 0, ""},
		{"timestamps: contract", release.Release{Name: "t", Schema: 20260101000000}, 20260301000000, timestamps, false, release.ProblemContract, 20260301000000, ""},

		// unknown versions.
		{"unknown: release built against a version no migration has", release.Release{Name: "x", Schema: 9}, 5, expandOnly, false, release.ProblemUnknownSchema, 0, "built against schema 9, but no loaded migration has that version (the newest is 5)"},
		{"unknown: release version in a gap", release.Release{Name: "x", Schema: 2}, 3, migs(1, 3), false, release.ProblemUnknownSchema, 0, "fix the manifest"},
		{"unknown: release version, database at it", release.Release{Name: "x", Schema: 9}, 9, expandOnly, false, release.ProblemUnknownSchema, 0, ""},
		{"unknown: no migrations loaded", release.Release{Name: "x", Schema: 1}, 1, nil, false, release.ProblemUnknownSchema, 0, "no migrations are loaded"},
		{"unknown: database ahead of the files", release.Release{Name: "a", Schema: 3}, 7, expandOnly, false, release.ProblemUnknownDatabase, 0, "the database is at version 7, which none of the loaded migrations has (the newest is 5)"},
		{"unknown: database ahead, but a known contract decides", release.Release{Name: "a", Schema: 2}, 7, oneContract, false, release.ProblemContract, 3, ""},
		{"unknown: database version in a gap", release.Release{Name: "a", Schema: 1}, 2, migs(1, 3), false, release.ProblemUnknownDatabase, 0, ""},
		{"unknown: database behind at an unknown version", release.Release{Name: "a", Schema: 3}, 2, migs(1, 3), false, release.ProblemBehind, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := release.Compatible(tt.r, release.Database{Version: tt.d}, tt.migs)
			if v.OK != tt.ok || v.Problem != tt.problem {
				t.Fatalf("Compatible(%v, %d) = ok %v problem %q (%s), want ok %v problem %q", tt.r, tt.d, v.OK, v.Problem, v.Reason, tt.ok, tt.problem)
			}
			if v.OK != (v.Reason == "") {
				t.Errorf("reason %q with ok %v", v.Reason, v.OK)
			}
			if got := int64(0); v.Contract != nil || tt.contract != 0 {
				if v.Contract != nil {
					got = v.Contract.Version
				}
				if got != tt.contract {
					t.Errorf("breaking contract migration %d, want %d", got, tt.contract)
				}
			}
			if !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", v.Reason, tt.reason)
			}
			if v.Final() != (!tt.ok && tt.problem != release.ProblemBehind) {
				t.Errorf("Final() = %v", v.Final())
			}
		})
	}
}

// TestCompatibleMissingFile: an applied migration whose file is gone may
// have been a contract migration, so a release built below it is refused,
// not guessed compatible.
func TestCompatibleMissingFile(t *testing.T) {
	files := migs(1, 2, 4) // 3 is applied, its file deleted
	tests := []struct {
		name    string
		r       release.Release
		db      release.Database
		ok      bool
		problem release.Problem
		reason  string
	}{
		{"release below the missing one", release.Release{Name: "v1", Schema: 1}, release.Database{Version: 4, Missing: []int64{3}}, false, release.ProblemUnknownDatabase, "migration 3 is applied but none of the loaded migrations has it"},
		{"release at the missing one is built against an unknown schema", release.Release{Name: "v3", Schema: 3}, release.Database{Version: 4, Missing: []int64{3}}, false, release.ProblemUnknownSchema, ""},
		{"release above the missing one", release.Release{Name: "v4", Schema: 4}, release.Database{Version: 4, Missing: []int64{3}}, true, "", ""},
		{"missing one above the database version is ignored", release.Release{Name: "v1", Schema: 1}, release.Database{Version: 2, Missing: []int64{3}}, true, "", ""},
		{"a known contract below it still decides", release.Release{Name: "v1", Schema: 1}, release.Database{Version: 5, Missing: []int64{4}}, false, release.ProblemContract, ""},
	}
	withContract := migs(1, 2, -3, 5)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := files
			if tt.problem == release.ProblemContract {
				ms = withContract
			}
			v := release.Compatible(tt.r, tt.db, ms)
			if v.OK != tt.ok || v.Problem != tt.problem || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("Compatible(%v, %+v) = ok %v problem %q (%s), want ok %v problem %q reason containing %q", tt.r, tt.db, v.OK, v.Problem, v.Reason, tt.ok, tt.problem, tt.reason)
			}
		})
	}
}

func TestNewestCompatible(t *testing.T) {
	// 1 create, 2 expand, 3 contract, 4 expand.
	ms := migs(1, 2, -3, 4)
	man := &release.Manifest{Source: "ferry.yaml", Releases: []release.Release{
		{Name: "a", Schema: 1},
		{Name: "b", Schema: 2},
		{Name: "b-hotfix", Schema: 2},
		{Name: "c", Schema: 4, MinSchema: 3},
	}}
	if err := man.Validate(); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[int64]string{1: "a", 2: "b-hotfix", 3: "c", 4: "c"} {
		r, err := man.NewestCompatible(release.Database{Version: d}, ms)
		if err != nil || r.Name != want {
			t.Errorf("at version %d: %v %v, want %s", d, r.Name, err, want)
		}
	}
	_, err := man.NewestCompatible(release.Database{}, ms)
	var nc *release.NoneCompatibleError
	if !errors.As(err, &nc) || !errors.Is(err, release.ErrNoneCompatible) || len(nc.Verdicts) != 4 {
		t.Fatalf("at version 0: %v", err)
	}
	for _, want := range []string{"no release in ferry.yaml is compatible with schema version 0", "a (built against schema 1): release a needs schema version 1 or later", "c (built against schema 4, runs on 3 and later)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	empty := &release.Manifest{}
	if _, err := empty.NewestCompatible(release.Database{Version: 2}, ms); !errors.Is(err, release.ErrNoneCompatible) || !strings.Contains(err.Error(), "lists no releases") {
		t.Errorf("empty manifest: %v", err)
	}
}

func TestParseManifest(t *testing.T) {
	good := "releases:\n  - name: v1\n    schema: 1\n    command: [bin/app, --port, \"8080\"]\n  - name: v2\n    schema: 3\n    min_schema: 2\n"
	m, err := release.ParseManifest([]byte(good), "releases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Releases) != 2 || m.Releases[0].Command[2] != "8080" || m.Releases[1].Min() != 2 || m.Releases[0].Min() != 1 {
		t.Fatalf("parsed %+v", m.Releases)
	}
	if _, err := m.Release("v3"); !errors.Is(err, release.ErrUnknownRelease) || !strings.Contains(err.Error(), "v1, v2") {
		t.Errorf("unknown release: %v", err)
	}
	bad := map[string]string{
		"releases:\n  - name: v1\n    schem: 1\n":                                         "field schem not found",
		"releases:\n  - name: v1\n":                                                       "release \"v1\" has no schema",
		"releases:\n  - schema: 1\n":                                                      "release 1 has no name",
		"releases:\n  - {name: a, schema: 1}\n  - {name: a, schema: 2}\n":                 "release \"a\" is listed twice",
		"releases:\n  - {name: a, schema: 2, min_schema: 3}\n":                            "min_schema 3 must be between 1 and its schema 2",
		"releases:\n  - {name: a, schema: 2, command: [app, \"\"]}\n":                     "command has an empty argument",
		"releases: {name: a}\n":                                                           "cannot unmarshal",
		"releases:\n  - {name: a, schema: 1}\n  - {name: b, schema: 0, min_schema: -1}\n": "release \"b\" has no schema",
	}
	for doc, want := range bad {
		_, err := release.ParseManifest([]byte(doc), "releases.yaml")
		if !errors.Is(err, release.ErrBadManifest) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "releases.yaml") {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}
