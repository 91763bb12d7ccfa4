-- expect: none
-- source: observed on PostgreSQL 15 here: no rewrite, no scan: the constant default fills every row
-- +ferry up
ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';
