// Package dialecttest is the conformance suite of ferry's dialects: every
// dialect (PostgreSQL, MySQL/MariaDB, SQLite) passes Run, against a real
// server, and a new one is a matter of passing it too. It checks what the
// engine relies on: transactional DDL as declared, quoting, ferry's tables
// created idempotently, placeholders, the server clock, generated ids, the
// session lock's ownership, and the batch and script runners' reports of
// where a failure stopped.
package dialecttest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// Open returns a fresh, empty database for one subtest; the caller's
// cleanup drops it.
type Open func(t *testing.T) *sql.DB

// Run runs the conformance suite of dialect d, each check on a database of
// its own. The checks of the optional interfaces (dialect.SessionLocker,
// Batcher, Scripter, ServerInfo) run when d implements them.
func Run(t *testing.T, d dialect.Dialect, open Open) {
	type check struct {
		name string
		fn   func(t *testing.T, db *sql.DB, d dialect.Dialect)
	}
	checks := []check{
		{"Name", testName},
		{"TransactionalDDL", testTransactionalDDL},
		{"QuoteIdent", testQuoteIdent},
		{"FerryTables", testFerryTables},
		{"Placeholder", testPlaceholder},
		{"NowMillis", testNowMillis},
		{"InsertReturningID", testInsertReturningID},
	}
	if _, ok := d.(dialect.SessionLocker); ok {
		checks = append(checks, check{"SessionLocker", testSessionLocker})
	}
	if _, ok := d.(dialect.Batcher); ok {
		checks = append(checks, check{"Batcher", testBatcher})
	}
	if _, ok := d.(dialect.Scripter); ok {
		checks = append(checks, check{"Scripter", testScripter})
	}
	if _, ok := d.(dialect.ServerInfo); ok {
		checks = append(checks, check{"ServerInfo", testServerInfo})
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, open(t), d)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func exec(t *testing.T, q dialect.Querier, stmt string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(ctx(t), stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func exists(t *testing.T, d dialect.Dialect, q dialect.Querier, table string) bool {
	t.Helper()
	ok, err := d.TableExists(ctx(t), q, table)
	if err != nil {
		t.Fatalf("TableExists(%s): %v", table, err)
	}
	return ok
}

func testName(t *testing.T, _ *sql.DB, d dialect.Dialect) {
	t.Helper()
	if d.Name() == "" || strings.ToLower(d.Name()) != d.Name() {
		t.Errorf("Name() = %q: want a short lower-case name", d.Name())
	}
}

// testTransactionalDDL: a table created in a transaction that is rolled
// back is gone exactly when the dialect says DDL is transactional.
func testTransactionalDDL(t *testing.T, db *sql.DB, d dialect.Dialect) {
	tx, err := db.BeginTx(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, tx, "CREATE TABLE ddl_probe (id INTEGER)")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if gone := !exists(t, d, db, "ddl_probe"); gone != d.TransactionalDDL() {
		t.Errorf("TransactionalDDL() = %v, but a rolled-back CREATE TABLE is gone: %v", d.TransactionalDDL(), gone)
	}
}

// testQuoteIdent: a quoted name with the quote character, a space and a
// keyword in it names the table it says.
func testQuoteIdent(t *testing.T, db *sql.DB, d dialect.Dialect) {
	name := `we"ird` + "`" + ` select`
	exec(t, db, "CREATE TABLE "+d.QuoteIdent(name)+" ("+d.QuoteIdent("order")+" INTEGER)")
	exec(t, db, "INSERT INTO "+d.QuoteIdent(name)+" ("+d.QuoteIdent("order")+") VALUES (7)")
	var n int
	if err := db.QueryRowContext(ctx(t), "SELECT "+d.QuoteIdent("order")+" FROM "+d.QuoteIdent(name)).Scan(&n); err != nil || n != 7 {
		t.Fatalf("read back through quoted names: %d %v", n, err)
	}
}

// testFerryTables: Prepare and the history and lock tables' DDL can run
// again on a database that has them (another process may get there
// first), and TableExists tells.
func testFerryTables(t *testing.T, db *sql.DB, d dialect.Dialect) {
	if exists(t, d, db, "ferry_conf") {
		t.Fatal("TableExists says a table that was never created exists")
	}
	for i := 0; i < 2; i++ {
		if err := d.Prepare(ctx(t), db); err != nil {
			t.Fatalf("Prepare (%d): %v", i+1, err)
		}
		for _, s := range append(d.HistoryDDL("ferry_conf"), d.LockTableDDL("ferry_conf_lock")...) {
			exec(t, db, s)
		}
	}
	if !exists(t, d, db, "ferry_conf") || !exists(t, d, db, "ferry_conf_lock") {
		t.Fatal("TableExists does not see ferry's tables")
	}
	// The columns the engine writes.
	exec(t, db, "INSERT INTO "+d.Table("ferry_conf")+" (version, name, checksum, operation, state, applied_at, duration_ms, applied_by, statement, error) VALUES ("+
		placeholders(d, 10)+")", int64(1), "n", "c", "up", "applied", time.Now().UTC(), int64(3), "h:1", 0, nil)
	exec(t, db, "INSERT INTO "+d.Table("ferry_conf_lock")+" (id, holder, owner, token, acquired_at, expires_at) VALUES (1, '', '', 1, 0, 0)")
}

func placeholders(d dialect.Dialect, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = d.Placeholder(i + 1)
	}
	return strings.Join(ps, ", ")
}

func testPlaceholder(t *testing.T, db *sql.DB, d dialect.Dialect) {
	exec(t, db, "CREATE TABLE ph (a INTEGER, b VARCHAR(20))")
	exec(t, db, "INSERT INTO ph (a, b) VALUES ("+placeholders(d, 2)+")", 41, "x'y")
	var a int
	var b string
	if err := db.QueryRowContext(ctx(t), "SELECT a, b FROM ph WHERE a = "+d.Placeholder(1)+" AND b = "+d.Placeholder(2), 41, "x'y").Scan(&a, &b); err != nil || a != 41 || b != "x'y" {
		t.Fatalf("placeholders: %d %q %v", a, b, err)
	}
}

// testNowMillis: the server clock in milliseconds since the epoch, as a
// 64-bit integer, close to this host's.
func testNowMillis(t *testing.T, db *sql.DB, d dialect.Dialect) {
	var ms int64
	if err := db.QueryRowContext(ctx(t), "SELECT "+d.NowMillis()).Scan(&ms); err != nil {
		t.Fatal(err)
	}
	if diff := time.Since(time.UnixMilli(ms)); diff > time.Minute || diff < -time.Minute {
		t.Fatalf("NowMillis is %s away from this host's clock", diff)
	}
}

func testInsertReturningID(t *testing.T, db *sql.DB, d dialect.Dialect) {
	for _, s := range d.HistoryDDL("ids") {
		exec(t, db, s)
	}
	ins := "INSERT INTO " + d.Table("ids") + " (version, name, checksum, operation, state, applied_at, duration_ms, applied_by, statement, error) VALUES (" + placeholders(d, 10) + ")"
	var last int64
	for i := 0; i < 3; i++ {
		id, err := d.InsertReturningID(ctx(t), db, ins, int64(i+1), "n", "c", "up", "applied", time.Now().UTC(), int64(0), "h:1", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if id <= last {
			t.Fatalf("id %d after %d: ids must grow", id, last)
		}
		last = id
	}
}

// testSessionLocker: the lock belongs to one connection, is refused to
// others while held, names its owner, and is freed by Unlock and when its
// connection ends.
func testSessionLocker(t *testing.T, db *sql.DB, d dialect.Dialect) {
	sl := d.(dialect.SessionLocker)
	c := ctx(t)
	a, err := db.Conn(c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.Conn(c)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	owner, ok, err := sl.TryLock(c, a, "ferry_x")
	if err != nil || !ok || owner == "" {
		t.Fatalf("TryLock on a free lock: %q %v %v", owner, ok, err)
	}
	if _, ok, err := sl.TryLock(c, b, "ferry_x"); err != nil || ok {
		t.Fatalf("TryLock by another connection while held: %v %v", ok, err)
	}
	if _, ok, err := sl.TryLock(c, b, "ferry_y"); err != nil || !ok {
		t.Fatalf("the lock of another history table must be free: %v %v", ok, err)
	}
	if got, err := sl.LockOwner(c, db, "ferry_x"); err != nil || got != owner {
		t.Fatalf("LockOwner = %q %v, want %q", got, err, owner)
	}
	if err := sl.Unlock(c, a, "ferry_x"); err != nil {
		t.Fatal(err)
	}
	if got, _ := sl.LockOwner(c, db, "ferry_x"); got != "" {
		t.Fatalf("owner %q after Unlock", got)
	}
	if _, ok, err := sl.TryLock(c, a, "ferry_x"); err != nil || !ok {
		t.Fatalf("TryLock again: %v %v", ok, err)
	}
	// Only a connection that really ends frees a session lock:
	// ErrBadConn makes database/sql close it instead of pooling it.
	_ = a.Raw(func(any) error { return driver.ErrBadConn })
	a.Close()
	// The server frees the lock once it sees the connection gone; each
	// look is a round trip of its own.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := sl.LockOwner(c, db, "ferry_x")
		if err != nil {
			t.Fatal(err)
		}
		if got == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock outlived its connection by 30s: owner %q", got)
		}
	}
}

// testBatcher: a batch is one transaction; after a failure nothing of it
// remains, and the index of the failing statement is reported.
func testBatcher(t *testing.T, db *sql.DB, d dialect.Dialect) {
	b := d.(dialect.Batcher)
	c := ctx(t)
	conn, err := db.Conn(c)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	failed, err := b.ExecBatch(c, conn, []dialect.BatchStatement{
		{SQL: "CREATE TABLE b1 (id INTEGER)"},
		{SQL: "INSERT INTO b1 (id) VALUES (" + d.Placeholder(1) + ")", Args: []any{int64(1)}},
		{SQL: "INSERT INTO no_such_table VALUES (1)"},
		{SQL: "CREATE TABLE b2 (id INTEGER)"},
	})
	if err == nil || failed != 2 {
		t.Fatalf("failing batch: failed %d, %v; want statement index 2", failed, err)
	}
	if exists(t, d, db, "b1") {
		t.Fatal("a failed batch left its first statement's table")
	}
	if _, err := b.ExecBatch(c, conn, []dialect.BatchStatement{{SQL: "CREATE TABLE b1 (id INTEGER)"}, {SQL: "SELECT " + b.ElapsedMillis()}}); err != nil {
		t.Fatalf("batch: %v", err)
	}
	if !exists(t, d, db, "b1") {
		t.Fatal("a batch did not commit")
	}
}

// testScripter: a script runs in order in one round trip; after a failure
// it says how many statements completed and leaves no transaction open;
// the saved row id outlives the script; literals round-trip every string.
func testScripter(t *testing.T, db *sql.DB, d dialect.Dialect) {
	sc := d.(dialect.Scripter)
	c := ctx(t)
	conn, err := db.Conn(c)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range d.HistoryDDL("scr") {
		exec(t, conn, s)
	}
	weird := "it's \\ \"quoted\" `back` -- not a comment; /* nor this */ $1 ? \u00e9\u4e2d\U0001F600\n"
	script := []string{
		"CREATE TABLE s1 (id INTEGER, v VARCHAR(200))",
		"INSERT INTO " + d.Table("scr") + " (version, name, checksum, operation, state, applied_at, duration_ms, applied_by, statement, error) VALUES (1, " +
			sc.Literal(weird) + ", '', 'up', 'running', " + sc.Literal(time.Now().UTC()) + ", 0, " + sc.Literal("") + ", 1, " + sc.Literal(nil) + ")",
		sc.SaveRowID(),
		"BEGIN",
		"INSERT INTO s1 (id, v) VALUES (1, " + sc.Literal(weird) + ")",
		"INSERT INTO no_such_table VALUES (1)",
		"UPDATE " + d.Table("scr") + " SET state = 'applied', duration_ms = " + sc.ScriptElapsedMillis() + " WHERE id = " + sc.RowID(),
		"COMMIT",
	}
	done, err := sc.ExecScript(c, conn, script, nil)
	if err == nil || done != 5 {
		t.Fatalf("failing script: done %d, %v; want 5 done", done, err)
	}
	// The saved id outlives the script, for the next one.
	var row int64
	if _, err := sc.ExecScript(c, conn, []string{"CREATE TABLE s2 AS SELECT " + sc.RowID() + " AS id"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(c, "SELECT id FROM s2").Scan(&row); err != nil || row == 0 {
		t.Fatalf("the saved row id: %d %v", row, err)
	}
	var n int
	if err := conn.QueryRowContext(c, "SELECT COUNT(*) FROM s1").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the failed transaction left %d rows (%v): it must be rolled back", n, err)
	}
	var name string
	if err := conn.QueryRowContext(c, "SELECT name FROM "+d.Table("scr")+" WHERE id = "+d.Placeholder(1), row).Scan(&name); err != nil || name != weird {
		t.Fatalf("literal round trip: %q %v", name, err)
	}
	done, err = sc.ExecScript(c, conn, []string{"INSERT INTO s1 (id, v) VALUES (2, " + sc.Literal(weird) + ")", "SELECT 1"}, nil)
	if err != nil || done != 2 {
		t.Fatalf("script: done %d, %v", done, err)
	}
	// Marks on some statements only: after a failure, done is where the
	// last marked statement that completed ends.
	sparse := []string{"BEGIN", "INSERT INTO s1 (id, v) VALUES (3, 'x')", "COMMIT", sc.StartClock(), "INSERT INTO no_such_table VALUES (1)", "SELECT 1"}
	done, err = sc.ExecScript(c, conn, sparse, []bool{false, true, true, false, true, true})
	if err == nil || done != 3 {
		t.Fatalf("sparse marks: done %d, %v; want 3", done, err)
	}
	if err := conn.QueryRowContext(c, "SELECT COUNT(*) FROM s1 WHERE id = 3").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the committed row: %d %v", n, err)
	}
}

func testServerInfo(t *testing.T, db *sql.DB, d dialect.Dialect) {
	si := d.(dialect.ServerInfo)
	v, err := si.ServerVersion(ctx(t), db)
	if err != nil || v == "" {
		t.Fatalf("ServerVersion = %q, %v", v, err)
	}
}
