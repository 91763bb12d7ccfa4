-- expect: none
-- source: observed with SQLite 3.40.1 here (table with rows): a VIRTUAL generated column is added without touching rows; https://www.sqlite.org/gencol.html
-- +ferry up
ALTER TABLE users ADD COLUMN email_lower TEXT GENERATED ALWAYS AS (lower(email)) VIRTUAL;
