-- expect: backfill-in-ddl-transaction
-- source: observed on PostgreSQL 15 here: UPDATE 20000 runs while the AccessExclusiveLock from ADD COLUMN on users is held until commit
-- +ferry up
ALTER TABLE users ADD COLUMN plan text;
UPDATE users SET plan = 'free';
