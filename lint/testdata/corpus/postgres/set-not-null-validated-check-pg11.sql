-- expect: set-not-null-scan
-- target: postgres 11
-- source: the scan is skipped only from PostgreSQL 12 on: https://www.postgresql.org/docs/12/release-12.html (Allow ALTER TABLE ... SET NOT NULL to avoid unnecessary table scans); https://www.postgresql.org/docs/11/sql-altertable.html
-- +ferry up
-- +ferry no-transaction
ALTER TABLE users ADD CONSTRAINT users_name_not_null CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_name_not_null;
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
