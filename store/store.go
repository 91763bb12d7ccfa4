// Package store is where ferry keeps what it writes outside the database:
// backups (package backup) and exports (package transfer). A Store is a
// local directory or a bucket of object storage (S3 and S3-compatible
// stores, Google Cloud Storage, Azure Blob Storage), holding objects named
// by slash-separated keys.
//
// Objects are streamed in and out, never held whole in memory, and every
// object written is counted and hashed (sha256) on the way, so that the
// manifest a caller writes last can name each object's size and checksum,
// and a reader can check them (OpenChecked).
//
// Which object stores a program has is chosen when it is built, because
// their clients weigh more than the rest of ferry's start-up: s3:// needs
// the build tag s3, gs:// the tag gcs and azblob:// the tag azblob (see
// docs/backups.md); a plain build keeps its stores in directories. A
// store left out is an error wrapping ErrDriverNotLinked that says how to
// build it in. Credentials come from the environment as each SDK reads
// them, never from the location.
package store

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/internal/redact"
)

// ErrDriverNotLinked is wrapped by Open's error for an s3://, gs:// or
// azblob:// store in a program built without it (see the package
// documentation).
var ErrDriverNotLinked = errors.New("driver is not linked into this program")

// ErrInvalidLocation is wrapped by Open's error for a location that
// cannot name a store (a scheme ferry does not know, credentials in it, a
// relative file URL, parameters its driver refuses), as opposed to a
// store that cannot be reached or written.
var ErrInvalidLocation = errors.New("invalid store location")

// ErrNotExist is wrapped by the error for an object the store does not
// hold.
var ErrNotExist = errors.New("does not exist")

// ErrCorrupt is wrapped by the error of a reader from OpenChecked whose
// bytes do not match the size or checksum they were opened with, and for
// an object named in a manifest that is missing.
var ErrCorrupt = errors.New("object does not match its manifest")

// Store is a directory or a bucket of objects. It is safe for concurrent
// use.
type Store struct {
	bucket  bucket
	what    string // "backup store", "export store": for messages
	display string
	dir     string // the directory of a local store, "" for others
}

// Open opens the store at location:
//
//	ferry-backups, /var/backups/ferry   a local directory (created if missing)
//	file:///var/backups/ferry          the same, as a URL
//	s3://bucket/prefix?region=eu-west-1
//	s3://bucket/prefix?endpoint=https://minio.internal:9000
//	gs://bucket/prefix
//	azblob://container/prefix
//
// what names the store in messages ("backup store"). s3, gs and azblob need a
// build with their tags (see the package documentation). A directory that
// does not exist is created; OpenExisting is Open for commands that only
// read.
func Open(ctx context.Context, location, what string) (*Store, error) {
	return open(ctx, location, what, true)
}

// OpenExisting is Open for a command that only reads: a directory that
// does not exist is an error wrapping ErrNotExist, not a new empty store.
func OpenExisting(ctx context.Context, location, what string) (*Store, error) {
	return open(ctx, location, what, false)
}

