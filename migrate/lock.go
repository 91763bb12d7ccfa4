package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// LockMode selects how the migration lock is taken.
type LockMode string

const (
	// LockAuto uses the dialect's session lock where it has one
	// (PostgreSQL, MySQL) and the lease lock otherwise (SQLite).
	LockAuto LockMode = ""
	// LockSession is a server-side lock owned by one connection: a
	// PostgreSQL session advisory lock, or MySQL GET_LOCK.
	LockSession LockMode = "session"
	// LockLease is a row in the lock table with a holder, an expiry kept
	// fresh by a heartbeat, and a fencing token checked inside every
	// migration transaction. It works through connection poolers that do
	// not keep a session per client (PgBouncer in transaction mode).
	LockLease LockMode = "lease"
)

// ErrLockTimeout is returned when the migration lock was not free within
// the lock timeout.
var ErrLockTimeout = errors.New("timed out waiting for the migration lock")

// ErrLockLost is returned when a lease lock was taken over by another
// process (its heartbeat could not be written in time).
var ErrLockLost = errors.New("lost the migration lock")

// errDatabaseBusy describes a lock attempt that was still waiting for the
// database when the lock timeout ran out.
var errDatabaseBusy = errors.New("still waiting for the database's write lock")

// LockTimeoutError is returned (wrapping ErrLockTimeout) when the lock stayed
// taken for the whole lock timeout.
type LockTimeoutError struct {
	Waited time.Duration
	Holder string
	// Busy is the last "database busy" error when the database itself
	// stayed locked (SQLite allows one writer at a time).
	Busy error
}

func (e *LockTimeoutError) Error() string {
	if e.Holder == "" && e.Busy != nil {
		return fmt.Sprintf("timed out after %s waiting for the migration lock: the database stayed busy (%v); another connection holds a long write transaction", e.Waited.Round(time.Millisecond), e.Busy)
	}
	h := e.Holder
	if h == "" {
		h = "another process"
	}
	return fmt.Sprintf("timed out after %s waiting for the migration lock, held by %s; raise --lock-timeout, or check `ferry status` for a stuck holder", e.Waited.Round(time.Millisecond), h)
}

func (e *LockTimeoutError) Unwrap() error { return ErrLockTimeout }

// LockInfo describes who holds the migration lock right now.
type LockInfo struct {
	Mode LockMode `json:"mode"`
	Held bool     `json:"held"`
	// Holder is the host:pid of the ferry process holding the lock, when
	// it recorded itself.
	Holder string `json:"holder,omitempty"`
	// Connection is the server's id of the holding connection (session
	// locks).
	Connection string     `json:"connection,omitempty"`
	Since      *time.Time `json:"since,omitempty"`
	HeldForMS  int64      `json:"held_for_ms,omitempty"`
	// Note explains a lock that is recorded but not really held (its
	// holder's process is gone).
	Note string `json:"note,omitempty"`
}

func (l *LockInfo) String() string {
	if l != nil && !l.Held && l.Note != "" {
		return "free (" + l.Note + ")"
	}
	if l == nil || !l.Held {
		return "free"
	}
	who := l.Holder
	if who == "" {
		who = "connection " + l.Connection
	}
	if l.Since != nil {
		return fmt.Sprintf("held by %s for %s", who, (time.Duration(l.HeldForMS) * time.Millisecond).Round(time.Second))
	}
	return "held by " + who
}

// held is a migration lock this process holds, and the dedicated connection
// the run uses.
type held struct {
	conn   *sql.Conn
	waited time.Duration
	fence  func(ctx context.Context, q Querier) error
	free   func(ctx context.Context) error
	once   sync.Once
	err    error
}

// release frees the lock and the connection. It is safe to call twice.
func (h *held) release(ctx context.Context) error {
	h.once.Do(func() { h.err = h.free(ctx) })
	return h.err
}

func (m *Migrator) lockMode() LockMode {
	if m.lockModeOpt != LockAuto {
		return m.lockModeOpt
	}
	if _, ok := m.d.(dialect.SessionLocker); ok {
		return LockSession
	}
	return LockLease
}

