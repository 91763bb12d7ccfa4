package dialecttest_test

import (
	"database/sql"
	"testing"

	"github.com/ferrydb/ferry/dialect/dialecttest"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestConformance runs the suite on every dialect ferry ships, each check
// on a fresh database of a real server (SQLite: a file).
func TestConformance(t *testing.T) {
	for _, kind := range testdb.Kinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			probe := testdb.New(t, kind)
			dialecttest.Run(t, probe.Dialect, func(t *testing.T) *sql.DB {
				return testdb.New(t, kind).DB.DB
			})
		})
	}
}
