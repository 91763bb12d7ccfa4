-- expect: none
-- source: observed on PostgreSQL 15 here: now() is stable, evaluated once: no rewrite, relfilenode unchanged
-- +ferry up
ALTER TABLE orders ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