func open(ctx context.Context, location, what string, create bool) (*Store, error) {
	location = strings.TrimSpace(location)
	scheme, rest, isURL := strings.Cut(location, "://")
	if !isURL {
		return openDir(location, what, create)
	}
	scheme = strings.ToLower(scheme)
	if scheme == "file" {
		// Not url.Parse: a directory may have spaces in its name, as
		// printed (quoted) in restore commands.
		path, _, _ := strings.Cut(rest, "?")
		path = strings.TrimPrefix(path, "localhost")
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("%s %s: %w: a file URL needs an absolute path, such as file:///var/backups/ferry", what, redact.URL(location), ErrInvalidLocation)
		}
		if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
		return openDir(filepath.FromSlash(path), what, create)
	}
	u, err := url.Parse(location)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w: %v", what, redact.URL(location), ErrInvalidLocation, redact.Error(err, redact.URLSecrets(location)...))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s %s: %w: credentials do not belong in the store URL; set them in the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*), see docs/backups.md", what, redact.URL(location), ErrInvalidLocation)
	}
	var open func(context.Context, *url.URL) (bucket, error)
	switch scheme {
	case "s3":
		open = openS3
	case "gs":
		open = openGCS
	case "azblob":
		open = openAzblob
	default:
		return nil, fmt.Errorf("%s %s: %w: unsupported scheme %q; use a directory path, file://, s3://, gs:// or azblob://", what, redact.URL(location), ErrInvalidLocation, scheme)
	}
	if err := checkParams(scheme, u.Query()); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %w", what, redact.URL(location), ErrInvalidLocation, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s %s: %w: no bucket named; write %s://BUCKET/PREFIX", what, redact.URL(location), ErrInvalidLocation, scheme)
	}
	b, err := open(ctx, u)
	if err != nil {
		// A driver wraps ErrInvalidLocation into what is wrong with the
		// location; other errors are of the environment (no credentials
		// found yet). The message may repeat the URL, secrets included.
		return nil, fmt.Errorf("%s %s: %w", what, redact.URL(location), redact.Error(err, redact.URLSecrets(location)...))
	}
	return &Store{bucket: b, what: what, display: redact.URL(location)}, nil
}

// storeParams are the parameters each object store's URL may carry, in
// every build, so that a misspelt one is refused, not ignored, even by a
// ferry without that store.
var storeParams = map[string][]string{
	"s3":     {"region", "endpoint", "use_path_style", "disable_https"},
	"gs":     nil,
	"azblob": {"endpoint"},
}

func checkParams(scheme string, q url.Values) error {
	for k := range q {
		if !slices.Contains(storeParams[scheme], k) {
			if len(storeParams[scheme]) == 0 {
				return fmt.Errorf("%s:// takes no parameter %q", scheme, k)
			}
			return fmt.Errorf("%s:// takes no parameter %q (it takes %s)", scheme, k, strings.Join(storeParams[scheme], ", "))
		}
	}
	return nil
}

// objectPrefix is the key prefix a store URL's path names ("/backups/app"
// is "backups/app/"), "" for none.
func objectPrefix(u *url.URL) string {
	p := strings.Trim(u.Path, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// openDir opens a local directory as a store, creating it if needed.
func openDir(dir, what string, create bool) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, dir, err)
	}
	if !create {
		st, err := os.Stat(abs)
		if err == nil && !st.IsDir() {
			return nil, fmt.Errorf("%s %s %w: it is a file, not a directory (check the path)", what, "file://"+filepath.ToSlash(abs), ErrNotExist)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s %w: there is no such directory (check the path)", what, "file://"+filepath.ToSlash(abs), ErrNotExist)
		}
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("open %s %s: %w (check that the directory can be created and written)", what, abs, err)
	}
	// Walk the real directory: a listing does not follow a root that is
	// a symbolic link, and would find nothing in it.
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", what, abs, err)
	}
	return &Store{bucket: &dirBucket{root: root}, what: what, display: "file://" + filepath.ToSlash(abs), dir: abs}, nil
}

// String returns the store's location as a URL, without secrets. A local
// directory is shown as an absolute file:// URL, so that a printed
// command naming it works from any directory.
func (s *Store) String() string { return s.display }

// At is "STORE/ID", the location of the backup or export id in this
// store as a command takes it, quoted for a POSIX shell: the id goes
// before the URL's parameters (s3://b/p/ID?endpoint=...).
func (s *Store) At(id string) string {
	loc, query, _ := strings.Cut(s.display, "?")
	if query != "" {
		query = "?" + query
	}
	return ShellQuote(strings.TrimSuffix(loc, "/") + "/" + id + query)
}

// ShellQuote quotes s for a POSIX shell when it needs quoting, so that a
// printed command can be pasted as it is.
func ShellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./:=,+@%", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Close releases the store.
func (s *Store) Close() error { return s.bucket.close() }

