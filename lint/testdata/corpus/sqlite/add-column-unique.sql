-- expect: sqlite-unsupported-alter
-- source: observed with SQLite 3.40.1 here (table with rows): Parse error: Cannot add a UNIQUE column; https://www.sqlite.org/lang_altertable.html#altertabaddcol
-- +ferry up
ALTER TABLE users ADD COLUMN handle TEXT UNIQUE;
