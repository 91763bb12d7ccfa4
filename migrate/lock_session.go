package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/dialect"
)

// acquireSession takes the dialect's session lock (a PostgreSQL advisory
// lock, MySQL GET_LOCK) on conn by polling, and records this process as
// the holder in the lock table, for status.
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
