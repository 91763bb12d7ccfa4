-- expect: column-type-rewrite
-- source: observed on PostgreSQL 15 here: DEBUG rewriting table "orders", relfilenode changed
-- +ferry up
ALTER TABLE orders ALTER COLUMN note TYPE int USING length(note);
