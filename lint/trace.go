package lint

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
)

// Observation is what the trace saw one statement do on the scratch copy.
type Observation struct {
	Version   int64
	File      string
	Line      int
	Statement string
	// Locks are the table locks the statement took on tables that existed
	// before its migration (PostgreSQL lock modes, e.g. AccessExclusiveLock).
	Locks []TableLock
	// Held are locks an earlier statement of the migration took on tables
	// this one names: the statement needs them too, and the transaction
	// still holds them.
	Held []TableLock
	// Rewritten are existing tables whose storage the statement replaced
	// (PostgreSQL: a new relfilenode; SQLite: a table rebuilt under its
	// old name).
	Rewritten []string
	// Scanned are existing tables the statement read sequentially
	// (PostgreSQL: pg_stat_xact_user_tables.seq_scan).
	Scanned []string
	// Algorithm is, on MySQL/MariaDB, the cheapest ALGORITHM and LOCK
	// the server accepted the statement with: "INSTANT",
	// "INPLACE, LOCK=NONE", "INPLACE, LOCK=SHARED" or "COPY".
	Algorithm string
	// Note says what the trace could not see.
	Note string
	// Err is the error the statement failed with on the copy.
	Err string
}

// TableLock is one lock mode held on one table.
type TableLock struct {
	Table, Mode string
}

// TraceSource is the database whose pending migrations are traced.
type TraceSource struct {
	// DB is the target. Nothing is changed in it: the trace creates a
	// scratch database beside it on the same server (SQLite: a temporary
	// file), and drops it after.
	DB *database.DB
	// Migrations are all the migrations, in order; Applied the versions
	// applied to DB. The scratch copy gets its schema by replaying the
	// applied ones.
	Migrations []*migrate.Migration
	Applied    map[int64]bool
	// Schema is the PostgreSQL schema the migrations run in ("" for the
	// URL's or the default): the scratch copy gets one of that name.
	Schema string
	Log    *slog.Logger
}

// Trace applies the migrations in cfg.Only to a scratch copy of the
// schema, statement by statement, records what each statement did to the
// tables that existed before (rep.Trace), and adds a trace-differs finding
// wherever that disagrees with rep's static findings.
func Trace(ctx context.Context, rep *Report, src TraceSource, cfg Config) error {
	if src.Log == nil {
		src.Log = slog.New(slog.DiscardHandler)
	}
	scratch, drop, err := openScratch(ctx, src.DB, src.Schema, src.Log)
	if err != nil {
		return err
	}
	defer drop()
	t := &tracer{db: scratch, d: dialectName(cfg.Dialect), rep: rep, cfg: cfg, realDB: src.DB.URL.Database}
	for _, m := range src.Migrations {
		// The applied migrations, and pending ones lint does not check
		// (at or below start_after), only build the schema.
		if !src.Applied[m.Version] && !(cfg.Only[m.Version] && m.Version <= cfg.StartAfter) {
			continue
		}
		if err := t.replay(ctx, m); err != nil {
			return fmt.Errorf("build the scratch copy: replay migration %s: %w", m, err)
		}
	}
	for _, m := range src.Migrations {
		if !cfg.Only[m.Version] || m.Version <= cfg.StartAfter {
			continue
		}
		failed, err := t.migration(ctx, m)
		if err != nil {
			return fmt.Errorf("trace migration %s: %w", m, err)
		}
		if failed {
			// The schema of the rest is unknown: stop here.
			break
		}
	}
	return nil
}

// outside reports whether a statement reaches outside the database it
// runs in (roles and users, other databases, server settings, attached
// files): the trace must not run it, since the scratch copy shares the
// server with the real database.
func (t *tracer) outside(sql string) bool {
	toks := tokenize(sql, t.d)
	if len(toks) == 0 {
		return false
	}
	c := &cursor{toks: toks}
	first := strings.ToLower(c.next().text)
	second := strings.ToLower(c.peek().text)
	switch t.d {
	case postgresDialect:
		switch first {
		case "create", "alter", "drop":
			switch second {
			case "role", "user", "group", "database", "tablespace", "system", "subscription":
				return true
			}
		case "grant", "revoke":
			return !has(toks, "on") // role membership is cluster-wide
		}
	case mysqlDialect:
		switch first {
		case "create", "alter", "drop", "rename":
			switch second {
			case "user", "role", "database", "schema", "server", "tablespace", "logfile", "instance":
				return true
			}
		case "grant", "revoke", "flush", "install", "uninstall", "use", "purge", "reset", "change", "start", "stop":
			return true
		case "set":
			return has(toks, "global") || has(toks, "persist") || has(toks, "persist_only") || strings.HasPrefix(strings.ToLower(toks[1].text), "@@global")
		}
		// A name qualified with the real database's name.
		for i := 0; i+1 < len(toks); i++ {
			if (toks[i].kind == tWord || toks[i].kind == tIdent) && strings.EqualFold(toks[i].text, t.realDB) && toks[i+1].text == "." {
				return true
			}
		}
	case sqliteDialect:
		return first == "attach" || first == "detach" || first == "vacuum" && has(toks, "into")
	}
	return false
}

