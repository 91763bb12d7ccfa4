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
// fails in the one that waited for the other's: here the other is a
// transaction that creates the ledger and commits once the import's
// statement waits for it.
func TestLedgerCreatedAtOnce(t *testing.T) {
	ctx := tctx(t)
	db := testdb.New(t, database.Postgres).DB
	m := migratorOf(t, map[string]string{"001_t.sql": "-- +ferry up\nCREATE TABLE x (id int);\n"})(db)
	im := &importer{db: db, mig: m, ledger: db.Dialect.Table(ledgerTable(m.Table()))}
	other, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, "CREATE TABLE "+im.ledger+" (export_id VARCHAR(64) NOT NULL, step VARCHAR(300) NOT NULL, row_count BIGINT NOT NULL, done_at VARCHAR(40) NOT NULL, PRIMARY KEY (export_id, step))"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- im.createLedger(ctx) }()
	for waiting := false; !waiting; {
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE 'CREATE TABLE IF NOT EXISTS%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the import that waited for the other's ledger: %v", err)
	}
}
