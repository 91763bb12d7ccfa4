-- expect: not-null-without-default
-- source: observed with SQLite 3.40.1 here (table with rows): Runtime error: Cannot add a NOT NULL column with default value NULL; https://www.sqlite.org/lang_altertable.html#altertabaddcol
-- +ferry up
ALTER TABLE users ADD COLUMN plan TEXT NOT NULL;
