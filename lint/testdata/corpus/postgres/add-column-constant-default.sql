-- expect: none
-- source: observed on PostgreSQL 15 here: relfilenode of users unchanged (fast default, PostgreSQL 11+); https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
-- +ferry up
ALTER TABLE users ADD COLUMN plan text DEFAULT 'free';
