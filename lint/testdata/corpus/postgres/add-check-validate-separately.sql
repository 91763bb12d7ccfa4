-- expect: none
-- source: observed on PostgreSQL 15 here: in autocommit, VALIDATE CONSTRAINT scans users under ShareUpdateExclusiveLock only (reads and writes go on)
-- +ferry up
-- +ferry no-transaction
ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_age_check;
