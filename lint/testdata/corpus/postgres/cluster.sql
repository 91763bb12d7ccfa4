-- expect: table-rewrite
-- source: observed on PostgreSQL 15 here: CLUSTER users: relfilenode changed, AccessExclusiveLock; https://www.postgresql.org/docs/current/sql-cluster.html
-- +ferry up
CLUSTER users USING users_pkey;
