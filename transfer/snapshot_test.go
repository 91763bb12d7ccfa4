package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestExportConsistentWhileWriting: writers keep moving amounts from the
// first rows of a table to its last ones, and adding a parent row with a
// child row, each in one transaction, while an export with two workers
// reads the table in two key ranges. The export must hold one moment of
// the database: the amounts add up to what they always do, and every
// child's parent is there. On MariaDB this takes snapshots lined up by
// BACKUP STAGE: two snapshots begun one after the other would see a
// different set of moves.
func TestExportConsistentWhileWriting(t *testing.T) {
	testdb.Each(t, func(t *testing.T, tdb *testdb.DB) {
		const rows, balance = 2000, 100
		var values []string
		for i := 1; i <= rows; i++ {
			values = append(values, fmt.Sprintf("(%d, %d)", i, balance))
		}
		seed := []string{"INSERT INTO accounts (id, balance) VALUES " + strings.Join(values, ", ")}
		switch tdb.Kind {
		case database.MySQL:
			seed = append(seed, "ANALYZE TABLE accounts") // the row estimate that splits it
		case database.Postgres:
			seed = append(seed, "ANALYZE accounts")
		}
		files := map[string]string{"001_accounts.sql": `-- +ferry up
CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE notes (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id));
`}
		st, _, mig := exportOf(t, tdb.DB, files, seed, ExportOptions{})
		ph := func(i int) string {
			if tdb.Kind == database.Postgres {
				return fmt.Sprintf("$%d", i)
			}
			return "?"
		}
		move := []string{
			"UPDATE accounts SET balance = balance - 1 WHERE id = " + ph(1),
			"UPDATE accounts SET balance = balance + 1 WHERE id = " + ph(1),
			"INSERT INTO accounts (id, balance) VALUES (" + ph(1) + ", 0)",
			"INSERT INTO notes (id, account_id) VALUES (" + ph(1) + ", " + ph(2) + ")",
		}
		ctx, stop := context.WithCancel(tctx(t))
		var next atomic.Int64
		next.Store(rows)
		var commits atomic.Int64
		started := make(chan struct{})
		var once sync.Once
		writers := 2
		if tdb.Kind == database.SQLite {
			writers = 1 // one writer at a time
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					from, to, id := 1+(i*7+w)%50, rows-(i*13+w)%50, next.Add(1)
					err := func() error {
						tx, err := tdb.BeginTx(ctx, nil)
						if err != nil {
							return err
						}
						defer tx.Rollback()
						for _, s := range []struct {
							q    string
							args []any
						}{{move[0], []any{from}}, {move[1], []any{to}}, {move[2], []any{id}}, {move[3], []any{id, id}}} {
							if _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {
								return err
							}
						}
						return tx.Commit()
					}()
					if ctx.Err() != nil {
						return
					}
					if err != nil {
						errs <- err
						return
					}
					if commits.Add(1) == 20 {
						once.Do(func() { close(started) })
					}
				}
			}()
		}
		select {
		case <-started:
		case err := <-errs:
			t.Fatal(err)
		}
		// A few tries: MariaDB lines the snapshots up only when no DDL of
		// another test holds BACKUP STAGE off for its 2 seconds.
		aligned := false
		for try := 0; try < 3 && !aligned; try++ {
			before := commits.Load()
			m, err := Export(ctx, st, tdb.DB, mig(tdb.DB), ExportOptions{Jobs: 2, splitRows: 1})
			if err != nil {
				t.Fatal(err)
			}
			during := commits.Load() - before
			aligned = tdb.Kind != database.MySQL || m.Snapshot.Method == "aligned-consistent-snapshots"
			t.Logf("snapshot %s, %d commits during the export", m.Snapshot.Method, during)
			if tdb.Kind != database.SQLite && aligned && len(m.table("accounts").Chunks) < 2 {
				t.Errorf("accounts in %d chunks: the export did not read it in key ranges", len(m.table("accounts").Chunks))
			}
			sum, ids := int64(0), map[int64]bool{}
			for _, line := range tableLines(t, st, m, "accounts") {
				var row [2]int64
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				sum += row[1]
				ids[row[0]] = true
			}
			if sum != rows*balance {
				t.Errorf("the balances add up to %d, not %d: the workers read different moments", sum, rows*balance)
			}
			for _, line := range tableLines(t, st, m, "notes") {
				var row [2]int64
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if !ids[row[1]] {
					t.Errorf("note %d's account %d is not in the export", row[0], row[1])
				}
			}
		}
		stop()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("a writer: %v", err)
		}
		if !aligned {
			t.Error("no export lined its MariaDB snapshots up (BACKUP STAGE) in three tries")
		}
	})
}

