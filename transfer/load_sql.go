package transfer

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/database"
)

// sqlLoader loads MySQL and SQLite. Foreign key checks are off on its
// connection (a session setting, which needs no privilege; the
// connection is discarded after the load), and every foreign key is
// checked with a query once all tables are in. MySQL loads through LOAD
// DATA LOCAL INFILE (multi-row prepared INSERTs where the server refuses
// it); SQLite through one prepared INSERT per row, as a statement there is
// a function call.
type sqlLoader struct {
	conn *sql.Conn
	im   *importer
	kind string
	// set: the session is set up.
	set bool
	// noLoadData: the server refused LOAD DATA LOCAL INFILE once; the
	// rest goes through INSERTs.
	noLoadData bool
	// sortsKeys: the server builds the keys of a table filled from empty
	// in one sorted pass (see sortsKeys).
	sortsKeys bool
}

// session sets the loading connection up, once.
func (l *sqlLoader) session(ctx context.Context) error {
	if l.set {
		return nil
	}
	stmts := []string{`PRAGMA foreign_keys = OFF`}
	if l.kind == database.MySQL {
		stmts = []string{`SET SESSION foreign_key_checks = 0`, `SET SESSION time_zone = '+00:00'`}
	}
	for _, s := range stmts {
		if _, err := l.conn.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	if l.kind == database.MySQL {
		var v string
		if err := l.conn.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&v); err != nil {
			return err
		}
		l.sortsKeys = sortsKeys(v)
	}
	l.set = true
	return nil
}

// sortsKeys reports whether a server of this version (SELECT VERSION())
// loads a table that one transaction fills from empty, with unique_checks
// and foreign_key_checks off, as mysqldump's scripts do, in bulk: no undo
// record per row, and each secondary index built at the end in one sorted
// pass (MariaDB's MDEV-24621 and MDEV-24818), which costs the server less
// than a load without them and an ALTER that adds them back. It is the
// MariaDB releases that also load LOAD DATA that way without aborting
// when the temporary directory fills (MDEV-34703: 10.11.11, 11.4.5,
// 11.7.2, 11.8 on). A table the server finds not empty (rows deleted but
// not yet purged) loads row by row, keys and all: slower, not wrong.
func sortsKeys(version string) bool {
	num, rest, ok := strings.Cut(version, "-")
	if !ok || !strings.HasPrefix(rest, "MariaDB") {
		return false
	}
	var major, minor, patch int
	if _, err := fmt.Sscanf(num, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return false
	}
	switch {
	case major == 10 && minor == 11:
		return patch >= 11
	case major == 11 && minor == 4:
		return patch >= 5
	case major == 11 && minor == 7:
		return patch >= 2
	case major == 11:
		return minor >= 8
	}
	return major >= 12
}

func (l *sqlLoader) empty(ctx context.Context, tables []string) error {
	if err := l.session(ctx); err != nil {
		return err
	}
	return inTx(ctx, l.conn, func(tx *sql.Tx) error {
		for _, t := range tables {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+quoteIdent(l.kind, t)); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
		}
		return l.im.mark(ctx, tx, stepEmptied, 0)
	})
}

