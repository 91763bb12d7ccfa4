-- expect: none
-- source: observed with SQLite 3.40.1 here (table with rows): succeeds; the constant default keeps old INSERTs working
-- +ferry up
ALTER TABLE users ADD COLUMN plan TEXT NOT NULL DEFAULT 'free';
