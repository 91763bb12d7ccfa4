-- expect: column-type-rewrite
-- source: observed on PostgreSQL 15 here: USING upper(v) computes every row, a new relfilenode
-- +ferry up
ALTER TABLE audit ALTER COLUMN v TYPE text USING upper(v);
