-- expect: none
-- source: observed on PostgreSQL 15 here: relfilenode unchanged, AccessExclusiveLock only for the catalog change
-- +ferry up
ALTER TABLE users ADD COLUMN nickname text;
