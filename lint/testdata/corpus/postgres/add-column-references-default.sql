-- expect: foreign-key-without-not-valid
-- source: observed on PostgreSQL 15 here: DEBUG validating foreign key constraint "orders_owner_id_fkey", seq scans of orders and users under ShareRowExclusiveLock on users
-- +ferry up
ALTER TABLE orders ADD COLUMN owner_id bigint DEFAULT 1 REFERENCES users (id);
