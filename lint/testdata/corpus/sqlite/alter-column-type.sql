-- expect: sqlite-unsupported-alter
-- source: observed with SQLite 3.40.1 here (table with rows): Parse error: near "ALTER": syntax error; https://www.sqlite.org/lang_altertable.html (only RENAME, RENAME COLUMN, ADD COLUMN, DROP COLUMN)
-- +ferry up
ALTER TABLE users ALTER COLUMN age TYPE TEXT;
