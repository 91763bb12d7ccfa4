package backup

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/store"
)

// Reasons recorded in a manifest.
const (
	// ReasonManual: taken by `ferry backup create` or a direct Create call.
	ReasonManual = "manual"
	// ReasonBeforeUpgrade: taken by PreUpgrade before an upgrade applied
	// anything.
	ReasonBeforeUpgrade = "before-upgrade"
)

// ManifestFormat is the version of the manifest layout written by this
// package.
const ManifestFormat = 1

// manifestName is the key of a backup's manifest under its id.
const manifestName = "manifest.json"

// Manifest describes one complete backup. It is stored as JSON next to the
// backup's objects, and written last: a backup without a manifest is
// incomplete and is not listed.
type Manifest struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	// CreatedAt is when the backup started (UTC).
	CreatedAt  time.Time `json:"created_at"`
	DurationMS int64     `json:"duration_ms"`
	// Reason is ReasonManual or ReasonBeforeUpgrade.
	Reason       string       `json:"reason"`
	FerryVersion string       `json:"ferry_version"`
	Database     DatabaseInfo `json:"database"`
	// SchemaVersion is the highest applied migration version when the
	// backup was taken (0 without history).
	SchemaVersion int64 `json:"schema_version"`
	// Upgrade is set for a backup taken before an upgrade.
	Upgrade *UpgradeInfo `json:"upgrade,omitempty"`
	Tool    ToolInfo     `json:"tool"`
	Objects []Object     `json:"objects"`
	// Tables are the row counts of every table at backup time.
	Tables []TableCount `json:"tables"`
	// Consistency says how the row counts relate to the dump: "snapshot"
	// (counted in the dump's own snapshot), "dump" (counted from the dump
	// stream itself) or "copy" (counted in the copied database file).
	Consistency string `json:"consistency"`
}

// DatabaseInfo names the backed-up database. It never holds a password.
type DatabaseInfo struct {
	// Kind is "postgres", "mysql" or "sqlite".
	Kind string `json:"kind"`
	// Name is the database name (the file path for SQLite).
	Name string `json:"name"`
	// Address is host:port (the file path for SQLite).
	Address string `json:"address"`
	// URL is the database URL without password or secret parameters.
	URL string `json:"url"`
	// ServerVersion is the server's own version string.
	ServerVersion string `json:"server_version"`
	// HistoryTable is ferry's history table in this database.
	HistoryTable string `json:"history_table"`
}

// UpgradeInfo describes the upgrade a ReasonBeforeUpgrade backup was taken
// for.
type UpgradeInfo struct {
	From       int64   `json:"from_version"`
	To         int64   `json:"to_version"`
	Migrations []int64 `json:"migrations"`
}

// ToolInfo names the program that produced the dump.
type ToolInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Object is one stored file of a backup.
type Object struct {
	Name string `json:"name"`
	// Format is the dump format: "pg_dump-custom", "mysqldump-sql" or
	// "sqlite-database".
	Format string `json:"format"`
	// Compression is "gzip", or "none" when the format compresses itself
	// (pg_dump's custom format).
	Compression string `json:"compression"`
	// Size is the stored size in bytes; RawSize the size the tool wrote,
	// before compression.
	Size    int64  `json:"size"`
	RawSize int64  `json:"raw_size"`
	SHA256  string `json:"sha256"`
}

// TableCount is the number of rows of one table at backup time. Name is
// schema-qualified on PostgreSQL.
type TableCount struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// Size is the stored size of all of the backup's objects.
func (m *Manifest) Size() int64 {
	var n int64
	for _, o := range m.Objects {
		n += o.Size
	}
	return n
}

// RawSize is the size of the dump before compression.
func (m *Manifest) RawSize() int64 {
	var n int64
	for _, o := range m.Objects {
		n += o.RawSize
	}
	return n
}

// NewID returns a new backup id for time t, such as 20261121T193000Z-ab12cd:
// readable, unique (24 random bits), and sorted by the second it was taken
// in (Store.List orders backups of the same second by their start time).
func NewID(t time.Time) string { return store.NewID(t) }

// ValidID reports whether id has the shape of a backup id.
func ValidID(id string) bool { return store.ValidID(id) }

func checkID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%q is not a backup id (ids look like 20261121T193000Z-ab12cd; `ferry backup list` shows them)", id)
	}
	return nil
}

func decodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m.Format < 1 || m.Format > ManifestFormat {
		return nil, fmt.Errorf("manifest format %d is not supported by this ferry (it reads format %d); use a newer ferry", m.Format, ManifestFormat)
	}
	// A zero offset written as "+00:00" parses to a nameless fixed zone,
	// which encodes as "Z" and decodes to UTC: read it as UTC at once, so
	// a manifest means one thing however it spells midnight's offset.
	if _, off := m.CreatedAt.Zone(); off == 0 {
		m.CreatedAt = m.CreatedAt.UTC()
	}
	return &m, nil
}
