package transfer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
)

// ManifestFormat is the newest version of the manifest, which this ferry
// reads with every older one. Format 4 seals an encrypted export's list of
// paused workloads (Quiesce.PausedSealed); format 3 seals an encrypted table's row
// checksum (see Manifest.seal), and carries a MySQL FLOAT with every digit
// (older ferry read six); format 2 names its chunks' compression
// (Compression); format 1, the only one before it, has gzip chunks. An
// export is written in the oldest format that holds it, so that older
// ferry reads it: 1 with gzip chunks, 2 with S2, 3 when encrypted or with
// a MySQL FLOAT column, 4 when encrypted with workloads paused.
const ManifestFormat = 4

// The compressions of an export's chunks (ExportOptions.Compression).
const (
	// CompressS2 is S2 (github.com/klauspost/compress/s2), Snappy's
	// faster, denser successor: the default, for the least CPU on both
	// sides of a move.
	CompressS2 = "s2"
	// CompressGzip is gzip at its fastest level: a smaller archive (about
	// three fifths of S2's on service metadata) for more CPU.
	CompressGzip = "gzip"
)

const manifestName = "manifest.json"

// ErrNewerFormat is returned for an export written by a newer ferry, in a
// manifest format or with a compression this ferry does not read: the
// export is not damaged.
var ErrNewerFormat = errors.New("the export needs a newer ferry")

// Manifest describes one export. It is written last: an export without a
// manifest is incomplete (still running, or failed) and is never
// imported.
type Manifest struct {
	Format       int       `json:"format"`
	ID           string    `json:"id"`
	CreatedAt    time.Time `json:"created_at"`
	FerryVersion string    `json:"ferry_version"`
	Source       Source    `json:"source"`
	Snapshot     Snapshot  `json:"snapshot"`
	// Quiesce records the workloads the export paused on the source.
	Quiesce *Quiesce `json:"quiesce,omitempty"`
	// Window is the --since window the rows were selected with.
	Window *WindowRecord `json:"window,omitempty"`
	// LeftOut are the source's tables that --tables or --exclude left
	// out of the export.
	LeftOut []string `json:"left_out,omitempty"`
	// Encryption is set for an encrypted export.
	Encryption *Encryption `json:"encryption,omitempty"`
	// Compression is how the chunks are compressed: CompressS2 or
	// CompressGzip; left out (gzip) in format 1.
	Compression string        `json:"compression,omitempty"`
	Tables      []TableExport `json:"tables"`
	// Sequences are every sequence of the source's schema (PostgreSQL),
	// owned by a column or not, at the snapshot.
	Sequences  []Sequence `json:"sequences,omitempty"`
	DurationMS int64      `json:"duration_ms"`
}

// Source is the database an export was taken from.
type Source struct {
	// Engine is "postgres", "mysql" or "sqlite".
	Engine        string `json:"engine"`
	ServerVersion string `json:"server_version,omitempty"`
	// Database is its URL without secrets.
	Database     string `json:"database"`
	HistoryTable string `json:"history_table"`
	// SchemaVersion is the last applied ferry migration (0: none).
	SchemaVersion int64 `json:"schema_version"`
	// Migrations are the applied migrations, with the checksums an import
	// compares with its own migration files.
	Migrations []AppliedMigration `json:"migrations"`
}

// AppliedMigration is one applied migration of the source.
type AppliedMigration struct {
	Version  int64  `json:"version"`
	Name     string `json:"name"`
	Checksum string `json:"checksum"`
}

// Snapshot says how the export's rows were made consistent.
type Snapshot struct {
	// Method: "exported-snapshot" (PostgreSQL: every worker reads the one
	// snapshot pg_export_snapshot named), "consistent-snapshot" (MySQL:
	// one START TRANSACTION WITH CONSISTENT SNAPSHOT),
	// "aligned-consistent-snapshots" (MariaDB: one per worker, all begun
	// while BACKUP STAGE BLOCK_COMMIT held every commit) or
	// "read-transaction" (SQLite: one read transaction).
	Method string `json:"method"`
	// ID is PostgreSQL's snapshot id.
	ID string `json:"id,omitempty"`
	// At is the server's clock when the snapshot was taken.
	At time.Time `json:"at"`
}

