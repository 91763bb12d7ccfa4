-- expect: index-not-concurrent
-- source: observed on PostgreSQL 15 here: REINDEX INDEX takes a SHARE lock on orders (writes wait) while it rebuilds; https://www.postgresql.org/docs/current/sql-reindex.html
-- +ferry up
REINDEX INDEX orders_user_idx;
