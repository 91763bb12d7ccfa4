-- expect: concurrent-in-transaction
-- source: observed on PostgreSQL 15 here: ERROR: CREATE INDEX CONCURRENTLY cannot run inside a transaction block
-- +ferry up
CREATE INDEX CONCURRENTLY users_email_idx ON users (email);
