-- expect: drop-index-not-concurrent
-- source: observed on PostgreSQL 15 here: AccessExclusiveLock on orders until commit; https://www.postgresql.org/docs/current/sql-dropindex.html
-- +ferry up
DROP INDEX orders_user_idx;
