package migrate_test

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	sqlite "modernc.org/sqlite"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
)

// TestPlanIsWhatTheServerSees: the dry-run plan of up and of down lists
// exactly the statements the run sends, transaction boundaries and ferry's
// own history statements included, in order, for every strategy: the
// PostgreSQL pipeline, one transaction (with the lease check on SQLite),
// MySQL's grouped scripts (consecutive migrations in one script, each
// migration's outcome recorded in the transaction that starts the next),
// and tracked no-transaction migrations. The
// statements are read off the wire between the engine and the server
// (PostgreSQL and MySQL protocol messages) or at the driver (SQLite, which
// has no wire).
func TestPlanIsWhatTheServerSees(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		dir := files(t, map[string]string{
			"00001_t.sql":   "-- +ferry up\nCREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(20));\nINSERT INTO t (id, v) VALUES (1, 'one');\nINSERT INTO t (id, v) VALUES (2, 'two');\n-- +ferry down\nDROP TABLE t;\n",
			"00002_v.sql":   "-- +ferry up\nCREATE TABLE v (id INTEGER);\nCREATE TABLE v2 (id INTEGER);\n-- +ferry down\nDROP TABLE v2;\nDROP TABLE v;\n",
			"00003_u.sql":   "-- +ferry up\nINSERT INTO t (id, v) VALUES (3, 'three');\nCREATE TABLE u (id INTEGER);\nUPDATE t SET v = 'uno' WHERE id = 1;\n-- +ferry down\nDROP TABLE u;\nDELETE FROM t WHERE id = 3;\n",
			"00004_idx.sql": "-- +ferry no-transaction\n-- +ferry up\nCREATE INDEX t_v ON t (v);\nCREATE TABLE w (id INTEGER);\n-- +ferry down\nDROP TABLE w;\nDROP INDEX t_v" + map[string]string{database.MySQL: " ON t"}[db.Kind] + ";\n",
		})
		rec := &wire{}
		sqlDB := recorded(t, db, rec)
		m, err := migrate.New(sqlDB, db.Dialect, migrate.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		check := func(what string, plan *migrate.Plan, run func() error) {
			t.Helper()
			var b strings.Builder
			if err := plan.WriteSQL(&b); err != nil {
				t.Fatal(err)
			}
			segments := planSegments(b.String())
			rec.reset()
			if err := run(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			// Each part of the plan (ferry's tables, each migration) is what
			// one connection sent, in order and contiguous.
			seen := rec.all()
			from := 0
			for _, seg := range segments {
				at := indexOf(seen, seg.stmts[0], from)
				if at < 0 {
					t.Fatalf("%s, %s: the server never saw its first statement %q after the previous part; it saw:\n%s", what, seg.title, seg.stmts[0], strings.Join(seen, "\n"))
				}
				for i, want := range seg.stmts {
					if at+i >= len(seen) || shape(seen[at+i]) != shape(want) {
						got := "(nothing)"
						if at+i < len(seen) {
							got = seen[at+i]
						}
						t.Fatalf("%s, %s, statement %d:\nplan   %s\nserver %s\n(all the server saw:\n%s)", what, seg.title, i+1, want, got, strings.Join(seen, "\n"))
					}
				}
				from = at + len(seg.stmts)
			}
		}
		up, err := m.PlanUp(ctx(t), migrate.UpOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check("up", up, func() error { _, err := m.Up(ctx(t), migrate.UpOptions{}); return err })
		down, err := m.PlanDown(ctx(t), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		check("down", down, func() error { _, err := m.DownTo(ctx(t), 0); return err })
	})
}

// segment is one part of a plan: ferry's tables, or one migration.
type segment struct {
	title string
	stmts []string
}

// planSegments reads the statements of a plan, per part: every line that
// is not a comment, up to a line that ends with a semicolon; a part starts
// at a comment that says what follows ("-- apply 1 (...)").
func planSegments(plan string) []segment {
	var out []segment
	var cur []string
	for _, line := range strings.Split(plan, "\n") {
		if strings.HasPrefix(line, "-- apply ") || strings.HasPrefix(line, "-- revert ") || strings.HasPrefix(line, "-- ferry first creates") || strings.HasPrefix(line, "-- preflight") {
			out = append(out, segment{title: line})
			continue
		}
		if strings.HasPrefix(line, "--") || strings.TrimSpace(line) == "" || len(out) == 0 {
			continue
		}
		cur = append(cur, line)
		if strings.HasSuffix(line, ";") {
			last := &out[len(out)-1]
			last.stmts = append(last.stmts, strings.TrimSuffix(strings.Join(cur, "\n"), ";"))
			cur = nil
		}
	}
	return out
}

// indexOf is the index of the first statement of seen, from on, with the
// shape of want; -1 if none.
func indexOf(seen []string, want string, from int) int {
	for i := from; i < len(seen); i++ {
		if shape(seen[i]) == shape(want) {
			return i
		}
	}
	return -1
}

var (
	literal = regexp.MustCompile(`_utf8mb4 X'[0-9a-f]*'|'(?:[^']|'')*'|\$\d+|:[a-z_]+|\?|\b\d+(?:\.\d+)?\b|NOW\(6\)|@ferry_row|\bNULL\b`)
	spaces  = regexp.MustCompile(`\s+`)
	// the elapsed-time expressions of the two server-measured durations
	elapsed = regexp.MustCompile(`\? \+ \(extract\(epoch from clock_timestamp\(\) - now\(\)\) \* \?\)::bigint|TIMESTAMPDIFF\(MICROSECOND, @ferry_t0, \?\) DIV \?`)
)

// shape is a statement with its values replaced by ?, so that the plan's
// (values as of planning) and the run's (values of the run, or
// placeholders) compare.
func shape(s string) string {
	s = literal.ReplaceAllString(s, "?")
	s = elapsed.ReplaceAllString(s, "?")
	s = strings.ToUpper(spaces.ReplaceAllString(strings.TrimSpace(s), " "))
	return strings.TrimSuffix(s, ";")
}

// wire records the statements sent to the server, per connection.
type wire struct {
	mu    sync.Mutex
	conns [][]string
}

func (w *wire) newConn() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conns = append(w.conns, nil)
	return len(w.conns) - 1
}

func (w *wire) add(conn int, stmt string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// MySQL scripts: one query of several statements, ferry's clock and
	// progress marks among them; the plan shows them all.
	if strings.Contains(stmt, "SET @ferry_done") {
		for _, part := range strings.Split(stmt, ";\n") {
			if part = strings.TrimSpace(part); part != "" {
				w.conns[conn] = append(w.conns[conn], part)
			}
		}
		return
	}
	w.conns[conn] = append(w.conns[conn], stmt)
}

func (w *wire) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.conns {
		w.conns[i] = nil
	}
}

