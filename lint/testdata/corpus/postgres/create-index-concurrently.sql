-- expect: none
-- source: observed on PostgreSQL 15 here: CREATE INDEX CONCURRENTLY in autocommit succeeds, SHARE UPDATE EXCLUSIVE only; https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
-- +ferry up
-- +ferry no-transaction
CREATE INDEX CONCURRENTLY users_email_idx ON users (email);
