// Package api holds the wire types of ferry's migration service: the
// Metaflow-compatible documents and ferry's own /v1 documents. The server,
// its Go client and the CLI share them.
package api

import (
	"errors"

	"github.com/ferrydb/ferry/migrate"
)

// Upgrade results, as the Metaflow migration service writes them.
const (
	UpgradeSuccess = "upgrade success"
	UpgradeFailed  = "upgrade failed"
)

// SchemaStatus is the Metaflow-compatible GET /db_schema_status document.
// Versions are strings, as Metaflow's service returns them.
type SchemaStatus struct {
	IsUpToDate          bool     `json:"is_up_to_date"`
	CurrentVersion      string   `json:"current_version"`
	MigrationInProgress bool     `json:"migration_in_progress"`
	DBSchemaVersions    []string `json:"db_schema_versions"`
	UnappliedMigrations []string `json:"unapplied_migrations"`
}

// UpgradeRequest is the optional body of POST /v1/upgrade. An empty body,
// or {}, applies every pending migration. Unknown fields are refused.
type UpgradeRequest struct {
	// To is the highest version to apply: the version of a migration
	// (positive). Absent applies everything; 0, a negative number or a
	// version no migration has is refused (400).
	To *int64 `json:"to,omitempty"`
}

// Upgrade is the answer to an upgrade: the status before and after (as the
// Metaflow upgrade function returns them) and the outcome. S is
// SchemaStatus for PATCH /upgrade and Status for POST /v1/upgrade.
type Upgrade[S any] struct {
	InitStatus    S      `json:"init-status"`
	UpgradeResult string `json:"upgrade-result"`
	FinalStatus   S      `json:"final-status"`
	// Applied lists what this upgrade applied (empty if another request or
	// replica had already done it).
	Applied []Applied `json:"applied"`
	// Error says why the upgrade failed, and what to do next; "" on
	// success (the key is always present).
	Error string `json:"error"`
	// BackupID names the backup taken before the upgrade, if any.
	BackupID string `json:"backup-id,omitempty"`
	// DurationMS is how long the upgrade took, lock wait included.
	DurationMS int64 `json:"duration_ms"`
	// LockWait, when the upgrade failed because a migration gave up
	// waiting for a table lock (or the preflight found old transactions
	// in the way), says what held it up: a transient failure, worth
	// another try once those sessions are gone.
	LockWait *LockWait `json:"lock_wait,omitempty"`
}

// LockWait describes a migration held up by other sessions' locks.
type LockWait struct {
	TimeoutSeconds float64 `json:"timeout_seconds"`
	// Tries is how many times it was tried (0: the preflight held it back).
	Tries         int           `json:"tries"`
	WaitedSeconds float64       `json:"waited_seconds"`
	Sessions      []LockSession `json:"sessions"`
}

// LockSession is another session whose transaction holds locks in the way.
type LockSession struct {
	ID                 int64    `json:"id"`
	User               string   `json:"user,omitempty"`
	Application        string   `json:"application,omitempty"`
	Client             string   `json:"client,omitempty"`
	State              string   `json:"state,omitempty"`
	TransactionSeconds float64  `json:"transaction_seconds"`
	Tables             []string `json:"tables,omitempty"`
	// Summary is the session in one line, its query cut at its first quote.
	Summary string `json:"summary"`
}

// FromLockWait describes err's lock wait, or returns nil when err is not
// a migrate.LockWaitError.
func FromLockWait(err error) *LockWait {
	var lwe *migrate.LockWaitError
	if !errors.As(err, &lwe) {
		return nil
	}
	lw := &LockWait{TimeoutSeconds: lwe.Timeout.Seconds(), Tries: lwe.Tries, WaitedSeconds: lwe.Waited.Seconds(), Sessions: []LockSession{}}
	for _, s := range lwe.Sessions {
		lw.Sessions = append(lw.Sessions, LockSession{ID: s.ID, User: s.User, Application: s.Application, Client: s.Client, State: s.State,
			TransactionSeconds: s.TxAge.Seconds(), Tables: s.Tables, Summary: s.String()})
	}
	return lw
}

// Error is the body of an error answer, as Metaflow's service writes it.
type Error struct {
	Detail string `json:"detail"`
}

// Ready is the body of GET /readyz.
type Ready struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	// CurrentVersion and LatestVersion are set when the database answered.
	CurrentVersion int64 `json:"current_version,omitempty"`
	LatestVersion  int64 `json:"latest_version,omitempty"`
}