// acquire waits for the migration lock. onLost is called if a lease lock is
// lost while held.
func (m *Migrator) acquire(ctx context.Context, onLost func(error)) (*held, error) {
	start := time.Now()
	waitCtx, cancel := context.WithTimeoutCause(ctx, m.lockTimeout, ErrLockTimeout)
	defer cancel()
	conn, err := m.db.Conn(waitCtx)
	if err != nil {
		return nil, fmt.Errorf("open a connection for the migration lock: %w", err)
	}
	var h *held
	var busy error // the last busy error of a lease attempt
	switch mode := m.lockMode(); mode {
	case LockSession:
		sl, ok := m.d.(dialect.SessionLocker)
		if !ok {
			conn.Close()
			return nil, fmt.Errorf("the %s dialect has no session lock; use the lease lock", m.d.Name())
		}
		h, err = m.acquireSession(waitCtx, conn, sl)
	case LockLease:
		h, err = m.acquireLease(waitCtx, conn, onLost, &busy)
	default:
		err = fmt.Errorf("unknown lock mode %q: use session or lease", mode)
	}
	if err != nil {
		defer conn.Close()
		if errors.Is(context.Cause(waitCtx), ErrLockTimeout) && ctx.Err() == nil {
			infoCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			info, ierr := m.lockInfo(infoCtx, conn)
			if ierr != nil {
				// The timeout may have cut a lock attempt in flight,
				// and the driver closed the connection with it.
				info, _ = m.lockInfo(infoCtx, m.db)
			}
			te := &LockTimeoutError{Waited: time.Since(start), Busy: busy}
			if info != nil {
				te.Holder = info.describeHolder()
			}
			return nil, te
		}
		return nil, err
	}
	h.waited = time.Since(start)
	m.hooks.lockAcquired(h.waited)
	return h, nil
}

func (l *LockInfo) describeHolder() string {
	switch {
	case l == nil || !l.Held:
		return ""
	case l.Holder != "":
		return l.Holder
	default:
		return "connection " + l.Connection
	}
}

// poll calls try until it succeeds, fails or ctx ends, with exponential
// backoff and jitter between attempts, and logs who holds the lock.
func (m *Migrator) poll(ctx context.Context, conn *sql.Conn, maxDelay time.Duration, try func() (bool, error)) error {
	delay := 10 * time.Millisecond
	var lastLog time.Time
	for {
		ok, err := try()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			// Ask on the waiter's own connection: a fleet of waiters must
			// not need two connections each.
			info, _ := m.lockInfo(ctx, conn)
			m.log.Warn("waiting for the migration lock", "lock", info.String(), "timeout", m.lockTimeout)
		}
		d := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			if c := context.Cause(ctx); c != nil {
				return c
			}
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, maxDelay)
	}
}

