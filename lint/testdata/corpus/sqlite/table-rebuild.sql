-- expect: sqlite-table-rebuild
-- source: https://www.sqlite.org/lang_altertable.html#otheralter (the generalized 12-step rebuild: the INSERT ... SELECT copies every row while the migration holds the database write lock); observed with SQLite 3.40.1 here (table with rows): runs to completion
-- +ferry up
CREATE TABLE new_orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), status TEXT NOT NULL DEFAULT 'new', total REAL, note TEXT, placed_at TEXT);
INSERT INTO new_orders (id, user_id, status, total, note) SELECT id, user_id, status, total, note FROM orders;
DROP TABLE orders;
ALTER TABLE new_orders RENAME TO orders;
CREATE INDEX orders_user_idx ON orders (user_id);
