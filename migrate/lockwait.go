package migrate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// LockWait bounds how long a migration waits for locks on the tables it
// changes. An ALTER TABLE that waits behind one long transaction makes
// every later query on its table queue behind it: an outage. With a
// bound, the statement gives up instead (PostgreSQL lock_timeout, MySQL
// lock_wait_timeout), what it was part of is rolled back, and after a
// pause it is tried again; the queries it held up run in the meantime.
type LockWait struct {
	// Timeout is how long one statement may wait for a lock (0: as long
	// as the server lets it). A migration's -- +ferry ddl-lock-timeout
	// annotation replaces it for that migration.
	Timeout time.Duration
	// Retries is how many more times a migration that gave up is tried:
	// the whole migration where it runs in one transaction, the statement
	// that gave up where statements commit one by one.
	Retries int
	// Backoff is the pause before the first retry; each later one
	// doubles, up to MaxBackoff. Each pause is drawn at random between
	// half of it and all of it, so that waiters do not line up.
	Backoff, MaxBackoff time.Duration
	// Preflight says what to do when, once before a run's migrations,
	// transactions open for longer than Timeout hold locks on tables they
	// name:
	// PreflightWait (wait for them to end, at most PreflightTimeout),
	// PreflightRefuse (stop at once, naming them), or PreflightOff.
	Preflight        string
	PreflightTimeout time.Duration
}

// Preflight modes of LockWait.
const (
	PreflightWait   = "wait"
	PreflightRefuse = "refuse"
	PreflightOff    = "off"
)

// DefaultLockWait returns the lock wait of a Migrator without
// WithLockWait.
func DefaultLockWait() LockWait {
	return LockWait{
		Timeout: 5 * time.Second, Retries: 5, Backoff: time.Second, MaxBackoff: 30 * time.Second,
		Preflight: PreflightWait, PreflightTimeout: 2 * time.Minute,
	}
}

// WithLockWait sets how long migrations wait for table locks and how
// they are retried (see LockWait; default DefaultLockWait()). It applies
// where the dialect is a dialect.LockWaiter (PostgreSQL, MySQL).
func WithLockWait(w LockWait) Option {
	return func(m *Migrator) error {
		switch {
		case w.Timeout < 0, w.Retries < 0, w.Backoff < 0, w.MaxBackoff < 0, w.PreflightTimeout < 0:
			return fmt.Errorf("lock wait: negative %+v", w)
		}
		switch w.Preflight {
		case "":
			w.Preflight = PreflightOff
		case PreflightWait, PreflightRefuse, PreflightOff:
		default:
			return fmt.Errorf("preflight %q: want wait, refuse or off", w.Preflight)
		}
		m.lockWait = w
		return nil
	}
}

// ErrLockWait is wrapped by the error of a migration that gave up waiting
// for a lock after its retries (see LockWaitError).
var ErrLockWait = errors.New("waited too long for a lock")

// LockWaitError is a migration that waited for a lock longer than its
// timeout on every try, or that the preflight found held up by old
// transactions; Sessions are the likely holders.
type LockWaitError struct {
	// Timeout is each try's bound; Tries how many were made (0: the
	// preflight stopped it before any).
	Timeout time.Duration
	Tries   int
	// Waited is the time from the first try to the last failure.
	Waited   time.Duration
	Sessions []dialect.Session
	Err      error
}

func (e *LockWaitError) Error() string {
	var b strings.Builder
	if e.Tries == 0 {
		fmt.Fprintf(&b, "not started: transactions open for longer than %s hold locks on tables the migrations change (the preflight check); nothing was applied", e.Timeout)
	} else {
		times := "times"
		if e.Tries == 1 {
			times = "time"
		}
		fmt.Fprintf(&b, "%v: gave up waiting %s for a lock, %d %s in %s", ErrLockWait, e.Timeout, e.Tries, times, e.Waited.Round(100*time.Millisecond))
	}
	if len(e.Sessions) == 0 {
		b.WriteString("; no transaction open for that long was found holding locks (it may have ended, or the database user cannot see other sessions)")
	} else {
		b.WriteString("; held up by ")
		for i, s := range e.Sessions {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(s.String())
		}
	}
	b.WriteString(". End those transactions or run again when they finish; a longer --ddl-lock-timeout (or -- +ferry ddl-lock-timeout in the migration) waits longer, holding up the queries behind it meanwhile")
	return b.String()
}