// MaxSmallObject bounds what ReadAll reads: a manifest of an export of
// some 300,000 chunks, far more than any holds.
const MaxSmallObject = 64 << 20

// ReadAll returns the whole object key, for small objects such as
// manifests: one larger than MaxSmallObject is not one of them (a
// store's objects are input), and is an error. A missing object is an
// error wrapping ErrNotExist.
func (s *Store) ReadAll(ctx context.Context, key string) ([]byte, error) {
	r, err := s.OpenReader(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, MaxSmallObject+1))
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", key, s, err)
	}
	if len(data) > MaxSmallObject {
		return nil, fmt.Errorf("read %s from %s: it is larger than %d MiB, which no object ferry writes there is: the store was edited by hand", key, s, MaxSmallObject>>20)
	}
	return data, nil
}

// WriteAll stores data as object key, replacing any object of that key;
// readers never see a partial object.
func (s *Store) WriteAll(ctx context.Context, key string, data []byte, contentType string) error {
	w, err := s.Create(ctx, key, contentType)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return fmt.Errorf("write %s to %s: %w", key, s, err)
	}
	return w.Close()
}

// Exists says whether object key exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := s.bucket.exists(ctx, key)
	if err != nil {
		return false, fmt.Errorf("look for %s in %s: %w", key, s, err)
	}
	return ok, nil
}

// Dirs returns the names of the "directories" directly under prefix
// (which is "" or ends with "/"), without the prefix or the trailing
// slash, in the store's order (lexical).
func (s *Store) Dirs(ctx context.Context, prefix string) ([]string, error) {
	entries, err := s.bucket.list(ctx, prefix, true)
	if err != nil {
		return nil, fmt.Errorf("list %s%s: %w", s, "/"+prefix, err)
	}
	var out []string
	for _, e := range entries {
		if e.isDir {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(e.key, prefix), "/"))
		}
	}
	return out, nil
}

// Keys returns the keys of every object under prefix, in lexical order.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	entries, err := s.bucket.list(ctx, prefix, false)
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", prefix, s, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.key)
	}
	return out, nil
}

// Delete removes object key; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.bucket.remove(ctx, key); err != nil {
		return fmt.Errorf("delete %s from %s: %w", key, s, err)
	}
	return nil
}

// DeletePrefix removes every object under prefix (which ends with "/"),
// and, in a directory store, the directory left empty.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	keys, err := s.Keys(ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return err
		}
	}
	if s.dir == "" {
		return nil // object stores have no folders
	}
	// Remove the files a killed writer left half written (they are not
	// listed: without this they would stay for ever, unseen), then the
	// folders left empty, deepest first. A folder that is not empty (a
	// file the store does not write) stays.
	root := filepath.Join(s.dir, filepath.FromSlash(strings.TrimSuffix(prefix, "/")))
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
		case d.IsDir():
			dirs = append(dirs, p)
		case strings.Contains(d.Name(), tmpMark):
			_ = os.Remove(p) // one that cannot go keeps its folder, as below
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) {
			return fmt.Errorf("delete %s from %s: %w", prefix, s, err)
		}
	}
	return nil
}

func isNotEmpty(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not empty")
}

// Writer streams one object into the store, counting and hashing the
// bytes written. Close commits the object: until then it is not visible
// (a crashed writer leaves nothing under its key). Abort discards it.
type Writer struct {
	w      objectWriter
	buf    *bufio.Writer // over w: compressors write a few hundred bytes at a time
	cancel context.CancelFunc
	h      hash.Hash
	n      int64
	key    string
	where  string
}

// Create starts writing object key.
func (s *Store) Create(ctx context.Context, key, contentType string) (*Writer, error) {
	wctx, cancel := context.WithCancel(ctx)
	w, err := s.bucket.newWriter(wctx, key, contentType)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("write %s to %s: %w", key, s, err)
	}
	return &Writer{w: w, buf: bufio.NewWriterSize(w, writeBuffer), cancel: cancel, h: sha256.New(), key: key, where: s.display}, nil
}

