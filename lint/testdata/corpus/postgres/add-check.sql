-- expect: check-without-not-valid
-- source: observed on PostgreSQL 15 here: DEBUG verifying table "users" while AccessExclusiveLock is held
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);
