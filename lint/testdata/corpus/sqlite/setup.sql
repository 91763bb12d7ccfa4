-- The schema every SQLite corpus case runs against: existing tables.
-- +ferry up
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, age INTEGER, created_at TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), status TEXT NOT NULL DEFAULT 'new', total REAL, note TEXT);
CREATE INDEX orders_user_idx ON orders (user_id);
