-- expect: foreign-key-without-not-valid
-- source: observed on PostgreSQL 15 here: DEBUG validating foreign key constraint, scans of orders and users under ShareRowExclusiveLock on both
-- +ferry up
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
