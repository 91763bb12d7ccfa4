-- expect: none
-- source: observed on PostgreSQL 15 here: varchar(20) to varchar: relfilenode unchanged
-- +ferry up
ALTER TABLE orders ALTER COLUMN status SET DATA TYPE varchar;
