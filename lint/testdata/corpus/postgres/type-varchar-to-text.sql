-- expect: none
-- source: observed on PostgreSQL 15 here: varchar(100) to text: relfilenode unchanged (binary coercible)
-- +ferry up
ALTER TABLE users ALTER COLUMN email TYPE text;
