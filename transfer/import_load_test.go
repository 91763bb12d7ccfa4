package transfer

import (
	"testing"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestLoadLocks: a group that loads without its foreign keys (a large
// table's) never runs beside another group referencing the same table;
// groups with their foreign keys on share.
func TestLoadLocks(t *testing.T) {
	const big, small, other, free = 0, 1, 2, 3
	l := &loadLocks{
		parents:   [][]string{{"p", "q"}, {"q"}, {"p"}, nil},
		drops:     []bool{true, false, false, false},
		exclusive: map[string]bool{}, shared: map[string]int{},
	}
	steps := []struct {
		start, end int // -1: none
		can        map[int]bool
	}{
		{start: big, end: -1, can: map[int]bool{small: false, other: false, free: true}},
		{start: -1, end: big, can: map[int]bool{small: true, other: true, big: true}},
		{start: small, end: -1, can: map[int]bool{other: true, big: false, free: true}},
		{start: other, end: -1, can: map[int]bool{big: false}},
		{start: -1, end: small, can: map[int]bool{big: false}},
		{start: -1, end: other, can: map[int]bool{big: true}},
	}
	for i, s := range steps {
		if s.start >= 0 {
			if !l.canStart(s.start) {
				t.Fatalf("step %d: group %d cannot start", i, s.start)
			}
			l.hold(s.start, 1)
		}
		if s.end >= 0 {
			l.hold(s.end, -1)
		}
		for g, want := range s.can {
			if got := l.canStart(g); got != want {
				t.Errorf("step %d: canStart(%d) = %v, want %v", i, g, got, want)
			}
		}
	}
}

// TestLedgerCreatedAtOnce: two imports that start at the same moment
// both get the ledger, though PostgreSQL's CREATE TABLE IF NOT EXISTS
// fails in the one that waited for the other's.
func TestLedgerCreatedAtOnce(t *testing.T) {
	tdb := testdb.New(t, database.Postgres)
	mig := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE x (id int);\n"})
	for round := range 6 {
		db := openURL(t, testdb.Create(t, tdb))
		m := mig(db)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				im := &importer{db: db, mig: m, ledger: db.Dialect.Table(ledgerTable(m.Table()))}
				errs <- im.createLedger(tctx(t))
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
