-- expect: column-type-rewrite
-- source: observed on PostgreSQL 15 here: numeric(10,2) to numeric(12,4): DEBUG rewriting table "users", relfilenode changed
-- +ferry up
ALTER TABLE users ALTER COLUMN score TYPE numeric(12,4);
