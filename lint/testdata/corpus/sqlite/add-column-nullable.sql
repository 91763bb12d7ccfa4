-- expect: none
-- source: observed with SQLite 3.40.1 here (table with rows): ALTER TABLE ... ADD COLUMN succeeds without touching rows; https://www.sqlite.org/lang_altertable.html#altertabaddcol
-- +ferry up
ALTER TABLE users ADD COLUMN nickname TEXT;
