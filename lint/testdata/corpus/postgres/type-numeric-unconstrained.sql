-- expect: none
-- source: observed on PostgreSQL 15 here: numeric(10,2) to numeric: relfilenode unchanged
-- +ferry up
ALTER TABLE orders ALTER COLUMN total TYPE numeric;
