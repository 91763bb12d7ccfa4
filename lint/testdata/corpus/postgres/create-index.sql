-- expect: index-not-concurrent
-- source: observed on PostgreSQL 15 here: SHARE lock on users held while the index builds (inserts/updates wait); https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
-- +ferry up
CREATE INDEX users_email_idx ON users (email);
