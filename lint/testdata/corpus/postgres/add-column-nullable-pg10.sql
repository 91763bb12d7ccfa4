-- expect: none
-- target: postgres 10
-- source: https://www.postgresql.org/docs/10/sql-altertable.html#SQL-ALTERTABLE-NOTES (a column without default is added without a rewrite)
-- +ferry up
ALTER TABLE users ADD COLUMN nickname text;