// writeBuffer is what a Writer gathers before it hands bytes to the
// bucket: gzip writes about 250 bytes at a time, which unbuffered was a
// system call each (an eighth of an export's CPU).
const writeBuffer = 64 << 10

func (o *Writer) Write(p []byte) (int, error) {
	n, err := o.buf.Write(p)
	o.h.Write(p[:n])
	o.n += int64(n)
	return n, err
}

// Close commits the object.
func (o *Writer) Close() error {
	defer o.cancel()
	if err := o.buf.Flush(); err != nil {
		o.w.abort()
		return fmt.Errorf("write %s to %s: %w", o.key, o.where, err)
	}
	if err := o.w.Close(); err != nil {
		return fmt.Errorf("write %s to %s: %w", o.key, o.where, err)
	}
	return nil
}

// Abort discards the object.
func (o *Writer) Abort() {
	o.w.abort()
	o.cancel()
}

// Size is the number of bytes written so far.
func (o *Writer) Size() int64 { return o.n }

// SHA256 is the hex sha256 of the bytes written so far.
func (o *Writer) SHA256() string { return hex.EncodeToString(o.h.Sum(nil)) }

// OpenReader opens object key for reading. A missing object is an error
// wrapping ErrNotExist.
func (s *Store) OpenReader(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := s.bucket.newReader(ctx, key)
	if errors.Is(err, ErrNotExist) {
		return nil, fmt.Errorf("%s in %s: %w", key, s, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", key, s, err)
	}
	return r, nil
}

// OpenChecked opens object key for reading; the reader fails with an
// error wrapping ErrCorrupt at its end when the bytes read are not size
// bytes with the given hex sha256. A missing object is ErrCorrupt too:
// whoever names it in a manifest expects it.
func (s *Store) OpenChecked(ctx context.Context, key string, size int64, sha string) (io.ReadCloser, error) {
	r, err := s.OpenReader(ctx, key)
	if errors.Is(err, ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is missing from %s", ErrCorrupt, key, s)
	}
	if err != nil {
		return nil, err
	}
	return &checkedReader{r: r, h: sha256.New(), key: key, size: size, sha: sha}, nil
}

// checkedReader hashes what it reads and checks size and sha256 at EOF.
type checkedReader struct {
	r    io.ReadCloser
	h    hash.Hash
	n    int64
	key  string
	size int64
	sha  string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.size {
		return n, fmt.Errorf("%w: %s has more than the %d bytes its manifest says", ErrCorrupt, c.key, c.size)
	}
	if errors.Is(err, io.EOF) {
		if c.n != c.size {
			return n, fmt.Errorf("%w: %s has %d bytes, the manifest says %d", ErrCorrupt, c.key, c.n, c.size)
		}
		if sum := hex.EncodeToString(c.h.Sum(nil)); sum != c.sha {
			return n, fmt.Errorf("%w: %s has sha256 %s, the manifest says %s", ErrCorrupt, c.key, sum, c.sha)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.r.Close() }

// idPattern is the shape of an id of a backup or an export: a UTC
// timestamp and a random suffix, so ids sort by time and never collide.
var idPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$`) })

// NewID returns a new id for time t, such as 20261121T193000Z-ab12cd:
// readable, unique (24 random bits), and sorted by the second it was
// taken in.
func NewID(t time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// ValidID reports whether id has the shape of an id from NewID.
func ValidID(id string) bool { return idPattern().MatchString(id) }

// notLinked is the error for a store whose driver this build left out,
// saying how to get a build with it.
func notLinked(scheme, how string) error {
	return fmt.Errorf("the %s:// store %w; %s", scheme, ErrDriverNotLinked, how)
}
