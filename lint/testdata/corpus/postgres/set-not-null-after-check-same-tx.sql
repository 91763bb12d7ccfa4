-- expect: check-without-not-valid
-- source: observed on PostgreSQL 15 here: the CHECK without NOT VALID scans users (verifying table) under AccessExclusiveLock; SET NOT NULL then skips its scan ('existing constraints ... are sufficient')
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_name_not_null CHECK (name IS NOT NULL);
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
