package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// tmpMark is in the name of a file being written: listings skip it, and a
// writer that crashed leaves only such a file behind.
const tmpMark = ".ferry-partial-"

// dirBucket keeps each object as a file under root, its key's slashes as
// folders. An object is written to a temporary file next to its final
// name and renamed there by Close, so readers never see part of one (a
// rename does not cross file systems, so the temporary file is not in
// os.TempDir()).
type dirBucket struct {
	root string
}

func (d *dirBucket) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || slices.Contains(strings.Split(key, "/"), "..") || strings.Contains(key, tmpMark) {
		return "", fmt.Errorf("%w: key %q", ErrInvalidLocation, key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

func (d *dirBucket) newReader(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is a directory", ErrNotExist, p)
	}
	return f, nil
}

func (d *dirBucket) newWriter(ctx context.Context, key, _ string) (objectWriter, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, err
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+tmpMark+hex.EncodeToString(suffix))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, err
	}
	return &fileWriter{ctx: ctx, f: f, tmp: tmp, final: p}, nil
}

// fileWriter writes a temporary file and renames it into place on Close.
type fileWriter struct {
	ctx   context.Context
	f     *os.File
	tmp   string
	final string
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.f.Write(p)
}

func (w *fileWriter) Close() error {
	if err := w.ctx.Err(); err != nil {
		w.abort()
		return err
	}
	// Synced before the rename: after a crash the object is whole or
	// absent, never an empty file under its final name.
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp, w.final)
	}
	if err != nil {
		os.Remove(w.tmp)
		return err
	}
	// And the folder synced after the rename, so that the new name
	// survives a power cut too (where the system can sync a folder).
	if d, err := os.Open(filepath.Dir(w.final)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (w *fileWriter) abort() {
	w.f.Close()
	os.Remove(w.tmp)
}

func (d *dirBucket) list(ctx context.Context, prefix string, dirs bool) ([]entry, error) {
	// Walk only the folder the prefix is in: a prefix "a/b" lists the
	// folder a, keeping names that start with b.
	base := path.Dir(prefix + "x")
	if base == "." {
		base = ""
	}
	start := d.root
	if base != "" {
		start = filepath.Join(d.root, filepath.FromSlash(base))
	}
	var out []entry
	err := filepath.WalkDir(start, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil || rel == "." {
			return nil
		}
		key := filepath.ToSlash(rel)
		if de.IsDir() {
			// Descend only into folders that can hold keys with the prefix.
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			if dirs && strings.HasPrefix(key+"/", prefix) && len(key)+1 > len(prefix) {
				// A folder holding no file is no "directory", as in an
				// object store. One that holds only what a killed writer
				// left half written is: it is a leftover to delete
				// (DeletePrefix removes such files), which an object
				// store would not keep.
				if holdsFile(p) {
					out = append(out, entry{key: key + "/", isDir: true})
				}
				return fs.SkipDir
			}
			return nil
		}
		if strings.Contains(de.Name(), tmpMark) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		out = append(out, entry{key: key})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// WalkDir goes in lexical order of names, not of whole keys ("a/x"
	// comes after "a-b" as a key, before it in the walk).
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	return out, nil
}

// holdsFile says whether there is a file anywhere under folder dir: an
// object, or one a writer left half written.
func holdsFile(dir string) bool {
	found := errors.New("found")
	err := filepath.WalkDir(dir, func(_ string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			return found
		}
		return nil
	})
	return errors.Is(err, found)
}

func (d *dirBucket) exists(_ context.Context, key string) (bool, error) {
	p, err := d.path(key)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !st.IsDir(), nil
}

func (d *dirBucket) remove(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (d *dirBucket) close() error { return nil }
