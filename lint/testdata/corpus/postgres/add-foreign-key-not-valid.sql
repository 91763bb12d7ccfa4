-- expect: none
-- source: observed on PostgreSQL 15 here: no validation, no scan; ShareRowExclusiveLock on both only for the catalog change
-- +ferry up
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
