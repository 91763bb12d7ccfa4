-- expect: backfill-in-ddl-transaction
-- source: observed on PostgreSQL 15 here: DELETE 20000 runs while the AccessExclusiveLock from ADD COLUMN on orders is held until commit
-- +ferry up
ALTER TABLE orders ADD COLUMN archived boolean;
DELETE FROM orders;
