-- expect: check-without-not-valid
-- source: observed on PostgreSQL 15 here: DEBUG verifying table "users" under AccessExclusiveLock
-- +ferry up
ALTER TABLE users ADD COLUMN level int CHECK (level > 0);
