package store

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDirectoryStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, filepath.Join(dir, "exports"), "export store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Create(ctx, "a/tables/t/part-00001", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	size, sum := w.Size(), w.SHA256()
	if err := s.WriteAll(ctx, "b/manifest.json", []byte("{}"), "application/json"); err != nil {
		t.Fatal(err)
	}
	if dirs, err := s.Dirs(ctx, ""); err != nil || strings.Join(dirs, ",") != "a,b" {
		t.Fatalf("dirs %v %v", dirs, err)
	}
	read := func(size int64, sum string) error {
		r, err := s.OpenChecked(ctx, "a/tables/t/part-00001", size, sum)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(io.Discard, r)
		return err
	}
	if err := read(size, sum); err != nil {
		t.Fatal(err)
	}
	if err := read(size, strings.Repeat("0", 64)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "has sha256") {
		t.Errorf("wrong checksum: %v", err)
	}
	if err := read(size-1, sum); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong size: %v", err)
	}
	if _, err := s.ReadAll(ctx, "nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("missing object: %v", err)
	}
	if _, err := s.OpenChecked(ctx, "nope", 1, sum); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "is missing") {
		t.Errorf("missing object in a manifest: %v", err)
	}
	aborted, _ := s.Create(ctx, "c/x", "text/plain")
	io.WriteString(aborted, "partial")
	aborted.Abort()
	if ok, _ := s.Exists(ctx, "c/x"); ok {
		t.Error("an aborted object is visible")
	}
	if err := s.DeletePrefix(ctx, "a/"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "exports", "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted prefix left its folders: %v", err)
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
