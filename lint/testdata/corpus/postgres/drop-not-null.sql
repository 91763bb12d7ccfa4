-- expect: none
-- source: observed on PostgreSQL 15 here: catalog change only, no scan; the running release's writes keep working
-- +ferry up
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