func (e *LockWaitError) Unwrap() []error { return []error{ErrLockWait, e.Err} }

// lockWaits is the run's view of LockWait: nil where the dialect cannot
// bound lock waits.
type lockWaits struct {
	w  LockWait
	lw dialect.LockWaiter
	// session: the bound may be set for the session (not behind a
	// connection pooler, where the lease lock is used: there a session
	// setting would reach other clients' queries, and only a bound local
	// to a migration's transaction is set).
	session bool
	// dirty: the session's bound was set, and is reset at the run's end.
	dirty bool
}

func (r *run) lockWaits() *lockWaits {
	if r.waits != nil {
		return r.waits
	}
	lw, ok := r.m.d.(dialect.LockWaiter)
	if !ok {
		return nil
	}
	r.waits = &lockWaits{w: r.m.lockWait, lw: lw, session: r.m.lockMode() == LockSession}
	return r.waits
}

// timeoutFor is mig's lock wait bound.
func (l *lockWaits) timeoutFor(mig *Migration) time.Duration {
	if mig.DDLLockTimeout != nil {
		return *mig.DDLLockTimeout
	}
	return l.w.Timeout
}

// sessionSQL is the statement that sets the session's bound to d before
// a statement or a script ("" when the bound is not set for sessions).
// It is sent every time: a migration may have set lock_timeout itself.
func (l *lockWaits) sessionSQL(d time.Duration) string {
	if l == nil || !l.session || (d == 0 && !l.dirty) {
		return ""
	}
	l.dirty = true
	return l.lw.LockWaitSQL(d, false)
}

// localSQL is the statement that sets the bound for the rest of a
// migration's transaction.
func (l *lockWaits) localSQL(mig *Migration) string {
	if l == nil {
		return ""
	}
	return l.lw.LockWaitSQL(l.timeoutFor(mig), true)
}

// bound sets the session's bound to d (see sessionSQL).
func (r *run) bound(d time.Duration) error {
	q := r.lockWaits().sessionSQL(d)
	if q == "" {
		return nil
	}
	if _, err := r.h.conn.ExecContext(r.exec, q); err != nil {
		return fmt.Errorf("set the lock wait bound (%s): %w", d, err)
	}
	return nil
}

// unbound puts the session's bound back to its default, at the end of a
// run.
func (r *run) unbound() {
	if l := r.waits; l != nil && l.dirty {
		if _, err := r.h.conn.ExecContext(context.WithoutCancel(r.exec), l.lw.LockWaitSQL(0, false)); err != nil {
			r.m.log.Warn("could not reset the lock wait bound", "error", err)
		}
		l.dirty = false
	}
}

// boundFor sets the session's bound for a statement of mig that runs
// on its own (see statementTimeout).
func (r *run) boundFor(mig *Migration, sql string) error {
	l := r.lockWaits()
	if l == nil {
		return nil
	}
	return r.bound(l.statementTimeout(mig, sql))
}

// statementTimeout is the bound for a statement of mig: none for one that
// builds, drops or rebuilds an index CONCURRENTLY (it waits for old
// transactions without blocking anyone, and giving up half-way would leave
// an invalid index).
func (l *lockWaits) statementTimeout(mig *Migration, sql string) time.Duration {
	if concurrently(sql) {
		return 0
	}
	return l.timeoutFor(mig)
}

// concurrently reports whether sql is CREATE [UNIQUE] INDEX CONCURRENTLY,
// DROP INDEX CONCURRENTLY or REINDEX ... CONCURRENTLY: its leading words,
// comments skipped, say so.
func concurrently(sql string) bool {
	words := leadingWords(sql, 8)
	if len(words) == 0 || !slices.Contains(words, "CONCURRENTLY") {
		return false
	}
	switch words[0] {
	case "CREATE", "DROP", "REINDEX":
		return slices.Contains(words, "INDEX") || words[0] == "REINDEX"
	}
	return false
}

