-- expect: add-column-rewrite
-- source: observed on PostgreSQL 15 here: DEBUG rewriting table "users", relfilenode changed (gen_random_uuid is volatile)
-- +ferry up
ALTER TABLE users ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
