-- expect: column-type-rewrite
-- source: observed on PostgreSQL 15 here: DEBUG rewriting table "users", relfilenode changed
-- +ferry up
ALTER TABLE users ALTER COLUMN age TYPE bigint;
