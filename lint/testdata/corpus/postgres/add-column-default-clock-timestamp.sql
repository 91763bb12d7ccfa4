-- expect: add-column-rewrite
-- source: observed on PostgreSQL 15 here: DEBUG rewriting table "users", relfilenode changed
-- +ferry up
ALTER TABLE orders ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();
