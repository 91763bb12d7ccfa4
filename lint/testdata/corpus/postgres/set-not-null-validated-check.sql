-- expect: none
-- source: observed on PostgreSQL 15 here: after the CHECK is validated (ShareUpdateExclusiveLock), SET NOT NULL logs 'existing constraints on column "users.name" are sufficient to prove that it does not contain nulls' and does not scan; https://www.postgresql.org/docs/12/sql-altertable.html
-- +ferry up
-- +ferry no-transaction
ALTER TABLE users ADD CONSTRAINT users_name_not_null CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_name_not_null;
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
