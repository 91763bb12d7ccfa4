-- expect: foreign-key-without-not-valid
-- source: observed on PostgreSQL 15 here: in one transaction, VALIDATE scans orders and users while the ShareRowExclusiveLocks of ADD CONSTRAINT on both are held
-- +ferry up
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
