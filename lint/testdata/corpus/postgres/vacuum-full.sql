-- expect: table-rewrite
-- source: observed on PostgreSQL 15 here: VACUUM FULL users rebuilds users and users_pkey under AccessExclusiveLock; https://www.postgresql.org/docs/current/sql-vacuum.html
-- +ferry up
-- +ferry no-transaction
VACUUM FULL users;
