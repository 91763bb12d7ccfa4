-- expect: none
-- source: observed on PostgreSQL 15 here: timestamp(3) to timestamp(6) keeps the relfilenode (no rewrite)
-- +ferry up
ALTER TABLE audit ALTER COLUMN at TYPE timestamp(6);