// all returns what the busiest connection sent since the last reset: the
// run's own connection, which holds the lock and runs the migrations.
func (w *wire) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.conns {
		if len(c) > len(out) {
			out = c
		}
	}
	return append([]string(nil), out...)
}

// recorded opens db's database through a recorder of what reaches the
// server: a protocol proxy for PostgreSQL and MySQL, a driver wrapper for
// SQLite.
func recorded(t *testing.T, db *testdb.DB, w *wire) *sql.DB {
	t.Helper()
	if db.Kind == database.SQLite {
		s := sql.OpenDB(&recConnector{w: w, dsn: "file:" + db.URL.Database + "?_txlock=immediate&_pragma=busy_timeout(10000)&_time_format=sqlite"})
		t.Cleanup(func() { s.Close() })
		return s
	}
	u, err := url.Parse(db.URLString)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy(t, u.Host, db.Kind, w)
	if db.Kind == database.Postgres {
		q := u.Query()
		q.Set("sslmode", "disable")
		u.RawQuery = q.Encode()
	}
	d, err := database.Open(context.Background(), u.String(), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.DB
}

// proxy forwards connections to server and records the queries clients
// send, by protocol.
func proxy(t *testing.T, server, kind string, w *wire) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			id := w.newConn()
			go func() { io.Copy(c, s); c.Close() }()
			go func() {
				defer s.Close()
				r := bufio.NewReader(io.TeeReader(c, s))
				if kind == database.Postgres {
					readPostgres(r, func(q string) { w.add(id, q) })
				} else {
					readMySQL(r, func(q string) { w.add(id, q) })
				}
				io.Copy(io.Discard, r)
			}()
		}
	}()
	return l.Addr().String()
}

// readPostgres reads frontend messages: the startup message, then typed
// messages. It reports simple queries ('Q') and every execution of an
// extended-protocol statement (each 'B'ind of a statement that a 'P'arse
// named: pgx prepares a statement once and binds it again and again).
func readPostgres(r *bufio.Reader, query func(string)) {
	prepared := map[string]string{}
	var n uint32
	if binary.Read(r, binary.BigEndian, &n) != nil || n < 4 {
		return
	}
	if _, err := io.CopyN(io.Discard, r, int64(n-4)); err != nil {
		return
	}
	for {
		typ, err := r.ReadByte()
		if err != nil {
			return
		}
		if binary.Read(r, binary.BigEndian, &n) != nil || n < 4 {
			return
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch typ {
		case 'Q':
			query(strings.TrimRight(string(body), "\x00"))
		case 'P': // statement name, query
			name, rest := cstring(body)
			q, _ := cstring(rest)
			prepared[name] = q
		case 'B': // portal name, statement name, ...
			_, rest := cstring(body)
			name, _ := cstring(rest)
			query(prepared[name])
		}
	}
}

// cstring splits a NUL-terminated string off b.
func cstring(b []byte) (string, []byte) {
	i := strings.IndexByte(string(b), 0)
	if i < 0 {
		return string(b), nil
	}
	return string(b[:i]), b[i+1:]
}

// readMySQL reads client packets; it reports COM_QUERY and
// COM_STMT_PREPARE commands (sequence 0; the handshake's packets are not).
func readMySQL(r *bufio.Reader, query func(string)) {
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if hdr[3] == 0 && n > 0 && (body[0] == 0x03 || body[0] == 0x16) {
			query(string(body[1:]))
		}
	}
}

// recConnector opens modernc.org/sqlite connections that record what they
// run.
type recConnector struct {
	w   *wire
	dsn string
}

func (c *recConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := (&sqlite.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: conn, w: c.w, id: c.w.newConn()}, nil
}

func (c *recConnector) Driver() driver.Driver { return &sqlite.Driver{} }

type recConn struct {
	driver.Conn
	w  *wire
	id int
}

func (c *recConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.w.add(c.id, q)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *recConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.w.add(c.id, q)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *recConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &recStmt{Stmt: st, c: c, q: q}, nil
}

// recStmt records each execution of a prepared statement.
type recStmt struct {
	driver.Stmt
	c *recConn
	q string
}

func (s *recStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.w.add(s.c.id, s.q)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *recStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.w.add(s.c.id, s.q)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

func (c *recConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.w.add(c.id, "BEGIN")
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &recTx{Tx: tx, c: c}, nil
}

func (c *recConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

type recTx struct {
	driver.Tx
	c *recConn
}

func (t *recTx) Commit() error {
	t.c.w.add(t.c.id, "COMMIT")
	return t.Tx.Commit()
}

func (t *recTx) Rollback() error {
	t.c.w.add(t.c.id, "ROLLBACK")
	return t.Tx.Rollback()
}