// outsideNote is the observation of a statement the trace did not run.
const outsideNote = "not run on the scratch copy: it acts outside the database (roles, users, other databases, server settings), which the copy shares with the real one"

// openScratch creates an empty database beside db and returns it with a
// function that drops it.
func openScratch(ctx context.Context, db *database.DB, schema string, log *slog.Logger) (*database.DB, func(), error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, err
	}
	name := "ferry_lint_" + hex.EncodeToString(b[:])
	var u *database.URL
	var drop func()
	switch db.URL.Kind {
	case database.SQLite:
		dir, err := os.MkdirTemp("", "ferry-lint-")
		if err != nil {
			return nil, nil, err
		}
		u, err = database.Parse("sqlite:" + filepath.Join(dir, name+".db"))
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		drop = func() { os.RemoveAll(dir) }
	default:
		if _, err := db.ExecContext(ctx, "CREATE DATABASE "+db.Dialect.QuoteIdent(name)); err != nil {
			return nil, nil, fmt.Errorf("create the scratch database %s on the target's server (the trace needs the CREATE DATABASE privilege): %w", name, err)
		}
		u = db.URL.WithDatabase(name)
		drop = func() {
			// A fresh context: the trace's may be cancelled.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+db.Dialect.QuoteIdent(name))
		}
	}
	log.Info("lint trace: scratch database created", "name", name)
	s, err := database.OpenURL(ctx, u, database.Options{Schema: schema})
	if err != nil {
		drop()
		return nil, nil, fmt.Errorf("open the scratch database %s: %w", name, err)
	}
	if db.URL.Kind == database.Postgres {
		if schema == "" {
			schema = db.URL.Schema
		}
		if schema != "" {
			// The search path names the schema; creating it makes the
			// migrations' unqualified names land there, as on the target.
			if _, err := s.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+db.Dialect.QuoteIdent(schema)); err != nil {
				s.Close()
				drop()
				return nil, nil, fmt.Errorf("create schema %s in the scratch database: %w", schema, err)
			}
		}
	}
	// One connection, so that session state (a transaction, the tables
	// it created) is the trace's throughout.
	s.SetMaxOpenConns(1)
	return s, func() { s.Close(); drop() }, nil
}

type tracer struct {
	db     *database.DB
	d      dialectName
	rep    *Report
	cfg    Config
	realDB string // the target's database name, which the trace must not touch
}

// replay applies m to the scratch copy.
func (t *tracer) replay(ctx context.Context, m *migrate.Migration) error {
	if m.UpFunc != nil {
		return m.UpFunc(ctx, t.db.DB)
	}
	if m.Up == nil {
		return nil
	}
	for _, st := range m.Up.Statements {
		if t.outside(st.SQL) {
			continue
		}
		if _, err := t.db.ExecContext(ctx, st.SQL); err != nil {
			return fmt.Errorf("line %d: %w", st.Line, err)
		}
	}
	return nil
}

func (t *tracer) migration(ctx context.Context, m *migrate.Migration) (failed bool, err error) {
	if m.Up == nil {
		t.rep.Trace = append(t.rep.Trace, Observation{Version: m.Version, Note: "a Go function migration: replayed, not traced"})
		return false, t.replay(ctx, m)
	}
	var obs []Observation
	switch t.d {
	case postgresDialect:
		obs, err = t.postgres(ctx, m)
	case mysqlDialect:
		obs, err = t.mysql(ctx, m)
	default:
		obs, err = t.sqlite(ctx, m)
	}
	var se *stmtError
	if errors.As(err, &se) {
		o := obs[len(obs)-1]
		r, _ := ruleByID(RuleTraceFailed)
		t.rep.Findings = append(t.rep.Findings, Finding{Rule: RuleTraceFailed, Severity: r.Severity, File: o.File, Line: o.Line, Column: 1, Version: o.Version,
			Message:   fmt.Sprintf("the statement failed on a scratch copy of the schema (%s): %v; it will most likely fail on the database too, and later migrations were not traced", t.cfg.Target, se.err),
			Fix:       "fix the statement; ferry lint --trace runs it again on a fresh copy",
			Statement: o.Statement})
		failed, err = true, nil
	}
	if err != nil {
		return false, err
	}
	for _, o := range obs {
		t.compare(m, o)
	}
	t.rep.Trace = append(t.rep.Trace, obs...)
	return failed, nil
}