// TestAlignedSnapshots: between the two snapshots of an aligned MariaDB
// export, another session commits a change. The change waits for the
// hold (BACKUP STAGE BLOCK_COMMIT) to end, so both snapshots read the
// row as it was; snapshots begun without the hold would differ.
func TestAlignedSnapshots(t *testing.T) {
	tdb := testdb.New(t, database.MySQL)
	ctx := tctx(t)
	exec(t, tdb.DB, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
	exec(t, tdb.DB, "INSERT INTO counter (id, n) VALUES (1, 0)")
	// A commit from another session; returns once it has committed or
	// waits for the hold.
	commitBetween := func(ctx context.Context) error {
		conn, err := tdb.Conn(ctx)
		if err != nil {
			return err
		}
		var id int64
		if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			conn.Close()
			return err
		}
		done := make(chan error, 1)
		go func() {
			defer conn.Close()
			_, err := conn.ExecContext(context.WithoutCancel(ctx), "UPDATE counter SET n = n + 1 WHERE id = 1")
			done <- err
		}()
		for {
			select {
			case err := <-done:
				return err // committed: nothing held it
			default:
			}
			var state string
			err := tdb.QueryRowContext(ctx, "SELECT COALESCE(state, '') FROM information_schema.processlist WHERE id = ?", id).Scan(&state)
			if err != nil {
				return err
			}
			if strings.Contains(strings.ToLower(state), "backup lock") {
				t.Cleanup(func() {
					if err := <-done; err != nil {
						t.Errorf("the held commit: %v", err)
					}
				})
				return nil // it waits for the hold
			}
		}
	}
	var why error
	for try := 0; try < 3; try++ {
		var snap Snapshot
		snaps, w, err := openMySQLSnapshots(ctx, tdb.DB, 2, true, &snap, commitBetween)
		if err != nil {
			t.Fatal(err)
		}
		why = w
		var seen []int64
		for _, s := range snaps {
			var n int64
			if err := s.q.QueryRowContext(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, n)
			s.close()
		}
		if why != nil {
			t.Logf("try %d: not aligned: %v", try+1, why)
			continue
		}
		if snap.Method != "aligned-consistent-snapshots" {
			t.Errorf("method %q", snap.Method)
		}
		if len(seen) != 2 || seen[0] != seen[1] {
			t.Fatalf("the two snapshots read %v: a commit fell between them", seen)
		}
		return
	}
	t.Fatalf("BACKUP STAGE did not hold commits in three tries: %v", why)
}

// TestSequencesVerified: after an import every counter is past the
// loaded rows and the source's counter, and the verification says so;
// a counter behind what the manifest asks is a "sequence" problem.
func TestSequencesVerified(t *testing.T) {
	testdb.Each(t, func(t *testing.T, tdb *testdb.DB) {
		ddl := map[string]string{
			database.Postgres: "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL);",
			database.MySQL:    "CREATE TABLE items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL);",
			database.SQLite:   "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);",
		}[tdb.Kind]
		files := map[string]string{"001_items.sql": "-- +ferry up\n" + ddl + "\n"}
		seed := []string{
			"INSERT INTO items (name) VALUES ('a')", "INSERT INTO items (name) VALUES ('b')",
			"INSERT INTO items (name) VALUES ('c')", "DELETE FROM items WHERE name = 'c'",
		}
		target, m, err := roundTrip(t, tdb, files, seed, ExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := tctx(t)
		own := ownTables(m.Source.HistoryTable)
		problems, err := checkSequences(ctx, target, m.Tables, m.Sequences, own)
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) > 0 {
			t.Fatalf("after the import: %v", problems)
		}
		if next := m.table("items").Sequences; len(next) != 1 || next[0].Next != 4 {
			t.Fatalf("the source's counter: %+v, want next 4 (3 handed out, one row deleted)", next)
		}
		// The manifest asks for more than the target's counter gives.
		ahead := slices.Clone(m.Tables)
		for i := range ahead {
			if ahead[i].Name == "items" {
				ahead[i].Sequences = []Sequence{{Column: "id", Name: ahead[i].Sequences[0].Name, Next: 1000}}
			}
		}
		problems, err = checkSequences(ctx, target, ahead, m.Sequences, own)
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) != 1 || problems[0].Table != "items" || problems[0].What != "sequence" || problems[0].Want != ">= 1000" || problems[0].Got != "4" {
			t.Fatalf("a counter behind the manifest: %+v", problems)
		}
	})
}

// TestUnalignedSays: the warning of an export that reads through one
// connection names the cause the server gave.
func TestUnalignedSays(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("BACKUP STAGE START: %w", &mysql.MySQLError{Number: 1227}), "RELOAD privilege"},
		{fmt.Errorf("BACKUP STAGE START: %w", &mysql.MySQLError{Number: 1064}), "no BACKUP STAGE"},
		{fmt.Errorf("BACKUP STAGE BLOCK_COMMIT: %w", &mysql.MySQLError{Number: 1205}), "waited more than 2s"},
		{errors.New("connection refused"), "could not be lined up"},
	} {
		if got := unaligned(c.err); !strings.Contains(got, c.want) {
			t.Errorf("%v: %q, want it to say %q", c.err, got, c.want)
		}
	}
}