// emptyUntransacted deletes the rows of the group's tables whose engine
// has no transactions (MyISAM, Aria): what a cut load of them left, which
// no rollback took back; the ledger says the group is not loaded.
func (l *sqlLoader) emptyUntransacted(ctx context.Context, group []*TableExport) error {
	for _, t := range group {
		var plain int
		err := l.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables t
			JOIN information_schema.engines e ON e.engine = t.engine
			WHERE t.table_schema = DATABASE() AND t.table_name = ? AND e.transactions <> 'YES'`, t.Name).Scan(&plain)
		if err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
		if plain == 0 {
			continue
		}
		res, err := l.conn.ExecContext(ctx, "DELETE FROM "+quoteIdent(l.kind, t.Name))
		if err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			l.im.log.Warn("deleted the rows a cut load left in a table without transactions, to load it again", "table", t.Name, "rows", n)
		}
	}
	return nil
}

func (l *sqlLoader) load(ctx context.Context, group []*TableExport, _ map[string]*Table) error {
	if err := l.session(ctx); err != nil {
		return err
	}
	var bulk []keyDef
	sorted := false
	if l.kind == database.MySQL && len(group) == 1 && l.im.bulk(group[0]) {
		table := group[0].Name
		create, err := l.showCreate(ctx, table)
		if err != nil {
			return fmt.Errorf("table %s: %w", table, err)
		}
		// With unique_checks off, a UNIQUE secondary key is checked only
		// where the server loads in bulk: a table with one (see
		// bulkLoads), or with a trigger (which may write into a table with
		// one), has its plain keys dropped instead. The primary key is
		// checked either way, and a duplicate fails the load
		// (loadDataMySQL).
		if sorted = l.sortsKeys && !l.noLoadData && !l.im.opts.dropKeys && bulkLoads(create); sorted {
			var triggers int
			if err := l.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.triggers
				WHERE event_object_schema = DATABASE() AND event_object_table = ?`, table).Scan(&triggers); err != nil {
				return fmt.Errorf("table %s: %w", table, err)
			}
			sorted = triggers == 0
		}
		if sorted {
			if _, err := l.conn.ExecContext(ctx, `SET SESSION unique_checks = 0`); err != nil {
				return fmt.Errorf("table %s: %w", table, err)
			}
			l.im.log.Info("loading with its keys, which the server builds in one sorted pass", "table", table)
		} else if bulk, err = l.dropKeys(ctx, table, create); err != nil {
			return fmt.Errorf("table %s: %w", table, err)
		}
	}
	if l.kind == database.MySQL {
		if err := l.emptyUntransacted(ctx, group); err != nil {
			return err
		}
	}
	err := inTx(ctx, l.conn, func(tx *sql.Tx) error {
		for _, t := range group {
			if l.kind == database.MySQL && !l.noLoadData {
				err := loadDataMySQL(ctx, tx, t, l.im)
				if err == nil {
					continue
				}
				if !errors.Is(err, errLoadDataRefused) {
					return fmt.Errorf("load table %s: %w", t.Name, err)
				}
				l.noLoadData = true
				l.im.log.Info("LOAD DATA LOCAL INFILE refused; loading with INSERTs", "error", err)
			}
			maxBytes := 0 // SQLite: one row per statement
			if l.kind == database.MySQL {
				maxBytes = 1 << 20
			}
			if err := insertRows(ctx, tx, l.kind, t, l.im, maxBytes); err != nil {
				if l.im.m.Encryption.encrypts(t.Name) {
					err = redacted{err, quotedValue.ReplaceAllString(err.Error(), "$1 (not shown: the export encrypts this table) $2")}
				}
				return fmt.Errorf("load table %s: %w", t.Name, err)
			}
		}
		return l.im.markTables(ctx, tx, group)
	})
	if sorted {
		// The next table this connection loads may have a UNIQUE key. A
		// failed load stops the import, and its connection is discarded
		// (loadGroups starts nothing after an error): its reset may fail
		// (a cancelled load's connection is closed) and says nothing.
		if _, rerr := l.conn.ExecContext(context.WithoutCancel(ctx), `SET SESSION unique_checks = 1`); rerr != nil && err == nil {
			return fmt.Errorf("table %s: turn unique_checks back on: %w", group[0].Name, rerr)
		}
	}
	if err == nil && l.im.opts.loaded != nil {
		l.im.opts.loaded(ctx, l.conn)
	}
	if err != nil || len(bulk) == 0 {
		return err // a failed load's keys come back when the import runs again (restoreKeys)
	}
	// The keys come back on a connection of their own, while this one
	// loads the next table and the verification reads this one (an index
	// build only reads the rows): the import waits for it before it
	// calls the data verified.
	table := group[0].Name
	l.im.restores.run(table, func(ctx context.Context, begin func()) error {
		conn, err := l.im.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer discard(conn)
		// The ALTER waits for the verification's reads of the table to
		// end, however long the table: no lock_wait_timeout of the URL's.
		if _, err := conn.ExecContext(ctx, keysLockWait); err != nil {
			return err
		}
		r := &sqlLoader{conn: conn, im: l.im, kind: l.kind}
		if err := r.session(ctx); err != nil {
			return err
		}
		return r.restoreKeys(ctx, table, bulk, begin)
	})
	return nil
}

