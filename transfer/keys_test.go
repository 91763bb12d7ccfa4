package transfer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
)

// TestKeysBuildBeforeReaders: the verification reads a table whose keys
// are being re-created only once the ALTER is building: it waits while
// the ALTER waits for the table's metadata lock, and goes on when the
// ALTER goes on.
func TestKeysBuildBeforeReaders(t *testing.T) {
	tdb := testdb.New(t, database.MySQL)
	ctx, cancel := context.WithCancel(tctx(t))
	db := tdb.DB
	for _, s := range []string{
		"CREATE TABLE t (id INT PRIMARY KEY, a INT NOT NULL, b CHAR(32) NOT NULL)",
		"INSERT INTO t SELECT seq, seq % 97, MD5(seq) FROM seq_1_to_300000",
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// A reader holds the table: the ALTER will wait for it.
	reader, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	alterConn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer alterConn.Close()
	// On a failure, the reader's lock goes before the connections close
	// (the ALTER would wait for it for as long as ctx lasts).
	defer cancel()
	defer reader.ExecContext(context.Background(), "ROLLBACK")
	var id int64
	if err := alterConn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	r := restorer{ctx: ctx}
	r.run("t", func(ctx context.Context, begin func()) error {
		return watched(ctx, db, id, begin, func() error {
			_, err := alterConn.ExecContext(ctx, "ALTER TABLE t ADD KEY t_a (a), ADD KEY t_b (b)")
			return err
		})()
	})
	ready := make(chan error, 1)
	go func() { ready <- r.ready(ctx, "t") }()
	// The ALTER waits for the reader's lock (seen, not slept on: polled
	// as watched polls it, not in a busy loop that would load a server
	// other tests share)...
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for state := ""; state != "Waiting for table metadata lock"; {
		if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(STATE), '') FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&state); err != nil {
			t.Fatal(err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the ALTER never waited for the reader (state %q)", state)
		}
	}
	// ...and meanwhile no reader is let through.
	select {
	case err := <-ready:
		t.Fatalf("ready returned (%v) while the ALTER waited for its lock", err)
	default:
	}
	if _, err := reader.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-ready; err != nil {
		t.Fatalf("ready: %v", err)
	}
	// ...as the ALTER builds, not once it has ended.
	var running int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE 'ALTER%'", id).Scan(&running); err != nil {
		t.Fatal(err)
	}
	if running == 0 {
		t.Fatal("ready returned only once the ALTER had ended")
	}
	if err := r.wait(); err != nil {
		t.Fatalf("the ALTER: %v", err)
	}
	var name, def string
	if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE t").Scan(&name, &def); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(def, "KEY `t_a`") {
		t.Fatalf("the key is not there:\n%s", def)
	}
	// A table no re-creation runs for is ready at once.
	if err := r.ready(ctx, "u"); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyWaitsHoldingNothing: the keys of every large table are
// re-created only after the verification has listed its parts, which
// reads the tables' key bounds in its first snapshot: the verification
// must not wait for an ALTER while that snapshot holds the table the
// ALTER waits for.
func TestVerifyWaitsHoldingNothing(t *testing.T) {
	tdb := testdb.New(t, database.MySQL)
	// One table: both of the verification's connections read it, the
	// first after it has read the table's key bounds.
	files := map[string]string{"001_t.sql": "-- +ferry up\n" +
		"CREATE TABLE events (id BIGINT PRIMARY KEY, account_id INT NOT NULL, KEY events_account_idx (account_id));\n"}
	seedSQL := []string{"INSERT INTO events SELECT seq, 1 + seq % 100 FROM seq_1_to_3000"}
	st, m, mig := exportOf(t, tdb.DB, files, seedSQL, ExportOptions{})
	target := openURL(t, testdb.Create(t, tdb))
	ctx, cancel := context.WithTimeout(tctx(t), time.Minute)
	defer cancel()
	listed := make(chan struct{})
	opts := ImportOptions{Jobs: 2, splitRows: 1, bulkRows: 1000, dropKeys: true,
		partsListed: func() { close(listed) },
		keysAlter: func() {
			select {
			case <-listed:
			case <-ctx.Done():
			}
		}}
	if _, err := Import(ctx, st, m.ID, target, mig(target), opts); err != nil {
		t.Fatalf("import: %v", err)
	}
	for _, db := range []*database.DB{tdb.DB, target} {
		if def := showCreate(t, db, "events"); !strings.Contains(def, "KEY `events_account_idx`") {
			t.Fatalf("events lacks its keys:\n%s", def)
		}
	}
	sameData(t, tdb.DB, target, "the import")
}
