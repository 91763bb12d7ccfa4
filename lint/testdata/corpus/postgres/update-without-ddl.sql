-- expect: none
-- source: observed on PostgreSQL 15 here: plain UPDATE takes RowExclusiveLock only; no DDL lock is held
-- +ferry up
UPDATE orders SET status = 'new' WHERE status IS NULL;
