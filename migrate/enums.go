package migrate

// Op is what a run did to a migration, as the history table records it.
type Op string

// Operations recorded in the history table.
const (
	OpUp       Op = "up"
	OpDown     Op = "down"
	OpBaseline Op = "baseline"
	OpRepair   Op = "repair"
	OpAdopt    Op = "adopt"
)

// State is the state of one history row, or of a failed migration.
type State string

// States recorded in the history table.
const (
	// StateRunning: a non-transactional migration has started and not
	// finished. If no process holds the migration lock, it was interrupted.
	StateRunning State = "running"
	// StateApplied: the migration's up part took effect (or was recorded by
	// baseline or repair).
	StateApplied State = "applied"
	// StateFailed: a statement of a non-transactional migration failed; the
	// statements before it took effect. Repair resolves it.
	StateFailed State = "failed"
	// StateRolledBack: a transactional migration failed and was rolled
	// back; nothing of it remains.
	StateRolledBack State = "rolled_back"
	// StateReverted: the migration's down part took effect (or repair
	// recorded that the migration is not applied).
	StateReverted State = "reverted"
	// StateInterrupted is never written: a Failure is interrupted when its
	// row says running and no process holds the migration lock.
	StateInterrupted State = "interrupted"
)

// Format is the file format a migration was read from.
type Format string

// Formats of a migration's source.
const (
	FormatFerry   Format = "ferry"
	FormatGoose   Format = "goose"
	FormatMigrate Format = "golang-migrate"
	FormatGo      Format = "go"
)