// TableExport is one table's part of an export.
type TableExport struct {
	Table
	// Filter is the WHERE clause rows were selected with ("" for all).
	Filter string `json:"filter,omitempty"`
	Rows   int64  `json:"rows"`
	// RowChecksum is the order-independent checksum of the rows' encoded
	// lines (see rowSum); for an encrypted table, sealed (see
	// Manifest.seal).
	RowChecksum string  `json:"row_checksum"`
	Chunks      []Chunk `json:"chunks"`

	// For an import into a newer target: the exported table whose rows
	// this (target) table loads, and which of its columns, in order.
	src  *TableExport
	keep []int
	// Across engines: each column's conversion (nil: none) and the
	// canonical form of its values for verification; fedSum is the
	// canonical row checksum of the rows this run loaded (fed).
	conv   []func(value) (value, error)
	canon  []func(any) any
	fedSum rowSum
	fed    bool
	// textSum is the text sum (see textHash) of the rows this run fed,
	// when textFed: every row, as exported, into a MySQL target.
	textSum rowSum
	textFed bool
}

// Chunk is one stored chunk file of a table.
type Chunk struct {
	// Name is the object's key under the export
	// ("tables/runs/part-00001.jsonl.s2"; ".jsonl.gz" with gzip).
	Name string `json:"name"`
	Rows int64  `json:"rows"`
	// Size and SHA256 are of the stored bytes; RawSize of the rows'
	// encoding before compression (0 for an encrypted table: it would
	// tell the length of what is encrypted).
	Size    int64  `json:"size"`
	RawSize int64  `json:"raw_size"`
	SHA256  string `json:"sha256"`
}

// Size is the stored size of the whole export.
func (m *Manifest) Size() int64 {
	var n int64
	for _, t := range m.Tables {
		for _, c := range t.Chunks {
			n += c.Size
		}
	}
	return n
}

// Rows is the number of rows in the export.
func (m *Manifest) Rows() int64 {
	var n int64
	for _, t := range m.Tables {
		n += t.Rows
	}
	return n
}

// table returns the export of table name, or nil.
func (m *Manifest) table(name string) *TableExport {
	for i := range m.Tables {
		if m.Tables[i].Name == name {
			return &m.Tables[i]
		}
	}
	return nil
}

func decodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not an export manifest: %w", err)
	}
	if m.Format == 0 {
		return nil, fmt.Errorf("not an export manifest: it has no format")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("not an export manifest: %w", err)
	}
	if _, ok := fields["tables"]; !ok {
		return nil, fmt.Errorf("not an export manifest: it has no tables field")
	}
	if m.Source.SchemaVersion < 0 {
		return nil, fmt.Errorf("the source's schema version is %d, which no schema has", m.Source.SchemaVersion)
	}
	for _, a := range m.Source.Migrations {
		if a.Version <= 0 {
			return nil, fmt.Errorf("the source's applied migration %d has a version no migration has", a.Version)
		}
	}
	if m.Format < 1 || m.Format > ManifestFormat {
		return nil, fmt.Errorf("%w: manifest format %d: this ferry reads formats 1 to %d", ErrNewerFormat, m.Format, ManifestFormat)
	}
	switch {
	case m.Format == 1 && m.Compression != "":
		return nil, fmt.Errorf("manifest format 1 names a compression (%q); only format 2 does", m.Compression)
	case m.Format > 1 && m.Compression == "":
		return nil, fmt.Errorf("manifest format %d names no compression", m.Format)
	case m.Format > 1 && m.Compression != CompressS2 && m.Compression != CompressGzip:
		return nil, fmt.Errorf("%w: chunks compressed with %q: this ferry reads %s and %s", ErrNewerFormat, m.Compression, CompressS2, CompressGzip)
	}
	for i, sq := range m.Sequences {
		// An older ferry wrote a name that needs quotes quoted
		// ("InvoiceNo"), which the import quotes itself.
		if n := sq.Name; len(n) >= 2 && n[0] == '"' && n[len(n)-1] == '"' {
			m.Sequences[i].Name = strings.ReplaceAll(n[1:len(n)-1], `""`, `"`)
		}
	}
	if q := m.Quiesce; q != nil && q.PausedSealed != "" && (m.Format < 4 || m.Encryption == nil || q.PausedCount <= 0 || len(q.Paused) > 0) {
		return nil, fmt.Errorf("a sealed list of paused workloads in an export that is not encrypted, or in manifest format %d, or with %d rows", m.Format, q.PausedCount)
	}
	tables := map[string]bool{}
	for _, t := range m.Tables {
		if t.Name == "" || len(t.Columns) == 0 {
			return nil, fmt.Errorf("manifest names a table without a name or columns")
		}
		if tables[t.Name] {
			return nil, fmt.Errorf("table %s is listed twice", t.Name)
		}
		tables[t.Name] = true
		if t.Rows < 0 {
			return nil, fmt.Errorf("table %s: %d rows", t.Name, t.Rows)
		}
		if strings.HasPrefix(t.RowChecksum, sealedPrefix) {
			if m.Format < 3 || !m.Encryption.encrypts(t.Name) {
				return nil, fmt.Errorf("table %s: a sealed row checksum in a table that is not encrypted, or in manifest format %d", t.Name, m.Format)
			}
		} else if _, err := parseRowSum(t.RowChecksum); err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		var rows int64
		chunks := map[string]bool{}
		for _, c := range t.Chunks {
			if !validChunkName(t.Name, c.Name, m.compression()) {
				return nil, fmt.Errorf("table %s: chunk name %q is not tables/%s/part-NNNNN%s", t.Name, c.Name, t.Name, chunkExt(m.compression()))
			}
			if chunks[c.Name] || c.Rows < 0 {
				return nil, fmt.Errorf("table %s: chunk %s is listed twice, or with %d rows", t.Name, c.Name, c.Rows)
			}
			chunks[c.Name] = true
			rows += c.Rows
		}
		if rows != t.Rows {
			return nil, fmt.Errorf("table %s: its chunks hold %d rows, the manifest says %d", t.Name, rows, t.Rows)
		}
	}
	return &m, nil
}

