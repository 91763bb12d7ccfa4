package migrate

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/dialect/mysql"
)

// TestChunkLimits: chunks stay under the server's limit on one query, and
// a migration too large for one query alone is not grouped.
func TestChunkLimits(t *testing.T) {
	m := &Migrator{d: mysql.New(), log: slog.New(slog.DiscardHandler), table: "ferry_migrations"}
	var migs []*Migration
	for v := int64(1); v <= 40; v++ {
		body := fmt.Sprintf("INSERT INTO t VALUES ('%s')", strings.Repeat("x", 10_000))
		if v == 20 {
			body = fmt.Sprintf("INSERT INTO t VALUES ('%s')", strings.Repeat("y", 200_000))
		}
		migs = append(migs, &Migration{Version: v, Name: "m", Up: &Section{Statements: []Statement{{SQL: body}}}})
	}
	m.scriptLimit.Store(100_000)
	var chunks []int
	for i := 0; i < len(migs); {
		if m.strategyFor(migs[i], OpUp) != grouped {
			if migs[i].Version != 20 {
				t.Fatalf("migration %d is not grouped", migs[i].Version)
			}
			chunks = append(chunks, 0)
			i++
			continue
		}
		j := m.chunkEnd(migs, i, OpUp, nil)
		size := 0
		for _, mig := range migs[i:j] {
			size += scriptSize(mig.Up)
		}
		if size > 100_000 {
			t.Fatalf("chunk of %d migrations from %d: %d bytes", j-i, migs[i].Version, size)
		}
		chunks = append(chunks, j-i)
		i = j
	}
	if fmt.Sprint(chunks) != "[8 8 3 0 8 8 4]" {
		t.Fatalf("chunks %v", chunks)
	}
	// Unknown limit: 1 MiB chunks, everything grouped.
	m.scriptLimit.Store(0)
	if m.strategyFor(migs[19], OpUp) != grouped || m.chunkEnd(migs, 0, OpUp, nil) != 32 {
		t.Fatalf("without a known limit: %v, %d", m.strategyFor(migs[19], OpUp), m.chunkEnd(migs, 0, OpUp, nil))
	}
}
