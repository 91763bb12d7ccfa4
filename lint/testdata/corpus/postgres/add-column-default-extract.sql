-- expect: none
-- source: observed on PostgreSQL 15 here: DEFAULT extract(year from now()) is stable, evaluated once: no rewrite (https://www.postgresql.org/docs/current/sql-altertable.html: a non-volatile DEFAULT needs no rewrite)
-- +ferry up
ALTER TABLE audit ADD COLUMN yr int DEFAULT extract(year from now());
