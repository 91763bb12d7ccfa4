package store

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// testContract checks what backup and transfer rely on, against the
// store at location: objects appear whole at Close and not before, an
// aborted one never; listings are complete, in lexical order, and fold
// "directories"; reads are checked against size and sha256; deletes are
// idempotent.
func testContract(t *testing.T, location string) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, location, "export store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	w, err := s.Create(ctx, "a/tables/t/part-00001", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello")
	if ok, _ := s.Exists(ctx, "a/tables/t/part-00001"); ok {
		t.Error("an object is visible before its writer's Close")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	size, sum := w.Size(), w.SHA256()
	for _, k := range []string{"b/manifest.json", "a-b/manifest.json", "a/manifest.json", "a/tables/u/part-00001", "top"} {
		if err := s.WriteAll(ctx, k, []byte("{}"), "application/json"); err != nil {
			t.Fatal(err)
		}
	}
	if data, err := s.ReadAll(ctx, "b/manifest.json"); err != nil || string(data) != "{}" {
		t.Fatalf("read back %q %v", data, err)
	}
	// "a-b/" sorts before "a/": '-' is before '/', as S3 orders keys.
	if dirs, err := s.Dirs(ctx, ""); err != nil || strings.Join(dirs, ",") != "a-b,a,b" {
		t.Errorf("dirs of the store: %v %v", dirs, err)
	}
	if dirs, err := s.Dirs(ctx, "a/tables/"); err != nil || strings.Join(dirs, ",") != "t,u" {
		t.Errorf("dirs of a/tables/: %v %v", dirs, err)
	}
	keys, err := s.Keys(ctx, "a")
	if want := []string{"a-b/manifest.json", "a/manifest.json", "a/tables/t/part-00001", "a/tables/u/part-00001"}; err != nil || !slices.Equal(keys, want) {
		t.Errorf("keys under a: %v %v, want %v", keys, err, want)
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

	// Abort, and a writer whose context ends, leave no object and keep
	// the one that was there.
	aborted, err := s.Create(ctx, "c/x", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(aborted, "partial")
	aborted.Abort()
	cctx, cancel := context.WithCancel(ctx)
	cancelled, err := s.Create(cctx, "b/manifest.json", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(cancelled, "replaced")
	cancel()
	if err := cancelled.Close(); err == nil {
		t.Error("a writer whose context ended committed its object")
	}
	if ok, _ := s.Exists(ctx, "c/x"); ok {
		t.Error("an aborted object is visible")
	}
	if data, err := s.ReadAll(ctx, "b/manifest.json"); err != nil || string(data) != "{}" {
		t.Errorf("a cancelled writer changed the object: %q %v", data, err)
	}
	if keys, _ := s.Keys(ctx, "c/"); len(keys) != 0 {
		t.Errorf("an aborted object is listed: %v", keys)
	}

	if err := s.Delete(ctx, "nope"); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
	if err := s.DeletePrefix(ctx, "a/"); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.Keys(ctx, "a/"); err != nil || len(keys) != 0 {
		t.Errorf("left after DeletePrefix: %v %v", keys, err)
	}
	if dirs, err := s.Dirs(ctx, ""); err != nil || strings.Join(dirs, ",") != "a-b,b" {
		t.Errorf("dirs after DeletePrefix: %v %v", dirs, err)
	}
}