func (m *Migrator) acquireSession(ctx context.Context, conn *sql.Conn, sl dialect.SessionLocker) (*held, error) {
	var owner string
	err := m.poll(ctx, conn, 250*time.Millisecond, func() (bool, error) {
		o, ok, err := sl.TryLock(ctx, conn, m.table)
		if err != nil {
			return false, fmt.Errorf("take the migration lock: %w", err)
		}
		owner = o
		return ok, nil
	})
	if err != nil {
		return nil, err
	}
	h := &held{conn: conn, fence: func(context.Context, Querier) error { return nil }}
	h.free = func(ctx context.Context) error {
		// Clear the informational holder row, then the lock itself. If the
		// connection is gone, so is the lock.
		_, _ = conn.ExecContext(ctx, "UPDATE "+m.d.Table(m.lockTable)+" SET holder = '', owner = '' WHERE id = 1 AND owner = "+m.d.Placeholder(1), owner)
		err := sl.Unlock(ctx, conn, m.table)
		conn.Close()
		if err != nil {
			return fmt.Errorf("release the migration lock: %w", err)
		}
		return nil
	}
	// Under the lock: create ferry's tables on first use, then record who
	// holds the lock so that `ferry status` can say.
	if err := m.ensureTables(ctx, conn); err != nil {
		h.release(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := m.recordHolder(ctx, conn, owner); err != nil {
		h.release(context.WithoutCancel(ctx))
		return nil, err
	}
	return h, nil
}

// recordHolder writes this process into the lock table row (session mode).
func (m *Migrator) recordHolder(ctx context.Context, q Querier, owner string) error {
	p, t, now := m.d.Placeholder, m.d.Table(m.lockTable), m.d.NowMillis()
	res, err := q.ExecContext(ctx, "UPDATE "+t+" SET holder = "+p(1)+", owner = "+p(2)+", token = token + 1, acquired_at = "+now+", expires_at = 0 WHERE id = 1", m.holder, owner)
	if err != nil {
		return fmt.Errorf("record the lock holder: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	_, err = q.ExecContext(ctx, "INSERT INTO "+t+" (id, holder, owner, token, acquired_at, expires_at) VALUES (1, "+p(1)+", "+p(2)+", 1, "+now+", 0)", m.holder, owner)
	if err != nil {
		return fmt.Errorf("record the lock holder: %w", err)
	}
	return nil
}

// ensureLockTable creates the lock table before a lease lock is taken,
// tolerating another process creating it at the same moment.
func (m *Migrator) ensureLockTable(ctx context.Context, q Querier) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var ok bool
		if ok, err = m.d.TableExists(ctx, q, m.lockTable); err == nil && ok {
			return nil
		}
		if err = m.d.Prepare(ctx, q); err != nil {
			continue
		}
		for _, s := range m.d.LockTableDDL(m.lockTable) {
			if _, err = q.ExecContext(ctx, s); err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("create lock table %s: %w", m.lockTable, err)
}

func (m *Migrator) isBusy(err error) bool {
	bc, ok := m.d.(dialect.BusyChecker)
	return ok && bc.IsBusy(err)
}

func (m *Migrator) acquireLease(ctx context.Context, conn *sql.Conn, onLost func(error), busy *error) (*held, error) {
	*busy = errDatabaseBusy // creating the lock table needs a write, too
	if err := m.ensureLockTable(ctx, conn); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	p, t, now := m.d.Placeholder, m.d.Table(m.lockTable), m.d.NowMillis()
	ttl := m.leaseTTL.Milliseconds()
	var token int64
	err := m.poll(ctx, conn, 500*time.Millisecond, func() (bool, error) {
		// Until the attempt returns, the run is waiting for the database
		// itself (a SQLite write lock), not for another ferry process.
		*busy = errDatabaseBusy
		ok, tok, err := m.tryLease(ctx, conn, ttl)
		switch {
		case err == nil:
			token, *busy = tok, nil
			return ok, nil
		case m.isBusy(err):
			*busy = err
			return false, nil
		case ctx.Err() != nil:
			return false, ctx.Err()
		}
		*busy = nil
		return false, fmt.Errorf("take the migration lock: %w", err)
	})
	if err != nil {
		return nil, err
	}
	extend := "UPDATE " + t + " SET expires_at = " + now + " + " + p(1) + " WHERE id = 1 AND token = " + p(2) + " AND holder = " + p(3)
	// lastRenewed is when the lease was last extended, by the heartbeat or
	// by a migration's own fencing check (each migration transaction
	// renews it).
	var lastRenewed atomic.Int64
	lastRenewed.Store(time.Now().UnixNano())
	renewedAgo := func() time.Duration { return time.Duration(time.Now().UnixNano() - lastRenewed.Load()) }
	// stillHeld extends the lease and reports whether this process still
	// holds it. MySQL reports changed rather than matched rows, so an
	// extension within the same millisecond counts 0 rows: confirm then.
	stillHeld := func(ctx context.Context, q Querier) (bool, error) {
		res, err := q.ExecContext(ctx, extend, ttl, token, m.holder)
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			lastRenewed.Store(time.Now().UnixNano())
			return true, nil
		}
		var n int
		err = q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t+" WHERE id = 1 AND token = "+p(1)+" AND holder = "+p(2)+" AND expires_at > "+now, token, m.holder).Scan(&n)
		if n == 1 {
			lastRenewed.Store(time.Now().UnixNano())
		}
		return n == 1, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		every := m.leaseTTL / 3
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if renewedAgo() < every {
				continue // a migration just renewed it
			}
			hctx, cancel := context.WithTimeout(context.Background(), every)
			ok, err := stillHeld(hctx, m.db)
			cancel()
			switch {
			case err == nil && !ok:
				onLost(ErrLockLost)
				return
			case err == nil, m.isBusy(err), errors.Is(err, context.DeadlineExceeded):
				// A busy database is held by a writer, most likely this run:
				// nobody can take the lease meanwhile. Try again next tick.
			case renewedAgo() > m.leaseTTL:
				onLost(fmt.Errorf("%w: the lease could not be renewed for %s: %v", ErrLockLost, m.leaseTTL, err))
				return
			}
		}
	}()
	// check reads, without writing, whether the lease is still this run's.
	check := "SELECT COUNT(*) FROM " + t + " WHERE id = 1 AND token = " + p(1) + " AND holder = " + p(2)
	h := &held{conn: conn}
	h.fence = func(ctx context.Context, q Querier) error {
		// A lease renewed less than a third of its time ago cannot have
		// expired, so nobody can have taken it: reading the token is
		// fence enough (it still catches a lease taken by force). Older,
		// renew it in the migration's transaction, whose row lock orders
		// the migration against any taker. Each write skipped is one
		// page less per migration on SQLite.
		var ok bool
		var err error
		if renewedAgo() < m.leaseTTL/3 {
			var n int
			err = q.QueryRowContext(ctx, check, token, m.holder).Scan(&n)
			ok = n == 1
		} else {
			ok, err = stillHeld(ctx, q)
		}
		if err != nil {
			return fmt.Errorf("check the migration lock: %w", err)
		}
		if !ok {
			return ErrLockLost
		}
		return nil
	}
	h.free = func(ctx context.Context) error {
		close(stop)
		wg.Wait()
		_, err := conn.ExecContext(ctx, "UPDATE "+t+" SET holder = '', expires_at = 0 WHERE id = 1 AND token = "+p(1), token)
		conn.Close()
		if err != nil {
			return fmt.Errorf("release the migration lock: %w", err)
		}
		return nil
	}
	if err := m.ensureTables(ctx, conn); err != nil {
		h.release(context.WithoutCancel(ctx))
		return nil, err
	}
	return h, nil
}

// tryLease makes one attempt to take the lease: it is free when nobody
// holds it, its holder's lease expired, or its holder is a process on this
// host that no longer runs.
func (m *Migrator) tryLease(ctx context.Context, conn *sql.Conn, ttl int64) (bool, int64, error) {
	p, t, now := m.d.Placeholder, m.d.Table(m.lockTable), m.d.NowMillis()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, 0, err
	}
	defer tx.Rollback()
	var holder string
	var token, expires, current int64
	err = tx.QueryRowContext(ctx, "SELECT holder, token, expires_at, "+now+" FROM "+t+" WHERE id = 1").Scan(&holder, &token, &expires, &current)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+t+" (id, holder, owner, token, acquired_at, expires_at) VALUES (1, "+p(1)+", '', 1, "+now+", "+now+" + "+p(2)+")", m.holder, ttl); err != nil {
			return false, 0, nil // someone else inserted it first
		}
		return tx.Commit() == nil, 1, nil
	}
	if err != nil {
		return false, 0, err
	}
	if holder != "" && (expires > current || m.holderAlive(holder)) && !m.holderDead(holder) {
		return false, 0, nil
	}
	res, err := tx.ExecContext(ctx, "UPDATE "+t+" SET holder = "+p(1)+", owner = '', token = token + 1, acquired_at = "+now+", expires_at = "+now+" + "+p(2)+" WHERE id = 1 AND token = "+p(3), m.holder, ttl, token)
	if err != nil {
		return false, 0, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, 0, nil
	}
	if err := tx.Commit(); err != nil {
		return false, 0, err
	}
	return true, token + 1, nil
}

