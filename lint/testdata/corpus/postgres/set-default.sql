-- expect: none
-- source: observed on PostgreSQL 15 here: catalog change only, no scan, no rewrite
-- +ferry up
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';
