-- expect: concurrent-in-transaction
-- source: observed on PostgreSQL 15 here: ERROR: DROP INDEX CONCURRENTLY cannot run inside a transaction block
-- +ferry up
DROP INDEX CONCURRENTLY IF EXISTS orders_user_idx;
