-- expect: sqlite-unsupported-alter
-- source: observed with SQLite 3.40.1 here (table with rows): Runtime error: Cannot add a column with non-constant default; https://www.sqlite.org/lang_altertable.html#altertabaddcol (may not have a default of CURRENT_TIME, CURRENT_DATE, CURRENT_TIMESTAMP)
-- +ferry up
ALTER TABLE users ADD COLUMN updated_at TEXT DEFAULT CURRENT_TIMESTAMP;