// stmtError is a statement that failed on the scratch copy.
type stmtError struct {
	line int
	err  error
}

func (e *stmtError) Error() string {
	return fmt.Sprintf("line %d failed on the scratch copy: %v", e.line, e.err)
}

func (t *tracer) observation(m *migrate.Migration, st migrate.Statement) Observation {
	first, _, _ := strings.Cut(st.SQL, "\n")
	return Observation{Version: m.Version, File: m.Up.File, Line: st.Line, Statement: first}
}

// static returns the rules the static check found a statement to break,
// suppressed or not: a suppressed finding is still a prediction.
func (t *tracer) static(v int64, line int) map[string]bool {
	if p := t.rep.predicted[stmtKey{v, line}]; p != nil {
		return p
	}
	return map[string]bool{}
}

// compare adds trace-differs findings where an observation disagrees
// with the static findings on its statement.
func (t *tracer) compare(m *migrate.Migration, o Observation) {
	if o.Err != "" {
		return
	}
	// A rewrite nobody predicted is reported even where a suppression hid
	// the prediction; a predicted one the trace refutes only where the
	// finding still stands (a suppressed one was already judged).
	got := t.static(o.Version, o.Line)
	kept := map[string]bool{}
	for _, f := range t.rep.Findings {
		if f.Version == o.Version && f.Line == o.Line {
			kept[f.Rule] = true
		}
	}
	differ := func(msg string) {
		r, _ := ruleByID(RuleTraceDiffers)
		sev := r.Severity
		if s, ok := t.cfg.Rules[RuleTraceDiffers]; ok {
			sev = s
		}
		if sev == Off {
			return
		}
		t.rep.Findings = append(t.rep.Findings, Finding{Rule: RuleTraceDiffers, Severity: sev, File: o.File, Line: o.Line, Column: 1, Version: o.Version, Message: msg, Fix: "trust the trace for this server version; tell the ferry maintainers if a static rule is wrong", Statement: o.Statement})
	}
	rewriteRules := []string{RuleAddColumnRewrite, RuleTypeRewrite, RuleTableRewrite, RuleSQLiteRebuild}
	predicted, stands := false, false
	for _, r := range rewriteRules {
		predicted = predicted || got[r]
		stands = stands || kept[r]
	}
	switch t.d {
	case postgresDialect, sqliteDialect:
		if len(o.Rewritten) > 0 && !predicted {
			differ(fmt.Sprintf("the trace saw %s rewritten on %s, which no static rule predicted", strings.Join(o.Rewritten, ", "), t.cfg.Target))
		}
		// SQLite's DROP COLUMN rewrites rows in place (same root page),
		// which the trace cannot see.
		if len(o.Rewritten) == 0 && stands && o.Note == "" && t.d == postgresDialect {
			differ(fmt.Sprintf("a static rule predicted a rewrite; the trace on %s saw none", t.cfg.Target))
		}
	case mysqlDialect:
		if o.Note != "" {
			return
		}
		blocks := o.Algorithm == "COPY" || o.Algorithm == "INPLACE, LOCK=SHARED"
		if blocks && !got[RuleMySQLBlocksWrites] {
			differ(fmt.Sprintf("%s accepted this only with ALGORITHM=%s, which blocks writes, but no static rule predicted it", t.cfg.Target, o.Algorithm))
		}
		if !blocks && o.Algorithm != "" && kept[RuleMySQLBlocksWrites] {
			differ(fmt.Sprintf("a static rule said this blocks writes; %s accepted it with ALGORITHM=%s", t.cfg.Target, o.Algorithm))
		}
	}
}

// execAll runs statements on q, but those that reach outside the
// database, stopping at the first error.
func (t *tracer) execAll(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, stmts []migrate.Statement) error {
	for _, st := range stmts {
		if t.outside(st.SQL) {
			continue
		}
		if _, err := q.ExecContext(ctx, st.SQL); err != nil {
			return fmt.Errorf("line %d: %w", st.Line, err)
		}
	}
	return nil
}

// sortedKeys returns a set's members in order.
func sortedKeys(m map[string]bool) []string {
	var out []string
	for k, ok := range m {
		if ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
