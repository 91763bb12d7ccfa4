-- expect: index-not-concurrent
-- source: observed on PostgreSQL 15 here: SHARE lock on users for the build; https://www.postgresql.org/docs/current/sql-createindex.html
-- +ferry up
CREATE UNIQUE INDEX users_email_key ON users (email);
