package migrate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	// Preflight says what to do when, before a migration, transactions
	// open for longer than Timeout hold locks on tables it names:
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

// DefaultLockWait is the lock wait of a Migrator without WithLockWait.
var DefaultLockWait = LockWait{
	Timeout: 5 * time.Second, Retries: 5, Backoff: time.Second, MaxBackoff: 30 * time.Second,
	Preflight: PreflightWait, PreflightTimeout: 2 * time.Minute,
}

// WithLockWait sets how long migrations wait for table locks and how
// they are retried (see LockWait; default DefaultLockWait). It applies
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
		fmt.Fprintf(&b, "%v: gave up waiting %s for a lock, %d times in %s", ErrLockWait, e.Timeout, e.Tries, e.Waited.Round(100*time.Millisecond))
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
// bound lock waits or the bound is off.
type lockWaits struct {
	w   LockWait
	lw  dialect.LockWaiter
	set time.Duration // the session's bound now (-1: never set)
}

func (r *run) lockWaits() *lockWaits {
	if r.waits != nil {
		return r.waits
	}
	lw, ok := r.m.d.(dialect.LockWaiter)
	if !ok {
		return nil
	}
	r.waits = &lockWaits{w: r.m.lockWait, lw: lw, set: -1}
	return r.waits
}

// timeoutFor is mig's lock wait bound.
func (l *lockWaits) timeoutFor(mig *Migration) time.Duration {
	if mig.DDLLockTimeout != nil {
		return *mig.DDLLockTimeout
	}
	return l.w.Timeout
}

// bound sets the session's lock wait bound to d, if it is not d already.
func (r *run) bound(d time.Duration) error {
	l := r.lockWaits()
	if l == nil || l.set == d || (l.set == -1 && d == 0) {
		return nil
	}
	if _, err := r.h.conn.ExecContext(r.exec, l.lw.LockWaitSQL(d)); err != nil {
		return fmt.Errorf("set the lock wait bound (%s): %w", d, err)
	}
	l.set = d
	return nil
}

// unbound puts the session's lock wait back to its default, at the end
// of a run.
func (r *run) unbound() {
	if l := r.waits; l != nil && l.set > 0 {
		if _, err := r.h.conn.ExecContext(context.WithoutCancel(r.exec), l.lw.LockWaitSQL(0)); err != nil {
			r.m.log.Warn("could not reset the lock wait bound", "error", err)
		}
		l.set = 0
	}
}

// boundFor sets the bound for a statement of mig: none for one that
// builds or rebuilds an index CONCURRENTLY (it waits for old transactions
// without blocking anyone, and giving up would leave an invalid index).
func (r *run) boundFor(mig *Migration, sql string) error {
	l := r.lockWaits()
	if l == nil {
		return nil
	}
	return r.bound(l.statementTimeout(mig, sql))
}

func (l *lockWaits) statementTimeout(mig *Migration, sql string) time.Duration {
	if concurrently(sql) {
		return 0
	}
	return l.timeoutFor(mig)
}

// planBound writes to a plan what bound(d) would send, and notes it.
func (r *run) planBound(b *strings.Builder, d time.Duration) {
	l := r.lockWaits()
	if l == nil || l.set == d || (l.set == -1 && d == 0) {
		return
	}
	writeStmt(b, l.lw.LockWaitSQL(d))
	l.set = d
}

// concurrently reports whether sql holds the word CONCURRENTLY outside
// comments and literals, roughly: the statement builds an index without
// blocking writes.
func concurrently(sql string) bool {
	return strings.Contains(strings.ToUpper(sql), "CONCURRENTLY")
}

// lockRetry is one migration's (or statement's) tries.
type lockRetry struct {
	r     *run
	mig   *Migration
	tries int
	start time.Time
}

func (r *run) lockRetry(mig *Migration) *lockRetry {
	return &lockRetry{r: r, mig: mig, start: time.Now()}
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
	timeout := l.timeoutFor(t.mig)
	sessions, serr := r.oldTransactions(timeout, t.sqlText())
	if serr != nil {
		r.m.log.Debug("could not list the transactions holding locks", "error", serr)
	}
	if t.tries > l.w.Retries || r.soft.Err() != nil {
		return false, &LockWaitError{Timeout: timeout, Tries: t.tries, Waited: time.Since(t.start), Sessions: sessions, Err: err}
	}
	pause := backoff(l.w, t.tries)
	r.m.log.Warn("migration gave up waiting for a lock and was rolled back; trying again",
		"version", t.mig.Version, "try", t.tries, "of", l.w.Retries+1, "lock_timeout", timeout, "pause", pause.Round(time.Millisecond),
		"held_by", sessionList(sessions))
	select {
	case <-time.After(pause):
	case <-r.soft.Done():
		return false, &LockWaitError{Timeout: timeout, Tries: t.tries, Waited: time.Since(t.start), Sessions: sessions, Err: err}
	}
	return true, nil
}

func (t *lockRetry) sqlText() string {
	sec, _ := t.mig.parts(OpUp)
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
func (r *run) oldTransactions(age time.Duration, sql string) ([]dialect.Session, error) {
	all, err := r.lockWaits().lw.OldTransactions(r.exec, r.h.conn, age)
	if err != nil {
		return nil, err
	}
	var out []dialect.Session
	for _, s := range all {
		if s.Tables == nil {
			out = append(out, s)
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
		sessions, err := r.oldTransactions(l.w.Timeout, text.String())
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
				&LockWaitError{Timeout: l.w.Timeout, Sessions: sessions, Err: errors.New("old transactions")})
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

// planTimeout writes to a plan how long its statements wait for locks,
// and the statement that says so when it changes.
func (r *run) planTimeout(b *strings.Builder, mig *Migration, sql string) {
	l := r.lockWaits()
	if l == nil {
		return
	}
	d := l.statementTimeout(mig, sql)
	if l.set == d || (l.set == -1 && d == 0) {
		return
	}
	if d > 0 {
		fmt.Fprintf(b, "-- a statement that waits more than %s for a lock gives up; what it was part of is rolled back and tried again, up to %d more times\n", d, l.w.Retries)
	}
	r.planBound(b, d)
}

// planEnd notes in a plan the statement that puts the session's lock
// wait back at the end of a run (after the run's own reads).
func (r *run) planEnd(b *strings.Builder) {
	if l := r.waits; l != nil && l.set > 0 {
		fmt.Fprintf(b, "-- at the end of the run the session's lock wait goes back to its default: %s\n", l.lw.LockWaitSQL(0))
		l.set = 0
	}
}
