package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"

	"github.com/ferrydb/ferry/internal/redact"
)

// DefaultStore is the store used when none is configured: the directory
// ferry-backups under the current directory.
const DefaultStore = "ferry-backups"

// ErrDriverNotLinked is wrapped by OpenStore's error for an s3://, gs:// or
// azblob:// store in a program built without package backup/cloud.
var ErrDriverNotLinked = errors.New("driver is not linked into this program")

// ErrInvalidStore is wrapped by OpenStore's error for a location that
// cannot name a store (a scheme ferry does not know, credentials in it, a
// relative file URL, parameters its driver refuses), as opposed to a store
// that cannot be reached or written.
var ErrInvalidStore = errors.New("invalid backup store location")

// ErrNotFound is returned (wrapped) for a backup id the store does not
// hold.
var ErrNotFound = errors.New("backup not found")

// ErrCorrupt is returned (wrapped) when a stored object does not match the
// size or checksum in its manifest.
var ErrCorrupt = errors.New("backup object does not match its manifest")

// Store is where backups live: a local directory or a bucket of object
// storage. Each backup is a "directory" named by its id holding its
// objects and its manifest.json. A Store is safe for concurrent use.
type Store struct {
	bucket  *blob.Bucket
	display string
	dir     string // the directory of a local store, "" for others
}

// OpenStore opens the store at location:
//
//	ferry-backups, /var/backups/ferry   a local directory (created if missing)
//	file:///var/backups/ferry          the same, as a URL
//	s3://bucket/prefix?region=eu-west-1
//	gs://bucket/prefix
//	azblob://container/prefix
//
// An empty location means DefaultStore. s3, gs and azblob need package
// github.com/ferrydb/ferry/backup/cloud imported; their credentials come
// from the environment, never from the location.
func OpenStore(ctx context.Context, location string) (*Store, error) {
	location = strings.TrimSpace(location)
	if location == "" {
		location = DefaultStore
	}
	scheme, rest, isURL := strings.Cut(location, "://")
	if !isURL {
		return openDir(location)
	}
	scheme = strings.ToLower(scheme)
	if scheme == "file" {
		// Not url.Parse: a directory may have spaces in its name, as
		// printed (quoted) in restore commands.
		path, _, _ := strings.Cut(rest, "?")
		path = strings.TrimPrefix(path, "localhost")
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("%w %s: a file URL needs an absolute path, such as file:///var/backups/ferry", ErrInvalidStore, redact.URL(location))
		}
		if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
		return openDir(filepath.FromSlash(path))
	}
	u, err := url.Parse(location)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w %s: %v", ErrInvalidStore, redact.URL(location), redact.Error(err, redact.URLSecrets(location)...))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w %s: credentials do not belong in the store URL; set them in the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*), see docs/backups.md", ErrInvalidStore, redact.URL(location))
	}
	if !blob.DefaultURLMux().ValidBucketScheme(scheme) {
		switch scheme {
		case "s3", "gs", "azblob":
			return nil, fmt.Errorf("backup store %s: the %s %w; import _ \"github.com/ferrydb/ferry/backup/cloud\"", redact.URL(location), scheme, ErrDriverNotLinked)
		}
		return nil, fmt.Errorf("%w %s: unsupported scheme %q; use a directory path, file://, s3://, gs:// or azblob://", ErrInvalidStore, redact.URL(location), scheme)
	}
	b, err := blob.OpenBucket(ctx, location)
	if err != nil {
		// Opening makes no request: what fails is the location itself.
		// The driver's message repeats the URL, secrets included.
		return nil, fmt.Errorf("%w %s: %w", ErrInvalidStore, redact.URL(location), redact.Error(err, redact.URLSecrets(location)...))
	}
	return &Store{bucket: b, display: redact.URL(location)}, nil
}

// openDir opens a local directory as a store, creating it if needed.
func openDir(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backup store %s: %w", dir, err)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{
		CreateDir:   true,
		DirFileMode: 0o750,
		// Write next to the final file, so that a store on another mount
		// than the temporary directory works (a rename cannot cross).
		NoTempDir: true,
		Metadata:  fileblob.MetadataDontWrite,
	})
	if err != nil {
		return nil, fmt.Errorf("open backup store %s: %w (check that the directory can be created and written)", abs, err)
	}
	return &Store{bucket: b, display: "file://" + filepath.ToSlash(abs), dir: abs}, nil
}

