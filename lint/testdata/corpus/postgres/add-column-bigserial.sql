-- expect: add-column-rewrite
-- source: observed on PostgreSQL 15 here: DEBUG rewriting table "users" (nextval default), relfilenode changed
-- +ferry up
ALTER TABLE users ADD COLUMN seq bigserial;