// keysLockWait lifts the URL's lock_wait_timeout off a session that may
// wait for (or behind) the ALTER re-creating a large table's keys.
const keysLockWait = "SET SESSION lock_wait_timeout = 31536000"

// restorer runs key re-creations in the background and keeps the first
// error. Their context is the import's load (see importer.load), not a
// table's, which ends before them.
type restorer struct {
	ctx context.Context
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
	// begun holds, per table being re-keyed, a channel closed once its
	// ALTER is building (or has ended): see ready.
	begun map[string]chan struct{}
}

// run re-creates table's keys in the background with fn, which calls
// begin once its ALTER is building.
func (r *restorer) run(table string, fn func(ctx context.Context, begin func()) error) {
	ch := make(chan struct{})
	begin := sync.OnceFunc(func() { close(ch) })
	r.mu.Lock()
	if r.begun == nil {
		r.begun = make(map[string]chan struct{})
	}
	r.begun[table] = ch
	r.mu.Unlock()
	r.wg.Go(func() {
		defer begin()
		if err := fn(r.ctx, begin); err != nil {
			r.mu.Lock()
			if r.err == nil {
				r.err = err
			}
			r.mu.Unlock()
		}
	})
}

// wait waits for every re-creation and returns the first error.
func (r *restorer) wait() error {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// ready waits until the re-creation of table's keys, if one runs, is
// building. An ALTER takes its table's metadata lock exclusively for a
// moment as it begins and as it ends, after the table's readers: a
// reader that came first would hold its start back for as long as it
// reads, and the index build, the longest step of the import's end,
// with it. Once it is building, readers and the build go side by side.
func (r *restorer) ready(ctx context.Context, table string) error {
	r.mu.Lock()
	ch := r.begun[table]
	r.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watched returns run, which runs a statement on the MySQL connection
// id, watched meanwhile through db: begin is called once its state is
// "altering table" (in MySQL and MariaDB alike: past the ALTER's first
// exclusive lock), or when it ends. A state that cannot be read calls
// begin: at worst, the readers go first.
func watched(ctx context.Context, db *database.DB, id int64, begin func(), run func() error) func() error {
	return func() error {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			defer begin()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				var state string
				err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(STATE), '') FROM information_schema.PROCESSLIST WHERE ID = ?`, id).Scan(&state)
				if err != nil || building(state) {
					return
				}
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
		err := run()
		close(done)
		wg.Wait()
		return err
	}
}

// building reports whether an ALTER's processlist state is past its
// first exclusive metadata lock: an in-place build ("altering table"),
// or a copy (ALGORITHM=COPY: a table not InnoDB's, alter_algorithm or
// old_alter_table set), which takes no exclusive lock as it starts.
func building(state string) bool {
	switch strings.ToLower(state) {
	case "altering table", "committing alter table to storage engine",
		"copy to tmp table", "repair by sorting", "repair with keycache",
		"enabling keys", "manage keys", "rename result table":
		return true
	}
	return false
}

// keyDef is a secondary index or foreign key of a MySQL table, as SHOW
// CREATE TABLE prints it.
type keyDef struct {
	name, def string
	fk        bool
}

func keysTable(history string) string { return ledgerTable(history) + "_keys" }

// dropKeys drops the secondary indexes (plain KEYs) and foreign keys of
// a large MySQL table before its load, and returns them. MySQL's DDL is
// not transactional: they are first recorded in the ledger's keys table,
// from which restoreKeys puts them back, after the load or when a cut
// short import runs again.
func (l *sqlLoader) dropKeys(ctx context.Context, table, create string) ([]keyDef, error) {
	var keys []keyDef
	for _, line := range strings.Split(create, "\n") {
		line = strings.TrimSuffix(strings.TrimSpace(line), ",")
		switch {
		case strings.HasPrefix(line, "KEY `"):
			keys = append(keys, keyDef{name: backquoted(line[len("KEY "):]), def: line})
		case strings.HasPrefix(line, "CONSTRAINT `") && strings.Contains(line, " FOREIGN KEY "):
			keys = append(keys, keyDef{name: backquoted(line[len("CONSTRAINT "):]), def: line, fk: true})
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	kt := quoteMySQL(keysTable(l.im.mig.Table()))
	// Names compare as the server's table names do (case matters where
	// lower_case_table_names is 0): binary.
	if _, err := l.conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+kt+` (
		export_id VARCHAR(64) NOT NULL, table_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
		key_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, position INT NOT NULL,
		is_fk BOOLEAN NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (export_id, table_name, is_fk, key_name))`); err != nil {
		return nil, fmt.Errorf("create the import's keys table: %w", err)
	}
	// An index and a foreign key may share a name (MySQL names the index
	// it makes for a foreign key after it): the key has is_fk. A table an
	// older ferry made has not.
	var keyCols int
	if err := l.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.key_column_usage
		WHERE table_schema = DATABASE() AND table_name = ? AND constraint_name = 'PRIMARY'`, keysTable(l.im.mig.Table())).Scan(&keyCols); err != nil {
		return nil, err
	}
	if keyCols == 3 {
		if _, err := l.conn.ExecContext(ctx, "ALTER TABLE "+kt+" DROP PRIMARY KEY, ADD PRIMARY KEY (export_id, table_name, is_fk, key_name)"); err != nil {
			return nil, fmt.Errorf("the import's keys table: %w", err)
		}
	}
	var drops []string
	err := inTx(ctx, l.conn, func(tx *sql.Tx) error {
		for i, k := range keys {
			if _, err := tx.ExecContext(ctx, "REPLACE INTO "+kt+" (export_id, table_name, key_name, position, is_fk, definition) VALUES (?, ?, ?, ?, ?, ?)",
				l.im.m.ID, table, k.name, i, k.fk, k.def); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record the keys dropped for the load: %w", err)
	}
	// Foreign keys first: an index a foreign key uses cannot go before it.
	for _, k := range keys {
		if k.fk {
			drops = append(drops, "DROP FOREIGN KEY "+quoteMySQL(k.name))
		}
	}
	for _, k := range keys {
		if !k.fk {
			drops = append(drops, "DROP KEY "+quoteMySQL(k.name))
		}
	}
	if _, err := l.conn.ExecContext(ctx, "ALTER TABLE "+quoteMySQL(table)+" "+strings.Join(drops, ", ")); err != nil {
		return nil, fmt.Errorf("drop its secondary indexes and foreign keys for the load: %w", err)
	}
	return keys, nil
}

// restoreKeys adds back the keys dropKeys dropped from table (those it
// does not have again already) and clears their ledger rows. begin, if
// not nil, is called once the ALTER is building (see restorer.ready).
func (l *sqlLoader) restoreKeys(ctx context.Context, table string, keys []keyDef, begin func()) error {
	create, err := l.showCreate(ctx, table)
	if err != nil {
		return err
	}
	var adds []string
	for _, k := range keys {
		if !strings.Contains(create, k.def) {
			adds = append(adds, "ADD "+k.def)
		}
	}
	if len(adds) > 0 {
		if l.im.opts.keysAlter != nil {
			l.im.opts.keysAlter()
		}
		alter := func() error {
			_, err := l.conn.ExecContext(ctx, "ALTER TABLE "+quoteMySQL(table)+" "+strings.Join(adds, ", "))
			return err
		}
		if begin != nil {
			var id int64
			if err := l.conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
				return err
			}
			alter = watched(ctx, l.im.db, id, begin, alter)
		}
		// foreign_key_checks is off in this session: the foreign keys are
		// not validated here but by the verification's query.
		if err := alter(); err != nil {
			// A killed run's ALTER goes on in the server after its client
			// is gone, and this one waited for it: the keys may all be
			// there now.
			if create, err2 := l.showCreate(ctx, table); err2 != nil || !hasKeys(create, keys) {
				return fmt.Errorf("table %s: re-create its secondary indexes and foreign keys after the load: %w", table, err)
			}
		}
		l.im.log.Info("indexes and foreign keys re-created after the load", "tables", 1, "table", table, "keys", len(adds))
	}
	_, err = l.conn.ExecContext(ctx, "DELETE FROM "+quoteMySQL(keysTable(l.im.mig.Table()))+" WHERE export_id = ? AND table_name = ?", l.im.m.ID, table)
	return err
}

// showCreate returns SHOW CREATE TABLE's text for table.
func (l *sqlLoader) showCreate(ctx context.Context, table string) (string, error) {
	var name, create string
	err := l.conn.QueryRowContext(ctx, "SHOW CREATE TABLE "+quoteMySQL(table)).Scan(&name, &create)
	return create, err
}

// bulkLoads reports whether a table of this SHOW CREATE TABLE text loads
// with its keys (see sortsKeys): an InnoDB table without a UNIQUE
// secondary key (unchecked with unique_checks off where InnoDB does not
// load in bulk), and one InnoDB loads in bulk at all: not partitioned,
// system-versioned or with a SPATIAL index, which InnoDB loads row by
// row, maintaining every secondary index as it goes (slower than the
// drop-and-ALTER path). A false positive only keeps the older path.
func bulkLoads(create string) bool {
	if !strings.Contains(create, "ENGINE=InnoDB") || strings.Contains(create, "WITH SYSTEM VERSIONING") ||
		strings.Contains(create, "PARTITION BY ") {
		return false
	}
	for _, line := range strings.Split(create, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "UNIQUE KEY ") || strings.HasPrefix(line, "SPATIAL KEY ") {
			return false
		}
	}
	return true
}

// hasKeys reports whether a SHOW CREATE TABLE text has every key.
func hasKeys(create string, keys []keyDef) bool {
	for _, k := range keys {
		if !strings.Contains(create, k.def) {
			return false
		}
	}
	return true
}

// restorePending puts back the keys a cut-short run of this import
// dropped (see dropKeys).
func (l *sqlLoader) restorePending(ctx context.Context) error {
	exists, err := tableExists(ctx, l.im.db, keysTable(l.im.mig.Table()))
	if err != nil || !exists {
		return err
	}
	rows, err := l.conn.QueryContext(ctx, "SELECT table_name, key_name, is_fk, definition FROM "+quoteMySQL(keysTable(l.im.mig.Table()))+" WHERE export_id = ? ORDER BY table_name, position", l.im.m.ID)
	if err != nil {
		return err
	}
	byTable := map[string][]keyDef{}
	var tables []string
	for rows.Next() {
		var table string
		var k keyDef
		if err := rows.Scan(&table, &k.name, &k.fk, &k.def); err != nil {
			rows.Close()
			return err
		}
		if byTable[table] == nil {
			tables = append(tables, table)
		}
		byTable[table] = append(byTable[table], k)
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	if err := l.session(ctx); err != nil {
		return err
	}
	// A killed run's ALTER goes on in the server: wait for it, however
	// long, rather than fail on the URL's lock_wait_timeout.
	if _, err := l.conn.ExecContext(ctx, keysLockWait); err != nil {
		return err
	}
	for _, t := range tables {
		if err := l.restoreKeys(ctx, t, byTable[t], nil); err != nil {
			return err
		}
	}
	return nil
}

// backquoted returns the name at the start of s, `quoted`.
func backquoted(s string) string {
	s = strings.TrimPrefix(s, "`")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			if i+1 < len(s) && s[i+1] == '`' {
				b.WriteByte('`')
				i++
				continue
			}
			break
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// schemaSequences: MySQL and SQLite have no sequences apart from columns.
// schemaSequences: MySQL and SQLite have no sequences of their own, only
// a table's counter (set by sequences); a PostgreSQL sequence no column
// owns is not carried, and the operator is told which.
func (l *sqlLoader) schemaSequences(_ context.Context, seqs []Sequence) error {
	owned := map[string]bool{}
	for _, t := range l.im.m.Tables {
		for _, s := range t.Sequences {
			owned[s.Name[strings.LastIndex(s.Name, ".")+1:]] = true // "public.runs_id_seq"
		}
	}
	var left []string
	for _, s := range seqs {
		if !owned[s.Name] {
			left = append(left, fmt.Sprintf("%s (next %d)", s.Name, s.Next))
		}
	}
	if len(left) > 0 {
		l.im.log.Warn("the source's sequences that no column owns are not carried: "+l.kind+" has no sequences; set whatever uses them by hand", "sequences", strings.Join(left, ", "))
	}
	return nil
}

func (l *sqlLoader) sequences(ctx context.Context, tables []TableExport) error {
	for _, t := range tables {
		for _, s := range t.Sequences {
			if err := l.sequence(ctx, t.Name, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *sqlLoader) sequence(ctx context.Context, table string, s Sequence) error {
	if l.kind == database.MySQL {
		// InnoDB keeps the counter past the largest value by itself;
		// this carries over a source counter that was further on (rows
		// inserted and deleted).
		if _, err := l.conn.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", quoteMySQL(table), s.Next)); err != nil {
			return fmt.Errorf("AUTO_INCREMENT of %s: %w", table, err)
		}
		return nil
	}
	// Only an AUTOINCREMENT table has a counter of its own (an export of
	// another engine has counters for every identity column).
	var auto int
	if err := l.conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ? AND upper(sql) LIKE '%AUTOINCREMENT%'`, table).Scan(&auto); err != nil {
		return err
	}
	if auto == 0 {
		return nil
	}
	res, err := l.conn.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?`, s.Next-1, table)
	if err != nil {
		return fmt.Errorf("sqlite_sequence of %s: %w", table, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := l.conn.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, table, s.Next-1); err != nil {
			return fmt.Errorf("sqlite_sequence of %s: %w", table, err)
		}
	}
	return nil
}

func (l *sqlLoader) checkForeignKeys(ctx context.Context, tables []TableExport) ([]Problem, error) {
	checked := make([]TableExport, len(tables))
	for i, t := range tables {
		checked[i] = t
		checked[i].ForeignKeys = nil
		for _, fk := range t.ForeignKeys {
			if len(fk.RefColumns) != len(fk.Columns) {
				// SQLite's REFERENCES parent without columns, to a parent
				// without a primary key, which SQLite itself cannot enforce
				// ("foreign key mismatch" once foreign_keys is on).
				l.im.log.Warn("foreign key not checked: it names no parent columns, and its parent has no primary key",
					"table", t.Name, "foreign_key", fk.Name, "columns", strings.Join(fk.Columns, ", "), "parent", fk.RefTable)
				continue
			}
			checked[i].ForeignKeys = append(checked[i].ForeignKeys, fk)
		}
	}
	return orphans(ctx, l.conn, l.kind, checked)
}

// insertRows inserts t's rows in batches: maxBytes > 0 sends several rows
// per statement, up to that many bytes of values; 0 one row per
// statement, prepared once (SQLite, where a statement is a function call).
func insertRows(ctx context.Context, tx *sql.Tx, kind string, t *TableExport, im *importer, maxBytes int) error {
	ncol := len(t.Columns)
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncol), ", ") + ")"
	head := "INSERT INTO " + quoteIdent(kind, t.Name) + " " + columnList(kind, t) + " VALUES "
	maxRows := 1
	if maxBytes > 0 {
		maxRows = max(1, min(1000, 60000/ncol))
	}
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, s := range stmts {
			s.Close()
		}
	}()
	args := make([]any, 0, maxRows*ncol)
	rows, size := 0, 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		s := stmts[rows]
		if s == nil {
			var err error
			s, err = tx.PrepareContext(ctx, head+strings.TrimSuffix(strings.Repeat(one+", ", rows), ", "))
			if err != nil {
				return err
			}
			if rows == maxRows || rows == 1 {
				stmts[rows] = s
			} else {
				defer s.Close() // a tail batch: used once
			}
		}
		if _, err := s.ExecContext(ctx, args...); err != nil {
			return err
		}
		args, rows, size = args[:0], 0, 0
		return nil
	}
	err := im.feed(ctx, t, func(row []value) error {
		for _, v := range row {
			args = append(args, v.any())
			size += len(v.s) + len(v.b) + 8
		}
		rows++
		if rows == maxRows || size >= maxBytes {
			return flush()
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	return flush()
}

// orphans finds, for every foreign key, the rows whose parent is missing
// (a foreign key with a NULL column is not checked, as the databases do).
func orphans(ctx context.Context, q querier, kind string, tables []TableExport) ([]Problem, error) {
	var problems []Problem
	for _, t := range tables {
		for _, fk := range t.ForeignKeys {
			var on, notNull []string
			for i, c := range fk.Columns {
				on = append(on, "p."+quoteIdent(kind, fk.RefColumns[i])+" = c."+quoteIdent(kind, c))
				notNull = append(notNull, "c."+quoteIdent(kind, c)+" IS NOT NULL")
			}
			query := "SELECT count(*) FROM " + quoteIdent(kind, t.Name) + " c WHERE " + strings.Join(notNull, " AND ") +
				" AND NOT EXISTS (SELECT 1 FROM " + quoteIdent(kind, fk.RefTable) + " p WHERE " + strings.Join(on, " AND ") + ")"
			var n int64
			if err := q.QueryRowContext(ctx, query).Scan(&n); err != nil {
				return nil, fmt.Errorf("table %s, foreign key %s: %w", t.Name, fk.Name, err)
			}
			if n > 0 {
				problems = append(problems, orphanProblem(t.Name, fk, n))
			}
		}
	}
	return problems, nil
}

// orphanProblem reports n rows of table whose parent under fk is missing.
func orphanProblem(table string, fk ForeignKey, n int64) Problem {
	return Problem{Table: table, What: "foreign_key", Want: "0", Got: fmt.Sprint(n),
		Detail:     fmt.Sprintf("%d rows reference %s (%s) rows that are not there (foreign key %s)", n, fk.RefTable, strings.Join(fk.RefColumns, ", "), fk.Name),
		keyColumns: strings.Join(fk.Columns, ",")}
}

// loadDataMySQL streams t's rows into one LOAD DATA LOCAL INFILE, the
// fastest way into MySQL, through go-sql-driver's reader handler (a name
// of this load's own, removed after). It returns errLoadDataRefused when
// the server or its settings do not allow LOCAL INFILE, before anything
// was read.
func loadDataMySQL(ctx context.Context, tx *sql.Tx, t *TableExport, im *importer) error {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "ferry-import-" + hex.EncodeToString(b)
	pr, pw := io.Pipe()
	fed := make(chan error, 1)
	var rows int64
	started := make(chan struct{})
	mysql.RegisterReaderHandler(name, func() io.Reader {
		close(started)
		go func() {
			bw := bufio.NewWriterSize(pw, 256<<10)
			var buf []byte
			err := im.feed(ctx, t, func(row []value) error {
				buf = appendLoadDataRow(buf[:0], row, nil)
				rows++
				_, err := bw.Write(buf)
				if cap(buf) > 4<<20 {
					buf = nil // after a large value
				}
				return err
			}, func(sr *streamRow) (err error) {
				rows++
				buf, err = writeStreamRow(bw, buf[:0], sr, appendLoadDataRow, "")
				return err
			})
			if err == nil {
				err = bw.Flush()
			}
			pw.CloseWithError(err)
			fed <- err
		}()
		return pr
	})
	defer mysql.DeregisterReaderHandler(name)
	var cols, set []string
	for i, c := range t.Columns {
		switch typ := strings.ToLower(c.Type); {
		case mysqlBinary(c.Type):
			v := fmt.Sprintf("@v%d", i+1)
			cols = append(cols, v)
			set = append(set, quoteMySQL(c.Name)+" = UNHEX("+v+")")
		case typ == "year" || strings.HasPrefix(typ, "year("):
			// As a number: LOAD DATA's text '0' is the year 2000, the
			// number 0 is 0000 (and 2024 is 2024 either way).
			v := fmt.Sprintf("@v%d", i+1)
			cols = append(cols, v)
			set = append(set, quoteMySQL(c.Name)+" = "+v+" + 0")
		default:
			cols = append(cols, quoteMySQL(c.Name))
		}
	}
	q := "LOAD DATA LOCAL INFILE 'Reader::" + name + "' INTO TABLE " + quoteMySQL(t.Name) +
		` CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (` + strings.Join(cols, ", ") + ")"
	if len(set) > 0 {
		q += " SET " + strings.Join(set, ", ")
	}
	res, err := tx.ExecContext(ctx, q)
	pr.CloseWithError(io.ErrClosedPipe)
	select {
	case <-started:
	default:
		if err != nil {
			return fmt.Errorf("%w: %v", errLoadDataRefused, err)
		}
		return errors.New("LOAD DATA LOCAL INFILE did not ask for its rows")
	}
	if ferr := <-fed; ferr != nil && !errors.Is(ferr, io.ErrClosedPipe) {
		return ferr // the export's error explains the load's
	}
	if err != nil {
		return err
	}
	// LOCAL turns what would be errors into warnings: a duplicate key
	// skips the row, a value that does not fit is clipped (an integer out
	// of range, a TIMESTAMP before 1970, text that is not the column's
	// character set). Either fails the load, naming the first warning
	// (which says its row).
	n, _ := res.RowsAffected()
	var warnings int64
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return err
	}
	if n != rows || warnings > 0 {
		w := &loadWarning{stored: n, rows: rows, warnings: warnings}
		_ = tx.QueryRowContext(ctx, "SHOW WARNINGS LIMIT 1").Scan(&w.level, &w.code, &w.msg)
		w.textKey = textual(between(w.msg, "entry '", "' for key"))
		if im.m.Encryption.encrypts(t.Name) {
			w.msg = quotedValue.ReplaceAllString(w.msg, "$1 (not shown: the export encrypts this table) $2")
		}
		return w
	}
	return nil
}

// quotedValue finds the value a MySQL message quotes ("Duplicate entry
// 'x' for key", "Incorrect integer value: 'x' for column").
var quotedValue = regexp.MustCompile(`(entry|value:?) '.*' (for (?:key|column))`)

// redacted is an error whose message leaves out what its cause's says
// (a value the export encrypts).
type redacted struct {
	error
	msg string
}

func (r redacted) Error() string { return r.msg }
func (r redacted) Unwrap() error { return r.error }

// loadWarning is the error of a LOAD DATA that stored fewer rows than it
// was given, or warned.
type loadWarning struct {
	stored, rows, warnings int64
	// The first warning.
	level string
	code  int
	msg   string
	// textKey: the warning is of a duplicate key that holds text (see
	// keyCollation), told before msg hides an encrypted value.
	textKey bool
}

func (w *loadWarning) Error() string {
	return fmt.Sprintf("LOAD DATA stored %d of %d rows with %d warnings; the first: %s %d: %s", w.stored, w.rows, w.warnings, w.level, w.code, w.msg)
}

var errLoadDataRefused = errors.New("the server refuses LOAD DATA LOCAL INFILE")

// mysqlTypeName is a MySQL column type's name, without its arguments and
// attributes: "float" for "float(7,4) unsigned".
func mysqlTypeName(columnType string) string {
	t, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(columnType)), "(")
	t, _, _ = strings.Cut(t, " ")
	return t
}

// mysqlBinary reports whether a MySQL column type holds bytes.
// Only the type's name counts: ENUM('blob', 'binary') holds text.
func mysqlBinary(columnType string) bool {
	switch mysqlTypeName(columnType) {
	case "tinyblob", "blob", "mediumblob", "longblob", "binary", "varbinary", "bit",
		// Spatial values travel as their stored bytes (an SRID and WKB).
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		return true
	}
	return false
}

// appendLoadDataRow appends row in LOAD DATA's default text format: tab
// between fields, \N for NULL, backslash escapes; bytes as hex (UNHEXed
// by the statement).
func appendLoadDataRow(buf []byte, row []value, _ io.Writer) []byte {
	for i, v := range row {
		if i > 0 {
			buf = append(buf, '\t')
		}
		switch v.kind {
		case kNull:
			buf = append(buf, `\N`...)
		case kBool:
			if v.t {
				buf = append(buf, '1')
			} else {
				buf = append(buf, '0')
			}
		case kBytes:
			buf = hex.AppendEncode(buf, v.b)
		default:
			buf = appendEscaped(buf, v.s)
		}
	}
	return append(buf, '\n')
}
