-- expect: none
-- source: observed on PostgreSQL 15 here: numeric(10,2) to numeric(12,2): relfilenode unchanged
-- +ferry up
ALTER TABLE users ALTER COLUMN score TYPE numeric(12,2);
