-- expect: sqlite-unsupported-alter
-- source: observed with SQLite 3.40.1 here (table with rows): Runtime error: cannot add a STORED column; https://www.sqlite.org/gencol.html
-- +ferry up
ALTER TABLE users ADD COLUMN email_lower TEXT GENERATED ALWAYS AS (lower(email)) STORED;
