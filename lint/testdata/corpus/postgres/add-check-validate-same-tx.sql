-- expect: check-without-not-valid
-- source: observed on PostgreSQL 15 here: in one transaction, VALIDATE scans users (DEBUG verifying table) while the AccessExclusiveLock taken by ADD CONSTRAINT is still held: NOT VALID gains nothing
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_age_check;
