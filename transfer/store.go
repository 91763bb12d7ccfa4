package transfer

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"

	"github.com/ferrydb/ferry/internal/redact"
	"github.com/ferrydb/ferry/store"
)

// DefaultStore is the store used when none is configured: the directory
// ferry-exports under the current directory.
const DefaultStore = "ferry-exports"

// ErrNotFound is wrapped by the error for an export the store does not
// hold (or whose manifest was never written: it failed or is running).
var ErrNotFound = errors.New("export not found")

// ErrCorrupt is wrapped by the error for an export whose objects do not
// match its manifest: a flipped byte, a missing or cut chunk.
var ErrCorrupt = store.ErrCorrupt

// Store is where exports live: each export is a "directory" named by its
// id holding manifest.json and tables/<table>/part-NNNNN.jsonl.s2 (.gz
// with gzip).
type Store struct {
	s *store.Store
}

// OpenStore opens the export store at location (a directory, file://,
// s3://, gs:// or azblob://; see store.Open); "" means DefaultStore.
func OpenStore(ctx context.Context, location string) (*Store, error) {
	if strings.TrimSpace(location) == "" {
		location = DefaultStore
	}
	s, err := store.Open(ctx, location, "export store")
	if err != nil {
		return nil, err
	}
	return &Store{s: s}, nil
}

// OpenStoreExisting is OpenStore for commands that only read (list,
// verify, import): a directory that does not exist is an error, not a new
// empty store.
func OpenStoreExisting(ctx context.Context, location string) (*Store, error) {
	if strings.TrimSpace(location) == "" {
		location = DefaultStore
	}
	s, err := store.OpenExisting(ctx, location, "export store")
	if err != nil {
		return nil, err
	}
	return &Store{s: s}, nil
}

// SplitLocation splits "STORE/ID" (ferry-exports/20261129T170000Z-ab12cd,
// s3://bucket/prefix/20261129T...) into the store and the export id; a
// bare id is in the default store.
func SplitLocation(loc string) (storeLoc, id string, err error) {
	loc = strings.TrimRight(strings.TrimSpace(loc), "/")
	base := path.Base(loc)
	if i := strings.LastIndexByte(loc, '?'); i >= 0 {
		// s3://bucket/prefix/ID?region=x
		q := loc[i:]
		head := loc[:i]
		base = path.Base(head)
		if !ValidID(base) {
			return "", "", fmt.Errorf("%q does not end with an export id (ids look like 20261129T170000Z-ab12cd; `ferry export list` shows them)", redact.URL(loc))
		}
		return strings.TrimSuffix(head, "/"+base) + q, base, nil
	}
	if !ValidID(base) {
		return "", "", fmt.Errorf("%q does not end with an export id (ids look like 20261129T170000Z-ab12cd; `ferry export list` shows them)", redact.URL(loc))
	}
	if base == loc {
		return DefaultStore, base, nil
	}
	return strings.TrimSuffix(loc, "/"+base), base, nil
}

// ValidID reports whether id has the shape of an export id.
func ValidID(id string) bool { return store.ValidID(id) }

func newID(t time.Time) string { return store.NewID(t) }

// At is "STORE/ID" for export id, quoted for a shell, as ferry import
// --from and the export commands take it.
func (s *Store) At(id string) string { return s.s.At(id) }

// String is the store's location without secrets.
func (s *Store) String() string { return s.s.String() }

// Close releases the store.
func (s *Store) Close() error { return s.s.Close() }

type objectWriter = store.Writer

// newChunk starts chunk name of export id: rows, compression (S2 or
// gzip, as the name ends), age encryption to `to` (when not nil), the
// store.
func (s *Store) newChunk(ctx context.Context, id, name string, to age.Recipient) (*chunkWriter, error) {
	obj, err := s.s.Create(ctx, id+"/"+name, "application/octet-stream")
	if err != nil {
		return nil, err
	}
	cw := &chunkWriter{obj: obj, name: name}
	var under io.Writer = obj
	if to != nil {
		if cw.enc, err = age.Encrypt(obj, to); err != nil {
			obj.Abort()
			return nil, err
		}
		under = cw.enc
	}
	if chunkCompression(name) == CompressGzip {
		// The fastest level: text still shrinks several times.
		cw.comp, _ = gzip.NewWriterLevel(under, gzip.BestSpeed)
	} else {
		// One goroutine: the chunk writer compresses in its own already,
		// and --jobs sets how many there are.
		cw.comp = s2.NewWriter(under, s2.WriterConcurrency(1))
	}
	cw.start()
	return cw, nil
}

// writeManifest stores m, which completes the export.
func (s *Store) writeManifest(ctx context.Context, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := s.s.WriteAll(ctx, m.ID+"/"+manifestName, append(data, '\n'), "application/json"); err != nil {
		return fmt.Errorf("write manifest of export %s: %w", m.ID, err)
	}
	return nil
}

