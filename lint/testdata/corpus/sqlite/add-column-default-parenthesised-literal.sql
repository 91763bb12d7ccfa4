-- expect: none
-- source: observed with SQLite 3.40.1 here (table with rows): DEFAULT ('free') succeeds: a parenthesised literal is still a constant (sqlite3ValueFromExpr evaluates it), only expressions that need evaluation are refused
-- +ferry up
ALTER TABLE users ADD COLUMN plan TEXT DEFAULT ('free');
