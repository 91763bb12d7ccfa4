package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDirectoryStore runs the store's contract on a directory, and
// checks that deleting a prefix removes its folders.
func TestDirectoryStore(t *testing.T) {
	dir := t.TempDir()
	testContract(t, filepath.Join(dir, "exports"))
	testContract(t, "file://"+filepath.ToSlash(filepath.Join(dir, "as url")))
	if _, err := os.Stat(filepath.Join(dir, "exports", "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted prefix left its folders: %v", err)
	}
}

// TestDeletePrefixPartial: deleting a prefix removes the files a killed
// writer left half written under it, which no listing shows, and so its
// folders.
func TestDeletePrefixPartial(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, "export store")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteAll(ctx, "e1/manifest.json", []byte("{}"), "application/json"); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(dir, "e1", "tables", "runs", ".part-00001.jsonl.gz"+tmpMark+"123")
	if err := os.MkdirAll(filepath.Dir(partial), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(partial, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePrefix(ctx, "e1/"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "e1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("e1 is still there after DeletePrefix: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	for loc, want := range map[string]string{
		"ftp://host/x":                  `unsupported scheme "ftp"`,
		"s3://key:SeCrEt@bucket/prefix": "credentials do not belong",
		"file://relative/path":          "absolute path",
	} {
		_, err := Open(context.Background(), loc, "export store")
		if !errors.Is(err, ErrInvalidLocation) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "SeCrEt") {
			t.Errorf("%s: %v", loc, err)
		}
	}
}

func TestIDs(t *testing.T) {
	at := time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC)
	a, b := NewID(at), NewID(at)
	if !ValidID(a) || a == b || !strings.HasPrefix(a, "20261129T170000Z-") || ValidID("../x") {
		t.Fatalf("ids %s %s", a, b)
	}
}

// TestSymlinkedDirectory: a store whose directory is a symbolic link
// lists what it holds (a walk does not follow a root that is a link).
func TestSymlinkedDirectory(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real")
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, link, "backup store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteAll(ctx, "20261130T000000Z-abcdef/manifest.json", []byte("{}"), "application/json"); err != nil {
		t.Fatal(err)
	}
	if dirs, err := s.Dirs(ctx, ""); err != nil || len(dirs) != 1 {
		t.Errorf("dirs of a store reached through a link: %v %v", dirs, err)
	}
}

// TestAt: "STORE/ID" puts the id before the URL's parameters and is
// quoted for a shell when it needs to be.
func TestAt(t *testing.T) {
	for display, want := range map[string]string{
		"file:///var/backups/ferry":                             "file:///var/backups/ferry/20261130T000000Z-abcdef",
		"file:///var/my backups":                                "'file:///var/my backups/20261130T000000Z-abcdef'",
		"s3://b/exp?endpoint=http://h:9000&use_path_style=true": "'s3://b/exp/20261130T000000Z-abcdef?endpoint=http://h:9000&use_path_style=true'",
		"s3://b?region=eu-west-1":                               "'s3://b/20261130T000000Z-abcdef?region=eu-west-1'",
	} {
		if got := (&Store{display: display}).At("20261130T000000Z-abcdef"); got != want {
			t.Errorf("%s: %s, want %s", display, got, want)
		}
	}
}

// TestOpenExistingNotADirectory: a store path that is missing, or a file,
// says which.
func TestOpenExistingNotADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "exports")
	os.WriteFile(file, []byte("x"), 0o600)
	for path, want := range map[string]string{file: "it is a file, not a directory", filepath.Join(dir, "missing"): "there is no such directory"} {
		_, err := OpenExisting(context.Background(), path, "export store")
		if !errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}

// TestReadAllBounded: ReadAll, for manifests and keys, does not read an
// object past MaxSmallObject (a store's objects are input: a manifest
// could be a link to /dev/zero).
func TestReadAllBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, "export store")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "e1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "e1", "manifest.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAll(ctx, "e1/manifest.json"); err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Errorf("ReadAll of an endless object: %v", err)
	}
}
