-- expect: none
-- source: observed on PostgreSQL 15 here: REINDEX INDEX CONCURRENTLY in autocommit builds orders_user_idx_ccnew without blocking writes; https://www.postgresql.org/docs/current/sql-reindex.html#SQL-REINDEX-CONCURRENTLY
-- +ferry up
-- +ferry no-transaction
REINDEX INDEX CONCURRENTLY orders_user_idx;
