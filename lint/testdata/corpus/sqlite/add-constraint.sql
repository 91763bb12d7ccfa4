-- expect: sqlite-unsupported-alter
-- source: observed with SQLite 3.40.1 here (table with rows): Parse error: near "CONSTRAINT": syntax error; https://www.sqlite.org/lang_altertable.html#otheralter
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);
