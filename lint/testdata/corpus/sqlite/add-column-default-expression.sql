-- expect: sqlite-unsupported-alter
-- source: observed with SQLite 3.40.1 here (table with rows): DEFAULT (1 + 1): Runtime error: Cannot add a column with non-constant default
-- +ferry up
ALTER TABLE orders ADD COLUMN priority INTEGER DEFAULT (1 + 1);
