-- expect: sqlite-table-rebuild
-- source: https://www.sqlite.org/lang_altertable.html#otheralter (the rename-first order is the one the docs warn against: since 3.26 RENAME TO rewrites references in other tables' foreign keys and triggers to the new name); observed with SQLite 3.54 here: the rebuild runs, the table's root page changes
-- +ferry up
ALTER TABLE orders RENAME TO orders_old;
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), status TEXT NOT NULL DEFAULT 'new', total REAL, note TEXT, placed_at TEXT);
INSERT INTO orders (id, user_id, status, total, note) SELECT id, user_id, status, total, note FROM orders_old;
DROP TABLE orders_old;
