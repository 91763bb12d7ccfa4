package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/store"
)

// DefaultStore is the store used when none is configured: the directory
// ferry-backups under the current directory.
const DefaultStore = "ferry-backups"

// ErrDriverNotLinked is wrapped by OpenStore's error for an s3://, gs:// or
// azblob:// store in a program built without it (see package store).
var ErrDriverNotLinked = store.ErrDriverNotLinked

// ErrInvalidStore is wrapped by OpenStore's error for a location that
// cannot name a store (a scheme ferry does not know, credentials in it, a
// relative file URL, parameters its driver refuses), as opposed to a store
// that cannot be reached or written.
var ErrInvalidStore = store.ErrInvalidLocation

// ErrNotFound is returned (wrapped) for a backup id the store does not
// hold.
var ErrNotFound = errors.New("backup not found")

// ErrCorrupt is returned (wrapped) when a stored object does not match the
// size or checksum in its manifest.
var ErrCorrupt = store.ErrCorrupt

// Store is where backups live: a local directory or a bucket of object
// storage (package store). Each backup is a "directory" named by its id
// holding its objects and its manifest.json. A Store is safe for
// concurrent use.
type Store struct {
	s *store.Store
}

// OpenStore opens the backup store at location: a directory, a file://
// URL, or s3://, gs:// or azblob:// (see store.Open). An empty location means DefaultStore.
func OpenStore(ctx context.Context, location string) (*Store, error) {
	if strings.TrimSpace(location) == "" {
		location = DefaultStore
	}
	s, err := store.Open(ctx, location, "backup store")
	if err != nil {
		return nil, err
	}
	return &Store{s: s}, nil
}

// String returns the store's location as a URL, without secrets. A local
// directory is shown as an absolute file:// URL, so that a printed restore
// command works from any directory.
func (s *Store) String() string { return s.s.String() }

// Close releases the store.
func (s *Store) Close() error { return s.s.Close() }

func objectKey(id, name string) string { return id + "/" + name }

// Broken is a backup whose manifest is there but cannot be read: cut
// short, edited by hand, or of a newer format.
type Broken struct {
	ID  string
	Err error
}

// List returns the complete backups in the store, oldest first, and the
// broken ones, whose manifest cannot be read; one broken backup does not
// hide the others. Backups whose manifest was never written (failed, or
// still being taken) are in neither list. The error is for a store that
// cannot be listed at all.
func (s *Store) List(ctx context.Context) ([]*Manifest, []Broken, error) {
	ids, err := s.s.Dirs(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	var out []*Manifest
	var broken []Broken
	for _, id := range ids {
		if !ValidID(id) {
			continue
		}
		m, err := s.Manifest(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // incomplete: still being written, or failed
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case err != nil:
			broken = append(broken, Broken{ID: id, Err: err})
			continue
		}
		out = append(out, m)
	}
	// Ids sort by the second; within one second the start time decides.
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, broken, nil
}

// Manifest reads the manifest of backup id.
func (s *Store) Manifest(ctx context.Context, id string) (*Manifest, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	data, err := s.s.ReadAll(ctx, objectKey(id, manifestName))
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s in %s (`ferry backup list --store %s` shows the backups there)", ErrNotFound, id, s, store.ShellQuote(s.String()))
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of backup %s: %w", id, err)
	}
	m, err := decodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("manifest of backup %s in %s: %w", id, s, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("manifest of backup %s in %s names backup %q; the store was edited by hand", id, s, m.ID)
	}
	return m, nil
}

// writeManifest stores m, which completes the backup.
func (s *Store) writeManifest(ctx context.Context, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := s.s.WriteAll(ctx, objectKey(m.ID, manifestName), append(data, '\n'), "application/json"); err != nil {
		return fmt.Errorf("write manifest of backup %s: %w", m.ID, err)
	}
	return nil
}

// Delete removes backup id: its manifest first (so that it stops being
// listed at once), then its objects.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := s.s.Delete(ctx, objectKey(id, manifestName)); err != nil {
		return fmt.Errorf("delete backup %s: %w", id, err)
	}
	if err := s.s.DeletePrefix(ctx, id+"/"); err != nil {
		return fmt.Errorf("delete backup %s: %w", id, err)
	}
	return nil
}

// Pruned is what Prune did.
type Pruned struct {
	// Deleted are the backups deleted (with dryRun, to be deleted).
	Deleted []*Manifest
	// Broken are backups whose manifest cannot be read: Prune leaves
	// them alone (they count neither as kept nor as deleted), for the
	// operator to look at.
	Broken []Broken
}

// Prune deletes all but the newest keep complete backups. keep must be at
// least 1: pruning never empties a store.
func (s *Store) Prune(ctx context.Context, keep int, dryRun bool) (*Pruned, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune must keep at least 1 backup, got %d", keep)
	}
	all, broken, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	p := &Pruned{Broken: broken}
	if len(all) <= keep {
		return p, nil
	}
	old := all[:len(all)-keep]
	if dryRun {
		p.Deleted = old
		return p, nil
	}
	for i, m := range old {
		if err := s.Delete(ctx, m.ID); err != nil {
			p.Deleted = old[:i]
			return p, err
		}
	}
	p.Deleted = old
	return p, nil
}

func (s *Store) newObject(ctx context.Context, id, name, contentType string) (*store.Writer, error) {
	return s.s.Create(ctx, objectKey(id, name), contentType)
}

func (s *Store) deletePrefix(ctx context.Context, prefix string) error {
	return s.s.DeletePrefix(ctx, prefix)
}

// openObject opens a stored object for reading; the reader fails with
// ErrCorrupt at its end when the bytes read do not match obj's size and
// checksum.
func (s *Store) openObject(ctx context.Context, id string, obj Object) (io.ReadCloser, error) {
	return s.s.OpenChecked(ctx, objectKey(id, obj.Name), obj.Size, obj.SHA256)
}

// CheckObjects reads every object of backup m and compares its size and
// sha256 with the manifest. The error wraps ErrCorrupt on a mismatch.
func (s *Store) CheckObjects(ctx context.Context, m *Manifest) error {
	for _, obj := range m.Objects {
		r, err := s.openObject(ctx, m.ID, obj)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