// Manifest reads the manifest of export id.
func (s *Store) Manifest(ctx context.Context, id string) (*Manifest, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%q is not an export id (ids look like 20261129T170000Z-ab12cd; `ferry export list` shows them)", id)
	}
	data, err := s.s.ReadAll(ctx, id+"/"+manifestName)
	if errors.Is(err, store.ErrNotExist) {
		hint := "`ferry export list --store " + s.String() + "` shows the exports there"
		if inc, _ := s.Incomplete(ctx); slices.Contains(inc, id) {
			hint = "its chunks are there but its manifest is not: the export did not finish (it failed, was killed, or is still running); take a new one, and once it is not running, `ferry export delete " + s.At(id) + "` removes what it left"
		}
		return nil, fmt.Errorf("%w: %s in %s (%s)", ErrNotFound, id, s, hint)
	}
	if err != nil {
		return nil, err
	}
	m, err := decodeManifest(data)
	if errors.Is(err, ErrNewerFormat) {
		return nil, fmt.Errorf("export %s in %s: %w", id, s, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: manifest of export %s in %s: %v; it was cut short or changed after the export wrote it: restore the export's objects from a copy of the store, or export again", ErrCorrupt, id, s, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: manifest of export %s in %s names export %q; the store was edited by hand", ErrCorrupt, id, s, m.ID)
	}
	if m.Quiesce != nil && !m.Quiesce.ResumedOnSource {
		// ferry export resume records a later resumption in
		// quiesce.json, not in the manifest, which is written once.
		if q, err := s.Quiesce(ctx, id); err == nil && q != nil {
			m.Quiesce.ResumedOnSource = q.ResumedOnSource
		}
	}
	return m, nil
}

// Broken is an export whose manifest is there but cannot be read.
type Broken struct {
	ID  string
	Err error
}

// List returns the complete exports in the store, oldest first, and the
// broken ones: a manifest that cannot be read, or an encrypted export
// without its key. Exports without a manifest (failed or running) are in
// neither list.
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
			continue
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case err != nil:
			broken = append(broken, Broken{ID: id, Err: err})
			continue
		}
		if m.Encryption != nil {
			// Without its key, no one can decrypt it (verify also checks
			// the key's checksum).
			ok, err := s.s.Exists(ctx, id+"/"+m.Encryption.Key)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				broken = append(broken, Broken{ID: id, Err: fmt.Errorf("%w: %s/%s is missing: the export cannot be decrypted", ErrCorrupt, id, m.Encryption.Key)})
				continue
			}
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, broken, nil
}

// Incomplete returns the ids of exports whose objects are in the store
// without a manifest: an export that failed and could not clean up, was
// killed, or is still running. They are never listed or imported;
// Delete removes them.
func (s *Store) Incomplete(ctx context.Context) ([]string, error) {
	ids, err := s.s.Dirs(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		if !ValidID(id) {
			continue
		}
		ok, err := s.s.Exists(ctx, id+"/"+manifestName)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// Prune deletes all but the newest keep complete exports (keep ≥ 1) and
// returns those deleted (with dryRun, those it would delete). Exports
// without a manifest are left alone: one may still be running.
func (s *Store) Prune(ctx context.Context, keep int, dryRun bool) ([]*Manifest, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune must keep at least 1 export, got %d", keep)
	}
	all, _, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	if len(all) <= keep {
		return nil, nil
	}
	old := all[:len(all)-keep]
	if dryRun {
		return old, nil
	}
	for i, m := range old {
		if err := s.Delete(ctx, m.ID); err != nil {
			return old[:i], err
		}
	}
	return old, nil
}

// Delete removes export id, manifest first.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%q is not an export id", id)
	}
	if err := s.s.Delete(ctx, id+"/"+manifestName); err != nil {
		return err
	}
	return s.s.DeletePrefix(ctx, id+"/")
}

// chunkCompression is how chunk name is compressed, as its name ends
// (decodeManifest checks that the names agree with the manifest).
func chunkCompression(name string) string {
	if strings.HasSuffix(name, ".gz") {
		return CompressGzip
	}
	return CompressS2
}

// chunkReader reads the rows of one chunk, checking the stored bytes
// against the manifest as they are read.
type chunkReader struct {
	obj io.ReadCloser
	dec io.Reader // the decompressor
	br  *bufio.Reader
	c   Chunk
	id  string
	// maxRow bounds a row line read whole (0: maxWholeRow).
	maxRow int64
}

// missingChunks returns a "chunk" problem for every chunk of m's tables
// that the store does not hold: one listing, for an import to refuse
// before it changes anything rather than when the table's turn comes.
func (s *Store) missingChunks(ctx context.Context, m *Manifest) ([]Problem, error) {
	keys, err := s.s.Keys(ctx, m.ID+"/")
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	var problems []Problem
	for _, t := range m.Tables {
		for _, c := range t.Chunks {
			if !have[m.ID+"/"+c.Name] {
				problems = append(problems, Problem{Table: t.Name, Chunk: c.Name, What: "chunk", Detail: m.ID + "/" + c.Name + " is missing"})
			}
		}
	}
	return problems, nil
}

