-- expect: none
-- source: observed on PostgreSQL 15 here: DROP INDEX CONCURRENTLY in autocommit succeeds without blocking orders
-- +ferry up
-- +ferry no-transaction
DROP INDEX CONCURRENTLY orders_user_idx;
