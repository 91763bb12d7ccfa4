-- expect: column-type-rewrite
-- source: observed on PostgreSQL 15 here: text to varchar(64): DEBUG rewriting table "users", relfilenode changed
-- +ferry up
ALTER TABLE users ALTER COLUMN name TYPE varchar(64);