// compression is how m's chunks are compressed.
func (m *Manifest) compression() string {
	if m.Compression == "" {
		return CompressGzip
	}
	return m.Compression
}

// chunkExt is a chunk name's ending for compression.
func chunkExt(compression string) string {
	if compression == CompressGzip {
		return ".jsonl.gz"
	}
	return ".jsonl.s2"
}

func chunkName(table string, n int, compression string) string {
	return fmt.Sprintf("tables/%s/part-%05d%s", table, n, chunkExt(compression))
}

func validChunkName(table, name, compression string) bool {
	var n int
	_, err := fmt.Sscanf(name[min(len(name), len("tables/"+table+"/")):], "part-%05d", &n)
	return err == nil && name == chunkName(table, n, compression)
}

// sealedPrefix starts a sealed row checksum.
const sealedPrefix = "age:"

// sealString encrypts text to to, as "age:" and base64.
func sealString(to age.Recipient, text string) (string, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, to)
	if err != nil {
		return "", err
	}
	io.WriteString(w, text)
	if err := w.Close(); err != nil {
		return "", err
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// unsealString opens what sealString sealed.
func unsealString(key age.Identity, sealed string) (string, error) {
	b64, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", errors.New("not sealed")
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", err
	}
	r, err := age.Decrypt(bytes.NewReader(data), key)
	if err != nil {
		return "", err
	}
	text, err := io.ReadAll(r)
	return string(text), err
}

// seal encrypts the row checksum of every encrypted table to the
// export's key, and drops its chunks' raw sizes. In the clear, a row
// checksum (a sum of the rows' sha256) would let anyone holding the
// archive confirm a guess of an encrypted table's rows, a few secrets in
// a small table most of all, and a raw size would tell their length.
func (m *Manifest) seal(to age.Recipient) error {
	for i := range m.Tables {
		t := &m.Tables[i]
		if !m.Encryption.encrypts(t.Name) {
			continue
		}
		sealed, err := sealString(to, t.RowChecksum)
		if err != nil {
			return err
		}
		t.RowChecksum = sealed
		for j := range t.Chunks {
			t.Chunks[j].RawSize = 0
		}
	}
	m.formatAtLeast(3)
	if m.Quiesce != nil && len(m.Quiesce.Paused) > 0 {
		// Sealed as it is written (Quiesce.MarshalJSON): an older ferry
		// would read no paused workloads, and resume none.
		m.Quiesce.sealTo = to
		m.formatAtLeast(4)
	}
	return nil
}

// formatAtLeast raises the manifest's format to f, for what an older
// ferry would misread.
func (m *Manifest) formatAtLeast(f int) {
	if m.Compression == "" {
		m.Compression = CompressGzip // format 1 leaves it out; 2 and on name it
	}
	m.Format = max(m.Format, f)
}

// unseal opens the sealed row checksums with the export's key.
func (m *Manifest) unseal(key age.Identity) error {
	for i := range m.Tables {
		t := &m.Tables[i]
		if !strings.HasPrefix(t.RowChecksum, sealedPrefix) {
			continue
		}
		sum, err := unsealString(key, t.RowChecksum)
		if err != nil {
			return fmt.Errorf("%w: table %s: the sealed row checksum: %v", ErrCorrupt, t.Name, err)
		}
		if _, err := parseRowSum(sum); err != nil {
			return fmt.Errorf("%w: table %s: %v", ErrCorrupt, t.Name, err)
		}
		t.RowChecksum = sum
	}
	if m.Quiesce != nil {
		return m.Quiesce.unseal(key)
	}
	return nil
}
