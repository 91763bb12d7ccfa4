-- expect: drop-column,sqlite-unsupported-alter
-- target: sqlite 3.34
-- source: DROP COLUMN arrived in SQLite 3.35.0 (https://www.sqlite.org/releaselog/3_35_0.html); before it the statement is a syntax error and the migration fails
-- +ferry up
ALTER TABLE users DROP COLUMN age;