// openChunk opens chunk c of export id, decrypting it with key when not
// nil.
func (s *Store) openChunk(ctx context.Context, id string, c Chunk, key age.Identity) (*chunkReader, error) {
	obj, err := s.s.OpenChecked(ctx, id+"/"+c.Name, c.Size, c.SHA256)
	if err != nil {
		return nil, err
	}
	var under io.Reader = obj
	if key != nil {
		if under, err = age.Decrypt(obj, key); err != nil {
			err = s.corrupt(id, c, obj, err)
			obj.Close()
			return nil, err
		}
	}
	var dec io.Reader
	if chunkCompression(c.Name) == CompressGzip {
		if dec, err = gzip.NewReader(under); err != nil {
			err = s.corrupt(id, c, obj, err)
			obj.Close()
			return nil, err
		}
	} else {
		// S2 has no trailer: a chunk cut between two of its blocks
		// decompresses, shorter; the size and checksum OpenChecked
		// compares at the end are what tell.
		dec = s2.NewReader(under)
	}
	return &chunkReader{obj: obj, dec: dec, br: bufio.NewReaderSize(dec, 1<<20), c: c, id: id}, nil
}

// corrupt prefers the checksum's verdict on a damaged chunk to the
// decompressor's.
func (s *Store) corrupt(id string, c Chunk, obj io.Reader, err error) error {
	if _, cerr := io.Copy(io.Discard, obj); cerr != nil && errors.Is(cerr, ErrCorrupt) {
		return cerr
	}
	return fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, id, c.Name, err)
}

// bufferSize sets the size of the reader's buffer, past which a row is
// long (see next), before anything is read.
func (r *chunkReader) bufferSize(n int) { r.br = bufio.NewReaderSize(r.dec, n) }

// line returns the next row's line without its newline, or io.EOF after
// the last one, once the whole object has been read and checked.
func (r *chunkReader) line() ([]byte, error) {
	b, _, err := r.next(0)
	return b, err
}

// next returns the next row's line as line does or, when the row is
// longer than the reader's buffer and ncol > 0, as a streamRow of ncol
// values to read to its end (finish) before the next row.
// maxWholeRow bounds a row line that is read whole (see next): the
// largest value PostgreSQL or MySQL stores, 1 GiB, is 1.34 GiB in base64.
const maxWholeRow int64 = 2 << 30

func (r *chunkReader) next(ncol int) ([]byte, *streamRow, error) {
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) && ncol > 0 {
		return nil, newStreamRow(append([]byte(nil), b...), r.br, ncol, r.id+"/"+r.c.Name), nil
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		// A row longer than the buffer (a large value): collect it, up
		// to maxWholeRow: a few kilobytes of chunk can spell a longer
		// row, which would take all the memory there is.
		full := append([]byte(nil), b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if limit := cmp.Or(r.maxRow, maxWholeRow); int64(len(full)) > limit {
				return nil, nil, fmt.Errorf("%w: %s/%s holds a row whose line is longer than %d MiB, which this import would have to hold whole: more than the largest value PostgreSQL or MySQL stores (1 GiB), encoded", ErrCorrupt, r.id, r.c.Name, limit>>20)
			}
			b, err = r.br.ReadSlice('\n')
			full = append(full, b...)
		}
		b = full
	}
	if err == nil {
		return b[:len(b)-1], nil, nil
	}
	if errors.Is(err, io.EOF) {
		if len(b) > 0 {
			return nil, nil, fmt.Errorf("%w: %s/%s ends in the middle of a row", ErrCorrupt, r.id, r.c.Name)
		}
		// Read the object to its end so that its checksum is checked.
		if _, err := io.Copy(io.Discard, r.obj); err != nil {
			return nil, nil, err
		}
		return nil, nil, io.EOF
	}
	if errors.Is(err, ErrCorrupt) {
		return nil, nil, err
	}
	// A damaged compressed stream: the checksum says more.
	_, cerr := io.Copy(io.Discard, r.obj)
	if cerr != nil {
		return nil, nil, cerr
	}
	return nil, nil, fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, r.id, r.c.Name, err)
}

// failed returns err for a row that does not decode, unless the chunk's
// bytes do not match the manifest: then the checksum's verdict, which
// says more (a flipped byte garbles what the decompressor gives before
// its own check).
func (r *chunkReader) failed(err error) error {
	if _, cerr := io.Copy(io.Discard, r.obj); cerr != nil && errors.Is(cerr, ErrCorrupt) {
		return cerr
	}
	return err
}

func (r *chunkReader) close() {
	if c, ok := r.dec.(io.Closer); ok {
		c.Close()
	}
	r.obj.Close()
}
