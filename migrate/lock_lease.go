package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

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
	h.lease = func() (int64, string, bool) {
		return token, m.holder, renewedAgo() < m.leaseTTL/3
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
