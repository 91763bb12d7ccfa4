-- expect: set-not-null-scan
-- source: observed on PostgreSQL 15 here: DEBUG verifying table "users" under AccessExclusiveLock
-- +ferry up
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
