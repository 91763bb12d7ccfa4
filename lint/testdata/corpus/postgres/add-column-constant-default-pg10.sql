-- expect: add-column-rewrite
-- target: postgres 10
-- source: https://www.postgresql.org/docs/10/sql-altertable.html#SQL-ALTERTABLE-NOTES (adding a column with a DEFAULT rewrites the table); fast defaults arrived in 11: https://www.postgresql.org/docs/11/release-11.html
-- +ferry up
ALTER TABLE users ADD COLUMN plan text DEFAULT 'free';
