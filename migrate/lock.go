package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
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

// ErrConnectionLost is wrapped by a run's error when the connection that
// ran the migrations died in the middle of them: how far the server got
// is in the history.
var ErrConnectionLost = errors.New("lost the connection to the database")

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
	return fmt.Sprintf("timed out after %s waiting for the migration lock, held by %s", e.Waited.Round(time.Millisecond), h)
}

func (e *LockTimeoutError) Unwrap() error { return ErrLockTimeout }

// LockInfo describes who holds the migration lock right now.
type LockInfo struct {
	Mode LockMode
	Held bool
	// Holder is the host:pid of the ferry process holding the lock, when
	// it recorded itself.
	Holder string
	// Connection is the server's id of the holding connection (session
	// locks).
	Connection string
	// Since is when the holder took the lock (nil when unknown), HeldFor
	// for how long it has held it, by the database server's clock.
	Since   *time.Time
	HeldFor time.Duration
	// Note explains a lock that is recorded but not really held (its
	// holder's process is gone).
	Note string
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
		return fmt.Sprintf("held by %s for %s", who, l.HeldFor.Round(time.Second))
	}
	return "held by " + who
}

// held is a migration lock this process holds, and the dedicated connection
// the run uses.
type held struct {
	conn   *sql.Conn
	waited time.Duration
	fence  func(ctx context.Context, q Querier) error
	// lease, for a lease lock renewed recently enough that it cannot have
	// expired, returns its token and holder, for a history row written
	// only while they are still the lock row's (fencedInsertSQL); ok is
	// false for a session lock, or a lease the fence must renew first.
	lease func() (token int64, holder string, ok bool)
	free  func(ctx context.Context) error
	once  sync.Once
	err   error
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
	info.Holder, info.Since, info.HeldFor = holder, &since, time.Duration(max(now-acquired, 0))*time.Millisecond
	return info, nil
}