// String returns the store's location as a URL, without secrets. A local
// directory is shown as an absolute file:// URL, so that a printed restore
// command works from any directory.
func (s *Store) String() string { return s.display }

// Close releases the store.
func (s *Store) Close() error { return s.bucket.Close() }

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
	it := s.bucket.List(&blob.ListOptions{Delimiter: "/"})
	var out []*Manifest
	var broken []Broken
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("list backup store %s: %w", s, err)
		}
		id := strings.TrimSuffix(obj.Key, "/")
		if !obj.IsDir || !ValidID(id) {
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
	data, err := s.bucket.ReadAll(ctx, objectKey(id, manifestName))
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("%w: %s in %s (`ferry backup list --store %s` shows the backups there)", ErrNotFound, id, s, s)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of backup %s in %s: %w", id, s, err)
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
	if err := s.bucket.WriteAll(ctx, objectKey(m.ID, manifestName), append(data, '\n'), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("write manifest of backup %s to %s: %w", m.ID, s, err)
	}
	return nil
}

// Delete removes backup id: its manifest first (so that it stops being
// listed at once), then its objects.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := s.bucket.Delete(ctx, objectKey(id, manifestName)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete backup %s from %s: %w", id, s, err)
	}
	if err := s.deletePrefix(ctx, id+"/"); err != nil {
		return err
	}
	if s.dir != "" {
		// A directory store keeps the backup's now empty folder
		// otherwise; object stores have no folders.
		if err := os.Remove(filepath.Join(s.dir, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete backup %s from %s: %w", id, s, err)
		}
	}
	return nil
}

func (s *Store) deletePrefix(ctx context.Context, prefix string) error {
	it := s.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s in %s: %w", prefix, s, err)
		}
		if err := s.bucket.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return fmt.Errorf("delete %s from %s: %w", obj.Key, s, err)
		}
	}
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

// objectWriter streams one object into the store, counting and hashing
// the stored bytes. Abort discards it; Close commits it.
type objectWriter struct {
	w      *blob.Writer
	cancel context.CancelFunc
	h      hash.Hash
	n      int64
}

func (s *Store) newObject(ctx context.Context, id, name, contentType string) (*objectWriter, error) {
	wctx, cancel := context.WithCancel(ctx)
	w, err := s.bucket.NewWriter(wctx, objectKey(id, name), &blob.WriterOptions{ContentType: contentType})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("write backup object %s/%s to %s: %w", id, name, s, err)
	}
	return &objectWriter{w: w, cancel: cancel, h: sha256.New()}, nil
}

func (o *objectWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.h.Write(p[:n])
	o.n += int64(n)
	return n, err
}

// Close commits the object.
func (o *objectWriter) Close() error {
	defer o.cancel()
	return o.w.Close()
}

// Abort discards the object.
func (o *objectWriter) Abort() {
	o.cancel()
	_ = o.w.Close()
}

func (o *objectWriter) sum() string { return hex.EncodeToString(o.h.Sum(nil)) }

// openObject opens a stored object for reading; the reader fails with
// ErrCorrupt at its end when the bytes read do not match obj's size and
// checksum.
func (s *Store) openObject(ctx context.Context, id string, obj Object) (io.ReadCloser, error) {
	r, err := s.bucket.NewReader(ctx, objectKey(id, obj.Name), nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("%w: object %s/%s is missing from %s", ErrCorrupt, id, obj.Name, s)
	}
	if err != nil {
		return nil, fmt.Errorf("read backup object %s/%s from %s: %w", id, obj.Name, s, err)
	}
	return &checkedReader{r: r, h: sha256.New(), obj: obj, id: id}, nil
}

// checkedReader hashes what it reads and checks size and sha256 at EOF.
type checkedReader struct {
	r   io.ReadCloser
	h   hash.Hash
	n   int64
	obj Object
	id  string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if errors.Is(err, io.EOF) {
		if c.n != c.obj.Size {
			return n, fmt.Errorf("%w: %s/%s has %d bytes, the manifest says %d", ErrCorrupt, c.id, c.obj.Name, c.n, c.obj.Size)
		}
		if sum := hex.EncodeToString(c.h.Sum(nil)); sum != c.obj.SHA256 {
			return n, fmt.Errorf("%w: %s/%s has sha256 %s, the manifest says %s", ErrCorrupt, c.id, c.obj.Name, sum, c.obj.SHA256)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.r.Close() }

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
