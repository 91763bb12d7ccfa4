-- expect: unique-without-index
-- source: observed on PostgreSQL 15 here: builds users_handle_key under AccessExclusiveLock
-- +ferry up
ALTER TABLE users ADD COLUMN handle text UNIQUE;
