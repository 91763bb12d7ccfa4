-- expect: column-type-rewrite
-- source: observed on PostgreSQL 15 here: varchar(100) to varchar(50): DEBUG rewriting table "users", relfilenode changed
-- +ferry up
ALTER TABLE users ALTER COLUMN email TYPE varchar(50);