// leadingWords returns up to n leading words of sql in upper case,
// skipping comments and REINDEX's parenthesised options; it stops at the
// first quote or other character that is not part of a word.
func leadingWords(sql string, n int) []string {
	var out []string
	for i := 0; i < len(sql) && len(out) < n; {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				return out
			}
			i += j
		case strings.HasPrefix(sql[i:], "/*"):
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return out
			}
			i += j + 4
		case c == '(' && len(out) == 1 && out[0] == "REINDEX":
			j := strings.IndexByte(sql[i:], ')')
			if j < 0 {
				return out
			}
			i += j + 1
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(sql) && (sql[j] == '_' || sql[j] >= 'a' && sql[j] <= 'z' || sql[j] >= 'A' && sql[j] <= 'Z' || sql[j] >= '0' && sql[j] <= '9') {
				j++
			}
			out = append(out, strings.ToUpper(sql[i:j]))
			i = j
		default:
			return out
		}
	}
	return out
}

// lockRetry is one migration's (or statement's) tries.
type lockRetry struct {
	r     *run
	mig   *Migration
	op    Op
	tries int
	start time.Time
}

func (r *run) lockRetry(mig *Migration, op Op) *lockRetry {
	return &lockRetry{r: r, mig: mig, op: op, start: time.Now()}
}

// again reports whether a try that failed with err is to be made again,
// after pausing; if not, it returns the error to report (err itself when
// it is not a lock wait).
func (t *lockRetry) again(err error) (bool, error) {
	r := t.r
	l := r.lockWaits()
	if l == nil || err == nil || !l.lw.IsLockWait(err) {
		return false, err
	}
	t.tries++
	timeout := l.lw.LockWaitBound(l.timeoutFor(t.mig))
	sessions, serr := r.oldTransactions(timeout, t.sqlText(), false)
	if serr != nil {
		r.m.log.Debug("could not list the transactions holding locks", "error", serr)
	}
	lwe := &LockWaitError{Timeout: timeout, Tries: t.tries, Waited: time.Since(t.start), Sessions: sessions, Err: err}
	if t.tries > l.w.Retries {
		return false, lwe
	}
	if r.soft.Err() != nil {
		return false, fmt.Errorf("%w: %w", ErrInterrupted, lwe)
	}
	pause := backoff(l.w, t.tries)
	r.m.log.Warn("migration gave up waiting for a lock and was rolled back; trying again",
		"version", t.mig.Version, "try", t.tries, "of", l.w.Retries+1, "lock_timeout", timeout, "pause", pause.Round(time.Millisecond),
		"held_by", sessionList(sessions))
	select {
	case <-time.After(pause):
	case <-r.soft.Done():
		return false, fmt.Errorf("%w: %w", ErrInterrupted, lwe)
	}
	return true, nil
}

func (t *lockRetry) sqlText() string {
	sec, _ := t.mig.parts(t.op)
	return sectionSQL(sec)
}

func sectionSQL(sec *Section) string {
	if sec == nil {
		return ""
	}
	var b strings.Builder
	for _, st := range sec.Statements {
		b.WriteString(st.SQL)
		b.WriteByte('\n')
	}
	return b.String()
}

// backoff is the pause before retry n (1-based): Backoff doubled n-1
// times, at most MaxBackoff, drawn between half of it and all of it.
func backoff(w LockWait, n int) time.Duration {
	d := w.Backoff
	for i := 1; i < n && d < w.MaxBackoff; i++ {
		d *= 2
	}
	if w.MaxBackoff > 0 {
		d = min(d, w.MaxBackoff)
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// oldTransactions returns the sessions with transactions open for longer
// than age that hold locks on tables sql names (all of them where the
// server does not say which tables they hold).
func (r *run) oldTransactions(age time.Duration, sql string, preflight bool) ([]dialect.Session, error) {
	all, err := r.lockWaits().lw.OldTransactions(r.exec, r.h.conn, age)
	if err != nil {
		return nil, err
	}
	var out []dialect.Session
	for _, s := range all {
		if s.Tables == nil {
			// A session whose default database is another one holds
			// locks on this one's tables only if its queries name them:
			// the preflight does not wait for it, a failure still names
			// it (after the ones of this database).
			if !s.Elsewhere || !preflight {
				out = append(out, s)
			}
			continue
		}
		var named []string
		for _, t := range s.Tables {
			if mentions(sql, t) {
				named = append(named, t)
			}
		}
		if named != nil {
			s.Tables = named
			out = append(out, s)
		}
	}
	return out, nil
}

// mentions reports whether sql holds name as a word (case-insensitively):
// roughly, whether a migration touches the table.
func mentions(sql, name string) bool {
	word := func(c byte) bool {
		return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
	}
	low, n := strings.ToLower(sql), strings.ToLower(name)
	for i := 0; ; {
		j := strings.Index(low[i:], n)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(n)
		if (j == 0 || !word(low[j-1])) && (end == len(low) || !word(low[end])) {
			return true
		}
		i = j + 1
	}
}

func sessionList(ss []dialect.Session) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.String()
	}
	return strings.Join(out, "; ")
}

