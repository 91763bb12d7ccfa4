-- expect: add-column-rewrite
-- source: observed on PostgreSQL 15 here: DEBUG rewriting table "users", relfilenode changed
-- +ferry up
ALTER TABLE users ADD COLUMN legacy_no bigint GENERATED ALWAYS AS IDENTITY;
