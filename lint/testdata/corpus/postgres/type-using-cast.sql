-- expect: none
-- source: observed on PostgreSQL 15 here: USING v::varchar(100) is the implicit cast, and varchar(20) to varchar(100) keeps the relfilenode
-- +ferry up
ALTER TABLE audit ALTER COLUMN v TYPE varchar(100) USING v::varchar(100);