// preflightLocks checks, once before a run's migrations (op's parts of
// migs), for transactions open for longer than the lock wait bound that
// hold locks on tables the migrations name, and waits for them to end or
// refuses. Those that start later are the lock wait bound's to handle.
func (r *run) preflightLocks(migs []*Migration, op Op) error {
	l := r.lockWaits()
	if l == nil || len(migs) == 0 || l.w.Preflight == PreflightOff || l.w.Preflight == "" || l.w.Timeout <= 0 {
		return nil
	}
	var text strings.Builder
	for _, mig := range migs {
		sec, _ := mig.parts(op)
		text.WriteString(sectionSQL(sec))
	}
	deadline := time.Now().Add(l.w.PreflightTimeout)
	logged := false
	for {
		sessions, err := r.oldTransactions(l.lw.LockWaitBound(l.w.Timeout), text.String(), true)
		if err != nil {
			// A check that cannot run (privileges) does not stop the run:
			// the lock wait bound still holds.
			r.m.log.Warn("preflight: could not list old transactions; going on", "error", err)
			return nil
		}
		if len(sessions) == 0 {
			return nil
		}
		if l.w.Preflight == PreflightRefuse || time.Now().After(deadline) {
			return fmt.Errorf("%d pending migration(s), from version %d: %w", len(migs), migs[0].Version,
				&LockWaitError{Timeout: l.lw.LockWaitBound(l.w.Timeout), Sessions: sessions, Err: errors.New("old transactions")})
		}
		if !logged {
			r.m.log.Warn("preflight: waiting for old transactions holding locks on tables the migrations change",
				"at_most", l.w.PreflightTimeout, "sessions", sessionList(sessions))
			logged = true
		}
		select {
		case <-time.After(min(500*time.Millisecond, l.w.PreflightTimeout)):
		case <-r.soft.Done():
			return fmt.Errorf("%w: waiting for old transactions before migrating: %w", ErrInterrupted, r.soft.Err())
		}
	}
}

// planPreflight writes to a plan the preflight check before the run's
// migrations.
func (r *run) planPreflight(b *strings.Builder) {
	l := r.lockWaits()
	if l == nil || l.w.Preflight == PreflightOff || l.w.Preflight == "" || l.w.Timeout <= 0 {
		return
	}
	timeout := l.w.Timeout
	what := "refused at once"
	if l.w.Preflight == PreflightWait {
		what = fmt.Sprintf("waited for (the check repeats every 0.5s, for at most %s)", l.w.PreflightTimeout)
	}
	fmt.Fprintf(b, "-- preflight: transactions open for longer than %s holding locks on tables the migrations name are %s:\n", timeout, what)
	q, args := l.lw.OldTransactionsQuery(timeout)
	writeStmt(b, r.m.render(q, args))
}

// planSQL writes a lock wait statement to a plan, if there is one.
func planSQL(b *strings.Builder, q string) {
	if q != "" {
		writeStmt(b, q)
	}
}

// planEnd notes in a plan the statement that puts the session's lock
// wait back at the end of a run (after the run's own reads).
func (r *run) planEnd(b *strings.Builder) {
	if l := r.waits; l != nil && l.dirty {
		fmt.Fprintf(b, "-- at the end of the run the session's lock wait goes back to its default: %s\n", l.lw.LockWaitSQL(0, false))
		l.dirty = false
	}
}