// holderDead reports whether holder ("host:pid") names a process on this
// host that is no longer running, so its lease can be taken at once.
func (m *Migrator) holderDead(holder string) bool {
	pid, ok := m.localPID(holder)
	return ok && !processAlive(pid)
}

// holderAlive reports whether holder names a process on this host that
// still runs: its lease stands even once expired (a busy SQLite file can
// keep its heartbeat from being written), since only a holder on another
// host can vanish without this host seeing it.
func (m *Migrator) holderAlive(holder string) bool {
	pid, ok := m.localPID(holder)
	return ok && processAlive(pid)
}

// localPID returns the pid of holder when it is a process on this host.
func (m *Migrator) localPID(holder string) (int, bool) {
	i := strings.LastIndexByte(holder, ':')
	if i < 0 || holder[:i] != m.hostname {
		return 0, false
	}
	pid, err := strconv.Atoi(holder[i+1:])
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// lockInfo reports who holds the lock right now.
func (m *Migrator) lockInfo(ctx context.Context, q Querier) (*LockInfo, error) {
	mode := m.lockMode()
	info := &LockInfo{Mode: mode}
	if mode == LockSession {
		sl, ok := m.d.(dialect.SessionLocker)
		if !ok {
			return info, nil
		}
		owner, err := sl.LockOwner(ctx, q, m.table)
		if err != nil {
			return nil, fmt.Errorf("look up the migration lock: %w", err)
		}
		if owner == "" {
			return info, nil
		}
		info.Held, info.Connection = true, owner
	}
	exists, err := m.d.TableExists(ctx, q, m.lockTable)
	if err != nil || !exists {
		return info, err
	}
	var holder, owner string
	var acquired, expires, now int64
	err = q.QueryRowContext(ctx, "SELECT holder, owner, acquired_at, expires_at, "+m.d.NowMillis()+" FROM "+m.d.Table(m.lockTable)+" WHERE id = 1").Scan(&holder, &owner, &acquired, &expires, &now)
	if errors.Is(err, sql.ErrNoRows) {
		return info, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock table %s: %w", m.lockTable, err)
	}
	switch mode {
	case LockSession:
		if owner != info.Connection {
			return info, nil // the row is stale or from another mode
		}
	case LockLease:
		if holder == "" || expires <= now {
			return info, nil
		}
		if m.holderDead(holder) {
			// The next run takes such a lease over at once; status must
			// not report a migration in progress until it expires.
			info.Note = "its last holder " + holder + " is no longer running; the next run takes the lock over"
			return info, nil
		}
		info.Held = true
	}
	since := time.UnixMilli(acquired).UTC()
	info.Holder, info.Since, info.HeldForMS = holder, &since, max(now-acquired, 0)
	return info, nil
}
