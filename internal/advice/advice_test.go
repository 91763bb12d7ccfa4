package advice

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// TestFor: each engine error the operator can act on gets the command that
// acts on it; the engine's own messages name none.
func TestFor(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&migrate.MigrationError{Version: 2, Operation: migrate.OpUp, Statement: 2, Err: errors.New("boom")}, "ferry repair 2 --mark applied"},
		{&migrate.MigrationError{Version: 2, Operation: migrate.OpDown, Statement: 1, Err: errors.New("boom")}, "ferry repair 2 --mark pending"},
		{&migrate.MigrationError{Version: 2, RolledBack: true, Err: errors.New("boom")}, "run `ferry up` again"},
		{&migrate.NeedsRepairError{Failures: []migrate.Failure{{Version: 7, State: migrate.StateInterrupted}}}, "ferry repair 7 --mark"},
		{&migrate.NeedsRepairError{Failures: []migrate.Failure{{Version: 7, State: migrate.StateRunning}}}, "wait for it"},
		{&migrate.LockTimeoutError{}, "--lock-timeout"},
		{fmt.Errorf("up: %w", &migrate.OutOfOrderError{MaxApplied: 3}), "--allow-out-of-order"},
		{fmt.Errorf("%w: ./migrations", migrate.ErrNoDir), "ferry init"},
		{&release.ContractBlockedError{}, "ferry up --force"},
		{&release.WaitTimeoutError{Need: 4, Latest: 4, Pending: []migrate.PendingMigration{{Version: 3}}}, "ferry up --to 4"},
	} {
		got := For(tt.err)
		if !strings.Contains(got, tt.want) {
			t.Errorf("For(%T %v) = %q, want it to say %q", tt.err, tt.err, got, tt.want)
		}
		if strings.Contains(tt.err.Error(), "ferry ") || strings.Contains(tt.err.Error(), "--") {
			t.Errorf("the engine's message names a command or flag: %v", tt.err)
		}
	}
}
