-- expect: none
-- source: observed on PostgreSQL 15 here: in autocommit, VALIDATE takes ShareUpdateExclusiveLock on orders and RowShareLock on users: writes go on
-- +ferry up
-- +ferry no-transaction
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
